"""Write a Wan2.2 TI2V-5B diffusers folder with random weights, for GPU benchmarks that load a
model the way a user's run does (`--model-dir`), on a machine that cannot reach a model hub.

The transformer and the VAE are real size (benchmarks/wan_configs.py, wan_speed.VAE_5B). The text
encoder is a UMT5 with the real width (4096, what the transformer's text projection reads) but 2
layers instead of 24, and the tokenizer is a word-level one built here: the text encoder runs once
per prompt, so its size does not change the per-take figures these benchmarks report, and 11 GB
fewer to write and load keep the run short. The weights mean nothing; the frames are noise.

    python benchmarks/wan_random_dir.py --out /tmp/wan5b-random [--tiny]

`--tiny` writes a few-megabyte model of the same layout, so the code path can be tried on a CPU.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from wan_configs import TRANSFORMER_5B  # noqa: E402

WORDS = (
    "a the of and in on with to at from is her his their red blue green gold grey white black "
    "coat scarf dress woman man boy girl old young city street sea forest room night day light "
    "soft daylight golden hour neon candlelight wide medium close-up shot static pan tilt dolly "
    "zoom handheld camera slow fast gentle motion cinematic film still blurry low quality"
).split()

TINY_TRANSFORMER = dict(
    TRANSFORMER_5B, num_attention_heads=2, attention_head_dim=12, text_dim=32, freq_dim=32, ffn_dim=32,
    num_layers=2, rope_max_seq_len=32,
)  # fmt: skip
TINY_VAE = dict(
    base_dim=3, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True],
    z_dim=48, in_channels=12, out_channels=12, is_residual=True, patch_size=2,
    scale_factor_spatial=16, scale_factor_temporal=4, latents_mean=[0.0] * 48, latents_std=[1.0] * 48,
)  # fmt: skip


def tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "</s>", "<unk>"]
    vocab = {w: i for i, w in enumerate(specials + sorted(set(WORDS)))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )


def write(out: Path, tiny: bool, seed: int = 0) -> dict:
    from diffusers import AutoencoderKLWan, WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    torch.manual_seed(seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tok = tokenizer()
    width = 32 if tiny else TRANSFORMER_5B["text_dim"]
    text = UMT5Config(
        vocab_size=len(tok), d_model=width, d_kv=8 if tiny else 64, d_ff=64 if tiny else 10240,
        num_layers=2, num_heads=4 if tiny else 64, relative_attention_num_buckets=32,
        feed_forward_proj="gated-gelu",
    )  # fmt: skip
    from wan_speed import VAE_5B

    vae_cfg = TINY_VAE if tiny else VAE_5B
    t0 = time.perf_counter()
    with torch.device(device):
        parts = {
            "text_encoder": UMT5EncoderModel(text).to(torch.bfloat16 if not tiny else torch.float32),
            "vae": AutoencoderKLWan(**vae_cfg),
            "transformer": WanTransformer3DModel(**(TINY_TRANSFORMER if tiny else TRANSFORMER_5B)),
        }
    if not tiny:
        parts["transformer"] = parts["transformer"].to(torch.bfloat16)
    with torch.no_grad():  # random weights: scaled so activations stay finite in bf16 (as wan_speed)
        for p in parts["transformer"].parameters():
            if p.dim() >= 2:
                p.mul_(0.5)
    tok.save_pretrained(out / "tokenizer")
    for name, module in parts.items():
        module.save_pretrained(out / name)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    return {"folder": str(out), "bytes": size, "seconds": time.perf_counter() - t0}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="the folder to write (must not exist)")
    ap.add_argument("--tiny", action="store_true", help="a few-megabyte model of the same layout")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.out.exists():
        print(f"{args.out} exists: give a new folder")
        return 2
    info = write(args.out, args.tiny, args.seed)
    print(f"wrote {info['folder']}: {info['bytes'] / 1e9:.2f} GB in {info['seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
