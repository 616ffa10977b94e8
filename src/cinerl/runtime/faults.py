"""Faults a run cannot fix by itself, each turned into one line (a UserError, exit 2): a full disk,
a damaged run store, a file that ends early. Nothing is lost in any of them: every finished step
was committed, so the same command resumes once the cause is gone."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cinerl.core.errors import UserError
from cinerl.runtime.run_folder import damaged_store, is_disk_full, store_path


def _mb(n: float) -> str:
    return f"{n / 1e6:.0f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


def disk_full_message(out_dir: Path) -> str:
    """The folder, the free space and a rough need: the run's files so far (takes, stills) again,
    which is about what the remaining takes and the film take on a film half done."""
    used = sum(p.stat().st_size for p in out_dir.rglob("*") if p.is_file()) if out_dir.is_dir() else 0
    try:
        free = shutil.disk_usage(out_dir).free
    except OSError:
        free = 0
    return (
        f"the disk is full writing to {out_dir} ({_mb(free)} free; this run has written "
        f"{_mb(used)} and needs about as much again): free some space and run the same command to resume"
    )


@contextmanager
def as_user_error(out_dir: Path) -> Iterator[None]:
    try:
        yield
    except UserError:
        raise
    except (OSError, sqlite3.DatabaseError) as e:
        if is_disk_full(e):
            raise UserError(disk_full_message(out_dir)) from None
        if isinstance(e, sqlite3.DatabaseError) and not isinstance(e, sqlite3.OperationalError):
            raise UserError(damaged_store(store_path(out_dir), e)) from None
        raise
    except EOFError as e:  # PyAV on a truncated file; click would print only "Aborted."
        raise UserError(
            f"a file in {out_dir} ends early ({e}); run the same command again to re-make it"
        ) from None
