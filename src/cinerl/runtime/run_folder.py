"""What in a run folder is CineRL's: --fresh removes exactly that, a start removes this run's stale
temp files, and a store that cannot be read ends in one line.

A run folder may be a folder the user already had (`--out ~/films`), so nothing is removed by
folder name: --fresh removes the files the run store lists (artifacts, every attempt's mp4, PNG
and thumbnail), the fixed files every run writes (film, subtitles, report, the LLM step logs,
state.db with its WAL and SHM), CineRL's own temp files, then the folders that became empty.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from cinerl.core.errors import UserError
from cinerl.core.locks import RUN_LOCK
from cinerl.core.store import RunStore
from cinerl.planning.bible import PROMPTS_FILE, STEPS_FILE

STORE = "state.db"
STORE_FILES = (STORE, f"{STORE}-wal", f"{STORE}-shm", f"{STORE}-journal")
FIXED_FILES = ("film.mp4", "film.srt", "report.json", "report.html", str(STEPS_FILE), str(PROMPTS_FILE))
RUN_DIRS = ("story", "references", "scenes", "policy", "keyframes", "rapo")
# atomic_path (core/media.py): .<stem>.<random>.tmp<suffix>; PromptPolicy.save: .<name>.tmp<pid>;
# the writable probe of core/inputs: .cinerl-probe-<random>
TEMP = re.compile(r"^\.(.+\.tmp.*|cinerl-probe-.+)$")


def store_path(out_dir: Path) -> Path:
    return Path(out_dir) / STORE


def open_store(out_dir: Path) -> RunStore:
    """The run store, or one line naming the file and what to do when it cannot be read."""
    path = store_path(out_dir)
    try:
        store = RunStore(path)
        store.run()
        store.db.execute("SELECT count(*) FROM attempts").fetchone()
        return store
    except sqlite3.DatabaseError as e:
        if is_disk_full(e):
            raise
        raise UserError(damaged_store(path, e)) from None


def damaged_store(path: Path, e: Exception) -> str:
    return (
        f"{path} is damaged ({e}): it cannot say what this run finished; "
        f"move it away (mv {path} {path}.bad) to shoot the run again from the start"
    )


def is_disk_full(e: BaseException) -> bool:
    """ENOSPC/EFBIG/EDQUOT, or sqlite's words for them."""
    import errno

    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        return True
    text = str(e).lower()
    return isinstance(e, sqlite3.OperationalError) and (
        "disk i/o error" in text or "database or disk is full" in text
    )


def temp_files(out_dir: Path) -> list[Path]:
    """CineRL's temp files in the run folder and its run subfolders (none of them is the user's)."""
    out_dir = Path(out_dir)
    found = [p for p in out_dir.iterdir() if p.is_file() and TEMP.match(p.name)]
    for name in RUN_DIRS:
        d = out_dir / name
        if d.is_dir():
            found += [p for p in d.rglob(".*") if p.is_file() and TEMP.match(p.name)]
    return found


def remove_stale_temps(out_dir: Path) -> int:
    """Called under the run lock, so no live process of this run is writing them."""
    files = temp_files(out_dir)
    for p in files:
        p.unlink(missing_ok=True)
    return len(files)


def _ours(store: RunStore) -> set[str]:
    paths = {a["path"] for a in store.artifacts()}
    for rec, _ in store.attempts():
        paths |= {rec.clip_path, rec.last_frame_path, rec.thumbnail_path}
        paths.add(rec.clip_path.removesuffix(".mp4") + ".latents.safetensors")  # wan --save-latents
    return paths


def _user_entries(out_dir: Path) -> list[str]:
    return sorted(p.name for p in Path(out_dir).iterdir() if p.name != RUN_LOCK and not TEMP.match(p.name))


def clear_run(out_dir: Path) -> int:
    """--fresh: remove what the store lists as this run's and nothing else; refuse a folder with
    no run store that holds anything. Returns the number of files removed."""
    out_dir = Path(out_dir)
    if not store_path(out_dir).exists():
        others = _user_entries(out_dir)
        if others:
            shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
            raise UserError(
                f"--fresh: {out_dir} holds no CineRL run (no {STORE}) but is not empty ({shown}); "
                "nothing was deleted: choose an empty or new --out"
            )
        return remove_stale_temps(out_dir)
    store = open_store(out_dir)
    try:
        listed = _ours(store)
    finally:
        store.close()
    removed = 0
    for rel in sorted(listed | set(FIXED_FILES)):
        p = (out_dir / rel).resolve()
        if out_dir.resolve() in p.parents and p.is_file():
            p.unlink()
            removed += 1
    removed += remove_stale_temps(out_dir)
    for name in STORE_FILES:
        if (out_dir / name).exists():
            (out_dir / name).unlink()
            removed += 1
    for name in RUN_DIRS:  # folders the run made, deepest first, only where nothing is left
        d = out_dir / name
        if d.is_dir():
            for sub in sorted((p for p in d.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                if not any(sub.iterdir()):
                    sub.rmdir()
            if not any(d.iterdir()):
                d.rmdir()
    return removed
