"""The default executor: every job runs in this process, on the caller's thread, when it is
submitted; exactly what the director did before there was an executor (same process, same
backend and models, same frames). `map` submits lazily, one job after the other, so leaving its
loop early leaves the rest unstarted."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future

from cinerl.executor.base import Executor, Job, JobResult, finish, run_job


class LocalExecutor(Executor):
    name = "local"
    workers = 1

    def submit(self, job: Job) -> Future:
        future: Future = Future()
        submitted = time.time()
        future.set_running_or_notify_cancel()
        try:
            value, t = run_job(job)
        except BaseException as e:  # the job's own error, as the caller would have seen it
            future.set_exception(e)
            if not isinstance(e, Exception):
                raise
            return future
        finish(future, job, value, {**t, "submitted": submitted}, 1)
        self.history.append(future.result())
        return future

    def map(self, jobs: Iterable[Job]) -> Iterator[JobResult]:
        for job in jobs:
            yield self.submit(job).result()
