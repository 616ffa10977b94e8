"""`cinerl enhance PROMPT --enhancer DIR`: a trained enhancer writes the detailed prompt of a
simple one. The simple prompt is planned (offline planner, one scene) so the enhancer gets the
brief it was trained on (the action and the bible's facts); the answer is cached like every LLM
call (the LLM layer's cache protocol: a run store inside a run, a file cache outside), keyed by
the adapter's bytes, the brief and the decoding settings."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from cinerl.core.media import atomic_write_text
from cinerl.llm.providers.transformers import cache_root
from cinerl.llm.types import LLMCache
from cinerl.planning.agents import Mode
from cinerl.training.datasets.prompt_pairs import enhancer_brief
from cinerl.training.enhancer.model import INFO, Enhancer, resolve_base


class FileCache:
    """LLMCache on files: one text file per key under `root` (CineRL's cache, `enhancer/`)."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root else cache_root() / "enhancer"

    def llm_get(self, key: str) -> str | None:
        path = self.root / f"{key}.txt"
        return path.read_text(encoding="utf-8") if path.is_file() else None

    def llm_put(self, key: str, response: str) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.root / f"{key}.txt", response)


def fingerprint(enhancer: str | Path) -> str:
    """sha256 of the adapter's files (weights and enhancer.json): a retrained enhancer misses."""
    h = hashlib.sha256()
    folder = Path(enhancer)
    for name in ("adapter_model.safetensors", "adapter_config.json", INFO):
        path = folder / name
        if path.is_file():
            h.update(name.encode() + path.read_bytes())
    return h.hexdigest()


_MODELS: dict[str, Enhancer] = {}


def enhance(
    prompt: str,
    enhancer: str | Path,
    mode: Mode = "t2v",
    seed: int = 0,
    max_new_tokens: int = 256,
    temperature: float = 0.0,
    cache: LLMCache | None = None,
) -> dict:
    """{"prompt": the detailed prompt, "brief", "enhancer": which wrote it, "cached": bool}."""
    from cinerl.planning.offline import plan_story

    base = resolve_base(enhancer, "--enhancer")
    if base.adapter is None:
        from cinerl.core.errors import UserError

        raise UserError(f"--enhancer {enhancer}: not a trained enhancer folder (no {INFO})")
    bible = plan_story(prompt, seed=seed, scenes=1)
    brief = enhancer_brief(bible.scenes[0], bible, mode)
    payload = {"enhancer": fingerprint(base.adapter), "brief": brief, "seed": seed}
    payload.update(max_new_tokens=max_new_tokens, temperature=temperature)
    key = "enhance-" + hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
    name = f"enhancer:{Path(base.adapter).resolve().name}"
    cache = cache if cache is not None else FileCache()
    hit = cache.llm_get(key)
    if hit is not None:
        return {"prompt": hit, "brief": brief, "enhancer": name, "cached": True}
    model = _MODELS.setdefault(str(Path(base.adapter).resolve()), Enhancer(base.adapter))
    text = model.write([brief], max_new_tokens, temperature, seed)[0]
    cache.llm_put(key, text)
    return {"prompt": text, "brief": brief, "enhancer": name, "cached": False}
