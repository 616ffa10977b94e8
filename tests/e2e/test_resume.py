"""Kill `cinerl make` with a real SIGKILL at several points, run it again, and compare the film with
an uninterrupted run's, frame by frame."""

import json
import os
import signal
import sqlite3
import subprocess
import time

import numpy as np
import pytest

from tests.e2e.helpers import env, film_frames, make_cmd, run

# Files whose appearance marks a point in the run: preproduction, mid-scene, between scenes, stitch.
KILL_POINTS = [
    "references/location_old_harbour_town.png",
    "scenes/scene_01/attempt_00.mp4",
    "policy/after_scene_01.pt",
    "film.mp4",
]


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    root = tmp_path_factory.mktemp("baseline")
    res = run(make_cmd(root / "run", root / "policy.pt"))
    assert res.returncode == 0, res.stderr
    return root / "run"


def attempts_in(out):
    with sqlite3.connect(out / "state.db") as db:
        return db.execute("SELECT scene, attempt FROM attempts ORDER BY scene, attempt").fetchall()


def kill_when(cmd, marker, timeout=120.0):
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env(), stdin=subprocess.DEVNULL
    )
    t0 = time.monotonic()
    while not marker.exists():
        if proc.poll() is not None:
            raise AssertionError(f"run finished before {marker.name} appeared")
        if time.monotonic() - t0 > timeout:
            proc.kill()
            raise AssertionError(f"{marker} never appeared")
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return proc.returncode


@pytest.mark.parametrize("point", KILL_POINTS)
def test_sigkill_then_resume_gives_the_same_film(tmp_path, baseline, point):
    out = tmp_path / "run"
    cmd = make_cmd(out, tmp_path / "policy.pt")
    assert kill_when(cmd, out / point) == -signal.SIGKILL
    done_before = attempts_in(out)
    stamps = (
        {p: p.stat().st_mtime_ns for p in (out / "scenes").rglob("*.mp4")}
        if (out / "scenes").exists()
        else {}
    )
    res = run(cmd)
    assert res.returncode == 0, res.stderr
    # nothing finished was redone: committed attempts' clips were not rewritten
    for rel in done_before:
        clip = out / "scenes" / f"scene_{rel[0]:02d}" / f"attempt_{rel[1]:02d}.mp4"
        assert clip.stat().st_mtime_ns == stamps[clip]
    assert attempts_in(out) == attempts_in(baseline)
    np.testing.assert_array_equal(film_frames(out), film_frames(baseline))
    a = json.loads((out / "report.json").read_text())
    b = json.loads((baseline / "report.json").read_text())
    assert [s["chosen"] for s in a["scenes"]] == [s["chosen"] for s in b["scenes"]]
    assert [[x["reward"]["total"] for x in s["attempts"]] for s in a["scenes"]] == [
        [x["reward"]["total"] for x in s["attempts"]] for s in b["scenes"]
    ]


def test_other_prompt_in_same_folder_is_refused_and_fresh_starts_over(tmp_path, baseline):
    out = tmp_path / "run"
    assert run(make_cmd(out, tmp_path / "p.pt")).returncode == 0
    res = run(make_cmd(out, tmp_path / "p.pt", prompt="A knight guards the castle."))
    assert res.returncode == 2 and "--fresh" in res.stderr
    res = run(make_cmd(out, tmp_path / "p.pt", "--fresh", prompt="A knight guards the castle."))
    assert res.returncode == 0, res.stderr
    assert "castle" in (out / "story" / "bible.json").read_text()


def test_terminal_asks_before_resuming(tmp_path, baseline):
    """On a TTY with a run in --out and no --fresh/--resume, the command asks; 'y' resumes."""
    import pty

    out = tmp_path / "run"
    cmd = make_cmd(out, tmp_path / "policy.pt")
    kill_when(cmd, out / "scenes/scene_00/attempt_00.mp4")
    pid, fd = pty.fork()
    if pid == 0:  # child: the real command on a terminal
        os.execve(cmd[0], cmd, env())
    seen = b""
    answered = False
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
        if not answered and b"Resume it?" in seen:
            os.write(fd, b"y\n")
            answered = True
    _, status = os.waitpid(pid, 0)
    assert answered, seen.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0, seen.decode(errors="replace")
    np.testing.assert_array_equal(film_frames(out), film_frames(baseline))
