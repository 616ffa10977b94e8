"""Narrative coherence judged by a language model.

The judge reads the story (bible logline, the scene's title, beat and planned action, and the
previous scene's action) next to a description of the clip — the keyframe captions from the
caption component (a local captioner or the vision endpoint) — and rates 1-5 whether the clip
carries out the planned beat and follows from the previous scene. It is asked of an
OpenAI-compatible endpoint (``judge_base_url`` + ``judge_model``). Without a judge it reports
``unavailable`` with the reason — it never makes up a score; without any way to describe the clip
it says that instead. value = (rating - 1) / 4.
"""

from __future__ import annotations

from cinerl.rewards.core.analysis import ClipAnalysis
from cinerl.rewards.core.context import ScoreContext
from cinerl.rewards.core.registry import not_applicable, ok, register, unavailable
from cinerl.llm.client import ChatClient, EndpointError, parse_rating

NO_LLM_REASON = (
    "no LLM configured: set judge_base_url and judge_model (CINERL_JUDGE_BASE_URL, "
    "CINERL_JUDGE_MODEL) to an OpenAI-compatible endpoint to enable the narrative judge"
)

PROMPT = (
    "You judge whether a film clip tells its part of the story.\nStory: {logline}\nThis scene "
    '({beat}): "{title}" - planned action: {action}\n{previous}What the clip shows, frame by frame:\n'
    "{captions}\nDoes the clip carry out the planned action and follow from the previous scene? Answer "
    "with one line 'Score: N', N from 1 (not at all) to 5 (exactly as planned), then one sentence why."
)


@register(name="narrative_judge", group="narrative_coherence", requires=("judge_base_url", "judge_model"))
def narrative_judge(analysis: ClipAnalysis, ctx: ScoreContext):
    """LLM judge (1-5) of the clip's captions against the scene's planned beat and the story."""
    cfg = analysis.config
    if ctx.scene is None or ctx.bible is None:
        return not_applicable("no story bible / scene to judge against")
    from cinerl.rewards.judges.caption import CaptionsUnavailable, clip_captions

    try:
        _, caps, source = clip_captions(analysis)
    except CaptionsUnavailable as exc:
        return unavailable(f"the judge needs a description of the clip: {exc}")
    prev = ""
    if ctx.scene.index > 0:
        before = [s for s in ctx.bible.scenes if s.index == ctx.scene.index - 1]
        if before:
            prev = f"Previous scene's action: {before[0].action}\n"
    text = PROMPT.format(
        logline=ctx.bible.logline,
        beat=ctx.scene.beat,
        title=ctx.scene.title,
        action=ctx.scene.action,
        previous=prev,
        captions="\n".join(f"- {c}" for c in caps),
    )
    try:
        client = ChatClient(cfg.judge_base_url, cfg.judge_model, kind="judge", timeout=cfg.endpoint_timeout_s)
        answer = client.chat(text)
        rating = parse_rating(answer)
    except EndpointError as exc:
        return unavailable(f"judge endpoint: {exc}")
    return ok(
        (rating - 1) / 4.0,
        rating=rating,
        answer=answer[:500],
        captions_from=source,
        model=cfg.judge_model,
        formula="(rating - 1) / 4, LLM judge of captions against the planned beat",
    )
