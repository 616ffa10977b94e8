"""The one OpenAI-compatible chat + vision client of the judges (standard library only).

``ChatClient(base_url, model).chat(text, images)`` POSTs {base_url}/chat/completions with the
model, one user message (the text, and each image as a base64 JPEG data URL) and temperature 0,
and returns the first choice's text. Every caller that asks a model for a verdict uses it: the
reward suite's VLM alignment, caption and narrative judges (cinerl.rewards.judges) and, through
the alignment judge, SSPO. ``parse_rating`` reads their 1-5 answers.

Planning goes through the official ``openai`` package instead (cinerl.llm.providers.openai): it
needs structured output (json_schema, llama.cpp's json_object + schema), the typed errors that
tell a rejected response_format from a fault, and its retry loop. The two transports serve one
purpose each and share the backoff rule (:func:`retry_delay`).

Failures raise ``EndpointError`` with a short reason (HTTP status, unreachable, not JSON, no
choices); rate limits (429), server errors (5xx), timeouts and refused connections are retried
``retries`` times with exponential backoff, honouring Retry-After. The API key comes from the
caller or from the settings (:func:`api_key`) and is never logged, stored in a reason, or shown by
``repr``.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import re
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from cinerl.core.settings import env_settings
from cinerl.core.urls import host_of, redact_url, same_endpoint

log = logging.getLogger(__name__)
JPEG_QUALITY = 85


class EndpointError(RuntimeError):
    """An OpenAI-compatible endpoint gave no usable answer; the message is the short reason."""


OPENAI_HOST = "api.openai.com"


def api_key(kind: str, base_url: str | None = None) -> str | None:
    """The key for a request of `kind` ("vlm" or "judge") to `base_url`: each key goes only to the
    endpoint it was configured for. rewards.<kind>_api_key goes to rewards.<kind>_base_url (or to
    any endpoint when that is unset); llm.api_key (OPENAI_API_KEY) only to llm.base_url or to
    api.openai.com, never to some other judge server that has no key of its own."""
    s = env_settings()
    own = getattr(s.rewards, f"{kind}_api_key", None)
    configured = getattr(s.rewards, f"{kind}_base_url", None)
    if own and (base_url is None or not configured or same_endpoint(base_url, configured)):
        return own
    llm = s.llm
    if llm.api_key and base_url is not None:
        if same_endpoint(base_url, llm.base_url) or host_of(base_url) == OPENAI_HOST:
            return llm.api_key
    return None


def jpeg_data_url(rgb: Any, quality: int = JPEG_QUALITY) -> str:
    """An (H, W, 3) uint8 RGB frame as a ``data:image/jpeg;base64,...`` URL."""
    import cv2

    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise EndpointError("could not encode a frame as JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def retry_delay(
    attempt: int, backoff: float, max_backoff: float, retry_after: str | float | None = None
) -> float:
    """Seconds before retry ``attempt`` (0-based): the server's Retry-After when it gives one,
    else exponential backoff with jitter (AWS architecture blog, "Exponential Backoff and
    Jitter"); never more than max_backoff."""
    try:
        wait = float(retry_after) if retry_after is not None else None
    except (TypeError, ValueError):
        wait = None
    if wait is not None:
        return min(max(wait, 0.0), max_backoff)
    return min(max_backoff, backoff * 2**attempt) * (0.5 + random.random() / 2)


class ChatClient:
    """One model behind an OpenAI-compatible endpoint (vLLM, llama.cpp's server, Ollama, OpenAI).

    api_key: sent as a Bearer token; when None, ``api_key(kind, base_url)`` is read at each request
    (kind "vlm" or "judge"). A server that checks no key gets none.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        *,
        kind: str = "vlm",
        timeout: float = 60.0,
        retries: int = 0,
        backoff: float = 0.5,
        max_backoff: float = 20.0,
    ):
        self.base_url = (base_url or "").rstrip("/")
        self.model = model or ""
        self.kind = kind
        self.timeout, self.retries = float(timeout), max(0, int(retries))
        self.backoff, self.max_backoff = backoff, max_backoff
        self._key = api_key

    def __repr__(self) -> str:  # never the key
        return f"ChatClient(base_url={redact_url(self.base_url)!r}, model={self.model!r})"

    @property
    def url(self) -> str:
        return self.base_url + "/chat/completions"

    def _request(self, body: bytes) -> urllib.request.Request:
        headers = {"Content-Type": "application/json"}
        key = self._key or api_key(self.kind, self.base_url)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return urllib.request.Request(self.url, data=body, headers=headers, method="POST")

    def chat(
        self, text: str, images: Sequence[Any] | None = None, max_tokens: int = 300, temperature: float = 0.0
    ) -> str:
        """One chat completion: the text and the (H, W, 3) RGB images as JPEG data URLs.
        Returns the answer's text; raises EndpointError with a short reason on any failure."""
        if not (self.base_url and self.model):
            raise EndpointError("no endpoint configured (base URL and model)")
        content: list[dict] | str = text
        if images is not None and len(images):
            content = [{"type": "text", "text": text}] + [
                {"type": "image_url", "image_url": {"url": jpeg_data_url(im)}} for im in images
            ]
        body = json.dumps(
            {
                "model": self.model,
                "temperature": temperature,
                "max_tokens": max_tokens,
                "messages": [{"role": "user", "content": content}],
            }
        ).encode()
        url = redact_url(self.url)  # as every reason names it: no user name or password
        for attempt in range(self.retries + 1):
            retry_after = None
            try:
                with urllib.request.urlopen(self._request(body), timeout=self.timeout) as resp:
                    data = json.loads(resp.read().decode("utf-8"))
                break
            except urllib.error.HTTPError as exc:
                reason = f"{url} answered HTTP {exc.code}"
                if exc.code != 429 and exc.code < 500:
                    raise EndpointError(reason) from None
                retry_after = exc.headers.get("Retry-After") if exc.headers else None
            except (urllib.error.URLError, TimeoutError, OSError) as exc:
                reason = f"{url} unreachable: {getattr(exc, 'reason', exc)}"
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise EndpointError(f"{url} did not answer JSON") from None
            if attempt == self.retries:
                if self.retries:
                    reason += f" (after {self.retries} retries)"
                raise EndpointError(reason)
            wait = retry_delay(attempt, self.backoff, self.max_backoff, retry_after)
            log.warning("%s, retry %d/%d in %.1fs", reason, attempt + 1, self.retries, wait)
            time.sleep(wait)
        try:
            return str(data["choices"][0]["message"]["content"] or "")
        except (KeyError, IndexError, TypeError):
            raise EndpointError(f"{url} answered without choices[0].message.content") from None


_MARKED = re.compile(r"(?:score|rating)\D{0,12}(\d+)", re.I)


def parse_rating(text: str, lo: int = 1, hi: int = 5) -> int:
    """The rating in a judge's answer: after 'Score'/'Rating' ("Score: 4", "Rating - 2"), else
    "N/5" or "N out of 5", else the first integer. Raises EndpointError when that is missing or
    outside [lo, hi]."""
    m = (
        _MARKED.search(text)
        or re.search(r"\b(\d+)\s*(?:/|out of)\s*%d\b" % hi, text, re.I)
        or re.search(r"\b(\d+)\b", text)
    )
    if not m or not lo <= int(m.group(1)) <= hi:
        raise EndpointError(f"no {lo}-{hi} rating in the answer: {text[:120]!r}")
    return int(m.group(1))
