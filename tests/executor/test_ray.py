"""The Ray executor on a local 2-CPU cluster (127.0.0.1): jobs run on two actors at once, an
actor keeps what it loaded between jobs, a job's error is its own, a pending job cancels, and a
job whose worker is killed mid-job runs again on a live one (up to max_retries)."""

import os
import signal
import statistics
import time

import pytest

from cinerl.executor import Job, WorkerLost
from cinerl.executor.ray import RayExecutor
from tests.executor.conftest import wait_for_job


@pytest.fixture(scope="module")
def pool(ray_cluster):
    ex = RayExecutor(workers=2, max_retries=2)
    yield ex
    ex.shutdown()


def sleep(seconds: float, key: str = "") -> Job:
    return Job("tests.executor.jobs:sleep_pid", {"seconds": seconds}, key=key)


def test_two_actors_run_jobs_at_once_and_keep_what_they_loaded(pool):
    pids = set(pool.worker_pids())
    assert len(pids) == 2 and os.getpid() not in pids
    t0 = time.perf_counter()
    results = list(pool.map([sleep(0.6, f"s{i}") for i in range(4)]))
    wall = time.perf_counter() - t0
    assert [r.key for r in results] == ["s0", "s1", "s2", "s3"]
    assert {r.value for r in results} == pids and {r.worker.split(":")[-1] for r in results} == {
        str(p) for p in pids
    }
    assert wall < 4 * 0.6 * 0.85, wall  # two at a time, not one after the other
    kept = [pool.submit(Job("tests.executor.jobs:kept_object")).result().value for _ in range(6)]
    by_pid: dict[int, set[int]] = {}
    for pid, obj in kept:
        by_pid.setdefault(pid, set()).add(obj)
    assert all(len(objs) == 1 for objs in by_pid.values())  # made once per actor, then reused


def test_overhead_per_small_job_is_under_50_ms(pool):
    results = [pool.submit(Job("time:sleep", args=(0,))).result() for _ in range(20)]
    assert statistics.median(r.overhead_s for r in results) < 0.05


def test_a_jobs_own_error_is_raised_unwrapped_and_not_retried(pool):
    future = pool.submit(Job("tests.executor.jobs:fail", {"message": "bad take"}))
    with pytest.raises(KeyError, match="bad take"):
        future.result(timeout=60)


def test_a_pending_job_cancels(pool, tmp_path):
    busy = [pool.submit(sleep(1.0)) for _ in range(2)]
    queued = pool.submit(Job("tests.executor.jobs:append", {"path": str(tmp_path / "log"), "text": "x"}))
    assert pool.cancel(queued) and queued.cancelled()
    for f in busy:
        f.result(timeout=60)
    assert not (tmp_path / "log").exists()  # it never ran


def test_a_job_whose_worker_is_killed_runs_again_on_a_live_worker(pool):
    future = pool.submit(sleep(2.0, "victim"))
    info = wait_for_job(pool, "victim")
    os.kill(info["pid"], signal.SIGKILL)
    result = future.result(timeout=120)
    assert result.attempts == 2 and result.value != info["pid"]
    assert len(set(pool.worker_pids())) == 2  # Ray restarted the dead actor: the pool is whole


def test_past_max_retries_the_job_fails_with_worker_lost(pool):
    pool.max_retries = 0
    try:
        future = pool.submit(sleep(2.0, "once"))
        os.kill(wait_for_job(pool, "once")["pid"], signal.SIGKILL)
        with pytest.raises(WorkerLost, match="its worker died 1 times"):
            future.result(timeout=120)
    finally:
        pool.max_retries = 2
