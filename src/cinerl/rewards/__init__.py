"""CineRL's reward suite: real pixel metrics that score a clip against the story.

Public API::

    from cinerl.rewards import Scorer, ScoreContext, DEFAULT_WEIGHTS
    breakdown = Scorer(config=RewardSettings(...)).score(clip, ScoreContext(scene=..., bible=...))

Each clip gets ONE ``ClipAnalysis`` pass (frames resized once, grayscale, Lab and DIS optical flow
computed lazily and shared); every registered component measures on it. A component is a function
(or class) decorated with ``@register(name=..., group=..., requires=(...))`` returning a
``ComponentScore``.

To add a component: write one module with a registered function and add ONE import line to the
component list below — this list is the only place that names the component modules.
"""

from cinerl.core.settings import DEFAULT_WEIGHTS, RewardSettings
from cinerl.rewards.core.analysis import ClipAnalysis
from cinerl.rewards.core.context import ScoreContext
from cinerl.rewards.core.registry import (
    ComponentSpec,
    component_needs,
    not_applicable,
    ok,
    register,
    registered_components,
    registered_groups,
    run_component,
    unavailable,
    unregister,
)

# ---- component modules (one import line each; importing registers the components) ----------
from cinerl.rewards.components import temporal  # temporal_flicker, flow_smoothness, warp_consistency
from cinerl.rewards.components import motion  # dynamic_degree, loop_break, physics_plausibility
from cinerl.rewards.components import continuity  # seam_continuity
from cinerl.rewards.components import structure  # structure_constancy
from cinerl.rewards.components import character  # character_consistency
from cinerl.rewards.components import identity  # identity_lock
from cinerl.rewards.components import subject  # subject_consistency, novelty_after_k
from cinerl.rewards.components import location  # location_palette, location_features
from cinerl.rewards.components import text  # clip_alignment
from cinerl.rewards.judges import caption  # caption_consistency
from cinerl.rewards.judges import vlm  # vlm_alignment
from cinerl.rewards.judges import narrative  # narrative_judge
from cinerl.rewards.components import imaging  # imaging_quality (BRISQUE)
from cinerl.rewards.components import aesthetic  # aesthetic (LAION head)
from cinerl.rewards.components import framing  # framing
from cinerl.rewards.components import fvd  # fvd_lite
from cinerl.rewards.components import scene_light  # scene_light
from cinerl.rewards.components import scene_motion  # scene_motion
from cinerl.rewards.components import scene_cast  # scene_cast
# ----------------------------------------------------------------------------------------------

from cinerl.rewards.core.composite import Scorer, combine

__all__ = [
    "ClipAnalysis",
    "ComponentSpec",
    "DEFAULT_WEIGHTS",
    "RewardSettings",
    "ScoreContext",
    "Scorer",
    "combine",
    "component_needs",
    "not_applicable",
    "ok",
    "register",
    "registered_components",
    "registered_groups",
    "run_component",
    "unavailable",
    "unregister",
]
