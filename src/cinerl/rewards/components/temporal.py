"""Frame-to-frame stability: VBench temporal flickering, optical-flow smoothness (acceleration,
curl and divergence of the shared DIS flow) and warp consistency (flow-warped SSIM, or t-LPIPS
when LPIPS weights are configured)."""

from __future__ import annotations

import math

import cv2
import numpy as np

from cinerl.rewards.core.analysis import ClipAnalysis
from cinerl.rewards.core.context import ScoreContext
from cinerl.rewards.core.registry import not_applicable, ok, register, unavailable

# Scale (pixels/frame^2 at 256 px) of the flow-acceleration penalty exp(-accel / s).
# Calibrated on synthetic clips at 256 px (tests/rewards): a smooth slow pan of a textured image
# has accel ~0.05-0.2 (DIS noise) -> score > 0.9; random per-frame translation of 2-4 px
# ("handheld shake") has accel ~3-4 -> score < 0.3. s = 1.5 puts 0.5 at accel ~1.04 px/frame^2.
FLOW_ACCEL_SCALE = 1.5
# Mean flow vectors shorter than this (px/frame at 256 px) have no reliable direction.
_MIN_DIRECTION_MAG = 0.25
# Ignore a border this wide (px at analysis resolution) where pans reveal new content.
_BORDER = 8
# Scale of the flow-field irregularity penalty exp(-(curl_dev + div_dev) / s), in 1/frame (the
# derivatives of a flow in px/frame are unit-free per frame). Rigid camera moves (pan, zoom, roll)
# have a constant curl and divergence, so deviation ~0.002-0.005 (DIS noise); a non-rigid,
# "boiling" field of +-2 px swirls over ~20 px reaches 0.05-0.1.
CURL_DIV_SCALE = 0.1
# warp consistency: value = exp(-(1 - mean warped SSIM) / WARP_SSIM_SCALE). A clean textured pan
# warps back with SSIM ~0.97 (bilinear resampling), brightness flicker of +-15 % drops it to ~0.9.
WARP_SSIM_SCALE = 0.1
# t-LPIPS: value = exp(-mean LPIPS / T_LPIPS_SCALE); LPIPS ~0.05 between consecutive clean frames.
T_LPIPS_SCALE = 0.2


@register(name="temporal_flicker", group="temporal_stability")
def temporal_flicker(analysis: ClipAnalysis, ctx: ScoreContext):
    """VBench temporal flickering, at the analysis resolution over ALL consecutive frame pairs.

    Formula (VBench, Huang et al. 2024, vbench/temporal_flickering.py): per consecutive pair, the
    mean absolute difference of pixel values (0-255) over all pixels and channels; score =
    (255 - mean over pairs) / 255. Reported exactly as VBench defines it. Note that it also counts
    legitimate motion as "flicker" (VBench applies it to static-camera prompts) and sits around
    0.95-0.99 for most clips, so it discriminates weakly; raw.mean_abs_diff is the measurement.
    """
    f = analysis.frames
    t = f.shape[0]
    if t < 2:
        return not_applicable("clip has a single frame: no consecutive pairs to compare")
    maes = np.empty(t - 1, np.float64)
    for i in range(t - 1):
        maes[i] = float(np.mean(cv2.absdiff(f[i], f[i + 1])))
    mad = float(maes.mean())
    return ok(
        (255.0 - mad) / 255.0,
        mean_abs_diff=mad,
        max_pair_abs_diff=float(maes.max()),
        pairs=int(t - 1),
        resolution=[analysis.width, analysis.height],
        formula="VBench temporal flickering: (255 - mean_t MAE(frame_t, frame_t+1)) / 255",
    )


@register(name="flow_smoothness", group="temporal_stability")
def flow_smoothness(analysis: ClipAnalysis, ctx: ScoreContext):
    """Smoothness of motion from the shared DIS optical flow.

    accel = mean over consecutive flow pairs of the mean per-pixel |F_{t+1} - F_t| (Euclidean,
    pixels/frame^2 in units of a 256-px-long-side frame; a border of 8 px is ignored);
    irregularity = mean |curl - median curl| + mean |div - median div| of each flow field (Sobel
    derivatives), so rigid camera moves (constant curl/div) are free and non-rigid "boiling"
    motion is not; score = exp(-accel / 1.5 - irregularity / 0.1). Second differences of the motion
    field are the standard jitter/shake measure used in video-stabilisation work (e.g. Liu et
    al., "Bundled camera paths", 2013, which penalises second-order path differences).
    raw.reversals is the share of consecutive flows whose mean direction flips (dot product < 0)
    among those with a reliable direction — reported, not scored.
    """
    pairs = analysis.flow_pairs
    if len(pairs) < 2:
        return not_applicable("need at least 3 frames to measure flow acceleration")
    flow = analysis.flow
    b = _BORDER if min(analysis.height, analysis.width) > 4 * _BORDER else 0
    core = flow[:, b : analysis.height - b, b : analysis.width - b] if b else flow
    scale = analysis.flow_unit_scale
    accels, reversals, dir_pairs = [], 0, 0
    means = core.reshape(core.shape[0], -1, 2).mean(axis=1) * scale  # (P, 2) mean flow vector
    mags = float(np.mean(np.linalg.norm(core, axis=-1))) * scale
    for k in range(len(pairs) - 1):
        if pairs[k + 1] != pairs[k] + 1:
            continue  # not consecutive flows (temporal sub-sampling)
        d = core[k + 1] - core[k]
        accels.append(float(np.mean(np.sqrt(d[..., 0] ** 2 + d[..., 1] ** 2))) * scale)
        m0, m1 = means[k], means[k + 1]
        if np.linalg.norm(m0) > _MIN_DIRECTION_MAG and np.linalg.norm(m1) > _MIN_DIRECTION_MAG:
            dir_pairs += 1
            reversals += int(float(m0 @ m1) < 0.0)
    if not accels:
        return not_applicable("no consecutive flow pairs to measure acceleration")
    accel = float(np.mean(accels))
    curl_dev, div_dev = curl_divergence_deviation(core)
    return ok(
        math.exp(-accel / FLOW_ACCEL_SCALE - (curl_dev + div_dev) / CURL_DIV_SCALE),
        accel=accel,
        curl_deviation=curl_dev,
        divergence_deviation=div_dev,
        mean_magnitude=mags,
        reversals=(reversals / dir_pairs) if dir_pairs else 0.0,
        direction_pairs=dir_pairs,
        accel_pairs=len(accels),
        scale=FLOW_ACCEL_SCALE,
        units="accel: pixels/frame^2 at 256 px long side; curl/div: 1/frame",
        formula="exp(-mean|F_t+1 - F_t| / 1.5 - (mean|curl - med| + mean|div - med|) / 0.1), DIS flow",
    )


