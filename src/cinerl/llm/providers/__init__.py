"""The three LLM providers behind one `get_provider(name)`: OpenAI-compatible HTTP, a local
transformers folder or GGUF file, and no model at all (offline)."""

from __future__ import annotations

from cinerl.core.errors import UserError
from cinerl.core.settings import env_settings
from cinerl.llm.types import PROVIDERS, LLMProvider


def get_provider(
    name: str = "auto", model: str | None = None, base_url: str | None = None, **kw
) -> LLMProvider:
    """The provider for a name. `auto` is `openai` when OPENAI_API_KEY or a base URL is set,
    else `offline`. Unknown names and missing model paths are the user's to fix (UserError)."""
    name = (name or "auto").strip().lower()
    if name not in PROVIDERS:
        raise UserError(f"--llm must be one of {', '.join(PROVIDERS)} (got {name!r})")
    if name == "auto":
        env = env_settings().llm
        has_key = kw.get("api_key") or env.api_key
        name = "openai" if (has_key or base_url or env.base_url) else "offline"
    if name == "offline":
        from cinerl.llm.providers.offline import OfflineProvider

        return OfflineProvider()
    if name == "openai":
        from cinerl.llm.providers.openai import OpenAIProvider

        return OpenAIProvider(model=model, base_url=base_url, **kw)
    from cinerl.llm.providers.transformers import TransformersProvider

    if not model:
        raise UserError("--llm transformers needs --model: a local model folder or a .gguf file")
    kw.pop("api_key", None)
    return TransformersProvider(model, **kw)
