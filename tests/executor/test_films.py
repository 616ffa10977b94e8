"""Films on the Ray executor, against the same film made in this process: `--parallel-takes` on a
local 2-CPU Ray cluster (127.0.0.1) is frame for frame the local film; a Ray worker killed in
the middle of a take makes the take run again and the film stays the same; a driver killed
mid-film and run again resumes to the same film.

Heavy: a 3-scene, 3-take film is 30-60 s on this 2-core machine, and the test of the driver
starts its own Ray cluster twice (about 10 s each); `make test-heavy` runs them."""

import json
import os
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from cinerl.core.settings import Settings
from cinerl.executor.ray import RayExecutor
from cinerl.runtime.director import make_film
from cinerl.runtime.run_folder import temp_files
from cinerl.training.policy.net import PromptPolicy
from tests.e2e.helpers import CINERL, PROMPT, env, film_frames
from tests.executor.conftest import wait_for_job

pytestmark = pytest.mark.heavy

TINY = {
    "plan.scenes": 3,
    "run.attempts": 3,
    "run.max_attempts": 3,
    "run.width": 96,
    "run.height": 64,
    "run.fps": 4,
    "run.parallel_takes": True,
}
FLAGS = ["--scenes", "3", "--attempts", "3", "--max-attempts", "3", "--size", "96x64", "--fps", "4"]


def tiny(policy: Path) -> Settings:
    return Settings.of(**TINY, **{"policy.path": str(policy)})


def takes(out: Path) -> list[tuple]:
    """Every take as the store holds it: scene, take, seed, prompt, action, reward, the state
    the policy acted from (not the timings, which differ from run to run)."""
    db = sqlite3.connect(out / "state.db")
    try:
        rows = db.execute("SELECT record, state FROM attempts ORDER BY scene, attempt").fetchall()
    finally:
        db.close()
    out_rows = []
    for record, state in rows:
        r = json.loads(record)
        out_rows.append(
            (r["scene"], r["attempt"], r["seed"], r["prompt"], r["action"], r["reward"]["total"], state)
        )
    return out_rows


@pytest.fixture(scope="module")
def pool(ray_cluster):
    ex = RayExecutor(workers=2, max_retries=2)
    yield ex
    ex.shutdown()


@pytest.fixture(scope="module")
def local_film(tmp_path_factory):
    root = tmp_path_factory.mktemp("local")
    make_film(PROMPT, root / "run", tiny(root / "policy.pt"))
    return film_frames(root / "run"), takes(root / "run")


def test_parallel_takes_on_ray_make_the_local_film(pool, local_film, tmp_path):
    start = len(pool.history)
    make_film(PROMPT, tmp_path / "run", tiny(tmp_path / "policy.pt"), executor=pool)
    frames, rows = local_film
    assert np.array_equal(film_frames(tmp_path / "run"), frames)
    assert takes(tmp_path / "run") == rows  # seeds, actions, prompts, rewards: take for take
    shot = [r for r in pool.history[start:] if r.key.startswith("scene_")]
    assert len(shot) == 9 and len({r.worker for r in shot}) == 2  # both actors shot takes
    assert not temp_files(tmp_path / "run")  # every staged file was committed


def test_without_parallel_takes_ray_makes_the_default_local_film(pool, tmp_path):
    """One take at a time on Ray, each seeing the scene's earlier rewards: today's film."""
    sequential = {**TINY, "run.parallel_takes": False}
    make_film(
        PROMPT, tmp_path / "local", Settings.of(**sequential, **{"policy.path": str(tmp_path / "a.pt")})
    )
    ray = Settings.of(**sequential, **{"policy.path": str(tmp_path / "b.pt")})
    make_film(PROMPT, tmp_path / "ray", ray, executor=pool)
    assert np.array_equal(film_frames(tmp_path / "ray"), film_frames(tmp_path / "local"))
    assert takes(tmp_path / "ray") == takes(tmp_path / "local")


def test_a_worker_killed_mid_take_reruns_the_take_and_the_film_is_the_same(pool, local_film, tmp_path):
    start = len(pool.history)
    killed: list[int] = []

    def kill_mid_take():
        info = wait_for_job(pool, "scene_01/attempt_01", timeout=300)
        os.kill(info["pid"], signal.SIGKILL)  # the actor's process, mid-take
        killed.append(info["pid"])

    killer = threading.Thread(target=kill_mid_take)
    killer.start()
    make_film(PROMPT, tmp_path / "run", tiny(tmp_path / "policy.pt"), executor=pool)
    killer.join()
    assert killed
    retried = [r for r in pool.history[start:] if r.key == "scene_01/attempt_01"]
    assert [r.attempts for r in retried] == [2]
    frames, rows = local_film
    assert np.array_equal(film_frames(tmp_path / "run"), frames)
    assert takes(tmp_path / "run") == rows


