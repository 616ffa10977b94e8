"""Helpers of the run-folder fault tests: every case is a real `cinerl make` at a tiny size
(2 scenes x 2 takes, 96x64, 6 fps). One uninterrupted run is made once per test process and
copied for each case that damages a folder, so the suite stays within a few minutes."""

import re
import shutil
from pathlib import Path

import pytest

from tests.e2e.helpers import film_frames, make_cmd, run

TWO = ["--scenes", "2"]  # after SMALL's --scenes 3: the last one counts
_REFERENCE: dict = {}
EVENT = re.compile(r"^(planning|reference stills|scene \d+/\d+: .*)$")  # the non-terminal stage lines


def make2(out: Path, policy: Path, *extra: str) -> list[str]:
    return make_cmd(out, policy, *TWO, *extra)


def one_line_error(proc) -> str:
    """The error of a refused command: exit 2, one line, no traceback."""
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and not EVENT.match(ln)]
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.fixture
def reference(tmp_path_factory):
    """An uninterrupted run: (its folder, its film's frames, its stderr). Copy it; never edit it."""
    if not _REFERENCE:
        root = tmp_path_factory.mktemp("reference")
        out = root / "run"
        proc = run(make2(out, root / "policy.pt"))
        assert proc.returncode == 0, proc.stderr
        _REFERENCE["run"] = (out, film_frames(out), proc.stderr)
    return _REFERENCE["run"]


@pytest.fixture
def copy_of(reference, tmp_path):
    def copy() -> Path:
        out = tmp_path / "run"
        shutil.copytree(reference[0], out)
        return out

    return copy
