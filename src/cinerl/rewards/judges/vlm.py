"""VLM alignment: SSPO's 1-5 judge of how well the video matches its prompt, asked of a vision
model behind an OpenAI-compatible endpoint (``vlm_base_url`` + ``vlm_model``).

RAPO++'s SSPO stage (misalignment_assessment) shows Qwen2.5-VL the generated video and the prompt
and asks for a 1-5 alignment score over objects, actions and scene. Here the model sees 4 evenly
spaced keyframes (long side <= 512 px, JPEG) and the prompt; value = (rating - 1) / 4.
"""

from __future__ import annotations

from cinerl.rewards.core.analysis import ClipAnalysis
from cinerl.rewards.core.context import ScoreContext
from cinerl.rewards.core.registry import not_applicable, ok, register, unavailable
from cinerl.llm.client import EndpointError, chat, parse_rating
from cinerl.rewards.config import missing

N_FRAMES = 4
QUESTION = (
    "These are {n} frames, in order, from one generated video clip. The prompt was:\n\"{prompt}\"\n"
    "Judge how well the video matches the prompt: its objects, their attributes, the actions and the "
    "scene. Answer with one line 'Score: N' where N is 1 (unrelated) to 5 (everything matches), then "
    "one sentence on what is missing or wrong.")


@register(name="vlm_alignment", group="text_alignment", requires=("vlm_base_url", "vlm_model"))
def vlm_alignment(analysis: ClipAnalysis, ctx: ScoreContext):
    """A vision model's 1-5 prompt-alignment rating of 4 keyframes; value = (rating - 1) / 4."""
    cfg = analysis.config
    if not (ctx.prompt or "").strip():
        return not_applicable("no prompt to judge against")
    idx, frames = analysis.detail_frames(N_FRAMES, 512)
    try:
        answer = chat(cfg.vlm_base_url, cfg.vlm_model, QUESTION.format(n=len(frames), prompt=ctx.prompt),
                      frames, kind="vlm", timeout=cfg.endpoint_timeout_s)
        rating = parse_rating(answer)
    except EndpointError as exc:
        return unavailable(f"vision endpoint: {exc}")
    return ok((rating - 1) / 4.0, rating=rating, answer=answer[:500], model=cfg.vlm_model,
              frames=[int(i) for i in idx], formula="(rating - 1) / 4, SSPO-style 1-5 alignment judge")
