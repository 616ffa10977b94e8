"""Job functions for the executor tests (imported by name in the worker, as any job's are)."""

import os
import time


def sleep_pid(seconds: float) -> int:
    """Sleep, then say which process did it."""
    time.sleep(seconds)
    return os.getpid()


def fail(message: str) -> None:
    raise KeyError(message)


def append(path: str, text: str) -> str:
    """Append a line to a file (which jobs ran, in which order)."""
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(text + "\n")
    return text


def kept_object() -> tuple[int, int]:
    """(pid, id of an object the worker keeps between jobs): what a loaded model is."""
    from cinerl.executor import worker_cache

    return os.getpid(), id(worker_cache("tests.executor.kept", object))
