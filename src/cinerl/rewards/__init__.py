"""CineRL's reward suite: real pixel metrics that score a clip against the story.

Public API::

    from cinerl.rewards import Scorer, ScoreContext, DEFAULT_WEIGHTS
    breakdown = Scorer(config=RewardConfig(...)).score(clip, ScoreContext(scene=..., bible=...))

Each clip gets ONE ``ClipAnalysis`` pass (frames resized once, grayscale, Lab and DIS optical flow
computed lazily and shared); every registered component measures on it. A component is a function
(or class) decorated with ``@register(name=..., group=...)`` returning a ``ComponentScore``.

To add a component: write one module with a registered function and add ONE import line to the
component list below — this list is the only place that names the component modules.
"""

from cinerl.rewards.analysis import ClipAnalysis
from cinerl.rewards.base import (ComponentSpec, ScoreContext, not_applicable, ok, register,
                                 registered_components, registered_groups, run_component, unavailable,
                                 unregister)

# ---- component modules (one import line each; importing registers the components) ----------
from cinerl.rewards import temporal  # noqa: F401,E402  temporal_flicker, flow_smoothness, warp_consistency
from cinerl.rewards import motion  # noqa: F401,E402  dynamic_degree, loop_break, physics_plausibility
from cinerl.rewards import continuity  # noqa: F401,E402  seam_continuity
from cinerl.rewards import structure  # noqa: F401,E402  structure_constancy
from cinerl.rewards import character  # noqa: F401,E402  character_consistency
from cinerl.rewards import identity  # noqa: F401,E402  identity_lock
from cinerl.rewards import subject  # noqa: F401,E402  subject_consistency, novelty_after_k
from cinerl.rewards import location  # noqa: F401,E402  location_palette, location_features
from cinerl.rewards import text  # noqa: F401,E402  clip_alignment
from cinerl.rewards import caption  # noqa: F401,E402  caption_consistency
from cinerl.rewards import vlm  # noqa: F401,E402  vlm_alignment
from cinerl.rewards import narrative  # noqa: F401,E402  narrative_judge
from cinerl.rewards import imaging  # noqa: F401,E402  imaging_quality (BRISQUE)
from cinerl.rewards import aesthetic  # noqa: F401,E402  aesthetic (LAION head)
from cinerl.rewards import framing  # noqa: F401,E402  framing
from cinerl.rewards import fvd  # noqa: F401,E402  fvd_lite
# ----------------------------------------------------------------------------------------------

from cinerl.rewards.composite import DEFAULT_WEIGHTS, Scorer, combine  # noqa: E402
from cinerl.rewards.models import RewardConfig  # noqa: E402

__all__ = [
    "ClipAnalysis", "ComponentSpec", "DEFAULT_WEIGHTS", "RewardConfig", "ScoreContext", "Scorer", "combine",
    "not_applicable", "ok", "register", "registered_components", "registered_groups",
    "run_component", "unavailable", "unregister",
]
