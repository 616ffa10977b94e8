"""A minimal OpenAI-compatible chat client for the judge components (standard library only).

POST {base_url}/chat/completions with the model, messages (text, and images as base64 JPEG data
URLs) and temperature 0; returns the first choice's text. The API key comes from the environment
only (``CINERL_VLM_API_KEY`` / ``CINERL_JUDGE_API_KEY``, else ``OPENAI_API_KEY``) and is never
logged or stored.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import urllib.error
import urllib.request

import cv2
import numpy as np
from cinerl.core.settings import env_settings

log = logging.getLogger(__name__)


class EndpointError(RuntimeError):
    pass


def jpeg_data_url(rgb: np.ndarray, quality: int = 85) -> str:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise EndpointError("could not encode a frame as JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def api_key(kind: str) -> str | None:
    """rewards.vlm_api_key / rewards.judge_api_key, else llm.api_key (OPENAI_API_KEY)."""
    s = env_settings()
    return getattr(s.rewards, f"{kind}_api_key", None) or s.llm.api_key or None


def chat(base_url: str, model: str, text: str, images: list[np.ndarray] | None = None, kind: str = "vlm",
         timeout: float = 60.0, max_tokens: int = 300) -> str:
    """One chat completion; raises EndpointError with a short reason on any failure."""
    content: list[dict] | str
    if images:
        content = [{"type": "text", "text": text}] + [
            {"type": "image_url", "image_url": {"url": jpeg_data_url(im)}} for im in images]
    else:
        content = text
    body = json.dumps({"model": model, "temperature": 0, "max_tokens": max_tokens,
                       "messages": [{"role": "user", "content": content}]}).encode()
    headers = {"Content-Type": "application/json"}
    key = api_key(kind)
    if key:
        headers["Authorization"] = f"Bearer {key}"
    url = base_url.rstrip("/") + "/chat/completions"
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            data = json.loads(resp.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        raise EndpointError(f"{url} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise EndpointError(f"{url} unreachable: {getattr(exc, 'reason', exc)}") from None
    except json.JSONDecodeError:
        raise EndpointError(f"{url} did not answer JSON") from None
    try:
        return str(data["choices"][0]["message"]["content"])
    except (KeyError, IndexError, TypeError):
        raise EndpointError(f"{url} answered without choices[0].message.content") from None


def parse_rating(text: str, lo: int = 1, hi: int = 5) -> int:
    """The first integer in [lo, hi] that the answer gives as its rating ("Score: 4", "4/5", "4")."""
    m = re.search(r"(?:score|rating)\D{0,12}(\d+)", text, re.I) or re.search(r"\b(\d+)\s*/\s*%d\b" % hi, text) \
        or re.search(r"\b(\d+)\b", text)
    if not m or not lo <= int(m.group(1)) <= hi:
        raise EndpointError(f"no {lo}-{hi} rating in the answer: {text[:120]!r}")
    return int(m.group(1))
