"""The offline provider: no language model, so every structured step is answered by the
deterministic planner that `structured_call` is handed as its fallback."""

from __future__ import annotations

from pydantic import BaseModel

from cinerl.llm.types import LLMResult, LLMUnavailable


class OfflineProvider:
    name = "offline"
    model = "offline-planner"
    base_url = None

    def complete(
        self,
        messages: list[dict],
        *,
        schema: type[BaseModel] | None = None,
        temperature: float = 0.0,
        max_tokens: int = 1024,
    ) -> LLMResult:
        # There is no model to write free text; pretending otherwise would be a fake answer.
        raise LLMUnavailable(
            "the offline provider has no language model; structured_call "
            "answers each step with the offline planner"
        )
