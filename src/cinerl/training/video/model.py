"""The Wan transformer(s) a video trainer trains: loaded by the loader inference uses
(generation/wan/loading.py), a peft LoRA added through diffusers' `add_adapter`, the reference
model being the same module with its adapters disabled."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from cinerl.core.errors import UserError
from cinerl.generation.wan.loading import PIECES, _load_model
from cinerl.generation.wan.variants import VARIANTS, WanVariant

log = logging.getLogger(__name__)

ATTENTION_TARGETS = tuple(
    f"{a}.{p}" for a in ("attn1", "attn2") for p in ("to_q", "to_k", "to_v", "to_out.0")
)
FFN_TARGETS = ("ffn.net.0.proj", "ffn.net.2")
TARGET_WORDS = {"attn": ATTENTION_TARGETS, "ffn": FFN_TARGETS}
EXPERT_NAMES = ("transformer", "transformer_2")  # A14B: high-noise, low-noise


def lora_targets(text: str) -> list[str]:
    """`attn`, `ffn` (shorthands) and module-name suffixes, comma-separated."""
    out: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        for t in TARGET_WORDS.get(part, (part,)):
            if t not in out:
                out.append(t)
    if not out:
        raise UserError("--lora-targets is empty")
    return out


def transformer_folder(model_dir: Path, name: str) -> Path:
    p = Path(model_dir) / PIECES[name].subfolder
    if not (p / "config.json").is_file():
        raise UserError(
            f"--model-dir {model_dir} has no {PIECES[name].subfolder}/config.json ({PIECES[name].what})"
        )
    return p


def guess_variant(model_dir: Path) -> str:
    """The variant of a model folder: two experts are A14B (36 input channels: image to video)."""
    import json

    cfg = json.loads((transformer_folder(model_dir, "transformer") / "config.json").read_text())
    if (Path(model_dir) / "transformer_2" / "config.json").is_file():
        return "i2v-a14b" if cfg.get("in_channels") == 36 else "t2v-a14b"
    return "ti2v-5b"


def check_model_dir(model_dir: str | None) -> Path:
    if not model_dir:
        raise UserError("--model-dir is required: the local Wan2.2 diffusers folder to train on")
    p = Path(model_dir).expanduser()
    if not p.is_dir():
        raise UserError(f"--model-dir {p} does not exist")
    return p


def load_experts(model_dir: Path, variant: WanVariant, names: list[str], dtype) -> dict[str, nn.Module]:
    from diffusers import WanTransformer3DModel

    out = {}
    for name in names:
        m = _load_model(
            WanTransformer3DModel, transformer_folder(model_dir, name), dtype, name, PIECES[name].env
        )
        if m.config.in_channels != variant.transformer_in_channels:
            raise UserError(
                f"{model_dir}/{name} has {m.config.in_channels} input channels; {variant.name} needs "
                f"{variant.transformer_in_channels} (pass the --variant of that folder)"
            )
        out[name] = m
    return out


def add_lora(model: nn.Module, rank: int, alpha: float, targets: list[str]) -> list[nn.Parameter]:
    """A LoRA (adapter "default", B zero so the model is unchanged) in fp32; its parameters."""
    from peft import LoraConfig

    model.requires_grad_(False)
    model.add_adapter(LoraConfig(r=rank, lora_alpha=alpha, target_modules=targets, init_lora_weights=True))
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise UserError(f"--lora-targets {','.join(targets)} matched no module of the transformer")
    for p in params:  # fp32 LoRA parameters on bf16 weights (diffusers' cast_training_params)
        p.data = p.data.float()
    return params


@contextmanager
def reference(model: nn.Module):
    """The reference model: the same transformer with its LoRA disabled."""
    model.disable_adapters()
    try:
        yield model
    finally:
        model.enable_adapters()


class Experts(nn.Module):
    """One module over the trained expert(s), so one DDP wrapper serves the 5B and A14B alike."""

    def __init__(self, experts: dict[str, nn.Module]):
        super().__init__()
        self.names = list(experts)
        self.experts = nn.ModuleDict(experts)

    def forward(self, expert: str, **kw):
        return self.experts[expert](return_dict=False, **kw)[0]


def lora_named_parameters(experts: Experts) -> dict[str, torch.Tensor]:
    return {n: p for n, p in experts.named_parameters() if p.requires_grad}


VARIANT_NAMES = tuple(VARIANTS)
