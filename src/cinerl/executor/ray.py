"""The Ray executor: a pool of Ray actors (https://docs.ray.io/en/latest/ray-core/actors.html),
one per GPU (`num_gpus=1`) or per CPU worker. An actor is a long-lived process, so what a job
keeps with `worker_cache` (the Wan pipeline, the reward models) loads once per actor, not once
per job.

Jobs are queued on the driver and handed to idle actors, one job per actor at a time. When an
actor's process dies mid-job, Ray restarts the actor (`max_restarts=-1`, its constructor runs
again) and the job goes back to the front of the queue for the next idle actor, at most
`max_retries` times (Ray's actor fault tolerance: actor tasks are at-most-once, so the retry is
ours: https://docs.ray.io/en/latest/ray-core/fault_tolerance/actors.html). A job's own error is
not retried: its future raises the job's exception, as the local executor would.

The cluster: `address=None` starts a local one for this process, bound to 127.0.0.1 with no
dashboard, and stops it at `shutdown`; "auto" or "HOST:PORT" joins an existing cluster (and
leaves it running). When Ray is already initialised in this process (a test's fixture, a
notebook), that cluster is used as it is.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import tempfile
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from cinerl.core.errors import Unavailable, UserError
from cinerl.executor.base import Executor, Job, WorkerLost, finish, run_job, worker_name

log = logging.getLogger(__name__)

LOCAL = (None, "", "local")


def import_ray(local: bool, connect_timeout_s: float = 20.0):
    """The ray module; a local cluster binds to the loopback address (Ray reads this variable
    when it is imported, and otherwise binds a local cluster to the host's outside address).
    Joining a cluster: one connection attempt of about `connect_timeout_s` in all (Ray's three
    waits, a third each: the GCS channel, its pubsub, the cluster id), where Ray's defaults
    retry for many minutes when nothing answers at the address; a variable set outside wins."""
    if local:
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    else:
        each = str(max(1, int(connect_timeout_s // 3)))
        os.environ.setdefault("RAY_gcs_rpc_server_connect_timeout_s", each)
        os.environ.setdefault("RAY_py_gcs_connect_timeout_s", each)
        os.environ.setdefault("RAY_gcs_server_port_wait_time_s", "1")  # attempts, ~1 s apart
    try:
        import ray
    except ImportError:
        raise Unavailable(
            "--executor ray needs Ray: pip install 'cinerl[ray]' (or: pip install -c constraints.txt ray)"
        ) from None
    return ray


@contextlib.contextmanager
def quiet_stderr():
    """Ray's C++ client writes each of its connection waits to file descriptor 2 (no variable
    turns them off); while joining they go to the log instead, so a cluster that does not answer
    is the one line of our UserError."""
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            said = tmp.read().decode(errors="replace").strip()
            if said:
                log.debug("ray.init wrote: %s", said)


class _Worker:
    """One actor of the pool. `info` answers while `run` works (max_concurrency=2), so the driver
    (and a test) can see which job an actor holds and its process id."""

    def __init__(self, index: int):
        self.index, self.current, self.since, self.jobs = index, None, None, 0

    def info(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "pid": os.getpid(),
            "worker": worker_name(),
            "current": self.current,
            "since": self.since,
            "jobs": self.jobs,
        }

    def run(self, job: Job):
        self.current, self.since = job.key, time.time()
        try:
            return run_job(job)
        finally:
            self.current, self.since = None, None
            self.jobs += 1


@dataclass
class _Entry:
    job: Job
    future: Future
    submitted: float
    attempts: int = 0


class RayExecutor(Executor):
    name = "ray"

    def __init__(
        self,
        workers: int | None = None,
        address: str | None = None,
        num_gpus: float = 0.0,
        num_cpus: float = 1.0,
        max_retries: int = 2,
        poll_s: float = 0.005,
        connect_timeout_s: float = 20.0,
    ):
        super().__init__()
        local = address in LOCAL
        ray = self.ray = import_ray(local, connect_timeout_s)
        self.owns_cluster = False
        if not ray.is_initialized():
            if local:
                n = workers or os.cpu_count() or 1
                ray.init(
                    address="local",
                    num_cpus=max(1, int(round(n * num_cpus))),
                    include_dashboard=False,
                    _node_ip_address="127.0.0.1",
                    log_to_driver=False,
                    configure_logging=False,
                )
            else:
                try:
                    with quiet_stderr():
                        ray.init(address=address, log_to_driver=False, configure_logging=False)
                except ConnectionError as e:
                    raise UserError(f"--ray-address {address}: no Ray cluster answers there ({e})") from None
            self.owns_cluster = True
        self.workers = workers or self._default_workers(num_gpus, num_cpus)
        self.max_retries, self.poll_s = max_retries, poll_s
        options: dict[str, Any] = {
            "num_cpus": num_cpus,
            "max_restarts": -1,
            "max_task_retries": 0,
            "max_concurrency": 2,
        }
        if num_gpus:
            options["num_gpus"] = num_gpus
        cls = ray.remote(_Worker).options(**options)
        self.actors = [cls.remote(i) for i in range(self.workers)]
        self.cond = threading.Condition()
        self.pending: collections.deque[_Entry] = collections.deque()
        self.idle: collections.deque = collections.deque()
        self.inflight: dict[Any, tuple[_Entry, Any]] = {}
        self.probing: dict[Any, Any] = {}
        for actor in self.actors:  # an actor is idle once its constructor has run
            self.probing[actor.info.remote()] = actor
        self.closed = False
        self.thread = threading.Thread(target=self._loop, name="cinerl-ray-dispatch", daemon=True)
        self.thread.start()

    def _default_workers(self, num_gpus: float, num_cpus: float) -> int:
        resources = self.ray.cluster_resources()
        if num_gpus:
            return max(1, int(resources.get("GPU", 0) // num_gpus))
        return max(1, int(resources.get("CPU", 1) // max(num_cpus, 1e-6)))

    # the driver's side -------------------------------------------------------------------
    def submit(self, job: Job) -> Future:
        future: Future = Future()
        with self.cond:
            if self.closed:
                raise RuntimeError("the executor is shut down")
            self.pending.append(_Entry(job, future, time.time()))
            self.cond.notify()
        return future

    def running(self, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Each actor's info: index, pid, the job it holds (`current`) and since when; an actor
        Ray is restarting is asked again until it answers."""
        end = time.time() + timeout
        out = []
        for actor in list(self.actors):
            while True:
                try:
                    out.append(self.ray.get(actor.info.remote(), timeout=max(0.1, end - time.time())))
                    break
                except self.ray.exceptions.ActorUnavailableError:
                    if time.time() > end:
                        raise
                    time.sleep(0.05)
        return out

    def worker_pids(self) -> list[int]:
        return [i["pid"] for i in self.running()]

    def shutdown(self) -> None:
        with self.cond:
            if self.closed:
                return
            self.closed = True
            self.cond.notify()
        self.thread.join(timeout=30)
        for entry in self.pending:
            entry.future.cancel()
        for entry, _ in self.inflight.values():
            if not entry.future.done():
                entry.future.set_exception(WorkerLost(f"job {entry.job.key}: the executor shut down"))
        for actor in self.actors:
            self.ray.kill(actor)
        if self.owns_cluster:
            self.ray.shutdown()

    # the dispatch thread ------------------------------------------------------------------
    def _dispatch(self) -> None:
        """Hand queued jobs to idle actors (under the lock); a cancelled job is dropped."""
        while self.pending and self.idle:
            entry = self.pending.popleft()
            if entry.attempts == 0 and not entry.future.set_running_or_notify_cancel():
                continue  # cancelled before it started (a retry's future is running already)
            actor = self.idle.popleft()
            entry.attempts += 1
            self.inflight[actor.run.remote(entry.job)] = (entry, actor)

    def _loop(self) -> None:
        try:
            self._serve()
        except BaseException as e:  # the dispatcher itself broke: no future may wait forever
            log.exception("the Ray dispatcher stopped")
            with self.cond:
                self.closed = True
                waiting = [*self.pending, *(entry for entry, _ in self.inflight.values())]
                self.pending.clear()
            for entry in waiting:
                if not entry.future.done():
                    entry.future.set_exception(
                        WorkerLost(f"job {entry.job.key}: the dispatcher stopped: {e}")
                    )

    def _serve(self) -> None:
        ray = self.ray
        while True:
            with self.cond:
                while not self.closed and not (self.pending or self.inflight or self.probing):
                    self.cond.wait()
                if self.closed:
                    return
                self._dispatch()
                refs = [*self.inflight, *self.probing]
            if not refs:
                time.sleep(self.poll_s)
                continue
            ready, _ = ray.wait(refs, num_returns=1, timeout=self.poll_s)
            for ref in ready:
                with self.cond:
                    if ref in self.probing:
                        self._probed(ref)
                    else:
                        self._returned(ref)

    def _probed(self, ref) -> None:
        actor = self.probing.pop(ref)
        try:
            self.ray.get(ref)
        except self.ray.exceptions.ActorDiedError:
            self.actors.remove(actor)
            log.warning("a Ray worker is gone for good; %d left", len(self.actors))
            if not self.actors:
                for entry in self.pending:
                    entry.future.set_exception(WorkerLost("every Ray worker died"))
                self.pending.clear()
            return
        except self.ray.exceptions.RayError:  # still restarting: ask again
            self.probing[actor.info.remote()] = actor
            return
        self.idle.append(actor)

    def _returned(self, ref) -> None:
        entry, actor = self.inflight.pop(ref)
        exc = self.ray.exceptions
        try:
            value, t = self.ray.get(ref)
        except (exc.RayActorError, exc.WorkerCrashedError, exc.LocalRayletDiedError) as e:
            self.probing[actor.info.remote()] = actor  # back in the pool once Ray has restarted it
            if entry.attempts > self.max_retries:
                entry.future.set_exception(
                    WorkerLost(
                        f"job {entry.job.key}: its worker died {entry.attempts} times "
                        f"(max_retries {self.max_retries}): {type(e).__name__}"
                    )
                )
                return
            log.warning(
                "job %s: its Ray worker died (%s); retrying (%d/%d)",
                entry.job.key,
                type(e).__name__,
                entry.attempts,
                self.max_retries,
            )
            self.pending.appendleft(entry)
            return
        except exc.RayTaskError as e:  # the job's own error, unwrapped
            self.idle.append(actor)
            cause = getattr(e, "cause", None)
            entry.future.set_exception(cause if isinstance(cause, BaseException) else e)
            return
        self.idle.append(actor)
        finish(entry.future, entry.job, value, {**t, "submitted": entry.submitted}, entry.attempts)
        self.history.append(entry.future.result())
