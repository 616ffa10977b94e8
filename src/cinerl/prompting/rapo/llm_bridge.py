"""The one place RAPO and SSPO talk to the LLM layer (cinerl.llm.structured), imported lazily.

Every caller passes a rule-based answer too: when the LLM layer is missing, offline, or its call
falls back, the rule-based answer is used and the step records which one ran and why
("rule (llm failed: ...)", "rule (llm fell back: ...)"), so SSPO's CSV log shows the reason.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, Field

from cinerl.core.errors import UserError

log = logging.getLogger(__name__)
MAX_TOKENS = 400  # a prompt under 120 words is about 200 tokens; the JSON around it is little


class RewrittenPrompt(BaseModel):
    """What every rewriting call returns: one prompt, nothing else."""

    prompt: str = Field(min_length=1, max_length=2000)


class PhysicsVerdict(BaseModel):
    """SSPO's first phase: is the measured motion physically plausible?"""

    plausible: bool
    conclusion: str = Field(min_length=1, max_length=1000)


def resolve_llm(llm: Any, model: str | None = None, base_url: str | None = None) -> Any | None:
    """A usable provider, or None for the rule-based path.

    `llm` is None, a provider object (anything with a `name`), or a provider name for
    `cinerl.llm.providers.get_provider` ("auto", "openai", "transformers", "offline").
    """
    if llm is None:
        return None
    if isinstance(llm, str):
        if llm == "offline":
            return None
        try:
            from cinerl.llm.providers import get_provider
        except ImportError:
            log.info("the LLM layer (cinerl.llm.structured) is not installed; using rule-based rewriting")
            return None
        llm = get_provider(llm, model=model, base_url=base_url)
    return None if getattr(llm, "name", "offline") == "offline" else llm


def describe(provider: Any | None) -> str:
    if provider is None:
        return "rule-based (no LLM configured)"
    model = getattr(provider, "model", None)
    return f"llm:{provider.name}" + (f" ({str(model).rsplit('/', 1)[-1]})" if model else "")


def call(
    provider: Any | None,
    system: str,
    user: str,
    schema: type[BaseModel],
    fallback: BaseModel,
    cache: Any = None,
) -> tuple[BaseModel, str]:
    """Ask the LLM for a `schema` answer; (answer, method). Falls back to `fallback` on any
    failure of the layer, so a rewrite never stops a run."""
    if provider is None:
        return fallback, "rule"
    from cinerl.llm.structured import structured_call

    messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    try:
        result, meta = structured_call(
            provider,
            messages,
            schema,
            repairs=2,
            fallback=lambda: fallback,
            cache=cache,
            max_tokens=MAX_TOKENS,
        )
    except UserError:
        raise  # a bad key or model path is the user's to fix, not something to hide
    except Exception as e:  # the rule-based answer is always good enough
        log.warning("LLM call failed (%s); using the rule-based answer", e)
        return fallback, f"rule (llm failed: {_one_line(f'{type(e).__name__}: {e}')})"
    fell_back = isinstance(meta, dict) and bool(meta.get("fell_back"))
    if result is fallback or fell_back:
        why = meta.get("warning", "") if isinstance(meta, dict) else ""
        return fallback, f"rule (llm fell back: {_one_line(why) or 'no reason given'})"
    return result, describe(provider)


def _one_line(text: str, limit: int = 160) -> str:
    """A reason short enough for a method column (the full one is in the warning log)."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
