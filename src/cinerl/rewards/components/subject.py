"""Feature-based consistency over time: VBench subject consistency and novelty after frame k.

Both read the clip's frame features computed once per analysis (features.py: 8 evenly spaced
frames; EfficientNet-Lite0 by default, DINO or a CLIP vision tower when configured).
"""

from __future__ import annotations

import math

import numpy as np

from cinerl.rewards.core.analysis import ClipAnalysis
from cinerl.rewards.core.context import ScoreContext
from cinerl.rewards.core.registry import not_applicable, ok, register, unavailable
from cinerl.rewards.backbones.image_features import FeaturesUnavailable, clip_features

# novelty after k: k = 32 frames at 24 fps (the design's default), scaled to the clip's frame rate
NOVELTY_K_AT_24FPS = 32
# Saturation of the novelty term and tolerance of the coherence tax, in cosine distance of
# L2-normalised EfficientNet-Lite0 features (calibrated on textured pans in tests/rewards: a
# 2 px/frame pan at 320 px reaches ~0.01-0.02 of new content after k; a hard cut to unrelated content
# makes a jump of ~0.3 or more).
NOVELTY_TARGET = 0.015
JUMP_TOLERANCE = 0.1


@register(name="subject_consistency", group="temporal_stability")
def subject_consistency(analysis: ClipAnalysis, ctx: ScoreContext):
    """VBench subject consistency (Huang et al. 2024, subject_consistency.py) on frame features.

    For sampled frames t >= 1: (max(0, cos(f_t, f_t-1)) + max(0, cos(f_t, f_0))) / 2, averaged.
    VBench uses DINO ViT-B/16; the default here is EfficientNet-Lite0 (raw.backbone says which).
    Grouped with temporal stability, as VBench files it under temporal quality: it measures the
    whole frame over time, not a character's identity (identity_lock and the wardrobe match do).
    """
    if analysis.num_frames < 2:
        return not_applicable("clip has a single frame")
    try:
        feats = clip_features(analysis)
    except FeaturesUnavailable as exc:
        return unavailable(str(exc))
    f = feats.pooled
    prev = np.maximum(0.0, (f[1:] * f[:-1]).sum(1))
    first = np.maximum(0.0, f[1:] @ f[0])
    per = (prev + first) / 2.0
    return ok(
        float(per.mean()),
        backbone=feats.backbone,
        frames=[int(i) for i in feats.indices],
        min_frame_score=float(per.min()),
        mean_cos_previous=float(prev.mean()),
        mean_cos_first=float(first.mean()),
        formula="VBench: mean_t (max(0,cos(f_t,f_t-1)) + max(0,cos(f_t,f_0))) / 2",
    )


@register(name="novelty_after_k", group="visual_quality")
def novelty_after_k(analysis: ClipAnalysis, ctx: ScoreContext):
    """New content after frame k, with a coherence tax.

    k = 32 frames at 24 fps (scaled to the clip's rate). On the shared frame features:
    novelty N = mean over sampled frames after k of the cosine distance to the NEAREST frame before
    k (content never shown before; a frozen clip or a loop back to the start gives ~0);
    jump J = largest cosine distance between consecutive sampled frames after k;
    value = min(1, N / 0.015) * exp(-max(0, J - 0.1) / 0.1): new material is rewarded until it
    stops being the same shot.
    """
    k = max(2, round(NOVELTY_K_AT_24FPS * analysis.fps / 24))
    if analysis.num_frames <= k + 1:
        return not_applicable(f"clip has {analysis.num_frames} frames, not more than k = {k}")
    try:
        feats = clip_features(analysis)
    except FeaturesUnavailable as exc:
        return unavailable(str(exc))
    early = feats.pooled[feats.indices < k]
    late = feats.pooled[feats.indices >= k]
    if len(early) < 1 or len(late) < 2:
        return not_applicable("too few sampled frames on one side of k")
    novelty = float(np.mean(1.0 - (late @ early.T).max(axis=1)))
    jump = float(np.max(1.0 - (late[1:] * late[:-1]).sum(1)))
    coherence = math.exp(-max(0.0, jump - JUMP_TOLERANCE) / JUMP_TOLERANCE)
    return ok(
        min(1.0, max(0.0, novelty) / NOVELTY_TARGET) * coherence,
        novelty=novelty,
        max_jump=jump,
        coherence=coherence,
        k=k,
        backbone=feats.backbone,
        formula="min(1, mean_late min_early cosdist / 0.015)"
        " * exp(-max(0, max consecutive late cosdist - 0.1) / 0.1)",
    )
