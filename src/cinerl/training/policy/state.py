"""The policy's view of a scene: what it is about (a sentence embedding), where it sits in the
story, how recent attempts scored, and the plan facts the scene-plan rewards judge a take by.

The last `CONTEXT_DIM` floats are that context (issue 20): the light the plan implies (the
expected light of rewards/components/scene_light: day, interior day, overcast, golden, night,
neon, flame), the action's energy band (scene_motion's calm / moderate / vigorous, or none named),
whether the location is an interior, and the cast size (1, 2, 3, 4 or more: what a shot size has
to hold, scene_cast). They are one-hot, so a policy head that reads them directly (net.py) learns
a choice per kind of scene; in the embedding they are a few of 384 small coordinates.
"""

from __future__ import annotations

import numpy as np

from cinerl.core.schema import Scene, StoryBible
from cinerl.core.vocabulary import ENERGY_ORDER, action_energy
from cinerl.models.embedder import EMBED_DIM, embed_text
from cinerl.rewards.components.scene_light import INTERIOR_TYPES, PROFILES, expected_light

N_RECENT = 3
BEATS = ("beginning", "turn", "end")
LIGHTS = tuple(PROFILES)
ENERGIES = (None, *ENERGY_ORDER)
CAST_SIZES = (1, 2, 3, 4)  # 4: four or more
CONTEXT_DIM = len(LIGHTS) + len(ENERGIES) + 1 + len(CAST_SIZES)
STATE_DIM = EMBED_DIM + 6 + N_RECENT + 1 + CONTEXT_DIM


def scene_text(scene: Scene, bible: StoryBible) -> str:
    loc = bible.location(scene.location_id)
    return (
        f"{scene.title}. {scene.action}. {scene.shot_notes}. {scene.time_of_day}. "
        f"{loc.scenery_type}. {len(scene.character_ids)} characters."
    )


def context_features(scene: Scene, bible: StoryBible) -> np.ndarray:
    """CONTEXT_DIM floats, one-hot groups: expected light, action energy, interior, cast size."""
    light, _ = expected_light(scene, bible)
    band, _ = action_energy(" ".join(t for t in (scene.action, scene.shot_notes) if t))
    loc = next((x for x in bible.locations if x.id == scene.location_id), None)
    cast = min(max(1, len(dict.fromkeys(scene.character_ids))), CAST_SIZES[-1])
    out = [1.0 if light == x else 0.0 for x in LIGHTS]
    out += [1.0 if band == x else 0.0 for x in ENERGIES]
    out.append(1.0 if loc is not None and loc.scenery_type in INTERIOR_TYPES else 0.0)
    out += [1.0 if cast == x else 0.0 for x in CAST_SIZES]
    return np.asarray(out, dtype=np.float32)


def state_vector(
    scene: Scene, bible: StoryBible, recent_rewards: list[float], embedder_path: str | None = None
) -> np.ndarray:
    """STATE_DIM floats: embedding, story position, beat, cast size, last rewards, context."""
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
    return np.concatenate([emb, np.asarray(extras, dtype=np.float32), context_features(scene, bible)]).astype(
        np.float32
    )
