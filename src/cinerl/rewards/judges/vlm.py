"""VLM alignment: SSPO's 1-5 judge of how well the video matches its prompt, asked of a vision
model behind an OpenAI-compatible endpoint (``vlm_base_url`` + ``vlm_model``).

RAPO++'s SSPO stage (Vchitect/RAPO phyaware_wan2.1.py, misalignment_assessment) shows Qwen2.5-VL
the generated video and the prompt and asks for a 1-5 alignment score over objects, actions and
scene. :func:`judge_alignment` is that judge, the one both callers use: the reward component
below (4 evenly spaced keyframes, long side <= 512 px; value = (rating - 1) / 4) and SSPO's loop
(cinerl.training.sspo.vision.VisionJudge). It never raises: an endpoint that fails or an answer
without a rating gives an ``unavailable`` verdict with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cinerl.rewards.core.analysis import ClipAnalysis
from cinerl.rewards.core.context import ScoreContext
from cinerl.rewards.core.registry import not_applicable, ok, register, unavailable
from cinerl.llm.client import ChatClient, EndpointError, parse_rating

N_FRAMES = 4
MAX_SIDE = 512  # keyframes' long side, px
MAX_TOKENS = 300
QUESTION = (
    'These are {n} frames, in order, from one generated video clip. The prompt was:\n"{prompt}"\n'
    "Judge how well the video matches the prompt: its objects, their attributes, the actions and the "
    "scene. Answer with one line 'Score: N' where N is 1 (unrelated) to 5 (everything matches), then "
    "one sentence on what is missing or wrong."
)


@dataclass
class Alignment:
    """A vision model's verdict: the 1-5 rating when status is "ok", else None and the reason."""

    score: float | None  # 1-5
    status: str  # ok | unavailable
    reason: str = ""
    explanation: str = ""  # the model's answer (at most 500 characters)

    @property
    def value(self) -> float | None:
        """The rating on [0, 1]: (rating - 1) / 4."""
        return None if self.score is None else (self.score - 1.0) / 4.0


def judge_alignment(client: ChatClient, keyframes: Sequence[Any], prompt: str) -> Alignment:
    """Ask the vision model behind ``client`` how well the keyframes (in order, RGB) match the
    prompt; the 1-5 rating is parsed from its answer."""
    try:
        answer = client.chat(
            QUESTION.format(n=len(keyframes), prompt=prompt), keyframes, max_tokens=MAX_TOKENS
        )
    except EndpointError as exc:
        return Alignment(None, "unavailable", f"vision endpoint: {exc}")
    try:
        rating = parse_rating(answer)
    except EndpointError as exc:
        return Alignment(None, "unavailable", f"vision model: {exc}", explanation=answer[:500])
    return Alignment(float(rating), "ok", explanation=answer[:500])


@register(name="vlm_alignment", group="text_alignment", requires=("vlm_base_url", "vlm_model"))
def vlm_alignment(analysis: ClipAnalysis, ctx: ScoreContext):
    """A vision model's 1-5 prompt-alignment rating of 4 keyframes; value = (rating - 1) / 4."""
    cfg = analysis.config
    if not (ctx.prompt or "").strip():
        return not_applicable("no prompt to judge against")
    idx, frames = analysis.detail_frames(N_FRAMES, MAX_SIDE)
    client = ChatClient(cfg.vlm_base_url, cfg.vlm_model, kind="vlm", timeout=cfg.endpoint_timeout_s)
    verdict = judge_alignment(client, frames, ctx.prompt)
    if verdict.status != "ok":
        return unavailable(verdict.reason)
    return ok(
        verdict.value,
        rating=int(verdict.score),
        answer=verdict.explanation,
        model=cfg.vlm_model,
        frames=[int(i) for i in idx],
        formula="(rating - 1) / 4, SSPO-style 1-5 alignment judge",
    )
