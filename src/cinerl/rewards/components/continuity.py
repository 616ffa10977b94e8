"""Seam continuity: does this clip continue the previous clip, and are its generation windows
joined without a jump?

Clip boundary: the previous clip's last frame (its tail) against this clip's first frame (its
head), both at the analysis resolution (the previous frame is resized to it).

* structure: mean SSIM (Wang, Bovik, Sheikh & Simoncelli, "Image quality assessment: from error
  visibility to structural similarity", IEEE TIP 2004) on 8-bit luminance with an 11x11 Gaussian
  window, sigma 1.5, K1 = 0.01, K2 = 0.03, L = 255 (the paper's constants); clipped to [0, 1].
* colour: mean CIE76 deltaE between the two frames' Lab images after a Gaussian blur (sigma 2)
  so that small shifts of texture are not counted as colour changes; colour = exp(-dE / 25).

boundary = 0.5 * structure + 0.5 * colour.

Generation windows: a backend that makes a clip in overlapping windows lists the first frame of
every window after the first in ``clip.metadata["window_starts"]``. At each start b, the
motion-compensated change across the seam, d_b = 1 - SSIM(frame b-1, frame b warped back by DIS
flow), is compared with the median d of up to 3 pairs on either side: jump ratio
r = d_b / max(median, 0.01), window score = exp(-max(0, r - 1) / 4) (1.0 when the seam changes no
more than the frames around it). value = mean of the boundary score and the window scores that
apply.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from cinerl.rewards.core.analysis import ClipAnalysis
from cinerl.rewards.core.context import ScoreContext
from cinerl.rewards.colour import as_rgb_uint8, resize_to, rgb_to_lab
from cinerl.rewards.core.registry import not_applicable, ok, register

COLOR_SCALE_DE = 25.0


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """Mean SSIM of two single-channel images (Wang et al. 2004, Gaussian 11x11, sigma 1.5)."""
    return float(np.mean(ssim_map(a, b, data_range)))


def ssim_map(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> np.ndarray:
    """Per-pixel SSIM map of two single-channel images (Wang et al. 2004, Gaussian 11x11, 1.5)."""
    x = a.astype(np.float32)
    y = b.astype(np.float32)
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2

    def blur(z: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(z, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

    mu_x, mu_y = blur(x), blur(y)
    sxx = blur(x * x) - mu_x * mu_x
    syy = blur(y * y) - mu_y * mu_y
    sxy = blur(x * y) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * sxy + c2)
    den = (mu_x * mu_x + mu_y * mu_y + c1) * (sxx + syy + c2)
    return num / den


WINDOW_JUMP_SCALE = 4.0
_NEIGHBOURS = 3


def warped_change(analysis: ClipAnalysis, i: int) -> float:
    """1 - SSIM between gray frame i and frame i+1 warped back onto it by DIS flow."""
    flow = analysis.flow_at(i)
    h, w = analysis.height, analysis.width
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    warped = cv2.remap(
        analysis.gray[i + 1],
        gx + flow[..., 0],
        gy + flow[..., 1],
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return 1.0 - ssim(analysis.gray[i], warped)


def window_seams(analysis: ClipAnalysis) -> list[dict]:
    starts = analysis.metadata.get("window_starts") or []
    t = analysis.num_frames
    out = []
    for b in sorted({int(x) for x in starts}):
        if b < 1 or b >= t:
            continue
        d_b = warped_change(analysis, b - 1)
        near = [
            i for i in range(b - 1 - _NEIGHBOURS, b - 1 + _NEIGHBOURS + 1) if i != b - 1 and 0 <= i < t - 1
        ]
        base = float(np.median([warped_change(analysis, i) for i in near])) if near else d_b
        r = d_b / max(base, 0.01)
        out.append(
            {
                "start": b,
                "change": d_b,
                "neighbour_change": base,
                "jump_ratio": r,
                "score": math.exp(-max(0.0, r - 1.0) / WINDOW_JUMP_SCALE),
            }
        )
    return out


@register(name="seam_continuity", group="temporal_stability")
def seam_continuity(analysis: ClipAnalysis, ctx: ScoreContext):
    """Previous clip's tail against this head (SSIM + blurred Lab deltaE) and, when the clip was made
    in overlapping windows, the jump at every window seam against the frames around it."""
    windows = window_seams(analysis)
    if ctx.previous_last_frame is None:
        if not windows:
            return not_applicable("no previous clip (first scene) and no generation-window seams")
        return ok(
            float(np.mean([w["score"] for w in windows])),
            windows=windows,
            boundary=None,
            formula="mean window score exp(-max(0, jump ratio - 1) / 4)",
        )
    prev = as_rgb_uint8(ctx.previous_last_frame, "previous_last_frame")
    prev = resize_to(prev, analysis.width, analysis.height)
    first = analysis.frames[0]
    s = ssim(cv2.cvtColor(prev, cv2.COLOR_RGB2GRAY), analysis.gray[0])
    lab_p = cv2.GaussianBlur(rgb_to_lab(prev), (0, 0), 2.0)
    lab_f = cv2.GaussianBlur(rgb_to_lab(first), (0, 0), 2.0)
    de = float(np.mean(np.linalg.norm(lab_p - lab_f, axis=-1)))
    structure = min(1.0, max(0.0, s))
    colour = math.exp(-de / COLOR_SCALE_DE)
    boundary = 0.5 * structure + 0.5 * colour
    parts = [boundary] + [w["score"] for w in windows]
    return ok(
        float(np.mean(parts)),
        ssim=s,
        mean_delta_e=de,
        structure=structure,
        colour=colour,
        boundary=boundary,
        windows=windows,
        formula="mean of boundary = 0.5*clip(SSIM_luma,0,1) + 0.5*exp(-mean blurred deltaE76 / 25) "
        "and window scores exp(-max(0, jump ratio - 1) / 4)",
    )
