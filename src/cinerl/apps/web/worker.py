"""The workbench's background worker: one film job at a time (make, approve, retake, choose,
resume) on a thread of the server, so no page request waits on a render. A job's progress
(stage, scene, take, reward) lives here, in the server, and what it finished lives in the run
store: a browser reload, or a second browser, sees the same state."""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from cinerl.core.errors import Unavailable, UserError
from cinerl.runtime.edits import Hooks

log = logging.getLogger(__name__)


@dataclass
class Job:
    run: str
    label: str
    status: str = "queued"  # queued, running, done, failed
    stage: str = ""
    lines: list[str] = field(default_factory=list)
    takes: list[dict] = field(default_factory=list)  # scene, take, reward as each lands
    error: str = ""
    started: float = field(default_factory=time.time)
    finished: float | None = None

    def hooks(self) -> Hooks:
        def on_attempt(rec) -> None:
            self.takes.append({"scene": rec.scene + 1, "take": rec.attempt + 1, "reward": rec.reward.total})
            self.say(f"scene {rec.scene + 1} take {rec.attempt + 1}: reward {rec.reward.total:.3f}")

        def on_event(line: str) -> None:
            self.stage = line
            self.say(line)

        return Hooks(
            on_attempt=on_attempt, on_event=on_event, on_estimate=lambda ls: [self.say(x) for x in ls]
        )

    def say(self, line: str) -> None:
        self.lines.append(line)
        del self.lines[:-200]


class Worker:
    """Jobs by run name; one runs at a time (a film takes the machine), the rest wait."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cinerl-workbench")
        self.jobs: dict[str, Job] = {}
        self.lock = threading.Lock()

    def busy(self, run: str) -> bool:
        job = self.jobs.get(run)
        return job is not None and job.status in ("queued", "running")

    def submit(self, run: str, label: str, work: Callable[[Hooks], object]) -> Job:
        with self.lock:
            if self.busy(run):
                raise UserError(f"{run} is busy ({self.jobs[run].label}); wait for it to finish")
            job = Job(run, label)
            self.jobs[run] = job

        def go() -> None:
            job.status = "running"
            try:
                work(job.hooks())
                job.status, job.stage = "done", ""
                job.say(f"{label}: done")
            except (UserError, Unavailable) as e:
                job.status, job.error = "failed", str(e)
                job.say(f"error: {e}")
            except Exception as e:  # a bug: shown on the page, logged with its traceback
                job.status, job.error = "failed", f"{type(e).__name__}: {e}"
                job.say(f"error: {job.error}")
                log.error("workbench job %s failed:\n%s", label, traceback.format_exc())
            finally:
                job.finished = time.time()

        self.pool.submit(go)
        return job

    def shutdown(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
