"""Location consistency: is the clip painted in the location's material palette?

Palette part (the bible's ``Location.palette``, sRGB -> Lab): ~8 evenly spaced frames are
sampled (every 2nd pixel each way); deterministic k-means (k=8) gives the clip's dominant colours
with shares (clusters under 1 % ignored).

* per-colour match  m_p = exp(-min_c deltaE76(p, centroid_c) / 20)     for each palette colour p
* coverage          cov = share of clip pixels within deltaE76 < 20 of some palette colour
* palette score     P = 0.5 * mean_p m_p + 0.5 * min(1, cov / 0.5)

(cov is normalised by 0.5 because characters, sky and props legitimately cover part of the frame:
half the frame on-palette counts as full coverage.)

Reference part (only when ``ctx.location_ref`` is given): correlation (cv2.compareHist,
HISTCMP_CORREL) of the clip's and the reference's 2D a*b* chroma histograms (32x32 bins over
[-128, 128), lightly blurred so neighbouring hues count as similar), clipped to [0, 1] = H.

value = P without a reference; 0.6 * P + 0.4 * H with one (H alone if there is no palette).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from cinerl.rewards.core.analysis import ClipAnalysis
from cinerl.rewards.core.context import ScoreContext
from cinerl.rewards.colour import (
    as_rgb_uint8,
    delta_e76,
    kmeans_colors,
    lab_to_rgb,
    rgb_colors_to_lab,
    rgb_to_lab,
)
from cinerl.rewards.components.scene_illuminant import daylight_lab_pixels
from cinerl.rewards.core.registry import not_applicable, ok, register

K_CLIP = 8
MIN_CLUSTER_SHARE = 0.01
MATCH_SCALE_DE = 20.0
COVER_DE = 20.0
FULL_COVERAGE = 0.5
HIST_BINS = 32
W_PALETTE, W_REF = 0.6, 0.4
REF_MAX_SIDE = 256


def ab_histogram(lab_pixels: np.ndarray) -> np.ndarray:
    """Normalised, lightly blurred 2D a*b* histogram (HIST_BINS x HIST_BINS, float32)."""
    ab = np.ascontiguousarray(lab_pixels.reshape(-1, 1, 3)[:, :, 1:3], dtype=np.float32)
    hist = cv2.calcHist([ab], [0, 1], None, [HIST_BINS, HIST_BINS], [-128, 128, -128, 128])
    hist = cv2.GaussianBlur(hist, (5, 5), 1.0)
    s = float(hist.sum())
    return hist / s if s > 0 else hist


def palette_score(palette_lab: np.ndarray, pixels: np.ndarray) -> tuple[float, dict]:
    centers, shares = kmeans_colors(pixels, K_CLIP, seed=0, attempts=2)
    keep = shares >= MIN_CLUSTER_SHARE
    centers = centers[keep]
    d_cent = delta_e76(palette_lab, centers)  # (P, K)
    min_de = d_cent.min(axis=1)
    per_color = np.exp(-min_de / MATCH_SCALE_DE)
    d_px = delta_e76(pixels, palette_lab)  # (N, P)
    coverage = float((d_px.min(axis=1) < COVER_DE).mean())
    p = 0.5 * float(per_color.mean()) + 0.5 * min(1.0, coverage / FULL_COVERAGE)
    raw = {
        "per_color_match": [round(float(x), 4) for x in per_color],
        "min_delta_e": [round(float(x), 2) for x in min_de],
        "coverage": coverage,
        "clip_colors_rgb": [list(map(int, c)) for c in lab_to_rgb(centers)],
        "clip_color_shares": [round(float(x), 4) for x in shares[keep]],
    }
    return p, raw


@register(name="location_palette", group="location_consistency")
def location_palette(analysis: ClipAnalysis, ctx: ScoreContext):
    """Lab distance between the clip's colours and the location palette (+ reference histogram)."""
    palette = None
    loc_id = None
    if ctx.bible is not None and ctx.scene is not None:
        loc_id = ctx.scene.location_id
        try:
            palette = ctx.bible.location(loc_id).palette
        except StopIteration:
            palette = None
    if not palette and ctx.location_ref is None:
        if ctx.bible is None or ctx.scene is None:
            return not_applicable("no story bible / scene (and no location reference) to compare against")
        return not_applicable(f"location {loc_id!r} is not in the bible and there is no location reference")
    as_lit = _palette_value(analysis.sampled_lab_pixels(8, 2), palette, ctx, loc_id)
    relit = [_palette_value(px, palette, ctx, loc_id) for px in daylight_lab_pixels(analysis, ctx)]
    value, raw = max([as_lit, *relit], key=lambda r: r[0])
    return ok(value, {**raw, "as_lit": round(as_lit[0], 4), "relit": [round(r[0], 4) for r in relit]})


