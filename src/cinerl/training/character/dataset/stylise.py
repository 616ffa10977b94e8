"""Painterly and graphic looks made with OpenCV, one function per style.

Black-and-white styles return images whose three channels are equal; colour styles keep the
input's hues. Built on OpenCV's non-photorealistic rendering (pencilSketch, stylization,
edgePreservingFilter: Gastal and Oliveira, "Domain Transform for Edge-Aware Image and Video
Processing", SIGGRAPH 2011), adaptive thresholds, Canny edges, k-means colour quantisation and
halftone dot screens.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import cv2
import numpy as np

BW_STYLES = ("pen_ink", "graphite", "charcoal", "woodcut", "mono_vector", "manga")
COLOUR_STYLES = ("comic_book", "flat_vector", "watercolour", "gouache")
PHOTO = "photo"

# Matched in order against the lower-cased prompt; the first hit names the style.
_STYLE_WORDS: tuple[tuple[str, str], ...] = (
    (r"pen and ink|pen & ink|ink line drawing", "pen_ink"),
    (r"graphite|pencil sketch", "graphite"),
    (r"charcoal", "charcoal"),
    (r"woodcut|linocut", "woodcut"),
    (r"monochrome vector", "mono_vector"),
    (r"manga|screentone", "manga"),
    (r"comic book|comic-book", "comic_book"),
    (r"flat vector", "flat_vector"),
    (r"watercolou?r", "watercolour"),
    (r"gouache", "gouache"),
)


def style_for_prompt(prompt: str) -> str:
    text = prompt.lower()
    for pattern, style in _STYLE_WORDS:
        if re.search(pattern, text):
            return style
    return PHOTO


def _gray(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def _bw(gray: np.ndarray) -> np.ndarray:
    return np.repeat(np.clip(gray, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def _paper(shape: tuple[int, int], rng: np.random.Generator, amount: float, blur: float) -> np.ndarray:
    """Multiplicative paper grain around 1.0."""
    noise = rng.normal(0.0, 1.0, shape).astype(np.float32)
    if blur > 0:
        noise = cv2.GaussianBlur(noise, (0, 0), blur)
        noise /= noise.std() + 1e-6
    return 1.0 + amount * noise


def _ink_edges(gray: np.ndarray, block: int, c: int) -> np.ndarray:
    """Dark line mask (True = ink) from an adaptive threshold on a smoothed image."""
    smooth = cv2.bilateralFilter(gray, 7, 50, 7)
    block = max(3, block | 1)
    lines = cv2.adaptiveThreshold(smooth, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, block, c)
    return lines == 0


def _hatch(shape: tuple[int, int], spacing: int, angle_deg: float, width: int = 1) -> np.ndarray:
    """Parallel line mask at an angle."""
    h, w = shape
    ys, xs = np.mgrid[0:h, 0:w]
    a = np.deg2rad(angle_deg)
    d = xs * np.cos(a) + ys * np.sin(a)
    return np.mod(d, spacing) < width


def _halftone(gray: np.ndarray, cell: int, angle_deg: float = 45.0) -> np.ndarray:
    """Ink mask of a dot screen: dot area grows with darkness (True = ink)."""
    h, w = gray.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    a = np.deg2rad(angle_deg)
    u = xs * np.cos(a) + ys * np.sin(a)
    v = -xs * np.sin(a) + ys * np.cos(a)
    du = np.mod(u, cell) - cell / 2
    dv = np.mod(v, cell) - cell / 2
    dist = np.sqrt(du * du + dv * dv)
    darkness = 1.0 - cv2.blur(gray, (cell, cell)).astype(np.float32) / 255.0
    radius = np.sqrt(darkness / np.pi) * cell * 1.05  # dot area proportional to darkness
    return dist < radius


def pen_ink(rgb, rng):
    gray = _gray(rgb)
    h, w = gray.shape
    ink = _ink_edges(gray, block=max(7, w // 60), c=7)
    tone = cv2.GaussianBlur(gray, (0, 0), 2)
    sp = max(4, w // 110)
    ink |= (tone < 110) & _hatch((h, w), sp, 45)
    ink |= (tone < 70) & _hatch((h, w), sp, -45)
    ink |= (tone < 150) & (rng.random((h, w)) < 0.04 * (1 - tone / 255.0))  # stipple
    return _bw(np.where(ink, 15, 250))


def graphite(rgb, rng):
    gray, _ = cv2.pencilSketch(rgb, sigma_s=50, sigma_r=0.08, shade_factor=0.06)
    tone = cv2.GaussianBlur(_gray(rgb), (0, 0), 3).astype(np.float32)
    shaded = gray.astype(np.float32) * (0.65 + 0.35 * tone / 255.0)
    return _bw(shaded * _paper(gray.shape, rng, 0.05, 0.6))


def charcoal(rgb, rng):
    gray = _gray(rgb).astype(np.float32)
    # colour dodge of the image by its blurred negative gives the strokes; then burn the darks
    blur = cv2.GaussianBlur(255 - gray, (0, 0), max(2.0, rgb.shape[1] / 200))
    dodge = np.clip(gray * 255.0 / (255.0 - blur + 1.0), 0, 255)
    dark = np.clip(gray / 255.0, 0, 1) ** 1.8
    out = dodge * (0.25 + 0.75 * dark) * _paper(gray.shape, rng, 0.12, 1.2)
    return _bw(cv2.GaussianBlur(out, (0, 0), 0.8))


def woodcut(rgb, rng):
    gray = cv2.GaussianBlur(_gray(rgb), (0, 0), 1.5)
    h, w = gray.shape
    _, ink = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    ink = ink > 0
    lo, hi = np.percentile(gray, 30), np.percentile(gray, 75)
    mid = (gray >= lo) & (gray < hi)
    wobble = (np.sin(np.arange(w) / max(6.0, w / 40)) * 2).astype(np.float32)
    rows = (np.arange(h)[:, None] + wobble[None, :]).astype(int)
    gouge = np.mod(rows, max(3, h // 70)) < 1 + (gray < (lo + hi) / 2)
    ink = (ink & ~(gray > hi)) | (mid & gouge)
    ink |= cv2.Canny(gray, 60, 140) > 0
    return _bw(np.where(ink, 10, 240))


def mono_vector(rgb, rng):
    smooth = _gray(cv2.edgePreservingFilter(rgb, flags=cv2.RECURS_FILTER, sigma_s=60, sigma_r=0.4))
    levels = np.array([30, 100, 170, 235], dtype=np.uint8)
    edges = np.percentile(smooth, [25, 50, 75])
    out = levels[np.digitize(smooth, edges)]
    return _bw(cv2.medianBlur(out, 5))


def manga(rgb, rng):
    gray = _gray(rgb)
    h, w = gray.shape
    ink = _ink_edges(gray, block=max(9, w // 50), c=9)
    tone = cv2.GaussianBlur(gray, (0, 0), 1.5)
    screen = _halftone(tone, cell=max(4, w // 120))
    mids = (tone > 60) & (tone < 200)
    ink |= screen & mids
    ink |= tone <= 60
    return _bw(np.where(ink, 12, 248))


def _kmeans_quantise(rgb: np.ndarray, k: int, seed: int) -> np.ndarray:
    data = rgb.reshape(-1, 3).astype(np.float32)
    cv2.setRNGSeed(seed)
    crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 10, 1.0)
    _, labels, centres = cv2.kmeans(data, k, None, crit, 1, cv2.KMEANS_PP_CENTERS)
    return centres.astype(np.uint8)[labels.ravel()].reshape(rgb.shape)


def _saturate(rgb: np.ndarray, gain: float) -> np.ndarray:
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 1] = np.clip(hsv[..., 1] * gain, 0, 255)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)


def comic_book(rgb, rng):
    flat = cv2.stylization(rgb, sigma_s=40, sigma_r=0.35)
    flat = _saturate((flat // 48) * 48 + 24, 1.5)
    gray = _gray(rgb)
    lines = _ink_edges(gray, block=max(9, rgb.shape[1] // 50), c=10)
    shadow = _halftone(gray, cell=max(4, rgb.shape[1] // 100)) & (gray < 90)
    out = flat.copy()
    out[shadow] = (out[shadow] * 0.35).astype(np.uint8)
    out[lines] = 15
    return out


def flat_vector(rgb, rng):
    smooth = cv2.edgePreservingFilter(rgb, flags=cv2.RECURS_FILTER, sigma_s=80, sigma_r=0.5)
    small = cv2.resize(smooth, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    quant = _kmeans_quantise(small, 6, int(rng.integers(1 << 30)))
    quant = cv2.resize(quant, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_NEAREST)
    return _saturate(cv2.medianBlur(quant, 5), 1.3)


def watercolour(rgb, rng):
    wash = cv2.stylization(rgb, sigma_s=60, sigma_r=0.45).astype(np.float32)
    wash = 255.0 - (255.0 - wash) * 0.75  # thinned pigment
    bleed = cv2.GaussianBlur(wash, (0, 0), max(1.5, rgb.shape[1] / 300))
    edges = cv2.Canny(_gray(rgb), 50, 120).astype(np.float32)[..., None] / 255.0
    edges = cv2.GaussianBlur(edges, (0, 0), 1.2)[..., None]
    out = bleed * (1 - 0.25 * edges) * _paper(rgb.shape[:2], rng, 0.04, 3.0)[..., None]
    return _saturate(np.clip(out, 0, 255).astype(np.uint8), 1.1)


def gouache(rgb, rng):
    base = cv2.edgePreservingFilter(rgb, flags=cv2.NORMCONV_FILTER, sigma_s=40, sigma_r=0.35)
    base = _saturate((base // 32) * 32 + 16, 1.45).astype(np.float32)
    h, w = rgb.shape[:2]
    strokes = rng.normal(0, 1, (h, w)).astype(np.float32)
    k = max(5, w // 80) | 1
    kernel = np.zeros((k, k), np.float32)
    kernel[k // 2, :] = 1.0 / k  # horizontal brush drag
    strokes = cv2.filter2D(strokes, -1, kernel)
    strokes /= strokes.std() + 1e-6
    return np.clip(base * (1 + 0.05 * strokes[..., None]), 0, 255).astype(np.uint8)


STYLES: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "pen_ink": pen_ink,
    "graphite": graphite,
    "charcoal": charcoal,
    "woodcut": woodcut,
    "mono_vector": mono_vector,
    "manga": manga,
    "comic_book": comic_book,
    "flat_vector": flat_vector,
    "watercolour": watercolour,
    "gouache": gouache,
}


def stylise(rgb: np.ndarray, style: str, seed: int) -> np.ndarray:
    """Apply one named style (PHOTO returns the image unchanged)."""
    if style == PHOTO:
        return rgb
    return STYLES[style](np.ascontiguousarray(rgb), np.random.default_rng(seed))
