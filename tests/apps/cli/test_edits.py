"""Editing a film through the real `cinerl` command on previz: plan only, approve (with a hand
edit), retake, choose, cascade, a SIGKILL during a retake, the budget, and the estimate.

Heavy: each film plans (spaCy, about 10 s) and shoots at 64x48 on two shared cores; the module
makes two films and edits them, about 2.5 minutes (make test-heavy)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.helpers import CINERL, PROMPT

pytestmark = pytest.mark.heavy

SMALL = ["--scenes", "3", "--attempts", "1", "--max-attempts", "3", "--size", "64x48", "--fps", "4"]
SMALL += ["--music", "none"]


def env(home: Path) -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HOME": str(home)}


def cinerl(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CINERL, *args], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300, env=env(home)
    )


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): sha(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def db(out: Path, q: str) -> list:
    with sqlite3.connect(out / "state.db") as con:
        return con.execute(q).fetchall()


def report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def film(tmp_path_factory):
    """A plan made with --plan-only, its bible edited by hand, then approved."""
    root = tmp_path_factory.mktemp("edits")
    out = root / "run"
    res = cinerl(
        root, "make", PROMPT, "--out", str(out), "--policy", str(root / "p.pt"), *SMALL, "--plan-only"
    )
    assert res.returncode == 0, res.stderr
    assert "awaiting approval" in res.stdout
    assert res.stdout.splitlines()[0].startswith("estimate: 3 scenes x 1 take = 3 clips")
    assert db(out, "SELECT status FROM runs") == [("awaiting approval",)]
    assert not (out / "scenes").exists() and not (out / "film.mp4").exists()
    return root, out


def test_plan_only_then_approve_with_an_edited_bible(film):
    root, out = film
    # plain make again refuses to shoot an unapproved plan: one line, exit 2
    again = cinerl(root, "make", PROMPT, "--out", str(out), "--policy", str(root / "p.pt"), *SMALL)
    assert again.returncode == 2 and "awaiting approval" in again.stderr
    bible_path = out / "story" / "bible.json"
    bible = json.loads(bible_path.read_text())
    char = bible["characters"][0]
    ref = out / "references" / f"character_{char['id']}.png"
    ref_before = sha(ref)
    # a broken edit is refused by name and nothing changes
    broken = json.loads(json.dumps(bible))
    broken["scenes"][1]["location_id"] = "nowhere"
    bible_path.write_text(json.dumps(broken))
    bad = cinerl(root, "approve", str(out))
    assert bad.returncode == 2 and "scene 2 names an unknown location 'nowhere'" in bad.stderr
    assert db(out, "SELECT status FROM runs") == [("awaiting approval",)]
    # a real edit: the first character's first garment turns red (the reference prompt names it)
    char["wardrobe"][0] = {"name": "red", "rgb": [210, 20, 20]}
    bible_path.write_text(json.dumps(bible, indent=2))
    ok = cinerl(root, "approve", str(out))
    assert ok.returncode == 0, ok.stderr
    assert db(out, "SELECT status FROM runs") == [("done",)]
    rep = report(out)
    assert rep["bible"]["characters"][0]["wardrobe"][0] == {"name": "red", "rgb": [210, 20, 20]}
    assert sha(ref) != ref_before  # the edited character's reference was made again
    (approve_row,) = db(out, "SELECT kind, status, params FROM edits WHERE kind = 'approve'")
    assert approve_row[1] == "done" and f"character {char['id']}: reference made again" in approve_row[2]
    # the estimate's numbers match what the run shot
    est = rep["estimate"]
    assert (
        (est["clips"], est["frames"])
        == (est["measured"]["clips"], est["measured"]["frames"])
        == (3, est["frames"])
    )
    assert est["measured"]["seconds"] > 0
    timings = json.loads((root / ".cinerl" / "timings.json").read_text())  # $HOME/.cinerl
    assert timings["previz:64x48"]["per_frame"] > 0


def test_retake_keeps_other_scenes_and_recuts(film):
    root, out = film
    before = tree(out / "scenes")
    film_mtime = (out / "film.mp4").stat().st_mtime_ns
    res = cinerl(root, "retake", str(out), "--scene", "2", "--attempts", "2")
    assert res.returncode == 0, res.stderr
    assert "scene 2: takes 2, 3" in res.stdout
    after = tree(out / "scenes")
    # scenes 1 and 3 untouched, scene 2's first take untouched, two takes added
    assert {k: v for k, v in after.items() if not k.startswith("scene_01")} == {
        k: v for k, v in before.items() if not k.startswith("scene_01")
    }
    assert after["scene_01/attempt_00.mp4"] == before["scene_01/attempt_00.mp4"]
    assert {"scene_01/attempt_01.mp4", "scene_01/attempt_02.mp4"} <= set(after) - set(before)
    assert (out / "film.mp4").stat().st_mtime_ns != film_mtime
    rep = report(out)
    assert [a["attempt"] for a in rep["scenes"][1]["attempts"]] == [0, 1, 2]
    held = rep["scenes"][1]["attempts"]
    assert (
        rep["scenes"][1]["chosen"]
        == max(held, key=lambda a: (a["reward"]["total"], -a["attempt"]))["attempt"]
    )
    # scene 3 was shot from scene 2's take 1: it is stale exactly when the retake changed the choice
    stale = rep["scenes"][1]["chosen"] != 0
    assert rep["continuity_stale"] == ([2] if stale else [])
    assert ("continuity stale: scene 3" in res.stdout) == stale
    # bad input: one line, exit 2
    for args, words in (
        (["--scene", "0"], "--scene counts from 1"),
        (["--scene", "4"], "--scene must be between 1 and 3"),
        (["--scene", "2", "--attempts", "0"], "--attempts must be between 1 and 64"),
    ):
        bad = cinerl(root, "retake", str(out), *args)
        assert bad.returncode == 2 and words in bad.stderr, bad.stderr


def test_choose_recuts_and_marks_the_next_scene_stale_then_cascade(film):
    root, out = film
    rep = report(out)
    chosen = rep["scenes"][1]["chosen"]
    # a take that is neither the choice nor take 1, which scene 3 was shot from
    other = next(a["attempt"] for a in rep["scenes"][1]["attempts"] if a["attempt"] not in (chosen, 0))
    film_before = sha(out / "film.mp4")
    res = cinerl(root, "choose", str(out), "--scene", "2", "--attempt", str(other + 1))
    assert res.returncode == 0, res.stderr
    assert f"scene 2: take {chosen + 1} -> {other + 1}" in res.stdout
    assert "continuity stale: scene 3" in res.stdout
    rep = report(out)
    assert rep["scenes"][1]["chosen"] == other and rep["continuity_stale"] == [2]
    assert sha(out / "film.mp4") != film_before
    bad = cinerl(root, "choose", str(out), "--scene", "2", "--attempt", "9")
    assert bad.returncode == 2 and "--attempt 9 is not one" in bad.stderr
    # cascade: scene 2 gets a take, and scene 3 (stale) is reshot from scene 2's new last frame
    scene1 = tree(out / "scenes" / "scene_00")
    res = cinerl(root, "retake", str(out), "--scene", "2", "--attempts", "1", "--cascade")
    assert res.returncode == 0, res.stderr
    assert "scene 2: takes 4" in res.stdout and "scene 3: takes 2" in res.stdout
    rep = report(out)
    assert rep["continuity_stale"] == [] and rep["scenes"][2]["chosen"] == 1
    assert tree(out / "scenes" / "scene_00") == scene1


def test_sigkill_during_a_retake_then_rerun(film):
    root, out = film
    cmd = [CINERL, "retake", str(out), "--scene", "1", "--attempts", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env(root))
    second = out / "scenes" / "scene_00" / "attempt_02.mp4"  # the first new take is committed by then
    t0 = time.monotonic()
    while not second.exists():
        assert proc.poll() is None, "the retake finished before its second take"
        assert time.monotonic() - t0 < 200
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    first_new = out / "scenes" / "scene_00" / "attempt_01.mp4"
    kept = (sha(first_new), first_new.stat().st_mtime_ns)
    assert db(out, "SELECT status FROM edits ORDER BY id DESC LIMIT 1") == [("pending",)]
    # another edit is refused while this one is unfinished
    other = cinerl(root, "choose", str(out), "--scene", "1", "--attempt", "1")
    assert other.returncode == 2 and "unfinished retake" in other.stderr
    res = cinerl(root, *cmd[1:])
    assert res.returncode == 0, res.stderr
    assert (sha(first_new), first_new.stat().st_mtime_ns) == kept  # finished: neither lost nor redone
    rows = db(out, "SELECT status, params FROM edits WHERE kind = 'retake'")
    assert [status for status, params in rows if json.loads(params)["scene"] == 1] == ["done"]  # one edit
    assert [a["attempt"] for a in report(out)["scenes"][0]["attempts"]] == [0, 1, 2]


def test_choose_loads_no_video_backend(film, monkeypatch):
    """A choice renders nothing: the re-cut runs without the video backend (Wan's would load
    gigabytes), in-process so the backend's loader can be made to fail if it is asked for."""
    from cinerl.runtime import director, edits

    root, out = film
    monkeypatch.setenv("HOME", str(root))

    def no_backend(*a, **k):
        raise AssertionError("choose asked for the video backend")

    monkeypatch.setattr(director, "get_video_backend", no_backend)
    before = report(out)["scenes"][0]["chosen"]
    take = 1 if before != 0 else 2
    _, summary = edits.choose(out, 1, take)
    assert summary["previous"] == before + 1
    assert report(out)["scenes"][0]["chosen"] == take - 1


def test_budget_keeps_one_take_per_scene(tmp_path):
    out = tmp_path / "run"
    args = [*SMALL, "--attempts", "3", "--budget", "0.01"]
    res = cinerl(tmp_path, "make", PROMPT, "--out", str(out), "--policy", str(tmp_path / "p.pt"), *args)
    assert res.returncode == 0, res.stderr
    assert "budget: 0 s" in res.stdout.splitlines()[2]
    rep = report(out)
    assert [len(s["attempts"]) for s in rep["scenes"]] == [1, 1, 1]
    b = rep["budget"]
    assert b["budget_s"] == 0.01 and b["spent_s"] > 0.01
    assert [(c["scene"], c["kept"], c["planned"]) for c in b["cuts"]] == [(0, 1, 3), (1, 1, 3), (2, 1, 3)]
    assert rep["estimate"]["clips"] == 9 and rep["estimate"]["measured"]["clips"] == 3
