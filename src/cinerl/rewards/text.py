"""Text-video alignment with CLIP or SigLIP loaded from a local folder (``clip_model_path``).

8 evenly spaced frames (from the analysis frames: shorter side resized to the model's input size,
centre crop, the folder's normalisation) and the prompt are embedded; per frame:

* CLIP: CLIPScore (Hessel et al., EMNLP 2021) = 2.5 * max(cos, 0), clipped to 1;
* SigLIP: the model's own match probability sigmoid(logit_scale * cos + logit_bias)
  (Zhai et al., "Sigmoid loss for language image pre-training", ICCV 2023).

value = mean over frames. The model and tokenizer load once per process.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cinerl.rewards.analysis import ClipAnalysis
from cinerl.rewards.base import ScoreContext, not_applicable, ok, register, unavailable
from cinerl.rewards.features import CLIP_MEAN, CLIP_STD, _preprocessor, square_batch
from cinerl.rewards.models import cached_model, missing, resolve_device

N_FRAMES = 8
CLIPSCORE_W = 2.5


@dataclass
class ClipBundle:
    model: object
    tokenizer: object
    model_type: str   # "clip" or "siglip"
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
    size, mean, std = _preprocessor(path, dm, ds, int(cfg.vision_config.image_size))
    max_text = int(getattr(cfg.text_config, "max_position_embeddings", 77))
    return ClipBundle(model, tok, "clip" if cfg.model_type == "clip" else "siglip", size, mean, std, device, max_text)


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


@register(name="clip_alignment", group="text_alignment")
def clip_alignment(analysis: ClipAnalysis, ctx: ScoreContext):
    """Prompt-frame agreement with CLIP (CLIPScore) or SigLIP (match probability)."""
    if not (ctx.prompt or "").strip():
        return not_applicable("no prompt to align with")
    if not analysis.config.clip_model_path:
        return unavailable(missing("clip_model_path"))
    try:
        bundle = clip_bundle(analysis.config)
    except Exception as exc:
        return unavailable(f"CLIP/SigLIP model failed to load: {type(exc).__name__}: {exc}")
    import torch

    with torch.inference_mode():
        return _clip_alignment(analysis, ctx, bundle)


def _clip_alignment(analysis: ClipAnalysis, ctx: ScoreContext, bundle: ClipBundle):
    import torch

    idx = analysis.sample_indices(N_FRAMES)
    img = image_embeddings(bundle, [analysis.frames[i] for i in idx])
    txt = text_embeddings(bundle, [ctx.prompt])
    cos = (img @ txt.T).squeeze(1)
    if bundle.model_type == "siglip":
        m = bundle.model
        per = torch.sigmoid(cos * m.logit_scale.exp() + m.logit_bias)
        formula = "mean_frames sigmoid(logit_scale * cos + logit_bias) (SigLIP)"
    else:
        per = torch.clamp(CLIPSCORE_W * torch.clamp(cos, min=0), max=1.0)
        formula = "mean_frames min(1, 2.5 * max(cos, 0)) (CLIPScore)"
    per = per.float().cpu().numpy()
    return ok(float(np.mean(per)), model_type=bundle.model_type, model=str(analysis.config.clip_model_path),
              cosine=[round(float(c), 4) for c in cos.float().cpu().numpy()], frames=[int(i) for i in idx],
              formula=formula)
