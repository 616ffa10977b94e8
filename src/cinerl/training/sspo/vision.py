"""SSPO's semantic check: a vision-language model scores how well a clip matches its prompt, 1-5.

It runs only when a vision endpoint is configured (any OpenAI-compatible server that accepts
image parts in chat messages: vLLM, llama.cpp's server, Ollama, OpenAI). Without one the verdict
is `unavailable` with the reason, and SSPO's reward leaves alignment out. The judge is the reward
suite's (cinerl.rewards.judges.vlm.judge_alignment: RAPO++'s misalignment assessment, objects,
actions and scene scored from 1 to 5), asked through the one judge client
(cinerl.llm.client.ChatClient); this module only picks the endpoint and the keyframes.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

from cinerl.core.settings import env_settings
from cinerl.llm.client import ChatClient
from cinerl.rewards.judges.vlm import MAX_SIDE, Alignment, judge_alignment

__all__ = ["Alignment", "VisionJudge", "sample_frames"]
log = logging.getLogger(__name__)


def sample_frames(frames: np.ndarray, n: int = 6, max_side: int = MAX_SIDE) -> list[np.ndarray]:
    """n evenly spaced RGB frames, long side at most max_side."""
    idx = np.linspace(0, len(frames) - 1, num=min(n, len(frames))).round().astype(int)
    out = []
    for i in idx:
        f = frames[i]
        scale = max_side / max(f.shape[:2])
        if scale < 1:
            f = cv2.resize(
                f, (round(f.shape[1] * scale), round(f.shape[0] * scale)), interpolation=cv2.INTER_AREA
            )
        out.append(np.ascontiguousarray(f))
    return out


class VisionJudge:
    """The vision endpoint SSPO asks: the given URL and model, else the rewards settings
    (rewards.vlm_base_url / vlm_model, CINERL_VLM_*). The key (given, else rewards.vlm_api_key,
    else llm.api_key) is read by the client and never logged."""

    def __init__(
        self,
        base_url: str | None = None,
        model: str | None = None,
        api_key: str | None = None,
        timeout: float = 120.0,
        frames: int = 6,
    ):
        env = env_settings().rewards
        self.client = ChatClient(
            base_url or env.vlm_base_url or "",
            model or env.vlm_model or "",
            api_key=api_key,
            kind="vlm",
            timeout=timeout,
        )
        self.frames = frames

    @property
    def base_url(self) -> str:
        return self.client.base_url

    @property
    def model(self) -> str:
        return self.client.model

    @property
    def configured(self) -> bool:
        return bool(self.base_url and self.model)

    def why_unavailable(self) -> str:
        return (
            "no vision endpoint configured: set --vlm-base-url and --vlm-model "
            "(or CINERL_VLM_BASE_URL and CINERL_VLM_MODEL)"
        )

    def assess(self, frames: np.ndarray, prompt: str) -> Alignment:
        if not self.configured:
            return Alignment(None, "unavailable", self.why_unavailable())
        verdict = judge_alignment(self.client, sample_frames(frames, self.frames), prompt)
        if verdict.status != "ok":
            log.warning("alignment unavailable: %s", verdict.reason)
        return verdict
