"""The executor interface on the local executor: a job is plain data, its result carries the
value, the worker and the timings, errors are the job's own, `map` is in order and lazy."""

import os
import pickle

import pytest

from cinerl.core.errors import UserError
from cinerl.core.settings import Settings
from cinerl.executor import Job, make_executor, worker_cache
from cinerl.executor.base import resolve
from cinerl.executor.local import LocalExecutor


def test_a_job_is_plain_data_and_its_result_says_where_and_when_it_ran(tmp_path):
    job = Job("tests.executor.jobs:append", {"path": str(tmp_path / "log"), "text": "a"}, key="one")
    assert pickle.loads(pickle.dumps(job)) == job
    ex = make_executor(Settings().executor)
    assert isinstance(ex, LocalExecutor)
    result = ex.submit(job).result()
    assert (result.key, result.value, result.attempts) == ("one", "a", 1)
    assert result.worker.endswith(f":{os.getpid()}")  # in this very process
    t = result.timings
    assert t["submitted"] <= t["started"] <= t["finished"] <= t["returned"]
    assert t["run_s"] >= 0 and result.overhead_s < 0.05
    assert ex.history == [result]


def test_map_keeps_the_jobs_order_and_leaving_early_starts_no_more(tmp_path):
    log = tmp_path / "log"
    jobs = [Job("tests.executor.jobs:append", {"path": str(log), "text": t}) for t in "abcd"]
    assert [r.value for r in LocalExecutor().map(jobs)] == list("abcd")
    log.unlink()
    for r in LocalExecutor().map(jobs):
        if r.value == "b":
            break
    assert log.read_text().split() == ["a", "b"]


def test_a_jobs_own_error_reaches_the_caller_unchanged():
    future = LocalExecutor().submit(Job("tests.executor.jobs:fail", {"message": "no such take"}))
    with pytest.raises(KeyError, match="no such take"):
        future.result()
    assert not LocalExecutor().cancel(future)  # finished: nothing to cancel


def test_a_job_names_its_function_by_module_and_name():
    assert resolve("os.path:join")("a", "b") == os.path.join("a", "b")
    with pytest.raises(UserError, match="'package.module:function'"):
        resolve("os.path.join")
    with pytest.raises(UserError, match="cannot be found"):
        resolve("os.path:no_such_function")


def test_the_worker_cache_makes_a_value_once_per_process():
    made = []
    first = worker_cache(("test", id(made)), lambda: made.append(1) or object())
    again = worker_cache(("test", id(made)), lambda: made.append(1) or object())
    assert first is again and made == [1]
