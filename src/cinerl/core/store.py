"""The run store: one SQLite file per run folder that says what is finished.

A stage writes its files first (to a temporary name, renamed into place) and commits its row
after, so a row always points at a complete file. Resume reads the rows: anything with a row is
done and is never redone; anything without one is redone from scratch.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from cinerl.core.errors import UserError
from cinerl.core.schema import AttemptRecord, FilmReport

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY CHECK (id = 1), created REAL, prompt TEXT, fingerprint TEXT,
    settings TEXT, status TEXT);
CREATE TABLE IF NOT EXISTS artifacts (
    kind TEXT, key TEXT, path TEXT, sha256 TEXT, created REAL, PRIMARY KEY (kind, key));
CREATE TABLE IF NOT EXISTS attempts (
    scene INTEGER, attempt INTEGER, record TEXT, state TEXT, created REAL,
    PRIMARY KEY (scene, attempt));
CREATE TABLE IF NOT EXISTS rewards (
    scene INTEGER, attempt INTEGER, component TEXT, grp TEXT, status TEXT, value REAL, reason TEXT,
    PRIMARY KEY (scene, attempt, component));
CREATE TABLE IF NOT EXISTS scenes (
    scene INTEGER PRIMARY KEY, chosen INTEGER, policy_version INTEGER, policy_path TEXT,
    learn TEXT, created REAL);
CREATE TABLE IF NOT EXISTS stages (name TEXT PRIMARY KEY, seconds REAL);
CREATE TABLE IF NOT EXISTS llm_cache (key TEXT PRIMARY KEY, response TEXT, created REAL);
"""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_report(run_dir: Path) -> FilmReport:
    """A finished run's report.json, typed; a UserError names the file if it is missing or bad."""
    return FilmReport.read(Path(run_dir) / "report.json")


def fingerprint(prompt: str, settings: dict) -> str:
    """What makes two commands the same run: the prompt and every setting that changes the film."""
    return hashlib.sha256(json.dumps([prompt, settings], sort_keys=True).encode()).hexdigest()[:16]


