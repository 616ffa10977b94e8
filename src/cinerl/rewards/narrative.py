"""Narrative coherence judged by a language model.

The judge reads the scene's planned outcome (bible logline, scene action and beat) next to a
description of the clip and rates whether the story advanced as planned. No LLM is configured in
this build, so the component always reports ``unavailable`` with the reason — it never makes up
a score. It stays registered so every breakdown shows that the judge exists and why it is off.
"""

from __future__ import annotations

from cinerl.rewards.analysis import ClipAnalysis
from cinerl.rewards.base import ScoreContext, register, unavailable

NO_LLM_REASON = "no LLM configured (set an LLM provider to enable the narrative judge)"


@register(name="narrative_judge", group="narrative_coherence")
def narrative_judge(analysis: ClipAnalysis, ctx: ScoreContext):
    """LLM judge of the scene outcome against the story (disabled: no LLM provider)."""
    return unavailable(NO_LLM_REASON)
