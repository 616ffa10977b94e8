"""Colour and image helpers the reward components share: RGB/Lab, delta E, k-means palettes,
resizing and the analysis size."""

from __future__ import annotations

import hashlib
from typing import Any

import cv2
import numpy as np


# --------------------------------------------------------------------------------------------
# image / colour helpers shared by components
# --------------------------------------------------------------------------------------------


def as_rgb_uint8(img: Any, what: str = "image") -> np.ndarray:
    """Validate an image as uint8 (H, W, 3) RGB; grey (H, W) is stacked, RGBA drops alpha."""
    a = np.asarray(img)
    if a.dtype != np.uint8:
        raise ValueError(f"{what} must be uint8, got {a.dtype}")
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4) or a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"{what} must be (H, W, 3) RGB, got shape {a.shape}")
    return np.ascontiguousarray(a[:, :, :3])


def rgb_to_lab(img: np.ndarray) -> np.ndarray:
    """uint8 RGB (..., 3) -> float32 CIE Lab (L 0..100, a/b about -128..127), D65 via OpenCV."""
    a = np.asarray(img)
    shape = a.shape
    flat = a.reshape(-1, 1, 3).astype(np.float32) * (1.0 / 255.0)
    return cv2.cvtColor(flat, cv2.COLOR_RGB2Lab).reshape(shape)


def rgb_colors_to_lab(colors: Any) -> np.ndarray:
    """A list of sRGB 0-255 triples -> (N, 3) float32 Lab."""
    arr = np.asarray(colors, dtype=np.uint8).reshape(-1, 3)
    return rgb_to_lab(arr)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """(..., 3) float Lab -> uint8 sRGB, for reporting colours in raw output."""
    a = np.asarray(lab, dtype=np.float32)
    rgb = cv2.cvtColor(a.reshape(-1, 1, 3), cv2.COLOR_Lab2RGB).reshape(a.shape)
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def delta_e76(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """CIE76 colour difference: pairwise Euclidean distance in Lab, (N, 3) x (M, 3) -> (N, M)."""
    a = np.asarray(a, dtype=np.float32).reshape(-1, 3)
    b = np.asarray(b, dtype=np.float32).reshape(-1, 3)
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return np.sqrt(np.maximum(d2, 0.0))


def kmeans_colors(
    pixels: np.ndarray, k: int, seed: int = 0, attempts: int = 3, max_pixels: int = 20000
) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic colour k-means (cv2.kmeans, k-means++ init, fixed RNG seed).

    pixels: (N, 3) float Lab. Returns (centres (k', 3) float32, shares (k',) summing to 1) sorted
    by share, largest first; k' <= k (fewer when there are fewer distinct pixels than k).
    """
    px = np.ascontiguousarray(np.asarray(pixels, dtype=np.float32).reshape(-1, 3))
    if px.shape[0] == 0:
        raise ValueError("no pixels to cluster")
    if px.shape[0] > max_pixels:  # deterministic even subsample
        idx = np.linspace(0, px.shape[0] - 1, max_pixels).astype(np.int64)
        px = np.ascontiguousarray(px[idx])
    k = int(max(1, min(k, px.shape[0])))
    cv2.setRNGSeed(int(seed))
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 25, 0.2)
    _, labels, centers = cv2.kmeans(px, k, None, criteria, attempts, cv2.KMEANS_PP_CENTERS)
    counts = np.bincount(labels.ravel(), minlength=k).astype(np.float64)
    keep = counts > 0
    centers, counts = centers[keep], counts[keep]
    order = np.argsort(-counts, kind="stable")
    return centers[order].astype(np.float32), (counts[order] / counts.sum()).astype(np.float64)


def array_digest(a: np.ndarray) -> str:
    """A content key for caching per-reference work (shape + dtype + bytes)."""
    a = np.ascontiguousarray(a)
    h = hashlib.blake2b(digest_size=16)
    h.update(repr((a.shape, str(a.dtype))).encode())
    if a.size:
        h.update(a.data)
    return h.hexdigest()


def resize_to(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize an image to exactly (height, width), INTER_AREA when shrinking."""
    h, w = img.shape[:2]
    if (w, h) == (width, height):
        return img
    interp = cv2.INTER_AREA if (width <= w and height <= h) else cv2.INTER_LINEAR
    return cv2.resize(img, (int(width), int(height)), interpolation=interp)


def analysis_size(height: int, width: int, max_side: int) -> tuple[int, int]:
    """(height, width) with the longest side at most max_side (never upscales)."""
    s = min(1.0, float(max_side) / float(max(height, width)))
    return max(1, int(round(height * s))), max(1, int(round(width * s)))