def curl_divergence_deviation(flows: np.ndarray, max_fields: int = 24) -> tuple[float, float]:
    """Mean absolute deviation of curl and divergence from each field's median (Sobel 3x3 / 8),
    over at most ``max_fields`` evenly spaced flow fields."""
    idx = np.unique(np.linspace(0, len(flows) - 1, min(len(flows), max_fields)).astype(np.int64))
    cds, dds = [], []
    for k in idx:
        u = np.ascontiguousarray(flows[k, ..., 0])
        v = np.ascontiguousarray(flows[k, ..., 1])
        du_dx = cv2.Sobel(u, cv2.CV_32F, 1, 0, ksize=3) / 8.0
        du_dy = cv2.Sobel(u, cv2.CV_32F, 0, 1, ksize=3) / 8.0
        dv_dx = cv2.Sobel(v, cv2.CV_32F, 1, 0, ksize=3) / 8.0
        dv_dy = cv2.Sobel(v, cv2.CV_32F, 0, 1, ksize=3) / 8.0
        curl = dv_dx - du_dy
        div = du_dx + dv_dy
        cds.append(float(np.mean(np.abs(curl - np.median(curl)))))
        dds.append(float(np.mean(np.abs(div - np.median(div)))))
    return float(np.mean(cds)), float(np.mean(dds))


@register(name="warp_consistency", group="temporal_stability")
def warp_consistency(analysis: ClipAnalysis, ctx: ScoreContext):
    """Frame t against frame t+1 warped back by the shared optical flow.

    With ``lpips_path`` configured: true t-LPIPS (Zhang et al. 2018 LPIPS, AlexNet, between frame t
    and warped t+1, both at analysis resolution), reported as method "t-lpips",
    value = exp(-mean LPIPS / 0.2). Otherwise method "warped-ssim": SSIM (Wang et al. 2004) on
    luminance over pixels whose warp source is inside the frame, value = exp(-(1 - mean SSIM) / 0.1).
    Motion the flow explains (pans, shake) is compensated; changes it cannot explain (flicker,
    popping, morphing textures) are what this catches.
    """
    pairs = analysis.flow_pairs
    if len(pairs) < 1:
        return not_applicable("clip has a single frame: nothing to warp")
    warped, valid = analysis.warped_next
    if analysis.config.lpips_path:
        from cinerl.rewards.backbones.lpips import LpipsUnavailable, t_lpips

        try:
            d = t_lpips(analysis, warped)
        except LpipsUnavailable as exc:
            return unavailable(str(exc))
        mean = float(np.mean(d))
        return ok(
            math.exp(-mean / T_LPIPS_SCALE),
            method="t-lpips",
            mean_lpips=mean,
            max_lpips=float(np.max(d)),
            pairs=len(d),
            formula="exp(-mean_t LPIPS(frame_t, warp(frame_t+1)) / 0.2)",
        )
    from cinerl.rewards.components.continuity import ssim_map

    b = _BORDER if min(analysis.height, analysis.width) > 4 * _BORDER else 0
    vals = []
    for k, i in enumerate(pairs):
        m = ssim_map(analysis.gray[i], warped[k])
        v = valid[k]
        if b:
            m, v = m[b:-b, b:-b], v[b:-b, b:-b]
        if v.mean() < 0.2:
            continue
        vals.append(float(m[v].mean()))
    if not vals:
        return not_applicable("flow carries every pixel out of frame: nothing left to compare")
    mean = float(np.mean(vals))
    return ok(
        math.exp(-(1.0 - mean) / WARP_SSIM_SCALE),
        method="warped-ssim",
        mean_ssim=mean,
        min_ssim=float(np.min(vals)),
        pairs=len(vals),
        formula="exp(-(1 - mean_t SSIM_luma(frame_t, warp(frame_t+1))) / 0.1)",
    )
