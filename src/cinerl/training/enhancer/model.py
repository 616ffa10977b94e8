"""What the enhancer trainers share: the system instruction, the chat rows, where a base model
comes from, and loading a trained enhancer to write prompts.

A base MODEL is a local transformers folder or a `.gguf` file (transformers' GGUF loader, through
the LLM layer's one-time conversion to a float folder, `transformers_folder`), never a hub name.
A trained enhancer is a folder holding a peft LoRA adapter and `enhancer.json` (its base model,
its kind, its system instruction); GRPO may start from one, `eval`, `enhance` and
`make --enhancer` load one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cinerl.core.errors import UserError
from cinerl.llm.providers.transformers import transformers_folder
from cinerl.planning.agents import ENRICHER_SYSTEM
from cinerl.planning.prompt_audit import WORDS

INFO = "enhancer.json"

# the LLM layer's own rules (planning/agents.ENRICHER_SYSTEM, prompt_audit.WORDS), as plain text
SYSTEM = (
    ENRICHER_SYSTEM.replace("Answer with JSON only.", "").strip()
    + f" A text-to-video prompt has {WORDS['t2v'][0]}-{WORDS['t2v'][1]} words and describes the "
    f"subject fully; an image-to-video prompt has {WORDS['i2v'][0]}-{WORDS['i2v'][1]} words and leads "
    "with motion, since the first frame already shows the scene. Name every character with their "
    "wardrobe colours and the place with its palette. Answer with the prompt only."
)


def messages(brief: str, system: str = SYSTEM) -> list[dict[str, str]]:
    """The chat prompt of one brief (TRL's conversational format)."""
    return [{"role": "system", "content": system}, {"role": "user", "content": brief}]


def plain_prompt(brief: str, system: str = SYSTEM) -> str:
    """The prompt of one brief for a tokenizer without a chat template."""
    return f"{system}\n\nBrief: {brief}\nPrompt:"


def as_prompt(brief: str, tokenizer, system: str = SYSTEM) -> Any:
    """Conversational where the tokenizer has a chat template, plain text otherwise."""
    return (
        messages(brief, system) if getattr(tokenizer, "chat_template", None) else plain_prompt(brief, system)
    )


@dataclass
class Base:
    """A resolved base: the transformers folder to load, and the adapter on it (an enhancer)."""

    given: str
    folder: Path
    adapter: Path | None = None
    info: dict | None = None


def resolve_base(model: str | Path, flag: str = "--base") -> Base:
    """A local folder, a .gguf file, or a trained enhancer folder; anything else is a UserError
    (a hub name such as "HuggingFaceTB/SmolLM2-135M" is not looked up: nothing is downloaded)."""
    if not str(model).strip():
        raise UserError(f"{flag} is required: a local transformers folder or a .gguf file")
    path = Path(str(model)).expanduser()
    if not path.exists():
        raise UserError(
            f"{flag} {model}: no such folder or .gguf file (models load from local paths only; "
            "nothing is downloaded)"
        )
    if path.is_dir() and (path / INFO).is_file():
        info = json.loads((path / INFO).read_text(encoding="utf-8"))
        inner = resolve_base(info["base"], flag=f"{flag} {model}: its base")
        return Base(str(model), inner.folder, path, info)
    if path.is_dir() and not (path / "config.json").is_file():
        raise UserError(f"{flag} {model}: not a transformers model folder (no config.json) nor an enhancer")
    if path.is_file() and path.suffix.lower() != ".gguf":
        raise UserError(f"{flag} {model}: a file must be a .gguf model")
    if path.is_file():
        try:
            import gguf  # noqa: F401
        except ImportError:
            raise UserError(
                "loading a .gguf model needs the `gguf` package: pip install 'cinerl[llm]'"
            ) from None
    return Base(str(model), transformers_folder(path))


def load_tokenizer(folder: Path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_causal_lm(folder: Path, flag: str = "--base"):
    """The base model in float32 (GGUF weights are de-quantized: trained in float)."""
    import torch
    from transformers import AutoModelForCausalLM

    try:
        return AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, dtype=torch.float32)
    except (OSError, ValueError) as e:
        raise UserError(f"{flag} {folder}: not a loadable causal language model ({e})") from None


def load_for_training(base: Base):
    """(model, tokenizer): the base, with an enhancer's adapter loaded trainable when it has one."""
    tok = load_tokenizer(base.folder)
    model = load_causal_lm(base.folder)
    if base.adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, base.adapter, is_trainable=True)
    return model, tok


def write_info(out: Path, base: Base, kind: str, config: dict, system: str = SYSTEM) -> None:
    """enhancer.json: what `resolve_base`/`load_enhancer` need to load the adapter again."""
    from cinerl.core.media import atomic_write_text

    root = base.info["base"] if base.info else base.given
    lineage = [*(base.info.get("lineage", []) if base.info else []), kind]
    atomic_write_text(
        Path(out) / INFO,
        json.dumps(
            {"kind": kind, "base": str(root), "lineage": lineage, "system": system, "config": config},
            indent=2,
            default=str,
        ),
    )


class Enhancer:
    """A model that writes prompts from briefs: a base alone, or a trained enhancer folder."""

    def __init__(self, model: str | Path, adapter: bool = True, flag: str = "--enhancer"):
        import torch

        self.base = resolve_base(model, flag=flag)
        self.tokenizer = load_tokenizer(self.base.folder)
        lm = load_causal_lm(self.base.folder, flag)
        if adapter and self.base.adapter is not None:
            from peft import PeftModel

            lm = PeftModel.from_pretrained(lm, self.base.adapter)
        self.model = lm.eval()
        self.system = (self.base.info or {}).get("system", SYSTEM)
        self.name = (
            f"enhancer:{Path(self.base.adapter).name}"
            if adapter and self.base.adapter
            else f"base:{Path((self.base.info or {}).get('base', self.base.given)).name}"
        )
        self._torch = torch

    def prompt_ids(self, brief: str) -> list[int]:
        p = as_prompt(brief, self.tokenizer, self.system)
        if isinstance(p, str):
            return self.tokenizer.encode(p)
        enc = self.tokenizer.apply_chat_template(p, add_generation_prompt=True)
        return list(enc["input_ids"] if hasattr(enc, "keys") else enc)

    def write(
        self, briefs: list[str], max_new_tokens: int = 256, temperature: float = 0.0, seed: int = 0
    ) -> list[str]:
        """One detailed prompt per brief; sampling seeded per brief, so the same seed gives the
        same prompts whatever the batch."""
        torch = self._torch
        out = []
        for i, brief in enumerate(briefs):
            ids = torch.tensor([self.prompt_ids(brief)])
            kw: dict[str, Any] = {
                "max_new_tokens": max_new_tokens,
                "pad_token_id": self.tokenizer.pad_token_id,
            }
            if temperature > 0:
                torch.manual_seed(seed + i)
                kw.update(do_sample=True, temperature=temperature, top_k=0, top_p=1.0)
            else:
                kw.update(do_sample=False)
            with torch.no_grad():
                gen = self.model.generate(ids, attention_mask=torch.ones_like(ids), **kw)[0, ids.shape[1] :]
            out.append(self.tokenizer.decode(gen, skip_special_tokens=True).strip())
        return out
