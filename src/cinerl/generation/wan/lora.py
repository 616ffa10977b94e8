"""A CineRL video LoRA folder, and loading it into the Wan backend (`cinerl make --lora DIR[:scale]`).

The folder is diffusers' LoRA format, written by `WanPipeline.save_lora_weights`:
- `pytorch_lora_weights.safetensors`: the LoRA of `transformer` (the only expert of the 5B, the
  high-noise expert of A14B), keys `transformer.blocks.N.attn1.to_q.lora_A.weight`..., with the
  peft LoraConfig in the file's metadata so rank and alpha load back as trained;
- `pytorch_lora_weights_transformer_2.safetensors`: A14B's low-noise expert, loaded with
  diffusers' `load_into_transformer_2=True`;
- `cinerl_lora.json`: the variant it was trained for, the base transformer's shape, which experts
  it holds and how it was trained; `make` refuses a LoRA of another variant with that file's word.

Several LoRAs at once (`--lora A;B:0.8`, and `make --cast` with a character LoRA per cast member
beside a style or DPO `--lora`) load as diffusers' multiple adapters: each with its own adapter
name (`cinerl`, `cinerl_2`, ...), then `set_adapters(names, weights)` on each transformer, so
their scaled deltas add (diffusers' "Load LoRAs for inference" guide, combining adapters).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from cinerl.core.errors import UserError

WEIGHTS = "pytorch_lora_weights.safetensors"
WEIGHTS_2 = "pytorch_lora_weights_transformer_2.safetensors"
MANIFEST = "cinerl_lora.json"
EXPERT_FILES = {"transformer": WEIGHTS, "transformer_2": WEIGHTS_2}
ADAPTER = "cinerl"
# what must match between the LoRA's base transformer and the one it is loaded into
SHAPE_KEYS = ("in_channels", "out_channels", "num_attention_heads", "attention_head_dim", "num_layers")


@dataclass(frozen=True)
class LoraSpec:
    path: Path
    scale: float = 1.0

    def describe(self) -> dict:
        return {"path": str(self.path), "scale": self.scale}


LORA_SEP = ";"


def adapter_name(k: int) -> str:
    """The adapter name of the k-th LoRA of a run (the first keeps the one-LoRA name)."""
    return ADAPTER if k == 0 else f"{ADAPTER}_{k + 1}"


def parse_loras(text: str) -> list[LoraSpec]:
    """`DIR[:scale][;DIR[:scale]...]` -> specs; the same folder twice is a UserError."""
    specs = [parse_lora(part) for part in str(text).split(LORA_SEP) if part.strip()]
    if not specs:
        raise UserError("--lora needs a folder: --lora LORA_DIR[:scale]")
    seen = set()
    for sp in specs:
        key = sp.path.resolve()
        if key in seen:
            raise UserError(f"--lora {sp.path} is given twice")
        seen.add(key)
    return specs


def join_loras(specs: list[LoraSpec]) -> str:
    return LORA_SEP.join(f"{sp.path}:{sp.scale:g}" for sp in specs)


def parse_lora(text: str) -> LoraSpec:
    """`DIR` or `DIR:scale` (a Windows drive letter is not a scale: only a trailing number is)."""
    m = re.fullmatch(r"(.+?):([-+]?\d*\.?\d+(?:[eE][-+]?\d+)?)", text.strip())
    path, scale = (m.group(1), float(m.group(2))) if m else (text.strip(), 1.0)
    if not path:
        raise UserError("--lora needs a folder: --lora LORA_DIR[:scale]")
    return LoraSpec(Path(path).expanduser(), scale)


def base_shape(transformer) -> dict:
    return {k: transformer.config.get(k) for k in SHAPE_KEYS}


def read_manifest(folder: Path) -> dict:
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"--lora {folder}: no such folder")
    path = folder / MANIFEST
    if not path.is_file():
        raise UserError(
            f"--lora {folder} is not a CineRL video LoRA (no {MANIFEST}); "
            "make one with `cinerl train video-dpo`"
        )
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"--lora {path} is not valid JSON: {e}") from None


def check_variant(manifest: dict, variant: str, folder: Path) -> None:
    theirs = manifest.get("variant")
    if theirs != variant:
        raise UserError(
            f"--lora {folder} was trained for Wan2.2 {theirs}; this run uses {variant} "
            f"(pass --variant {theirs} or train a LoRA for {variant})"
        )


def preflight_lora(text: str, variant: str) -> list[LoraSpec]:
    """Before a run writes anything: every folder is a LoRA of this variant."""
    specs = parse_loras(text)
    for spec in specs:
        check_variant(read_manifest(spec.path), variant, spec.path)
    return specs


def check_compatible(manifest: dict, variant: str, transformer, folder: Path) -> None:
    """One clear error when the LoRA was trained for another variant or base shape."""
    check_variant(manifest, variant, folder)
    want, have = manifest.get("base", {}), base_shape(transformer)
    diff = [k for k in SHAPE_KEYS if k in want and want[k] != have[k]]
    if diff:
        raise UserError(
            f"--lora {folder} was trained on a {variant} transformer of another shape "
            f"({', '.join(f'{k} {want[k]} != {have[k]}' for k in diff)})"
        )


def load_loras(pipe, comp, specs: list[LoraSpec], variant: str) -> dict:
    """Load several LoRAs as named adapters and activate them all, each at its scale; returns the
    first's report entry (the one-LoRA shape) with `adapters`, every LoRA's entry."""
    infos = [_load_one(pipe, comp, sp, variant, adapter_name(k)) for k, sp in enumerate(specs)]
    for name in ("transformer", "transformer_2"):
        on = [i for i in infos if name in i["experts"]]
        if on:
            getattr(comp, name).set_adapters([i["adapter"] for i in on], weights=[i["scale"] for i in on])
    return {**infos[0], "adapters": infos}


def load_lora(pipe, comp, spec: LoraSpec, variant: str) -> dict:
    """Load the LoRA into the pipeline's transformer(s) (both experts where the folder has
    both) at `spec.scale`; returns what the report says about it. The t2v and i2v pipelines
    share their module objects, so loading through one pipeline serves both."""
    info = _load_one(pipe, comp, spec, variant, ADAPTER)
    for name in info["experts"]:
        getattr(comp, name).set_adapters([ADAPTER], weights=[spec.scale])
    return info


def _load_one(pipe, comp, spec: LoraSpec, variant: str, adapter: str) -> dict:
    manifest = read_manifest(spec.path)
    check_compatible(manifest, variant, comp.transformer, spec.path)
    loaded = []
    experts = manifest.get("experts", ["transformer"])
    for name in experts:
        if not (spec.path / EXPERT_FILES[name]).is_file():
            raise UserError(f"--lora {spec.path} lists {name} but has no {EXPERT_FILES[name]}")
    if "transformer" in experts:
        pipe.load_lora_weights(str(spec.path), weight_name=WEIGHTS, adapter_name=adapter)
        loaded.append("transformer")
    if "transformer_2" in experts:
        if comp.transformer_2 is None:
            raise UserError(f"--lora {spec.path} holds a low-noise expert but {variant} has one expert")
        pipe.load_lora_weights(
            str(spec.path), weight_name=WEIGHTS_2, adapter_name=adapter, load_into_transformer_2=True
        )
        loaded.append("transformer_2")
    return {
        "adapter": adapter,
        **spec.describe(),
        "experts": loaded,
        "variant": manifest.get("variant"),
        "trainer": manifest.get("trainer"),
        "steps": manifest.get("steps"),
    }
