"""The process-wide model cache, the device a model runs on, and torch's CPU thread count.

Models load once per process: :func:`cached_model` keys every loaded model by (kind, path,
device) and keeps it for the life of the process.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger(__name__)


def resolve_device(device: str = "auto") -> str:
    """'auto' -> 'cuda' when torch sees a GPU, else 'cpu'; anything else is passed through."""
    if device and device != "auto":
        return device
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except Exception:  # pragma: no cover - torch is a core dependency
        return "cpu"


DEFAULT_CPU_THREADS = 1


@contextmanager
def cpu_threads(device: str, threads: int = DEFAULT_CPU_THREADS):
    """Run torch CPU inference on at most `threads` threads (rewards.threads, default 1), restoring the
    previous count after. On a small machine scoring runs beside other work; measured on the
    2-core dev box under load, EfficientNet-Lite0 on 16 frames took 2.6 s on one thread and 5.0 s
    on two (intra-op synchronisation stalls when the cores are shared)."""
    if device != "cpu":
        yield
        return
    import torch

    want = threads or DEFAULT_CPU_THREADS
    global _THREADS_USERS, _THREADS_BEFORE
    with _THREADS_LOCK:  # components run concurrently: the first in sets, the last out restores
        if _THREADS_USERS == 0:
            _THREADS_BEFORE = torch.get_num_threads()
            torch.set_num_threads(max(1, min(want, _THREADS_BEFORE)))
        _THREADS_USERS += 1
    try:
        yield
    finally:
        with _THREADS_LOCK:
            _THREADS_USERS -= 1
            if _THREADS_USERS == 0:
                torch.set_num_threads(_THREADS_BEFORE)


_THREADS_LOCK = threading.Lock()
_THREADS_USERS = 0
_THREADS_BEFORE = 1


_CACHE: dict[tuple, Any] = {}
_LOCK = threading.RLock()  # re-entrant: a loader may load a model it builds on


def cached_model(kind: str, key: str, device: str, loader: Callable[[], Any]) -> Any:
    """Load a model once per process (per kind, path and device) and return the same object after."""
    k = (kind, key, device)
    with _LOCK:
        if k not in _CACHE:
            log.info("loading %s model from %s on %s", kind, key, device)
            _CACHE[k] = loader()
        return _CACHE[k]


def clear_model_cache() -> None:
    """Forget every loaded model (tests that rewrite a model file at the same path)."""
    with _LOCK:
        _CACHE.clear()


def package_dir(package: str) -> Path | None:
    """The folder of an installed package, found without importing it (None if not installed)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])
