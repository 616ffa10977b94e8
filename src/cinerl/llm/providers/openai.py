"""The `openai` provider: the official client against api.openai.com or any OpenAI-compatible
server (vLLM, llama.cpp's server, Ollama) given by `--llm-base-url`.

Structured output is asked for in the strongest form the server accepts, remembered after the
first call: `json_schema` (OpenAI, vLLM), then llama.cpp's `{"type": "json_object", "schema": ...}`,
then plain `json_object`, then the schema in the prompt alone. Rate limits (429), server errors
(5xx), timeouts and dropped connections are retried with exponential backoff (honouring
Retry-After); a refused key stops the run with a clear message. The key is never logged.

Why a second transport next to cinerl.llm.client.ChatClient (the judges' stdlib client): planning
needs what the official package gives, the response_format negotiation above, typed errors that
tell a rejected format (a "no") from a fault (a retry), and token usage. The judges need one text
+ images request and a rating, with no extra dependency. One transport per purpose; both back off
by the same rule (cinerl.llm.client.retry_delay).
"""

from __future__ import annotations

import json
import logging
import time

from pydantic import BaseModel

from cinerl.core.errors import UserError
from cinerl.core.settings import env_settings
from cinerl.core.urls import redact_url
from cinerl.llm.client import retry_delay
from cinerl.llm.types import LLMAuthError, LLMResult, LLMUnavailable

log = logging.getLogger(__name__)
DEFAULT_MODEL = "gpt-4o-mini"
JSON_MODES = ("json_schema", "json_object_schema", "json_object", "prompt")
# A key is only needed by servers that check one; local servers take any placeholder.
LOCAL_KEY = "sk-no-key-needed"


def redact(text: str, secret: str | None) -> str:
    """The text with the secret (and its tail, which servers like to echo) masked."""
    if not secret or len(secret) < 8:
        return text
    for s in (secret, secret[-8:], secret[:12]):
        text = text.replace(s, "***")
    return text


def response_format(mode: str, schema: type[BaseModel]) -> dict | None:
    js = schema.model_json_schema()
    if mode == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": schema.__name__, "schema": js, "strict": True}}
    if mode == "json_object_schema":
        return {"type": "json_object", "schema": grammar_safe(js)}
    if mode == "json_object":
        return {"type": "json_object"}
    return None


def grammar_safe(node, limit: int = 500):
    """The schema without long maxLength bounds: llama.cpp turns `maxLength: 1600` into a grammar
    repetition it cannot parse and its server crashes (llama-cpp-python 0.3.36, measured). The
    reply is still validated against the full schema afterwards."""
    if isinstance(node, dict):
        return {
            k: grammar_safe(v, limit)
            for k, v in node.items()
            if not (k == "maxLength" and isinstance(v, int) and v > limit)
        }
    if isinstance(node, list):
        return [grammar_safe(v, limit) for v in node]
    return node


def schema_instruction(schema: type[BaseModel]) -> str:
    return (
        "Answer with one JSON object only, no prose, that validates against this JSON schema:\n"
        + json.dumps(schema.model_json_schema(), separators=(",", ":"))
    )


class FormatRejected(Exception):
    """The server does not take this response_format."""

    def __init__(self, status: int):
        super().__init__(f"HTTP {status}")
        self.status_code = status


