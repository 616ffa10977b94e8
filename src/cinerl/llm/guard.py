"""A circuit breaker and a deadline around any provider, so a dead or slow server costs a plan a
few seconds and one warning, not minutes of retries and thirty of them.

`GuardedProvider` counts failed requests in a row (each already retried by the provider): after
`max_failures` it stops asking the server, and every later step gets LLMUnavailable at once, so
`structured_call` falls back to the offline planner. `deadline` bounds the seconds spent waiting
on the server over the whole plan (time spent elsewhere, rendering references, does not count);
past it, later steps fall back the same way. Both reasons are said once (`warned`, read by
`structured_call`).
"""

from __future__ import annotations

import time
from typing import Any

from cinerl.llm.types import LLMProvider, LLMResult, LLMUnavailable


class GuardedProvider:
    def __init__(self, inner: LLMProvider, max_failures: int = 3, deadline: float | None = None):
        self.inner = inner
        self.name, self.model = inner.name, inner.model
        self.base_url = getattr(inner, "base_url", None)
        self.max_failures, self.deadline = max_failures, deadline
        self.failures, self.spent = 0, 0.0
        self.stopped = ""  # why the server is not asked any more
        self.warned: set[str] = set()  # reasons already printed (structured_call)
        if deadline and hasattr(inner, "time_left"):
            inner.time_left = self.time_left  # so one slow request cannot overrun the deadline

    def __repr__(self) -> str:
        return f"GuardedProvider({self.inner!r})"

    def __getattr__(self, name: str) -> Any:  # json_mode, where, ... of the provider
        return getattr(self.inner, name)

    def time_left(self) -> float | None:
        return None if not self.deadline else self.deadline - self.spent

    def complete(self, messages: list[dict], **kw: Any) -> LLMResult:
        if not self.stopped and self.deadline and self.spent >= self.deadline:
            self.stopped = f"the LLM deadline of {self.deadline:g}s (llm.deadline) has passed"
        if self.stopped:
            raise LLMUnavailable(self.stopped)
        t0 = time.monotonic()
        try:
            result = self.inner.complete(messages, **kw)
        except LLMUnavailable as e:
            self.failures += 1
            if self.failures >= self.max_failures:
                self.stopped = (
                    f"{self.failures} failed requests in a row (llm.max_failures), "
                    f"the server is not asked again: {e}"
                )
            raise
        finally:
            self.spent += time.monotonic() - t0
        self.failures = 0
        return result
