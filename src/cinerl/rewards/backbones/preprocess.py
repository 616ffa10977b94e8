"""Image preprocessing shared by the vision backbones: a folder's normalisation and the square
centre crop CLIP, SigLIP and DINO were trained on."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
CLIP_MEAN, CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)


def preprocessor_config(path: Path, default_mean, default_std, default_size: int) -> tuple[int, tuple, tuple]:
    """(square input size, mean, std) from the folder's preprocessor_config.json when present."""
    size, mean, std = default_size, default_mean, default_std
    f = path / "preprocessor_config.json"
    if f.is_file():
        cfg = json.loads(f.read_text())
        mean = tuple(cfg.get("image_mean", mean))
        std = tuple(cfg.get("image_std", std))
        crop = cfg.get("crop_size") or cfg.get("size")
        if isinstance(crop, dict):
            crop = crop.get("height") or crop.get("shortest_edge")
        if isinstance(crop, int):
            size = crop
    return int(size), tuple(mean), tuple(std)


def square_batch(frames: list[np.ndarray] | np.ndarray, size: int, mean, std):
    """Resize the shorter side to ``size``, centre-crop a square (CLIP's recipe), normalise.
    Returns a float32 torch tensor (N, 3, size, size)."""
    import torch

    out = np.empty((len(frames), size, size, 3), np.float32)
    for k, f in enumerate(frames):
        h, w = f.shape[:2]
        s = size / min(h, w)
        nh, nw = max(size, round(h * s)), max(size, round(w * s))
        r = cv2.resize(f, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
        y0, x0 = (nh - size) // 2, (nw - size) // 2
        out[k] = r[y0 : y0 + size, x0 : x0 + size]
    out = (out / 255.0 - np.float32(mean)) / np.float32(std)
    return torch.from_numpy(np.ascontiguousarray(out.transpose(0, 3, 1, 2)))
