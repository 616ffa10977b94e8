"""`cinerl make` killed with a real SIGKILL inside the audio stage (at the named fault points of
core/failpoints.py), then run again: the same film.mp4 bytes as an uninterrupted run, and the
narration a killed run had committed is not spoken again.

Heavy (make test-heavy): five real `cinerl make` processes of ~15-30 s each on 2 cores.
test_soundtrack_film.py covers the same resume in-process with the kill simulated."""

from __future__ import annotations

import signal
import sqlite3
import subprocess

import pytest

from cinerl.core.failpoints import ENV
from tests.e2e.helpers import CINERL, env

pytestmark = pytest.mark.heavy  # five real `cinerl make` processes: ~1.5 min on 2 cores

PROMPT = "A fisherman and his daughter search the stormy harbour for a lost boat at night"
POINTS = ("audio.after_narration_00", "audio.after_music", "audio.after_mix", "audio.mid_mux")


def make(out, policy, kill_at: str | None = None) -> subprocess.CompletedProcess:
    cmd = [CINERL, "make", PROMPT, "--out", str(out), "--policy", str(policy)]
    cmd += ["--scenes", "2", "--attempts", "1", "--max-attempts", "1", "--size", "96x64", "--fps", "6"]
    e = env()
    e.pop(ENV, None)
    if kill_at:
        e[ENV] = kill_at
    return subprocess.run(cmd, capture_output=True, text=True, env=e, stdin=subprocess.DEVNULL, timeout=300)


def audio_rows(out) -> dict[str, str]:
    with sqlite3.connect(out / "state.db") as db:
        return {k.split(":")[0]: k for (k,) in db.execute("SELECT key FROM artifacts WHERE kind = 'audio'")}


def test_sigkill_in_the_audio_stage_then_rerun_gives_the_same_film_bytes(tmp_path):
    ref = make(tmp_path / "ref", tmp_path / "ref.pt")
    assert ref.returncode == 0, ref.stderr
    reference = (tmp_path / "ref" / "film.mp4").read_bytes()

    out, policy = tmp_path / "run", tmp_path / "run.pt"
    seen: dict[str, str] = {}
    for point in POINTS:  # each run killed one step further into the stage
        killed = make(out, policy, kill_at=point)
        assert killed.returncode == -signal.SIGKILL, (point, killed.returncode, killed.stderr[-2000:])
        rows = audio_rows(out)
        for stem, key in seen.items():  # what an earlier run committed is kept, not made again
            assert rows.get(stem) == key, (point, stem)
        seen = rows
        if point == "audio.after_narration_00":
            assert set(rows) == {"narration_00"}
            line = out / "audio" / "narration_00.wav"
            spoken = (line.stat().st_mtime_ns, line.read_bytes())
        if point == "audio.mid_mux":
            assert set(rows) == {"narration_00", "narration_01", "music", "mix"}
            assert list(out.glob(".film.*.tmp.mp4")), "the kill should land in the middle of the mux"
    done = make(out, policy)
    assert done.returncode == 0, done.stderr
    assert (out / "film.mp4").read_bytes() == reference
    line = out / "audio" / "narration_00.wav"
    assert (line.stat().st_mtime_ns, line.read_bytes()) == spoken  # never spoken again