def _children(pid: int) -> list[int]:
    """Every process under `pid` (the Ray cluster a `cinerl make --executor ray` started)."""
    out = []
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return out
    for k in map(int, kids):
        out += [k, *_children(k)]
    return out


def test_a_driver_killed_mid_film_resumes_to_the_same_film(local_film, tmp_path):
    out = tmp_path / "run"
    cmd = [CINERL, "make", PROMPT, "--out", str(out), "--policy", str(tmp_path / "policy.pt"), *FLAGS]
    cmd += ["--executor", "ray", "--workers", "2", "--parallel-takes"]
    driver = subprocess.Popen(cmd, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 400
        while time.time() < deadline and driver.poll() is None:
            if (out / "state.db").exists() and len(takes(out)) >= 4:  # into the second scene
                break
            time.sleep(0.2)
        assert driver.poll() is None, driver.stderr.read()
        cluster = _children(driver.pid)
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    finally:
        for pid in cluster if "cluster" in locals() else []:  # the Ray processes it started
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert not (out / "film.mp4").exists()
    resumed = subprocess.run(
        [*cmd, "--resume"], env=env(), capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr
    frames, rows = local_film
    assert np.array_equal(film_frames(out), frames)
    assert takes(out) == rows


KEYFRAMES = {**TINY, "run.parallel_takes": False, "run.shot_mode": "keyframes", "run.parallel_scenes": True}


def test_parallel_scenes_on_ray_make_the_local_film_all_from_the_films_first_policy(pool, tmp_path):
    """--mode keyframes --parallel-scenes: every scene's takes are shot at once after the
    keyframes, acting from the policy at the film's start; the updates and commits stay in scene
    order on the driver, so ray and local make the same film."""
    settings = Settings.of(**KEYFRAMES, **{"policy.path": str(tmp_path / "a.pt")})
    make_film(PROMPT, tmp_path / "local", settings)
    start = len(pool.history)
    ray = Settings.of(**KEYFRAMES, **{"policy.path": str(tmp_path / "b.pt")})
    make_film(PROMPT, tmp_path / "ray", ray, executor=pool)
    assert np.array_equal(film_frames(tmp_path / "ray"), film_frames(tmp_path / "local"))
    rows = takes(tmp_path / "local")
    assert takes(tmp_path / "ray") == rows
    # the scenes were shot at once: a take of scene 2 started before scene 1's takes were all in
    # (with --parallel-takes alone, scene 2 is submitted only after scene 1's commit)
    shot = [r for r in pool.history[start:] if r.key.startswith("scene_")]
    first_of_2 = min(r.timings["started"] for r in shot if r.key.startswith("scene_01/"))
    assert first_of_2 < max(r.timings["finished"] for r in shot if r.key.startswith("scene_00/"))
    # every take acted from policy/start.pt, though the policy learned after each scene
    report = json.loads((tmp_path / "local" / "report.json").read_text())
    assert [s["policy_version"] for s in report["scenes"]] == [1, 2, 3]
    first = PromptPolicy.from_settings(settings.policy, seed=settings.run.seed)
    first.load(tmp_path / "local" / "policy" / "start.pt")
    for scene, attempt, seed, _, action, _, state in rows:
        greedy = attempt == 0 and settings.policy.greedy_first
        assert first.act(np.asarray(json.loads(state), dtype=np.float32), seed, greedy)[0] == action
    states = {(row[0], row[-1]) for row in rows}
    assert (
        len(states) == 3
    )  # one state per scene (its features at the film's start), whatever its takes scored


def test_a_parallel_scenes_film_stopped_mid_film_resumes_to_the_same_film(tmp_path):
    """Stopped after the 4th commit (scene 2's first take; scene 3's takes shot and never
    committed), the rerun acts again from policy/start.pt and the film's first states."""
    settings = Settings.of(**KEYFRAMES, **{"policy.path": str(tmp_path / "a.pt")})
    make_film(PROMPT, tmp_path / "whole", settings)

    class Stop(Exception):
        pass

    def stop_at_the_fourth(rec):
        if (rec.scene, rec.attempt) == (1, 0):
            raise Stop

    resumed = Settings.of(**KEYFRAMES, **{"policy.path": str(tmp_path / "b.pt")})
    with pytest.raises(Stop):
        make_film(PROMPT, tmp_path / "run", resumed, on_attempt=stop_at_the_fourth)
    assert len(takes(tmp_path / "run")) == 4 and not (tmp_path / "run" / "film.mp4").exists()
    make_film(PROMPT, tmp_path / "run", resumed)
    assert np.array_equal(film_frames(tmp_path / "run"), film_frames(tmp_path / "whole"))
    assert takes(tmp_path / "run") == takes(tmp_path / "whole")
    assert not temp_files(tmp_path / "run")  # the uncommitted takes' staged files are gone
