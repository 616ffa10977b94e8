"""Tiny random Wan2.2 models written as diffusers-format folders, for CPU tests. Nothing comes
from a hub: the tokenizer is a word-level one built here, the text encoder a 2-layer UMT5."""

from __future__ import annotations

from pathlib import Path

import torch

from cinerl.generation.wan.variants import VARIANTS

WORDS = (
    "a the of and in on with to at from is her his their red blue green gold grey white "
    "black orange yellow brown coat scarf dress hat jacket woman man keeper son boat storm "
    "harbour town lighthouse festival lantern wide medium close-up shot static pan tilt dolly "
    "zoom handheld camera slow fast light daylight golden hour night day soft warm neon "
    "cinematic film still 35mm lens shallow depth field blurry low quality flicker jitter "
    "morphing colour shift motion gentle dynamic minimal sail sails walks runs sea coast "
    "old stormy drowning save retired estranged"
).split()
TEXT_DIM = 32


def make_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "</s>", "<unk>"]
    vocab = {w: i for i, w in enumerate(specials + sorted(set(WORDS)))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )


def make_text_encoder(vocab_size: int):
    from transformers import UMT5Config, UMT5EncoderModel

    cfg = UMT5Config(
        vocab_size=vocab_size,
        d_model=TEXT_DIM,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        feed_forward_proj="gated-gelu",
    )
    return UMT5EncoderModel(cfg).eval()


def make_vae(variant: str):
    from diffusers import AutoencoderKLWan

    common = dict(
        base_dim=3, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True]
    )
    if variant == "ti2v-5b":
        return AutoencoderKLWan(
            z_dim=48,
            in_channels=12,
            out_channels=12,
            is_residual=True,
            patch_size=2,
            scale_factor_spatial=16,
            scale_factor_temporal=4,
            latents_mean=[0.0] * 48,
            latents_std=[1.0] * 48,
            **common,
        ).eval()
    return AutoencoderKLWan(z_dim=16, **common).eval()


def make_transformer(variant: str):
    from diffusers import WanTransformer3DModel

    v = VARIANTS[variant]
    return WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=v.transformer_in_channels,
        out_channels=v.latent_channels,
        text_dim=TEXT_DIM,
        freq_dim=32,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
    ).eval()


def tiny_components(variant: str, seed: int = 0) -> dict:
    torch.manual_seed(seed)
    tok = make_tokenizer()
    comps = {
        "tokenizer": tok,
        "text_encoder": make_text_encoder(len(tok)),
        "vae": make_vae(variant),
        "transformer": make_transformer(variant),
    }
    if VARIANTS[variant].boundary_ratio is not None:
        comps["transformer_2"] = make_transformer(variant)
    return comps


def write_tiny_model(variant: str, folder: Path, seed: int = 0) -> Path:
    """A diffusers-format folder, written by the components' own save_pretrained."""
    for name, module in tiny_components(variant, seed).items():
        module.save_pretrained(folder / name)
    return folder
