"""File locks: one run per run folder, one writer at a time of a shared policy file.

Why `fcntl.flock` and not an O_EXCL lock file: the kernel drops a flock when its holder dies, even
under SIGKILL, so a lock can never be stale in the sense of "held by nobody"; what can be stale is
the *file*, left behind with a dead holder's pid in it. Taking the flock proves its holder is gone,
so the pid inside is only read to say who had it (a notice) or who has it (the refusal). An O_EXCL
file would need a pid-is-alive check, which races with pid reuse and cannot see other hosts.

The lock file holds "pid host" on one line. It is unlinked on release; because another process may
have opened the old file just before, a taker checks after locking that the path still names the
file it locked, and retries if not.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cinerl.core.errors import UserError

log = logging.getLogger(__name__)

RUN_LOCK = ".cinerl.lock"


class Locked(UserError):
    """Another live process holds the lock."""

    def __init__(self, message: str, pid: int | None):
        super().__init__(message)
        self.pid = pid


def _holder(fd: int) -> tuple[int | None, str]:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 200).decode("utf-8", "replace").split()
    pid = int(text[0]) if text and text[0].isdigit() else None
    return pid, text[1] if len(text) > 1 else "?"


class FileLock:
    """An exclusive flock on `path`; `acquire(wait=False)` raises Locked when it is held."""

    def __init__(self, path: Path, what: str):
        self.path = Path(path)
        self.what = what  # for the refusal: "a run is in progress in DIR"
        self.fd: int | None = None

    def acquire(self, wait: bool = False) -> "FileLock":
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except OSError as e:
                pid, host = _holder(fd)
                os.close(fd)
                if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    where = "" if host in ("?", socket.gethostname()) else f" on {host}"
                    raise Locked(f"{self.what} (pid {pid if pid else '?'}{where})", pid) from None
                raise
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # released and unlinked between our open and our lock: try again
        pid, host = _holder(fd)
        if pid is not None and pid != os.getpid():
            log.warning(
                "took over the stale lock %s of pid %s on %s (that process is gone)", self.path, pid, host
            )
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        os.close(self.fd)  # closing drops the flock
        self.fd = None

    def __enter__(self) -> "FileLock":
        return self.acquire() if self.fd is None else self

    def __exit__(self, *exc) -> None:
        self.release()


def run_lock(out_dir: Path) -> FileLock:
    """The lock of a run folder, taken (a second process gets "a run is in progress in DIR")."""
    return FileLock(Path(out_dir) / RUN_LOCK, f"a run is in progress in {out_dir}").acquire()


@contextmanager
def locked_file(path: Path) -> Iterator[None]:
    """Hold `<path>.lock` while reading and rewriting a file that several runs share (waits)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path.with_name(path.name + ".lock"), f"{path} is being updated").acquire(wait=True)
    try:
        yield
    finally:
        lock.release()
