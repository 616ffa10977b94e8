"""Aesthetic score: the LAION aesthetic predictor head on CLIP image embeddings.

Both come from local paths: ``clip_model_path`` (the CLIP model the head was trained on, e.g.
ViT-L/14 for the LAION heads) and ``aesthetic_head_path`` (a .pth state dict). Two head layouts
are read from the state dict itself: LAION-Aesthetics v1 (one linear layer, keys weight/bias) and
the "improved aesthetic predictor" v2 (linear layers ``layers.N`` with dropout between them and no
activations, so the head is the composition of its linear layers in index order). The head
reads L2-normalised image embeddings and predicts a 1-10 rating; value = clip((rating - 1) / 9).
"""

from __future__ import annotations

import re

import numpy as np

from cinerl.rewards.core.analysis import ClipAnalysis
from cinerl.rewards.core.context import ScoreContext
from cinerl.rewards.core.registry import ok, register, unavailable
from cinerl.models.cache import cached_model, resolve_device

N_FRAMES = 4


class AestheticHead:
    def __init__(self, path, device: str):
        import torch

        state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        layers: list[tuple[int, object, object]] = []
        if set(state) >= {"weight", "bias"} and len(state) == 2:
            layers.append((0, state["weight"], state["bias"]))
        else:
            for k, v in state.items():
                m = re.fullmatch(r"(?:.*\.)?(\d+)\.weight", k)
                if m and v.ndim == 2:
                    b = state.get(k[: -len("weight")] + "bias")
                    layers.append((int(m.group(1)), v, b))
        if not layers:
            raise ValueError(f"{path} has no linear layers (expected keys weight/bias or layers.N.weight)")
        layers.sort(key=lambda x: x[0])
        self.layers = [
            (w.float().to(device), None if b is None else b.float().to(device)) for _, w, b in layers
        ]
        self.in_dim = int(self.layers[0][0].shape[1])

    def __call__(self, x):
        for w, b in self.layers:
            x = x @ w.T + (b if b is not None else 0)
        return x.squeeze(-1)


@register(name="aesthetic", group="visual_quality", requires=("aesthetic_head_path", "clip_model_path"))
def aesthetic(analysis: ClipAnalysis, ctx: ScoreContext):
    """LAION aesthetic head on CLIP embeddings of 4 keyframes; value = clip((rating - 1) / 9)."""
    cfg = analysis.config
    from cinerl.rewards.backbones.clip import clip_bundle, image_embeddings

    device = resolve_device(cfg.device)
    try:
        bundle = clip_bundle(cfg)
        p = cfg.path("aesthetic_head_path")
        head = cached_model("aesthetic-head", str(p), device, lambda: AestheticHead(p, device))
    except Exception as exc:
        return unavailable(f"aesthetic model failed to load: {type(exc).__name__}: {exc}")
    idx = analysis.sample_indices(N_FRAMES)
    emb = image_embeddings(bundle, [analysis.frames[i] for i in idx])
    if emb.shape[1] != head.in_dim:
        return unavailable(
            f"aesthetic head expects {head.in_dim}-D CLIP embeddings, the CLIP model gives {emb.shape[1]}-D"
        )
    import torch

    with torch.inference_mode():
        ratings = head(emb.float()).float().cpu().numpy()
    mean = float(np.mean(ratings))
    return ok(
        min(1.0, max(0.0, (mean - 1.0) / 9.0)),
        rating_mean=mean,
        ratings=[round(float(r), 3) for r in ratings],
        frames=[int(i) for i in idx],
        formula="clip((mean LAION rating - 1) / 9, 0, 1)",
    )
