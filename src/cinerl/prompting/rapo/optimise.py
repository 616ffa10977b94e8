"""RAPO's stage 1 end to end: retrieve, merge, refactor, rewrite.

With an LLM (through cinerl.llm.structured) the three text steps follow RAPO's word_augment.py,
refactoring.py and rewrite_via_instruction.py: merge the kept modifiers into the prompt without
losing it; restructure into subject, action and scene (optionally camera, light, atmosphere);
rewrite into a concise, specific description. Offline the merge is rule-based and the two LLM
steps are skipped, each step saying so.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from cinerl.prompting.rapo import llm_bridge
from cinerl.prompting.rapo.retrieval import MAX_WORDS, Modifier, Retrieval, Retriever, limit_words, rule_merge

MERGE_SYSTEM = (
    "You are a text rewriter for text-to-video prompts. Enrich the description with the "
    "relevant modifiers while keeping the description itself: same subjects, same "
    'action. Answer with JSON {"prompt": ...}.'
)
REFACTOR_SYSTEM = (
    "You are a caption refiner. Restructure the prompt so it states the subject, "
    "the action and the scene (optionally camera language, light and atmosphere) "
    "in one fluent description. Do not add new characters. Answer with JSON "
    '{"prompt": ...}.'
)
REWRITE_SYSTEM = (
    "You are a text aligner for video generation. Rewrite the prompt as a concise, "
    "specific description of what is seen, in at most {limit} words, in the style "
    "of video captions ('a man ... He appears to ...'). Answer with JSON "
    '{{"prompt": ...}}.'
)


class Step(BaseModel):
    step: str
    method: str
    text: str


class RapoResult(BaseModel):
    """One prompt through RAPO: what was retrieved, what each step produced, the final prompt."""

    prompt: str
    retrieval: Retrieval
    added: list[Modifier] = Field(description="modifiers the merge put into the prompt")
    steps: list[Step]
    optimised: str


def optimise_prompt(prompt: str, retriever: Retriever, llm: Any = None, limit: int = MAX_WORDS) -> RapoResult:
    """Retrieve modifiers for `prompt` and merge them in (LLM steps when `llm` is usable)."""
    provider = llm_bridge.resolve_llm(llm)
    retrieval = retriever.retrieve(prompt)
    merged, used = rule_merge(prompt, retrieval, limit=limit)
    steps = [
        Step(
            step="retrieve",
            method="relation graph",
            text="; ".join(m.text for m in retrieval.kept) or "(nothing above threshold)",
        )
    ]
    if provider is None:
        steps.append(Step(step="merge", method="rule", text=merged))
        steps.append(Step(step="refactor", method="skipped: no LLM configured", text=merged))
        steps.append(Step(step="rewrite", method="skipped: no LLM configured", text=merged))
        return RapoResult(prompt=prompt, retrieval=retrieval, added=used, steps=steps, optimised=merged)
    modifiers = ", ".join(m.text for m in retrieval.kept) or "(none)"
    fallback = llm_bridge.RewrittenPrompt(prompt=merged)
    out, method = llm_bridge.call(
        provider,
        MERGE_SYSTEM,
        f"Description body: {prompt}\nRelevant modifiers: {modifiers}",
        llm_bridge.RewrittenPrompt,
        fallback,
    )
    text = out.prompt.strip()
    steps.append(Step(step="merge", method=method, text=text))
    out, method = llm_bridge.call(
        provider,
        REFACTOR_SYSTEM,
        f"Prompt: {text}",
        llm_bridge.RewrittenPrompt,
        llm_bridge.RewrittenPrompt(prompt=text),
    )
    text = out.prompt.strip()
    steps.append(Step(step="refactor", method=method, text=text))
    out, method = llm_bridge.call(
        provider,
        REWRITE_SYSTEM.format(limit=limit),
        f"Prompt: {text}",
        llm_bridge.RewrittenPrompt,
        llm_bridge.RewrittenPrompt(prompt=text),
    )
    text = limit_words(out.prompt.strip(), limit)
    steps.append(Step(step="rewrite", method=method, text=text))
    return RapoResult(prompt=prompt, retrieval=retrieval, added=used, steps=steps, optimised=text)
