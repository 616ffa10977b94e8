"""Where the reward suite's models come from, which device they run on, and the per-process cache.

Nothing is downloaded. Offline defaults ship inside packages (EfficientNet-Lite0 weights, dlib's
face models, the BRISQUE regressor) and are found by path; everything else (CLIP/SigLIP, DINO,
LPIPS, I3D, the LAION aesthetic head, a captioner, a cross-encoder, vision and judge endpoints) is
read from a local path or URL given in :class:`RewardConfig`. A component whose model is not
configured reports ``unavailable`` with the setting that would enable it.

Models load once per process: :func:`cached_model` keys every loaded model by (kind, path,
device) and keeps it for the life of the process.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger(__name__)

# Settings / RewardConfig field -> what it enables (used in "unavailable" reasons).
PATH_FIELDS = {
    "clip_model_path": "CLIP or SigLIP model folder (transformers save_pretrained layout)",
    "dino_model_path": "DINO / DINOv2 model folder (transformers save_pretrained layout)",
    "lpips_path": "LPIPS (AlexNet) weights file or folder",
    "i3d_path": "I3D feature extractor as a TorchScript file",
    "fvd_reference_path": "reference I3D feature set (.npz with 'features' or 'mu' and 'sigma')",
    "aesthetic_head_path": "LAION aesthetic predictor head (.pth state dict)",
    "captioner_path": "image captioning model folder (transformers image-to-text)",
    "cross_encoder_path": "sentence-transformers CrossEncoder folder",
}
URL_FIELDS = {
    "vlm_base_url": "OpenAI-compatible endpoint with a vision model",
    "judge_base_url": "OpenAI-compatible endpoint with a language model (narrative judge)",
}


@dataclass(frozen=True)
class RewardConfig:
    """Model locations and the device for one Scorer. Every field is optional."""

    device: str = "auto"
    clip_model_path: str | None = None
    dino_model_path: str | None = None
    lpips_path: str | None = None
    i3d_path: str | None = None
    fvd_reference_path: str | None = None
    aesthetic_head_path: str | None = None
    captioner_path: str | None = None
    cross_encoder_path: str | None = None
    vlm_base_url: str | None = None
    vlm_model: str | None = None
    judge_base_url: str | None = None
    judge_model: str | None = None
    endpoint_timeout_s: float = 60.0
    workers: int = 1  # components scored at once (see scoring_workers)

    @classmethod
    def from_settings(cls, settings: Any) -> "RewardConfig":
        """Take every field of the same name (``reward_device`` for device) from Settings."""
        kw = {f.name: getattr(settings, f.name) for f in fields(cls) if hasattr(settings, f.name)}
        if hasattr(settings, "reward_device"):
            kw["device"] = settings.reward_device
        if hasattr(settings, "reward_workers"):
            kw["workers"] = settings.reward_workers
        return cls(**kw)

    @classmethod
    def from_env(cls) -> "RewardConfig":
        """Defaults plus CINERL_* environment variables (used when no Settings are at hand)."""
        kw: dict[str, Any] = {}
        for f in fields(cls):
            key = "CINERL_" + {"device": "REWARD_DEVICE", "workers": "REWARD_WORKERS"}.get(f.name, f.name.upper())
            val = os.environ.get(key, "")
            if val:
                kw[f.name] = {"endpoint_timeout_s": float, "workers": int}.get(f.name, str)(val)
        return cls(**kw)

    def path(self, name: str) -> Path | None:
        """The configured path for ``name``, or None when it is not set."""
        v = getattr(self, name)
        return Path(v).expanduser() if v else None


def missing(name: str) -> str:
    """The reason a component gives when setting ``name`` is not configured."""
    what = PATH_FIELDS.get(name) or URL_FIELDS.get(name) or name
    return f"not configured: set {name} (CINERL_{name.upper()}): {what}"


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
def cpu_threads(device: str):
    """Run torch CPU inference on at most CINERL_REWARD_THREADS threads (default 1), restoring the
    previous count after. On a small machine scoring runs beside other work; measured on the
    2-core dev box under load, EfficientNet-Lite0 on 16 frames took 2.6 s on one thread and 5.0 s
    on two (intra-op synchronisation stalls when the cores are shared)."""
    if device != "cpu":
        yield
        return
    import torch

    want = int(os.environ.get("CINERL_REWARD_THREADS", DEFAULT_CPU_THREADS) or DEFAULT_CPU_THREADS)
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


def scoring_workers(config: "RewardConfig") -> int:
    """Threads that score components at once (config.workers; 0 means 1).

    One at a time is the default (benchmarks/rewards.py, 121 frames at 1280x704): on a 16-core
    H100 host 8 workers took 2.7 s against 0.77 s, because the per-frame threads inside the
    components already fill the cores; on the 2-core dev box 2 workers gained 1.2-1.4x when the
    machine was quiet and lost 6 % under load."""
    return max(1, int(config.workers or 1))


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


EXTRA_HINT = "install the reward models with: pip install 'cinerl[rewards]'"
