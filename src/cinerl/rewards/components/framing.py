"""Framing: rule of thirds, horizon tilt and subject inside the safe zone, on keyframes.

Subject: the largest detected face (faces.py, shared with identity lock) when there is one, else
the saliency centroid of the spectral-residual saliency map (Hou & Zhang, "Saliency detection: a
spectral residual approach", CVPR 2007: log-amplitude spectrum of a 64-px-wide image minus its
3x3 local mean, back-transformed with the original phase, squared, Gaussian-blurred), with the
subject box = bounding box of the top 10 % salient pixels.

* thirds: exp(-D^2 / (2 * 0.17^2)), D = distance from the subject centre to the nearest of the four
  thirds intersections in frame-normalised coordinates (Liu, Chen, Wolf & Cohen-Or, "Optimizing
  photo composition", Eurographics 2010, sigma = 0.17);
* horizon: dominant tilt angle of near-horizontal Hough segments (within 20 degrees of level,
  weighted by length, on Canny edges); score exp(-(angle / 5 deg)^2); not counted when there are
  no long near-horizontal segments;
* safe zone: share of the subject box inside the central 90 % of width and height (5 % margins,
  the common title-safe convention).

value = mean over keyframes of the mean of the parts that apply.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from cinerl.rewards.core.analysis import ClipAnalysis
from cinerl.rewards.core.context import ScoreContext
from cinerl.rewards.core.registry import not_applicable, ok, register

THIRDS_SIGMA = 0.17
TILT_SCALE_DEG = 5.0
MAX_TILT_DEG = 20.0
SAFE_MARGIN = 0.05
N_KEYFRAMES = 6


def spectral_residual_saliency(gray: np.ndarray, width: int = 64) -> np.ndarray:
    """Saliency map (same size as ``gray``, float32 in [0, 1]) by the spectral residual method."""
    h, w = gray.shape
    sh = max(8, round(h * width / w))
    small = cv2.resize(gray, (width, sh), interpolation=cv2.INTER_AREA).astype(np.float32)
    f = np.fft.fft2(small)
    log_amp = np.log(np.abs(f) + 1e-8)
    phase = np.angle(f)
    residual = log_amp - cv2.blur(log_amp.astype(np.float32), (3, 3))
    sal = np.abs(np.fft.ifft2(np.exp(residual + 1j * phase))) ** 2
    sal = cv2.GaussianBlur(sal.astype(np.float32), (0, 0), 2.5)
    sal = cv2.resize(sal, (w, h), interpolation=cv2.INTER_LINEAR)
    lo, hi = float(sal.min()), float(sal.max())
    return (sal - lo) / (hi - lo) if hi > lo else np.zeros_like(sal)


def saliency_subject(gray: np.ndarray) -> tuple[tuple[float, float], tuple[float, float, float, float]]:
    """(centroid (x, y), box (x0, y0, x1, y1)) in pixels from the top 10 % salient pixels."""
    sal = spectral_residual_saliency(gray)
    thr = np.quantile(sal, 0.9)
    ys, xs = np.nonzero(sal >= thr)
    wts = sal[ys, xs]
    cx, cy = float((xs * wts).sum() / wts.sum()), float((ys * wts).sum() / wts.sum())
    return (cx, cy), (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))


def thirds_score(cx: float, cy: float) -> float:
    d = min(math.hypot(cx - px, cy - py) for px in (1 / 3, 2 / 3) for py in (1 / 3, 2 / 3))
    return math.exp(-d * d / (2 * THIRDS_SIGMA**2))


def horizon_tilt(gray: np.ndarray) -> float | None:
    """Length-weighted median angle (degrees) of near-horizontal Hough segments, or None."""
    h, w = gray.shape
    edges = cv2.Canny(cv2.GaussianBlur(gray, (5, 5), 0), 50, 150)
    segs = cv2.HoughLinesP(
        edges, 1, np.pi / 360, threshold=max(20, w // 8), minLineLength=w // 4, maxLineGap=max(2, w // 64)
    )
    if segs is None:
        return None
    angles, lengths = [], []
    for x0, y0, x1, y1 in segs.reshape(-1, 4):
        a = math.degrees(math.atan2(y1 - y0, x1 - x0))
        a = (a + 90) % 180 - 90
        if abs(a) <= MAX_TILT_DEG:
            angles.append(a)
            lengths.append(math.hypot(x1 - x0, y1 - y0))
    if not angles:
        return None
    order = np.argsort(angles)
    cum = np.cumsum(np.asarray(lengths)[order])
    return float(np.asarray(angles)[order][np.searchsorted(cum, cum[-1] / 2)])


def safe_share(box: tuple[float, float, float, float], w: int, h: int) -> float:
    x0, y0, x1, y1 = box
    area = max(1e-6, (x1 - x0) * (y1 - y0))
    sx0, sy0, sx1, sy1 = SAFE_MARGIN * w, SAFE_MARGIN * h, (1 - SAFE_MARGIN) * w, (1 - SAFE_MARGIN) * h
    ix = max(0.0, min(x1, sx1) - max(x0, sx0))
    iy = max(0.0, min(y1, sy1) - max(y0, sy0))
    return float(ix * iy / area)


@register(name="framing", group="visual_quality")
def framing(analysis: ClipAnalysis, ctx: ScoreContext):
    """Rule of thirds (face or saliency centroid), horizon tilt (Hough) and safe-zone share."""
    if min(analysis.height, analysis.width) < 16:
        return not_applicable("frames too small to judge framing")
    idx, frames = analysis.detail_frames(N_KEYFRAMES)
    faces = None
    try:
        from cinerl.rewards.backbones.faces import clip_faces

        fidx, faces, _ = clip_faces(analysis)
        if list(fidx) != list(idx):
            faces = None
    except Exception:  # no face models: saliency alone
        faces = None
    per, details = [], []
    for k, f in enumerate(frames):
        h, w = f.shape[:2]
        gray = cv2.cvtColor(f, cv2.COLOR_RGB2GRAY)
        if faces is not None and faces[k]:
            x0, y0, x1, y1 = faces[k][0].box
            box, c, src = (float(x0), float(y0), float(x1), float(y1)), ((x0 + x1) / 2, (y0 + y1) / 2), "face"
        else:
            c, box = saliency_subject(gray)
            src = "saliency"
        parts = {"thirds": thirds_score(c[0] / w, c[1] / h), "safe_zone": safe_share(box, w, h)}
        tilt = horizon_tilt(gray)
        if tilt is not None:
            parts["horizon"] = math.exp(-((tilt / TILT_SCALE_DEG) ** 2))
        per.append(float(np.mean(list(parts.values()))))
        details.append(
            {
                "frame": int(idx[k]),
                "subject": src,
                "centre": [round(c[0] / w, 3), round(c[1] / h, 3)],
                "tilt_deg": None if tilt is None else round(tilt, 2),
                **{p: round(v, 4) for p, v in parts.items()},
            }
        )
    return ok(
        float(np.mean(per)),
        keyframes=details,
        formula="mean over keyframes of mean(thirds exp(-D^2/(2*0.17^2)), horizon exp(-(tilt/5deg)^2), "
        "safe-zone share)",
    )
