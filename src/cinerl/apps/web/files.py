"""The workbench's runs folder: run names and the one check every served path passes."""

from __future__ import annotations

import re
from pathlib import Path

from cinerl.core.errors import UserError

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def resolve_in(root: Path, rel: str) -> Path | None:
    """The file `rel` names inside `root`, or None: absolute paths, `..`, links out of the
    folder and missing files all end here (the server answers 404)."""
    root = Path(root).resolve()
    if not rel or rel.startswith(("/", "\\")) or "\x00" in rel:
        return None
    target = (root / rel).resolve()
    if target != root and root not in target.parents:
        return None
    return target if target.is_file() else None


def run_dir(root: Path, name: str | None, new: bool = False) -> Path:
    """The folder of run `name` in the runs folder (a plain name, never a path)."""
    if not name or not NAME.match(name) or name in (".", ".."):
        raise UserError(f"a run name is letters, digits, '_', '-' or '.' (got {name!r})")
    path = Path(root) / name
    if new and (path / "state.db").exists():
        raise UserError(f"run {name} exists already: choose another name, or open it from the run list")
    if not new and not (path / "state.db").is_file():
        raise UserError(f"no run named {name} in {root}")
    return path


def run_names(root: Path) -> list[str]:
    """Runs in the folder, newest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    runs = [p for p in root.iterdir() if (p / "state.db").is_file() and NAME.match(p.name)]
    return [p.name for p in sorted(runs, key=lambda p: p.stat().st_mtime, reverse=True)]
