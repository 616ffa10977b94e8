"""Structure constancy: do the edges of the scene survive from frame to frame once motion is
compensated? Catches morphing geometry, popping objects and hard cuts inside a shot."""

from __future__ import annotations

import cv2
import numpy as np

from cinerl.rewards.core.analysis import ClipAnalysis, parallel_map
from cinerl.rewards.core.context import ScoreContext
from cinerl.rewards.core.registry import not_applicable, ok, register
from cinerl.rewards.components.continuity import ssim_map

EDGE_BLUR_SIGMA = 1.5  # edges are one pixel thin: blur so a sub-pixel warp error is not a break
_BORDER = 8
EDGE_NEAR = 8.0  # blurred edge value (0-255) that marks "near an edge"
MIN_EDGE_PIXELS = 50


def auto_canny(gray: np.ndarray) -> np.ndarray:
    """Canny with thresholds at 0.66x and 1.33x the frame's median intensity (the usual automatic
    rule), so a global brightness change moves the thresholds with the image."""
    med = float(np.median(gray))
    lo, hi = max(10.0, 0.66 * med), max(20.0, 1.33 * med)
    return cv2.Canny(gray, lo, hi)


@register(name="structure_constancy", group="temporal_stability")
def structure_constancy(analysis: ClipAnalysis, ctx: ScoreContext):
    """SSIM of flow-warped Canny edges.

    For every shared flow pair (t, t+1): Canny edges of both frames (thresholds from each frame's
    median), the edge map of t+1 warped back onto t by the DIS flow, both blurred (sigma 1.5), SSIM
    averaged over the pixels near an edge in either map (flat areas would count as agreement)
    whose warp source is inside the frame. value = 0.5 * mean + 0.5 * minimum over pairs,
    so a single structural break (a cut or an object popping) inside the clip counts.
    """
    pairs = analysis.flow_pairs
    if len(pairs) < 1:
        return not_applicable("clip has a single frame")
    h, w = analysis.height, analysis.width
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    _, valid = analysis.warped_next
    b = _BORDER if min(h, w) > 4 * _BORDER else 0
    frames = sorted({int(i) for i in pairs} | {int(i) + 1 for i in pairs})
    edges = dict(zip(frames, parallel_map(lambda i: auto_canny(analysis.gray[i]).astype(np.float32), frames)))
    flow = analysis.flow

    def pair_ssim(k: int) -> float | None:
        i = int(pairs[k])
        e0 = cv2.GaussianBlur(edges[i], (0, 0), EDGE_BLUR_SIGMA)
        e1 = cv2.remap(
            edges[i + 1],
            gx + flow[k, ..., 0],
            gy + flow[k, ..., 1],
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        e1 = cv2.GaussianBlur(e1, (0, 0), EDGE_BLUR_SIGMA)
        near = (e0 > EDGE_NEAR) | (e1 > EDGE_NEAR)  # only where there is structure to keep
        m, v = ssim_map(e0, e1), valid[k] & near
        if b:
            m, v = m[b:-b, b:-b], v[b:-b, b:-b]
        return float(m[v].mean()) if v.sum() >= MIN_EDGE_PIXELS else None

    per_pair = parallel_map(pair_ssim, range(len(pairs)))
    vals = [v for v in per_pair if v is not None]
    starts = [int(pairs[k]) for k, v in enumerate(per_pair) if v is not None]
    if not vals:
        return not_applicable("no edges to follow (flat frames) or flow carries every pixel out of frame")
    mean, worst = float(np.mean(vals)), float(np.min(vals))
    return ok(
        0.5 * max(0.0, mean) + 0.5 * max(0.0, worst),
        mean_edge_ssim=mean,
        min_edge_ssim=worst,
        worst_pair_start=starts[int(np.argmin(vals))],
        pairs=len(vals),
        formula="0.5*mean + 0.5*min over pairs of SSIM(blur(Canny_t), blur(warp(Canny_t+1)))",
    )
