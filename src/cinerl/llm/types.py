"""What every provider and caller of an LLM shares: the result, the errors, the protocols."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel

from cinerl.core.errors import LLMUnavailable, UserError

__all__ = ["PROVIDERS", "LLMAuthError", "LLMCache", "LLMProvider", "LLMResult", "LLMUnavailable"]

PROVIDERS = ("auto", "offline", "openai", "transformers")


class LLMResult(BaseModel):
    """What one completion returned, with what it cost."""

    text: str
    parsed: Any | None = None
    provider: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    cached: bool = False


class LLMAuthError(UserError):
    """The server refused the credentials: the user must fix the key, so the run stops (exit 2)."""


@runtime_checkable
class LLMProvider(Protocol):
    name: str  # "openai" | "transformers" | "offline"
    model: str

    def complete(
        self,
        messages: list[dict],
        *,
        schema: type[BaseModel] | None = None,
        temperature: float = 0.0,
        max_tokens: int = 1024,
    ) -> LLMResult: ...


class LLMCache(Protocol):
    def llm_get(self, key: str) -> str | None: ...

    def llm_put(self, key: str, response: str) -> None: ...
