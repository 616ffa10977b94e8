"""Tiny Wan folders and take-latents pairs for the video trainer's tests (CPU, no hub)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from cinerl.generation.wan.take_latents import TakeLatents, prompt_key
from cinerl.generation.wan.variants import VARIANTS
from tests.generation.wan_tiny import TEXT_DIM, make_transformer

SEQ = 8  # prompt-embedding length (the real encoder pads to 512)


def write_transformers(variant: str, folder: Path, seed: int = 0) -> Path:
    """Only the transformer(s): all a latents-only training run loads."""
    torch.manual_seed(seed)
    make_transformer(variant).save_pretrained(folder / "transformer")
    if VARIANTS[variant].boundary_ratio is not None:
        make_transformer(variant).save_pretrained(folder / "transformer_2")
    return folder


def take(variant: str, seed: int, frames: int = 9, width: int = 64, height: int = 32, cond: bool = False):
    v = VARIANTS[variant]
    g = torch.Generator().manual_seed(seed)
    t, h, w = (frames - 1) // 4 + 1, height // v.vae_spatial, width // v.vae_spatial
    lat = torch.randn(v.latent_channels, t, h, w, generator=g)
    emb = torch.randn(SEQ, TEXT_DIM, generator=torch.Generator().manual_seed(1000 + seed // 2))
    kind, condition = "none", None
    if cond and variant == "ti2v-5b":
        kind, condition = "first_frame", torch.randn(v.latent_channels, 1, h, w, generator=g)
    elif cond or variant == "i2v-a14b":
        kind, condition = "concat", torch.randn(20, t, h, w, generator=g)
    meta = {
        "variant": variant,
        "seed": seed,
        "width": width,
        "height": height,
        "num_frames": frames,
        "prompt": f"prompt {seed // 2}",
        "prompt_key": prompt_key(f"prompt {seed // 2}", v.max_seq_len),
    }
    return TakeLatents(lat, emb, condition, kind, meta)


def write_pairs(folder: Path, variant: str = "ti2v-5b", n: int = 2, **kw) -> Path:
    """n pairs of random take latents and their pairs.jsonl (relative paths)."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        for side, s in (("w", 2 * i), ("l", 2 * i + 1)):
            take(variant, s, **kw).save(folder / f"pair{i}_{side}.latents.safetensors")
        rows.append(
            {
                "prompt": f"prompt {i}",
                "chosen": f"pair{i}_w.latents.safetensors",
                "rejected": f"pair{i}_l.latents.safetensors",
                "chosen_score": 0.8,
                "rejected_score": 0.5,
                "margin": 0.3,
                "variant": variant,
                "source": f"test#{i}",
            }
        )
    path = folder / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path