class RunStore:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)

    @classmethod
    def open_run(cls, out_dir: Path, prompt: str, settings: dict, what: str = "run") -> "RunStore":
        """The store of `out_dir`, started for this prompt and settings, or a UserError when the
        folder holds a run of another prompt or other settings (nothing is overwritten)."""
        fp = fingerprint(prompt, settings)
        store = cls(Path(out_dir) / "state.db")
        run = store.run()
        if run and run["fingerprint"] != fp:
            store.close()
            raise UserError(
                f"{out_dir} holds a {what} of another prompt or other settings; "
                "pass --fresh to replace it or choose another --out"
            )
        if not run:
            store.start_run(prompt, fp, settings)
        return store

    @property
    def root(self) -> Path:
        """The run folder: artifact paths are stored relative to it."""
        return self.path.parent

    def cached(
        self,
        kind: str,
        key: str,
        make: Callable[[], T],
        write: Callable[[T], Path],
        read: Callable[[Path], T],
    ) -> T:
        """Compute-or-load, the idiom of every resumable stage: the artifact (kind, key) read back
        from its file when a previous run committed it intact; else made, written (write returns
        the file's path), committed, and read back, so a fresh run and a resumed one see the same
        value."""
        path = self.artifact(kind, key, self.root)
        if path is None:
            path = write(make())
            self.record_artifact(kind, key, path, self.root)
        return read(path)

    def close(self) -> None:
        self.db.close()

    # runs ---------------------------------------------------------------------------------
    def run(self) -> dict | None:
        row = self.db.execute("SELECT prompt, fingerprint, settings, status FROM runs").fetchone()
        if not row:
            return None
        return {"prompt": row[0], "fingerprint": row[1], "settings": json.loads(row[2]), "status": row[3]}

    def start_run(self, prompt: str, fp: str, settings: dict) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO runs VALUES (1, ?, ?, ?, ?, 'running')",
            (time.time(), prompt, fp, json.dumps(settings, sort_keys=True)),
        )

    def update_settings(self, fp: str, settings: dict) -> None:
        """A resumed run accepted changed settings: later resumes compare against these."""
        view = json.dumps(settings, sort_keys=True)
        self.db.execute("UPDATE runs SET fingerprint = ?, settings = ?", (fp, view))

    def set_status(self, status: str) -> None:
        self.db.execute("UPDATE runs SET status = ?", (status,))

    # artifacts ----------------------------------------------------------------------------
    def record_artifact(self, kind: str, key: str, path: Path, root: Path) -> None:
        rel = str(Path(path).relative_to(root))
        self.db.execute(
            "INSERT OR REPLACE INTO artifacts VALUES (?, ?, ?, ?, ?)",
            (kind, key, rel, sha256_file(path), time.time()),
        )

    def artifact(self, kind: str, key: str, root: Path) -> Path | None:
        """The file of a committed artifact, or None if it is missing or not what was written."""
        row = self.db.execute(
            "SELECT path, sha256 FROM artifacts WHERE kind = ? AND key = ?", (kind, key)
        ).fetchone()
        if not row:
            return None
        path = root / row[0]
        if not path.exists() or sha256_file(path) != row[1]:
            return None
        return path

    def recorded_sha256(self, kind: str, key: str) -> str | None:
        """The sha256 the store recorded for an artifact (None if it has no row), whatever the
        file on disk now holds."""
        row = self.db.execute(
            "SELECT sha256 FROM artifacts WHERE kind = ? AND key = ?", (kind, key)
        ).fetchone()
        return row[0] if row else None

    def artifacts(self) -> list[dict]:
        rows = self.db.execute("SELECT kind, key, path, sha256 FROM artifacts ORDER BY kind, key")
        return [dict(zip(("kind", "key", "path", "sha256"), r)) for r in rows]

    # attempts and scenes ------------------------------------------------------------------
    def commit_attempt(self, record: AttemptRecord, state: list[float]) -> None:
        """One transaction: the attempt and its reward components land together or not at all."""
        with self.db:
            self.db.execute("BEGIN")
            self.db.execute(
                "INSERT OR REPLACE INTO attempts VALUES (?, ?, ?, ?, ?)",
                (record.scene, record.attempt, record.model_dump_json(), json.dumps(state), time.time()),
            )
            for name, comp in record.reward.components.items():
                self.db.execute(
                    "INSERT OR REPLACE INTO rewards VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (record.scene, record.attempt, name, comp.group, comp.status, comp.value, comp.reason),
                )

    def attempts(self, scene: int | None = None) -> list[tuple[AttemptRecord, list[float]]]:
        q = "SELECT record, state FROM attempts"
        args: tuple = ()
        if scene is not None:
            q += " WHERE scene = ?"
            args = (scene,)
        rows = self.db.execute(q + " ORDER BY scene, attempt", args).fetchall()
        return [(AttemptRecord.model_validate_json(r[0]), json.loads(r[1])) for r in rows]

    def commit_scene(
        self, scene: int, chosen: int, policy_version: int, policy_path: str, learn: dict
    ) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO scenes VALUES (?, ?, ?, ?, ?, ?)",
            (scene, chosen, policy_version, policy_path, json.dumps(learn), time.time()),
        )

    def scenes(self) -> dict[int, dict]:
        rows = self.db.execute(
            "SELECT scene, chosen, policy_version, policy_path, learn FROM scenes ORDER BY scene"
        )
        return {
            r[0]: {"chosen": r[1], "policy_version": r[2], "policy_path": r[3], "learn": json.loads(r[4])}
            for r in rows
        }

    # stage times --------------------------------------------------------------------------
    def add_stage_time(self, name: str, seconds: float) -> None:
        self.db.execute(
            "INSERT INTO stages VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET "
            "seconds = seconds + excluded.seconds",
            (name, seconds),
        )

    def stage_times(self) -> dict[str, float]:
        return {r[0]: r[1] for r in self.db.execute("SELECT name, seconds FROM stages")}

    # LLM cache: key is a hash of provider, model, messages and parameters (planning/llm.py) ---
    def llm_get(self, key: str) -> str | None:
        row = self.db.execute("SELECT response FROM llm_cache WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def llm_put(self, key: str, response: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO llm_cache VALUES (?, ?, ?)", (key, response, time.time()))
