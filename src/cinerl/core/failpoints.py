"""Named fault points: where the kill-and-resume tests stop a real process with SIGKILL.

``CINERL_KILL_AT=NAME`` (a comma-separated list is fine) makes the process kill itself with
SIGKILL the moment it reaches :func:`fault_point` ``(NAME)``: no ``finally``, no atexit, no
flush, as an out-of-memory kill or a pulled plug would stop it. Unset (always, outside tests), a
fault point is one dictionary lookup. The idea is FreeBSD's and TiKV's "failpoints", reduced to
the one action these tests need.
"""

from __future__ import annotations

import os
import signal

__all__ = ["ENV", "fault_point"]

ENV = "CINERL_KILL_AT"


def fault_point(name: str) -> None:
    """SIGKILL this process here when ``CINERL_KILL_AT`` names ``name``."""
    wanted = os.environ.get(ENV)
    if wanted and name in {w.strip() for w in wanted.split(",")}:
        os.kill(os.getpid(), signal.SIGKILL)
