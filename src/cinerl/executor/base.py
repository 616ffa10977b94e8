"""The executor interface: `submit(job) -> future`, `map`, cancellation, and a result that carries
the job's timings and the worker it ran on.

A `Job` names its function by dotted path (`"cinerl.runtime.takes:shoot_take"`) instead of
holding it, so a job pickles to any process and the executor never imports the stage that does
the work (the layer contract of pyproject.toml). A job writes its output files under temporary
names and returns what it made; the caller (the driver) renames them into place and commits
them to the run store, so a retried job never leaves half a file and the store has one writer.

Futures are `concurrent.futures.Future`s, so callers can use `wait`, `as_completed` and
`add_done_callback` as with a thread pool.
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from cinerl.core.errors import UserError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """One unit of work, as plain data: `fn` is "package.module:function", called with `args`
    and `kwargs` in the worker; `out` says where its output goes (a folder, for the driver to
    commit from); `key` names the job in logs, results and the executor's history."""

    fn: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    args: tuple = ()
    out: str | None = None
    key: str = ""


@dataclass
class JobResult:
    """What a job returned, where it ran (`worker`: "host:pid"), how many times it was started
    (`attempts`: 1 + retries after a worker died) and its timings, in seconds since the epoch
    (`submitted`, `started`, `finished`, `returned`: when the driver had the result) and as
    spans (`queue_s`: submit to start, `run_s`, `return_s`: finish to the driver)."""

    key: str
    value: Any
    worker: str
    attempts: int = 1
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def overhead_s(self) -> float:
        """Seconds the executor added around the work: submit to start plus finish to driver."""
        return self.timings.get("queue_s", 0.0) + self.timings.get("return_s", 0.0)


class WorkerLost(RuntimeError):
    """A job's worker died more often than `max_retries` allows."""


def resolve(fn: str) -> Callable[..., Any]:
    """The function a job names ("package.module:function")."""
    module, sep, name = fn.partition(":")
    if not sep or not module or not name:
        raise UserError(f"a job names its function as 'package.module:function' (got {fn!r})")
    try:
        target: Any = importlib.import_module(module)
        for part in name.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as e:
        raise UserError(f"job function {fn!r} cannot be found: {e}") from None
    if not callable(target):
        raise UserError(f"job function {fn!r} is not callable")
    return target


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_job(job: Job) -> tuple[Any, dict[str, float]]:
    """What every worker does with a job: call its function, time it."""
    started = time.time()
    value = resolve(job.fn)(*job.args, **job.kwargs)
    return value, {"started": started, "finished": time.time(), "pid": os.getpid(), "worker": worker_name()}


# ---- what a worker keeps between jobs -------------------------------------------------------
_CACHE: dict[Any, Any] = {}
_CACHE_LOCK = threading.Lock()


def worker_cache(key: Any, make: Callable[[], Any]) -> Any:
    """A value kept for the life of this process (a loaded backend, a scorer): a Ray actor makes
    it on its first job and reuses it for every later one; in the local executor the process is
    the driver's, so it is made once per run."""
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = make()
        return _CACHE[key]


def finish(future: Future, job: Job, value: Any, t: dict, attempts: int) -> None:
    """Resolve a future with the job's JobResult (its timings completed here, on the driver)."""
    returned = time.time()
    timings = {
        "submitted": t["submitted"],
        "started": t["started"],
        "finished": t["finished"],
        "returned": returned,
        "queue_s": max(0.0, t["started"] - t["submitted"]),
        "run_s": t["finished"] - t["started"],
        "return_s": max(0.0, returned - t["finished"]),
    }
    future.set_result(JobResult(job.key, value, t["worker"], attempts, timings))


class Executor(ABC):
    """Runs jobs. `submit` returns at once with a future; `map` yields results in job order;
    `cancel` stops a job that has not started; `shutdown` (or leaving a `with` block) cancels
    what has not started and releases the workers."""

    name = "executor"
    workers = 1

    def __init__(self) -> None:
        self.history: list[JobResult] = []  # every finished job, in the order they finished

    @abstractmethod
    def submit(self, job: Job) -> Future: ...

    def map(self, jobs: Iterable[Job]) -> Iterator[JobResult]:
        """Submit every job, then yield their results in the jobs' order. Leaving the loop early
        cancels the jobs that have not started."""
        futures = [self.submit(job) for job in jobs]
        try:
            for f in futures:
                yield f.result()
        finally:
            for f in futures:
                self.cancel(f)

    def cancel(self, future: Future) -> bool:
        """Cancel a job that has not started; False when it is running or finished."""
        return future.cancel()

    def worker_pids(self) -> list[int]:
        return [os.getpid()]

    def shutdown(self) -> None:
        """Release the workers (nothing to do in process)."""

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()


def check_address(address: str | None, kind: str = "ray") -> None:
    """A `--ray-address` that cannot name a cluster, refused by its form alone: `auto` (the
    cluster Ray finds: RAY_ADDRESS, or one started on this machine) or HOST:PORT (a GCS port,
    1-65535). Nothing is contacted here: a well-formed address is tried by `ray.init` when the
    run starts, before planning (Director.run), and one that does not answer ends there."""
    if address in (None, ""):
        return
    if kind != "ray":
        raise UserError(f"--ray-address {address}: it is for --executor ray (the executor is {kind})")
    if address == "auto":
        return
    host, sep, port = address.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host  # [IPv6]:PORT
    ok_host = bool(host) and all(c.isalnum() or c in ".-_:" for c in host) and "://" not in address
    if not (sep and ok_host and port.isdigit() and 0 < int(port) < 65536):
        raise UserError(f"--ray-address {address!r}: give auto or HOST:PORT (e.g. 10.0.0.5:6379)")


def preflight(settings) -> None:
    """Before a run writes anything: the executor the settings name can start here (Ray is
    installed, the address is well formed)."""
    import importlib.util

    check_address(settings.address, settings.kind)
    if settings.kind == "ray" and importlib.util.find_spec("ray") is None:
        from cinerl.core.errors import Unavailable

        raise Unavailable("--executor ray needs Ray: pip install 'cinerl[ray]'")
