"""CLIP or SigLIP from a local folder (`clip_model_path`): loading, image and text embeddings.
Loading only; the alignment component is `components/text.py`."""

from __future__ import annotations

from dataclasses import dataclass

from cinerl.models.cache import cached_model, resolve_device
from cinerl.rewards.backbones.preprocess import CLIP_MEAN, CLIP_STD, preprocessor_config, square_batch


@dataclass
class ClipBundle:
    model: object
    tokenizer: object
    model_type: str  # "clip" or "siglip"
    size: int
    mean: tuple
    std: tuple
    device: str
    max_text: int


def _load(path, device: str) -> ClipBundle:
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    cfg = AutoConfig.from_pretrained(path, local_files_only=True)
    if cfg.model_type not in ("clip", "siglip", "siglip2"):
        raise ValueError(f"{path} holds a {cfg.model_type!r} model, not CLIP or SigLIP")
    model = AutoModel.from_pretrained(path, local_files_only=True).eval().to(device)
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    dm, ds = (CLIP_MEAN, CLIP_STD) if cfg.model_type == "clip" else ((0.5,) * 3, (0.5,) * 3)
    size, mean, std = preprocessor_config(path, dm, ds, int(cfg.vision_config.image_size))
    max_text = int(getattr(cfg.text_config, "max_position_embeddings", 77))
    return ClipBundle(
        model, tok, "clip" if cfg.model_type == "clip" else "siglip", size, mean, std, device, max_text
    )


def clip_bundle(config) -> ClipBundle:
    device = resolve_device(config.device)
    p = config.path("clip_model_path")
    return cached_model("clip", str(p), device, lambda: _load(p, device))


def image_embeddings(bundle: ClipBundle, frames) -> "object":
    """L2-normalised image embeddings (torch, N x D) for uint8 RGB frames."""
    import torch

    x = square_batch(frames, bundle.size, bundle.mean, bundle.std).to(bundle.device)
    with torch.inference_mode():
        e = bundle.model.get_image_features(pixel_values=x)
    e = getattr(e, "pooler_output", e)
    return e / e.norm(dim=-1, keepdim=True)


def text_embeddings(bundle: ClipBundle, texts: list[str]):
    import torch

    pad = "max_length" if bundle.model_type == "siglip" else True
    t = bundle.tokenizer(texts, padding=pad, truncation=True, max_length=bundle.max_text, return_tensors="pt")
    t = {k: v.to(bundle.device) for k, v in t.items() if k in ("input_ids", "attention_mask")}
    if bundle.model_type == "siglip":
        t.pop("attention_mask", None)
    with torch.inference_mode():
        e = bundle.model.get_text_features(**t)
    e = getattr(e, "pooler_output", e)
    return e / e.norm(dim=-1, keepdim=True)
