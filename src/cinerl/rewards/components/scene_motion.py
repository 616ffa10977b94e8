"""Scene motion: does the take move as much as the scene's action asks? A chase, a race, a fight or
a storm must move; a vigil, a conversation or a wait must not.

Expected band: the action's words (Scene.action and Scene.shot_notes) are looked up in the verb
lexicon ``core.vocabulary.ACTION_ENERGY`` (calm, moderate, vigorous; the highest band named wins).
An action with no lexicon word is ``not_applicable``.

Measured energy E, from the shared DIS optical flow: for each flow pair (i, i+1), the mean of the
top 5 % flow magnitudes (VBench's dynamic-degree statistic, Huang et al. 2024) over the pixels of
frame i whose Sobel gradient magnitude is at least 4 grey levels per pixel: flow is only
measurable where the image has structure (the aperture problem; Shi & Tomasi, "Good features to
track", CVPR 1994), and flat regions give DIS noise, not motion. All pixels count when fewer than
2 % are textured; at most 32 evenly spaced pairs are measured. Magnitudes are in pixels of a
256-px long side per 1/24 s (times flow_unit_scale and fps / 24), so E does not depend on the
clip's size or frame rate; E is the mean over pairs. Camera motion counts: a handheld chase moves.

Bands of E (calibrated on previz renders of still, gentle, dynamic and frantic motion, wide to
close-up, static and handheld cameras; tests/rewards/test_scene_motion.py):
calm [0, 0.35], moderate [0.2, 1.2], vigorous [2.0, inf). Outside the band the score falls off in
log energy: value = exp(-(ln(E / edge) / ln 2)^2), so an energy off by a factor of 2 scores 0.37
and by 4 scores 0.02 (E is floored at 0.01).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from cinerl.core.vocabulary import action_energy
from cinerl.rewards.core.analysis import ClipAnalysis
from cinerl.rewards.core.context import ScoreContext
from cinerl.rewards.core.registry import not_applicable, ok, register

ENERGY_BANDS: dict[str, tuple[float, float]] = {
    "calm": (0.0, 0.35),
    "moderate": (0.2, 1.2),
    "vigorous": (2.0, math.inf),
}
TOP_SHARE = 0.05
MIN_GRADIENT = 4.0  # grey levels per pixel (Sobel response / 8)
MIN_TEXTURED_SHARE = 0.02
FALLOFF = math.log(2.0)
MIN_ENERGY = 0.01
MAX_PAIRS = 32  # evenly spaced flow pairs measured (all of a short clip)


def motion_energy(analysis: ClipAnalysis) -> tuple[float, list[float]]:
    """(E, per-pair energies): the textured top-5 % flow magnitude, px at 256 px per 1/24 s."""
    scale = analysis.flow_unit_scale * analysis.fps / 24.0
    per = []
    pairs = analysis.flow_pairs
    rows = np.unique(np.rint(np.linspace(0, len(pairs) - 1, min(len(pairs), MAX_PAIRS))).astype(int))
    for k in rows:
        i = pairs[k]
        g = analysis.gray[i].astype(np.float32)
        grad = np.hypot(cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3))
        mag = np.linalg.norm(analysis.flow[k], axis=-1)
        textured = grad / 8.0 >= MIN_GRADIENT
        vals = mag[textured] if textured.mean() >= MIN_TEXTURED_SHARE else mag.ravel()
        n = max(1, int(len(vals) * TOP_SHARE))
        per.append(float(np.partition(vals, len(vals) - n)[-n:].mean()) * scale)
    return float(np.mean(per)), per


def band_score(energy: float, band: tuple[float, float]) -> float:
    lo, hi = band
    e = max(energy, MIN_ENERGY)
    if lo <= e <= hi:
        return 1.0
    edge = lo if e < lo else hi
    return math.exp(-((math.log(e / edge) / FALLOFF) ** 2))


@register(name="scene_motion", group="scene_plan")
def scene_motion(analysis: ClipAnalysis, ctx: ScoreContext):
    """Optical-flow energy (textured top 5 %) against the band the scene's action verbs expect."""
    if ctx.scene is None:
        return not_applicable("no scene to read the action from")
    text = " ".join(t for t in (ctx.scene.action, ctx.scene.shot_notes) if t)
    band, words = action_energy(text)
    if band is None:
        return not_applicable(f"no motion word of the lexicon in the action {ctx.scene.action[:60]!r}")
    if len(analysis.flow_pairs) < 1:
        return not_applicable("need at least 2 frames to measure motion")
    energy, per = motion_energy(analysis)
    lo, hi = ENERGY_BANDS[band]
    value = band_score(energy, (lo, hi))
    where = "inside" if value == 1.0 else ("below" if energy < lo else "above")
    reason = (
        f"{band} action ({', '.join(words)}): motion energy {energy:.2f} {where} "
        f"[{lo:g}, {'inf' if math.isinf(hi) else f'{hi:g}'}]"
    )
    return ok(
        value,
        expected=band,
        action_words=words,
        energy=round(energy, 4),
        band=[lo, None if math.isinf(hi) else hi],
        per_pair=[round(x, 3) for x in per],
        formula="E = mean over pairs of top-5% |flow| on textured pixels (px @256 per 1/24 s); "
        "1 inside the band, else exp(-(ln(E/edge)/ln 2)^2)",
    ).model_copy(update={"reason": reason})
