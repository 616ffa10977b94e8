"""SSPO's semantic check: a vision-language model scores how well a clip matches its prompt, 1-5.

It runs only when a vision endpoint is configured (any OpenAI-compatible server that accepts
image parts in chat messages: vLLM, llama.cpp's server, Ollama, OpenAI). Without one the verdict
is `unavailable` with the reason, and SSPO's reward leaves alignment out. The question is RAPO++'s
(Vchitect/RAPO phyaware_wan2.1.py, misalignment_assessment): objects, actions and scene, scored
from 1 (completely misaligned) to 5 (perfectly aligned).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass

import cv2
import numpy as np
from cinerl.core.settings import env_settings

log = logging.getLogger(__name__)

QUESTION = ("Evaluate how well the video aligns with the given text prompt. Consider whether the "
            "objects, actions, and scene described in the prompt are accurately represented in "
            "the video. Provide a brief explanation and end with 'Score: N', an alignment score "
            "from 1 (completely misaligned) to 5 (perfectly aligned).\nPROMPT: \"\"\"{prompt}\"\"\"")
_SCORE_RE = re.compile(r"score\W{0,3}([1-5])(?:\s*/\s*5)?", re.IGNORECASE)
_DIGIT_RE = re.compile(r"\b([1-5])\s*(?:/\s*5|out of 5)")


@dataclass
class Alignment:
    score: float | None  # 1-5
    status: str  # ok | unavailable
    reason: str = ""
    explanation: str = ""


def parse_score(text: str) -> float | None:
    """The 1-5 score in a VLM answer ('Score: 4', '4/5', '4 out of 5'), or None."""
    for rx in (_SCORE_RE, _DIGIT_RE):
        found = rx.findall(text)
        if found:
            return float(found[-1])
    return None


def sample_frames(frames: np.ndarray, n: int = 6, max_side: int = 384) -> list[bytes]:
    """n evenly spaced frames as JPEG bytes, long side at most max_side."""
    idx = np.linspace(0, len(frames) - 1, num=min(n, len(frames))).round().astype(int)
    out = []
    for i in idx:
        f = frames[i]
        scale = max_side / max(f.shape[:2])
        if scale < 1:
            f = cv2.resize(f, (round(f.shape[1] * scale), round(f.shape[0] * scale)),
                           interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(f, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, 85])
        if ok:
            out.append(buf.tobytes())
    return out


class VisionJudge:
    """An OpenAI-compatible chat endpoint with image input. The key is read from the environment
    and never logged."""

    def __init__(self, base_url: str | None = None, model: str | None = None,
                 api_key: str | None = None, timeout: float = 120.0, frames: int = 6):
        env = env_settings()  # rewards.vlm_* (CINERL_VLM_*), llm.api_key (OPENAI_API_KEY)
        self.base_url = (base_url or env.rewards.vlm_base_url or "").rstrip("/")
        self.model = model or env.rewards.vlm_model or ""
        self._key = api_key or env.rewards.vlm_api_key or env.llm.api_key
        self.timeout, self.frames = timeout, frames

    @property
    def configured(self) -> bool:
        return bool(self.base_url and self.model)

    def why_unavailable(self) -> str:
        return ("no vision endpoint configured: set --vlm-base-url and --vlm-model "
                "(or CINERL_VLM_BASE_URL and CINERL_VLM_MODEL)")

    def assess(self, frames: np.ndarray, prompt: str) -> Alignment:
        if not self.configured:
            return Alignment(None, "unavailable", self.why_unavailable())
        content: list[dict] = [{"type": "text", "text": QUESTION.format(prompt=prompt)}]
        for jpg in sample_frames(frames, self.frames):
            content.append({"type": "image_url", "image_url": {
                "url": "data:image/jpeg;base64," + base64.b64encode(jpg).decode()}})
        body = json.dumps({"model": self.model, "temperature": 0, "max_tokens": 256,
                           "messages": [{"role": "user", "content": content}]}).encode()
        req = urllib.request.Request(f"{self.base_url}/chat/completions", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        if self._key:
            req.add_header("Authorization", f"Bearer {self._key}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                answer = json.loads(resp.read())["choices"][0]["message"]["content"] or ""
        except (urllib.error.URLError, OSError, KeyError, IndexError, ValueError) as e:
            reason = f"vision endpoint {self.base_url} failed: {type(e).__name__}: {e}"
            log.warning(reason)
            return Alignment(None, "unavailable", reason)
        score = parse_score(answer)
        if score is None:
            return Alignment(None, "unavailable", "the vision model's answer had no 1-5 score",
                             explanation=answer[:500])
        return Alignment(score, "ok", explanation=answer[:500])
