"""The policy's view of a scene: what it is about (a sentence embedding), where it sits in the
story, and how recent attempts scored."""

from __future__ import annotations

import numpy as np

from cinerl.core.schema import Scene, StoryBible
from cinerl.models.embedder import EMBED_DIM, embed_text

N_RECENT = 3
STATE_DIM = EMBED_DIM + 6 + N_RECENT + 1
BEATS = ("beginning", "turn", "end")


def scene_text(scene: Scene, bible: StoryBible) -> str:
    loc = bible.location(scene.location_id)
    return (
        f"{scene.title}. {scene.action}. {scene.shot_notes}. {scene.time_of_day}. "
        f"{loc.scenery_type}. {len(scene.character_ids)} characters."
    )


def state_vector(
    scene: Scene, bible: StoryBible, recent_rewards: list[float], embedder_path: str | None = None
) -> np.ndarray:
    """STATE_DIM floats: embedding, story position, beat, cast size, last rewards."""
    emb = embed_text(scene_text(scene, bible), embedder_path)
    n = len(bible.scenes)
    pos = scene.index / max(1, n - 1)
    beat = [1.0 if scene.beat == b else 0.0 for b in BEATS]
    recent = list(recent_rewards[-N_RECENT:])
    pad = [0.0] * (N_RECENT - len(recent))
    extras = [
        pos,
        *beat,
        len(scene.character_ids) / 6.0,
        1.0 if scene.index == 0 else 0.0,
        *pad,
        *recent,
        len(recent) / N_RECENT,
    ]
    return np.concatenate([emb, np.asarray(extras, dtype=np.float32)])