def _palette_value(pixels: np.ndarray, palette, ctx: ScoreContext, loc_id) -> tuple[float, dict]:
    """location_palette's value and details on (N, 3) Lab pixels."""
    raw: dict = {"location_id": loc_id}
    parts: list[tuple[float, float]] = []
    if palette:
        pal_lab = rgb_colors_to_lab([c.rgb for c in palette])
        p, praw = palette_score(pal_lab, pixels)
        raw.update(praw, palette=[c.name for c in palette], palette_score=p)
        parts.append((W_PALETTE, p))
    if ctx.location_ref is not None:
        ref = as_rgb_uint8(ctx.location_ref, "location reference")
        h, w = ref.shape[:2]
        s = min(1.0, REF_MAX_SIDE / max(h, w))
        if s < 1.0:
            ref = cv2.resize(ref, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
        corr = cv2.compareHist(ab_histogram(pixels), ab_histogram(rgb_to_lab(ref)), cv2.HISTCMP_CORREL)
        hsim = min(1.0, max(0.0, float(corr))) if math.isfinite(corr) else 0.0
        raw.update(reference_hist_correlation=float(corr), reference_score=hsim)
        parts.append((W_REF, hsim))
    value = sum(w * v for w, v in parts) / sum(w for w, _ in parts)
    raw["formula"] = (
        "P = 0.5*mean_p exp(-minDE76(p, clip k-means)/20) + 0.5*min(1, coverage@DE20 / 0.5); "
        "value = P, or 0.6*P + 0.4*clip(corr(ab-hist clip, ab-hist ref), 0, 1) with a reference; "
        "the better of the frames as lit and relit to daylight (scene_illuminant.daylight_lab_pixels)"
    )
    return value, raw


# --------------------------------------------------------------------------------------------
# background features against the location reference
# --------------------------------------------------------------------------------------------
# cosine similarity of background descriptors mapped to [0, 1]: value = clip((cos - c0) / (1 - c0))
# with c0 = cosine similarity typical of unrelated scenes for EfficientNet-Lite0 head features
# (calibrated in tests/rewards on textured scenes of different palettes and layouts).
LOCATION_FEATURE_FLOOR = 0.5
_REF_FEATURES: dict[tuple, np.ndarray] = {}


@register(name="location_features", group="location_consistency")
def location_features(analysis: ClipAnalysis, ctx: ScoreContext):
    """Background image features of the clip against the location reference image.

    The clip's frame features (features.py, computed once per clip) are pooled over the map cells
    outside the central half of the frame, where subjects usually stand; the reference (an empty
    location) is pooled whole. value = clip((cos - 0.5) / 0.5, 0, 1) of the mean background
    descriptor against the reference descriptor.
    """
    from cinerl.rewards.colour import array_digest, resize_to
    from cinerl.rewards.core.registry import unavailable
    from cinerl.rewards.backbones.image_features import (
        FeaturesUnavailable,
        border_pool,
        clip_features,
        embed_frames,
    )

    if ctx.location_ref is None:
        return not_applicable("no location reference image")
    try:
        feats = clip_features(analysis)
        ref = as_rgb_uint8(ctx.location_ref, "location reference")
        ref = resize_to(ref, analysis.width, analysis.height)
        key = (array_digest(ref), feats.backbone)
        if key not in _REF_FEATURES:
            _, _, maps = embed_frames(analysis.config, [ref])
            v = maps.mean(axis=(2, 3))
            _REF_FEATURES[key] = (v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-8))[0]
            if len(_REF_FEATURES) > 64:
                _REF_FEATURES.pop(next(iter(_REF_FEATURES)))
        ref_v = _REF_FEATURES[key]
    except FeaturesUnavailable as exc:
        return unavailable(str(exc))
    bg = border_pool(feats.maps).mean(axis=0)
    bg /= max(float(np.linalg.norm(bg)), 1e-8)
    cos = float(bg @ ref_v)
    value = (cos - LOCATION_FEATURE_FLOOR) / (1.0 - LOCATION_FEATURE_FLOOR)
    return ok(
        min(1.0, max(0.0, value)),
        cosine=cos,
        backbone=feats.backbone,
        floor=LOCATION_FEATURE_FLOOR,
        formula="clip((cos(background descriptor, reference descriptor) - 0.5) / 0.5, 0, 1)",
    )
