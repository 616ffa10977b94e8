"""`cinerl sspo` killed with a real SIGKILL after its first logged iteration, then run again:
finished iterations are not redone and the best prompt is the best of the whole chain.
(test_sspo.py covers the same resume in-process, with the kill simulated by an exception.)"""

from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import time

import pytest

from cinerl.training.sspo.loop import SSPOConfig, run_sspo
from tests.e2e.helpers import CINERL, env, run

pytestmark = pytest.mark.slow

PROMPT = "Wide shot, fast handheld camera. A knight rides through a misty forest, frantic erratic motion."
ITERATIONS = 4


def sspo_cmd(out) -> list[str]:
    # previz at a tiny size, so an iteration takes well under a second
    return [
        CINERL,
        "sspo",
        PROMPT,
        "--out",
        str(out),
        "--physics-law",
        "inertia",
        "--iterations",
        str(ITERATIONS),
        "--size",
        "96x64",
        "--fps",
        "6",
        "--seconds",
        "2",
        "--seed",
        "3",
        "--backend",
        "previz",
        "--llm",
        "offline",
    ]


def log_rows(out) -> list[dict]:
    with open(out / "sspo_log.csv", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def kill_after_first_iteration(cmd, log, timeout=60.0) -> None:
    """Start the command; SIGKILL it as soon as the log (written once per finished iteration,
    by atomic rename) exists."""
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env(), stdin=subprocess.DEVNULL
    )
    t0 = time.monotonic()
    while not log.exists():
        if proc.poll() is not None:
            raise AssertionError(f"sspo exited ({proc.returncode}) before logging an iteration")
        if time.monotonic() - t0 > timeout:
            proc.kill()
            raise AssertionError("sspo logged no iteration in time")
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL


def test_sigkill_then_rerun_resumes_without_redoing_iterations(tmp_path):
    out = tmp_path / "chain"
    cmd = sspo_cmd(out)
    kill_after_first_iteration(cmd, out / "sspo_log.csv")
    before = log_rows(out)
    assert 1 <= len(before) < ITERATIONS, "the kill should land mid-chain"
    clips = {r["clip"]: (out / r["clip"]).stat().st_mtime_ns for r in before}

    res = run(cmd)  # the same command again resumes
    assert res.returncode == 0, res.stderr
    assert f"resumed after iteration {len(before)}" in res.stdout
    after = log_rows(out)
    assert [int(r["iteration"]) for r in after] == list(range(1, ITERATIONS + 1))
    assert after[: len(before)] == before  # finished rows, rewards included, unchanged
    for clip, stamp in clips.items():  # and their clips were not generated again
        assert (out / clip).stat().st_mtime_ns == stamp
    # the chain continues from where it stopped: each prompt is the previous rewrite
    assert all(b["prompt"] == a["next_prompt"] for a, b in zip(after, after[1:]))

    # and ends where an uninterrupted chain ends (same prompts, same rewards)
    ref = run_sspo(
        SSPOConfig(
            prompt=PROMPT,
            physics_law="inertia",
            iterations=ITERATIONS,
            width=96,
            height=64,
            fps=6,
            seconds=2.0,
            seed=3,
        ),
        tmp_path / "reference",
        llm="offline",
    )
    assert [r["prompt"] for r in after] == [it.prompt for it in ref.iterations]
    assert [float(r["reward"]) for r in after] == pytest.approx(
        [it.reward for it in ref.iterations], abs=1e-6
    )

    rewards = [float(r["reward"]) for r in after]
    best = max(range(len(after)), key=lambda i: (rewards[i], -i))
    m = re.search(r"best: iteration (\d+), reward ([\d.]+)", res.stdout)
    assert m and int(m.group(1)) == best + 1
    assert float(m.group(2)) == pytest.approx(rewards[best], abs=5e-4)
    assert f"prompt: {after[best]['prompt']}\n" in res.stdout
