"""One interface for every language model CineRL talks to, and the call that never crashes a run.

A provider turns chat messages into text (`complete`). `structured_call` turns that text into a
pydantic model: ask (with the provider's JSON-schema output where it has one), validate, send the
validation errors back for repair up to N times, and when that still fails, or the provider is
down, fall back to the offline planner for that step and say so in the returned meta.
Every call can be cached in the run store by a hash of provider, model, messages and parameters,
so a resumed run pays for nothing twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError

from cinerl.llm.types import LLMCache, LLMProvider, LLMResult, LLMUnavailable

log = logging.getLogger(__name__)


def provider_identity(provider: LLMProvider) -> dict:
    """What makes two providers give the same answer (never the API key)."""
    return {
        "provider": provider.name,
        "model": provider.model,
        "base_url": getattr(provider, "base_url", None) or "",
    }


def cache_key(
    provider: LLMProvider,
    messages: list[dict],
    schema: type[BaseModel] | None,
    temperature: float,
    max_tokens: int,
) -> str:
    payload = {
        **provider_identity(provider),
        "messages": messages,
        "schema": schema.model_json_schema() if schema else None,
        "temperature": temperature,
        "max_tokens": max_tokens,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()


def cached_complete(
    provider: LLMProvider,
    messages: list[dict],
    *,
    schema: type[BaseModel] | None = None,
    temperature: float = 0.0,
    max_tokens: int = 1024,
    cache: LLMCache | None = None,
) -> LLMResult:
    """`provider.complete` through the cache: a hit costs no tokens and no time."""
    key = cache_key(provider, messages, schema, temperature, max_tokens) if cache else ""
    if cache is not None:
        hit = cache.llm_get(key)
        if hit is not None:
            res = LLMResult.model_validate_json(hit)
            return res.model_copy(update={"cached": True})
    res = provider.complete(messages, schema=schema, temperature=temperature, max_tokens=max_tokens)
    if cache is not None:
        cache.llm_put(key, res.model_copy(update={"parsed": None}).model_dump_json())
    return res


def extract_json(text: str) -> str:
    """The JSON object in a reply: models wrap it in prose or code fences more often than not."""
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.S)
    if fenced:
        text = fenced.group(1)
    start = text.find("{")
    end = text.rfind("}")
    return text[start : end + 1] if 0 <= start < end else text


def validation_problems(error: Exception, limit: int = 8) -> str:
    """Validation errors in a form a model can act on: where, what, and what it got."""
    if isinstance(error, ValidationError):
        lines = []
        for e in error.errors()[:limit]:
            where = ".".join(str(p) for p in e["loc"]) or "(root)"
            lines.append(f"- {where}: {e['msg']}")
        return "\n".join(lines)
    return f"- {error}"


def structured_call(
    provider: LLMProvider,
    messages: list[dict],
    schema: type[BaseModel],
    *,
    repairs: int = 2,
    fallback: Callable[[], BaseModel] | None = None,
    cache: LLMCache | None = None,
    check: Callable[[BaseModel], list[str]] | None = None,
    fix: Callable[[BaseModel], BaseModel] | None = None,
    temperature: float = 0.0,
    max_tokens: int = 1024,
    step: str = "",
) -> tuple[BaseModel, dict]:
    """Ask for `schema`, repair up to `repairs` times, then fall back. Returns (model, meta).

    `check` adds rules the schema cannot state (word counts, names that must appear); its
    complaints are repaired like validation errors; with `fix`, a valid value that `check` still
    faults after the last repair is fixed by code (`fix(value)`, with a warning) instead of
    falling back. The offline provider answers every step with
    `fallback` directly. Authentication errors are not caught: the user must fix the key.
    """
    meta: dict[str, Any] = {
        "step": step,
        **provider_identity(provider),
        "calls": [],
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "seconds": 0.0,
        "repairs": 0,
        "fell_back": False,
        "warning": "",
    }
    meta.pop("base_url")
    if provider.name == "offline":
        if fallback is None:
            raise LLMUnavailable("the offline provider needs a fallback planner for this step")
        t0 = time.perf_counter()
        result = fallback()
        meta["seconds"] = round(time.perf_counter() - t0, 4)
        return result, meta

    def give_up(reason: str) -> tuple[BaseModel, dict]:
        if fallback is None:
            raise LLMUnavailable(reason)
        warned = getattr(provider, "warned", None)  # a guarded provider says each reason once
        level = logging.INFO if warned is not None and reason in warned else logging.WARNING
        log.log(level, "%s: %s; using the offline planner for this step", step or schema.__name__, reason)
        if warned is not None:
            warned.add(reason)
        meta.update(fell_back=True, warning=f"{reason}; used the offline planner for this step")
        return fallback(), meta

    convo = list(messages)
    for attempt in range(repairs + 1):
        try:
            res = cached_complete(
                provider, convo, schema=schema, temperature=temperature, max_tokens=max_tokens, cache=cache
            )
        except LLMUnavailable as e:
            return give_up(f"{provider.name} ({provider.model}) unavailable: {e}")
        meta["calls"].append(
            {
                "prompt_tokens": res.prompt_tokens,
                "completion_tokens": res.completion_tokens,
                "seconds": round(res.seconds, 4),
                "cached": res.cached,
            }
        )
        if not res.cached:
            meta["prompt_tokens"] += res.prompt_tokens
            meta["completion_tokens"] += res.completion_tokens
            meta["seconds"] = round(meta["seconds"] + res.seconds, 4)
        try:
            # strict=False: a raw newline inside a string (small models type them) is no error
            value = schema.model_validate(json.loads(extract_json(res.text), strict=False))
            problems = check(value) if check else []
            if not problems:
                return value, meta
            why = "\n".join(f"- {p}" for p in problems)
            if attempt == repairs and fix is not None:
                reason = f"{step or schema.__name__}: after {repairs} repairs:\n{why}\nfixed by code"
                log.warning("%s", reason)
                meta["warning"] = reason
                return fix(value), meta
        except (ValidationError, ValueError) as e:
            why = validation_problems(e)
        if attempt == repairs:
            return give_up(f"no valid {schema.__name__} after {repairs} repairs:\n{why}")
        meta["repairs"] += 1
        convo = convo + [
            {"role": "assistant", "content": res.text[:4000]},
            {
                "role": "user",
                "content": "Your JSON does not fit the required schema:\n"
                + why
                + "\nReply with the corrected JSON object only.",
            },
        ]
    raise AssertionError("unreachable")
