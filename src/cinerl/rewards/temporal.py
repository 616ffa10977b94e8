"""Temporal visual-quality components: VBench temporal flickering and optical-flow smoothness."""

from __future__ import annotations

import math

import cv2
import numpy as np

from cinerl.rewards.analysis import ClipAnalysis
from cinerl.rewards.base import ScoreContext, not_applicable, ok, register

# Scale (pixels/frame^2 at 256 px) of the flow-acceleration penalty exp(-accel / s).
# Calibrated on synthetic clips at 256 px (tests/rewards): a smooth slow pan of a textured image
# has accel ~0.05-0.2 (DIS noise) -> score > 0.9; random per-frame translation of 2-4 px
# ("handheld shake") has accel ~3-4 -> score < 0.3. s = 1.5 puts 0.5 at accel ~1.04 px/frame^2.
FLOW_ACCEL_SCALE = 1.5
# Mean flow vectors shorter than this (px/frame at 256 px) have no reliable direction.
_MIN_DIRECTION_MAG = 0.25
# Ignore a border this wide (px at analysis resolution) where pans reveal new content.
_BORDER = 8


@register(name="temporal_flicker", group="visual_quality")
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
    return ok((255.0 - mad) / 255.0, mean_abs_diff=mad, max_pair_abs_diff=float(maes.max()),
              pairs=int(t - 1), resolution=[analysis.width, analysis.height],
              formula="VBench temporal flickering: (255 - mean_t MAE(frame_t, frame_t+1)) / 255")


@register(name="flow_smoothness", group="visual_quality")
def flow_smoothness(analysis: ClipAnalysis, ctx: ScoreContext):
    """Smoothness of motion from the shared DIS optical flow.

    accel = mean over consecutive flow pairs of the mean per-pixel |F_{t+1} - F_t| (Euclidean,
    pixels/frame^2 in units of a 256-px-long-side frame; a border of 8 px is ignored);
    score = exp(-accel / 1.5). Second differences of the motion field are the standard
    jitter/shake measure used in video-stabilisation work (e.g. Liu et al., "Bundled camera paths",
    2013, which penalises second-order path differences). raw.reversals is the share of
    consecutive flows whose mean direction flips (dot product < 0) among those with a reliable
    direction — reported, not scored.
    """
    pairs = analysis.flow_pairs
    if len(pairs) < 2:
        return not_applicable("need at least 3 frames to measure flow acceleration")
    flow = analysis.flow
    b = _BORDER if min(analysis.height, analysis.width) > 4 * _BORDER else 0
    core = flow[:, b:analysis.height - b, b:analysis.width - b] if b else flow
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
    return ok(math.exp(-accel / FLOW_ACCEL_SCALE), accel=accel, mean_magnitude=mags,
              reversals=(reversals / dir_pairs) if dir_pairs else 0.0,
              direction_pairs=dir_pairs, accel_pairs=len(accels), scale=FLOW_ACCEL_SCALE,
              units="pixels/frame^2 at 256 px long side",
              formula="exp(-mean|F_t+1 - F_t| / 1.5), DIS flow")
