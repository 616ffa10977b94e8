"""The policy's view of a scene: what it is about (a sentence embedding), where it sits in the
story, how recent attempts scored, and the scene plan's facts that decide the right action
(`context_features`: the light the plan implies, the action's energy, interior or not, cast size).
The context block sits at the end of the state (the last CONTEXT_DIM floats): the policy's context
heads read only it (net.py), so what a night scene teaches applies to every night scene (issue 20).
"""

from __future__ import annotations

import numpy as np

from cinerl.core.schema import Scene, StoryBible
from cinerl.core.vocabulary import ENERGY_ORDER, action_energy
from cinerl.models.embedder import EMBED_DIM, embed_text
from cinerl.rewards.components.scene_light import PROFILES, expected_light

N_RECENT = 3
BEATS = ("beginning", "turn", "end")
LIGHTS = tuple(PROFILES)  # day, interior day, overcast, golden, night, neon, flame
ENERGIES = (*ENERGY_ORDER, None)  # calm, moderate, vigorous, or no lexicon word
CAST_SIZES = (0, 1, 2, 3, 4)  # 4: four or more
CONTEXT_DIM = len(LIGHTS) + len(ENERGIES) + 1 + len(CAST_SIZES)
STATE_DIM = EMBED_DIM + 6 + N_RECENT + 1 + CONTEXT_DIM


# where each plan fact sits in the context block (context_features writes them there), and the
# facts each factor's reward reads (rewards/components: scene_light the light and interior,
# scene_motion the action's energy, scene_cast the cast size); the others read none
FACT_BLOCKS = {
    "light": range(0, len(LIGHTS)),
    "energy": range(len(LIGHTS), len(LIGHTS) + len(ENERGIES)),
    "interior": range(len(LIGHTS) + len(ENERGIES), len(LIGHTS) + len(ENERGIES) + 1),
    "cast": range(len(LIGHTS) + len(ENERGIES) + 1, CONTEXT_DIM),
}
FACTOR_FACTS = {
    "lighting": ("light", "interior"),
    "camera_move": ("energy",),
    "motion": ("energy",),
    "shot_size": ("cast",),
}


def context_mask(factor: str) -> np.ndarray:
    """CONTEXT_DIM floats, 1 on the facts `factor`'s reward reads (FACTOR_FACTS), else 0."""
    out = np.zeros(CONTEXT_DIM, np.float32)
    for fact in FACTOR_FACTS.get(factor, ()):
        out[list(FACT_BLOCKS[fact])] = 1.0
    return out


def scene_text(scene: Scene, bible: StoryBible) -> str:
    loc = bible.location(scene.location_id)
    return (
        f"{scene.title}. {scene.action}. {scene.shot_notes}. {scene.time_of_day}. "
        f"{loc.scenery_type}. {len(scene.character_ids)} characters."
    )


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
    return np.concatenate([emb, np.asarray(extras, dtype=np.float32), context_features(scene, bible)])


def context_features(scene: Scene, bible: StoryBible) -> np.ndarray:
    """CONTEXT_DIM one-hot floats from the plan, read as the scene-plan rewards read it: the
    expected light (rewards/components/scene_light.expected_light), the action's energy band
    (core.vocabulary.action_energy, as scene_motion), interior, and the cast size (1, 2, 3, 4+)."""
    light, _ = expected_light(scene, bible)
    energy, _ = action_energy(" ".join(t for t in (scene.action, scene.shot_notes) if t))
    try:
        interior = bible.location(scene.location_id).scenery_type == "interior"
    except StopIteration:
        interior = False
    cast = min(len(set(scene.character_ids)), CAST_SIZES[-1])
    out = np.zeros(CONTEXT_DIM, np.float32)
    out[FACT_BLOCKS["light"][LIGHTS.index(light)]] = 1.0
    out[FACT_BLOCKS["energy"][ENERGIES.index(energy)]] = 1.0
    out[FACT_BLOCKS["interior"][0]] = float(interior)
    out[FACT_BLOCKS["cast"][CAST_SIZES.index(cast)]] = 1.0
    return out
