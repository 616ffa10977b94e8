"""Where jobs run: `local` (in this process, the default) or `ray` (a pool of Ray actors, one per
GPU or CPU worker). A job is a plain, picklable description (executor/base.py): the dotted name
of the function that does the work, its arguments, and where its output goes; the executor
imports no stage, so it sits below them all in the layer contract."""

from cinerl.executor.base import Executor, Job, JobResult, WorkerLost, preflight, worker_cache

__all__ = ["Executor", "Job", "JobResult", "WorkerLost", "make_executor", "preflight", "worker_cache"]


def make_executor(settings) -> Executor:
    """The executor the `executor` settings group names (core/settings.py ExecutorSettings)."""
    if settings.kind == "local":
        from cinerl.executor.local import LocalExecutor  # here, not in base: base is what both import

        return LocalExecutor()
    from cinerl.executor.ray import RayExecutor

    return RayExecutor(
        workers=settings.workers,
        address=settings.address,
        num_gpus=settings.gpus_per_worker,
        max_retries=settings.max_retries,
        connect_timeout_s=settings.connect_timeout_s,
    )
