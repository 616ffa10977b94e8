"""Seam continuity: does this clip's first frame continue the previous clip's last frame?

Both frames are compared at the analysis resolution (the previous frame is resized to it).

* structure: mean SSIM (Wang, Bovik, Sheikh & Simoncelli, "Image quality assessment: from error
  visibility to structural similarity", IEEE TIP 2004) on 8-bit luminance with an 11x11 Gaussian
  window, sigma 1.5, K1 = 0.01, K2 = 0.03, L = 255 (the paper's constants); clipped to [0, 1].
* colour: mean CIE76 deltaE between the two frames' Lab images after a Gaussian blur (sigma 2)
  so that small shifts of texture are not counted as colour changes; colour = exp(-dE / 25).

value = 0.5 * structure + 0.5 * colour.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from cinerl.rewards.analysis import ClipAnalysis
from cinerl.rewards.base import ScoreContext, as_rgb_uint8, not_applicable, ok, register, resize_to, rgb_to_lab

COLOR_SCALE_DE = 25.0


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """Mean SSIM of two single-channel images (Wang et al. 2004, Gaussian 11x11, sigma 1.5)."""
    x = a.astype(np.float64)
    y = b.astype(np.float64)
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
    return float(np.mean(num / den))


@register(name="seam_continuity", group="narrative_coherence")
def seam_continuity(analysis: ClipAnalysis, ctx: ScoreContext):
    """SSIM (luminance) + blurred Lab deltaE between previous last frame and this first frame."""
    if ctx.previous_last_frame is None:
        return not_applicable("no previous clip (first scene)")
    prev = as_rgb_uint8(ctx.previous_last_frame, "previous_last_frame")
    prev = resize_to(prev, analysis.width, analysis.height)
    first = analysis.frames[0]
    s = ssim(cv2.cvtColor(prev, cv2.COLOR_RGB2GRAY), analysis.gray[0])
    lab_p = cv2.GaussianBlur(rgb_to_lab(prev), (0, 0), 2.0)
    lab_f = cv2.GaussianBlur(rgb_to_lab(first), (0, 0), 2.0)
    de = float(np.mean(np.linalg.norm(lab_p - lab_f, axis=-1)))
    structure = min(1.0, max(0.0, s))
    colour = math.exp(-de / COLOR_SCALE_DE)
    return ok(0.5 * structure + 0.5 * colour, ssim=s, mean_delta_e=de, structure=structure,
              colour=colour, formula="0.5*clip(SSIM_luma,0,1) + 0.5*exp(-mean blurred deltaE76 / 25)")