class OpenAIProvider:
    name = "openai"

    def __init__(
        self,
        model: str | None = None,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        retries: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 20.0,
        json_mode: str | None = None,
        **_,
    ):
        try:
            import openai
        except ImportError:
            raise UserError("--llm openai needs the `openai` package: pip install 'cinerl[llm]'") from None
        self._openai = openai
        env = env_settings().llm  # OPENAI_BASE_URL and OPENAI_API_KEY, through Settings
        self.base_url = base_url or env.base_url or None
        key = api_key or env.api_key
        if not key and not self.base_url:
            raise UserError(
                "--llm openai needs OPENAI_API_KEY in the environment, or "
                "--llm-base-url for a local OpenAI-compatible server"
            )
        self._key = key or LOCAL_KEY
        self.model = model or DEFAULT_MODEL
        self.retries, self.backoff, self.max_backoff = retries, backoff, max_backoff
        if json_mode is not None and json_mode not in JSON_MODES:
            raise UserError(f"json mode must be one of {', '.join(JSON_MODES)}")
        self.json_mode = json_mode
        self.timeout = timeout
        self.time_left = None  # a callable giving the plan's seconds left (llm/guard.py), or None
        self._warned: set[str] = set()
        # our own retry loop, so each retry is visible and the backoff is ours to test
        self.client = openai.OpenAI(api_key=self._key, base_url=self.base_url, timeout=timeout, max_retries=0)

    def __repr__(self) -> str:  # never the key, nor a password in the URL
        return f"OpenAIProvider(model={self.model!r}, base_url={redact_url(self.base_url)!r})"

    @property
    def where(self) -> str:
        """The server as every message names it: without user name and password."""
        return redact_url(self.base_url) or "api.openai.com"

    def _wait(self, attempt: int, error: Exception) -> float:
        response = getattr(error, "response", None)
        headers = getattr(response, "headers", None)
        retry_after = headers.get("retry-after") if headers is not None else None
        return retry_delay(attempt, self.backoff, self.max_backoff, retry_after)

    def _warn(self, kind: str, message: str, *args) -> None:
        """The first retry of a kind is a warning, the rest only -v: a dead server is one line."""
        log.log(logging.INFO if kind in self._warned else logging.WARNING, message, *args)
        self._warned.add(kind)

    def _create(self, **kw):
        oa = self._openai
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            left = self.time_left() if self.time_left else None
            if left is not None:
                if left <= 0:
                    raise LLMUnavailable(f"{self.where}: the LLM deadline (llm.deadline) has passed")
                kw["timeout"] = min(self.timeout, left)
            try:
                return self.client.chat.completions.create(**kw)
            except oa.APIStatusError as e:
                # some servers answer an unknown response_format with 500 instead of 400
                # (llama-cpp-python 0.3): that is a "no", not a fault to retry
                if (
                    "response_format" in kw
                    and "response_format" in str(e)
                    and e.status_code in (400, 422, 500)
                ):
                    raise FormatRejected(e.status_code) from None
                if isinstance(e, (oa.RateLimitError, oa.InternalServerError)) or e.status_code >= 500:
                    last = e
                    if attempt == self.retries:
                        break
                    wait = self._wait(attempt, e)
                    self._warn(
                        f"http {e.status_code}",
                        "%s: HTTP %s, retry %d/%d in %.1fs",
                        self.where,
                        e.status_code,
                        attempt + 1,
                        self.retries,
                        wait,
                    )
                    time.sleep(wait)
                    continue
                if isinstance(e, (oa.AuthenticationError, oa.PermissionDeniedError)):
                    raise LLMAuthError(
                        f"{self.where} refused the API key (HTTP {e.status_code}): check "
                        "OPENAI_API_KEY (or the key your server expects)"
                    ) from None
                raise
            except (oa.APITimeoutError, oa.APIConnectionError) as e:
                last = e
                if attempt == self.retries:
                    break
                wait = self._wait(attempt, e)
                self._warn(
                    type(e).__name__,
                    "%s: %s, retry %d/%d in %.1fs",
                    self.where,
                    type(e).__name__,
                    attempt + 1,
                    self.retries,
                    wait,
                )
                time.sleep(wait)
        detail = getattr(last, "status_code", None) or type(last).__name__
        raise LLMUnavailable(f"{self.where} failed after {self.retries} retries ({detail})")

    def complete(
        self,
        messages: list[dict],
        *,
        schema: type[BaseModel] | None = None,
        temperature: float = 0.0,
        max_tokens: int = 1024,
    ) -> LLMResult:
        oa = self._openai
        modes = [None] if schema is None else ([self.json_mode] if self.json_mode else list(JSON_MODES))
        t0 = time.perf_counter()
        for i, mode in enumerate(modes):
            msgs = list(messages)
            if schema is not None and mode in ("json_object", "prompt"):
                msgs = [{"role": "system", "content": schema_instruction(schema)}] + msgs
            kw = {"model": self.model, "messages": msgs, "temperature": temperature, "max_tokens": max_tokens}
            fmt = response_format(mode, schema) if schema is not None else None
            if fmt is not None:
                kw["response_format"] = fmt
            try:
                resp = self._create(**kw)
            except (FormatRejected, oa.BadRequestError, oa.UnprocessableEntityError, oa.NotFoundError) as e:
                if isinstance(e, oa.NotFoundError) or i == len(modes) - 1 or schema is None:
                    raise LLMUnavailable(
                        f"{self.where} rejected the request (HTTP "
                        f"{e.status_code}): {redact_url(redact(str(e), self._key))[:300]}"
                    ) from None
                log.info(
                    "%s does not take response_format %s (HTTP %s); trying %s",
                    self.where,
                    mode,
                    e.status_code,
                    modes[i + 1],
                )
                continue
            if schema is not None and self.json_mode is None:
                self.json_mode = mode  # the server takes this one: skip the others from now on
            choice = resp.choices[0] if getattr(resp, "choices", None) else None
            text = (choice.message.content or "") if choice is not None else ""
            usage = getattr(resp, "usage", None)
            return LLMResult(
                text=text,
                provider=self.name,
                model=getattr(resp, "model", None) or self.model,
                prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
                completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
                seconds=time.perf_counter() - t0,
            )
        raise AssertionError("unreachable")
