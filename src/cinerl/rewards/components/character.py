"""Character consistency: does the clip contain each scene character's wardrobe colours?

Method ("wardrobe colour match, Lab"): a character's look is read from its reference image
(the figure on a plain neutral mid-grey studio backdrop):

1. backdrop colour = median Lab of the reference's border pixels; foreground = pixels whose
   CIE76 distance from it exceeds 12 (then a 3x3 morphological opening removes speckle);
2. the look's dominant colours = deterministic k-means (k=4) on foreground Lab pixels, with
   their pixel shares w_c (clusters under 5 % of the figure are dropped, shares renormalised).

In the clip, ~8 evenly spaced frames are sampled (every 2nd pixel each way). For each reference
colour c, frac_c = share of sampled clip pixels within deltaE76 < 15 of c, and
presence_c = min(1, frac_c / (F * w_c)), where F = 0.03 is the smallest screen share we expect a
figure to cover (a wide shot). The character's score is sum_c w_c * presence_c, and the
component's value is the mean over characters. A recoloured wardrobe makes frac_c ~ 0 for the
garment colours whatever the background; the limitation is that a background that happens to
contain the garment colours also counts (this is colour, not identity: a later component adds
face embeddings).

The references are lit by daylight, so each character is also matched on the frames relit to
daylight (the take's light fitted to the plan's colours and undone, scene_illuminant's
daylight_lab_pixels) and keeps the better score: a candlelit or neon take the plan asks for is not
a wardrobe change (issue 20; tests/rewards/test_rewards_character.py).
"""

from __future__ import annotations

from collections import OrderedDict

import cv2
import numpy as np

from cinerl.rewards.core.analysis import ClipAnalysis
from cinerl.rewards.core.context import ScoreContext
from cinerl.rewards.colour import array_digest, as_rgb_uint8, delta_e76, kmeans_colors, lab_to_rgb, rgb_to_lab
from cinerl.rewards.core.registry import not_applicable, ok, register, unavailable
from cinerl.rewards.components.scene_illuminant import daylight_lab_pixels

METHOD = "wardrobe colour match, Lab"
FOREGROUND_DE = 12.0  # reference pixel is "figure" if this far from the backdrop (deltaE76)
MATCH_DE = 15.0  # clip pixel "has" a reference colour if closer than this (deltaE76)
MIN_FIGURE_SHARE = 0.03  # F: smallest expected screen share of a figure in a clip
N_COLORS = 4
MIN_COLOR_SHARE = 0.05
REF_MAX_SIDE = 256
MIN_FOREGROUND_PX = 50

_REF_CACHE: "OrderedDict[str, dict]" = OrderedDict()
_REF_CACHE_SIZE = 64


def reference_look(ref: np.ndarray) -> dict:
    """Dominant figure colours of a reference image: {'lab': (k,3), 'shares': (k,), ...}.

    Raises ValueError when no figure can be separated from the backdrop.
    """
    ref = as_rgb_uint8(ref, "character reference")
    key = array_digest(ref)
    if key in _REF_CACHE:
        _REF_CACHE.move_to_end(key)
        return _REF_CACHE[key]
    h, w = ref.shape[:2]
    s = min(1.0, REF_MAX_SIDE / max(h, w))
    if s < 1.0:
        ref = cv2.resize(ref, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    lab = rgb_to_lab(ref)
    bw = max(1, min(lab.shape[0], lab.shape[1]) // 32)
    border = np.concatenate(
        [
            lab[:bw].reshape(-1, 3),
            lab[-bw:].reshape(-1, 3),
            lab[:, :bw].reshape(-1, 3),
            lab[:, -bw:].reshape(-1, 3),
        ]
    )
    backdrop = np.median(border, axis=0).astype(np.float32)
    dist = np.linalg.norm(lab - backdrop[None, None, :], axis=-1)
    mask = (dist > FOREGROUND_DE).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    fg = lab[mask.astype(bool)]
    if fg.shape[0] < MIN_FOREGROUND_PX:
        raise ValueError("no figure found in the reference (nothing differs from the backdrop)")
    centers, shares = kmeans_colors(fg, N_COLORS, seed=0, attempts=3)
    keep = shares >= MIN_COLOR_SHARE
    centers, shares = centers[keep], shares[keep] / shares[keep].sum()
    look = {
        "lab": centers,
        "shares": shares,
        "backdrop_lab": backdrop,
        "foreground_share": float(mask.mean()),
    }
    _REF_CACHE[key] = look
    while len(_REF_CACHE) > _REF_CACHE_SIZE:
        _REF_CACHE.popitem(last=False)
    return look


def match_look(look: dict, clip_pixels: np.ndarray) -> dict:
    """Score one reference look against (N, 3) Lab clip pixels; see module docstring."""
    d = delta_e76(clip_pixels, look["lab"])  # (N, k)
    frac = (d < MATCH_DE).mean(axis=0)  # share of clip pixels near each colour
    w = look["shares"]
    presence = np.minimum(1.0, frac / (MIN_FIGURE_SHARE * w))
    return {
        "score": float((w * presence).sum()),
        "colors_rgb": [list(map(int, c)) for c in lab_to_rgb(look["lab"])],
        "shares": [round(float(x), 4) for x in w],
        "clip_fraction": [round(float(x), 5) for x in frac],
        "presence": [round(float(x), 4) for x in presence],
    }


@register(name="character_consistency", group="character_consistency")
def character_consistency(analysis: ClipAnalysis, ctx: ScoreContext):
    """Wardrobe colour match (Lab) of each scene character's reference look in the clip."""
    if ctx.scene is None or not ctx.scene.character_ids:
        return not_applicable("no characters in the scene")
    ids = [cid for cid in ctx.scene.character_ids if ctx.character_refs.get(cid) is not None]
    if not ids:
        return not_applicable("no reference image for any character in the scene")
    pixels = analysis.sampled_lab_pixels(8, 2)
    relit = daylight_lab_pixels(analysis, ctx)
    per, errors = {}, {}
    for cid in ids:
        try:
            look = reference_look(ctx.character_refs[cid])
        except ValueError as exc:
            errors[cid] = str(exc)
            continue
        as_lit = match_look(look, pixels)
        relit_scores = [match_look(look, px) for px in relit]  # under the take's own light
        best = max([as_lit, *relit_scores], key=lambda r: r["score"])
        per[cid] = {**best, "as_lit": as_lit["score"], "relit": [r["score"] for r in relit_scores]}
    if not per:
        return unavailable(
            "no usable character reference: " + "; ".join(f"{k}: {v}" for k, v in errors.items()),
            raw={"method": METHOD},
        )
    value = float(np.mean([r["score"] for r in per.values()]))
    raw = {
        "method": METHOD,
        "characters": per,
        "match_delta_e": MATCH_DE,
        "min_figure_share": MIN_FIGURE_SHARE,
    }
    if errors:
        raw["skipped"] = errors
    missing = [cid for cid in ctx.scene.character_ids if cid not in ids]
    if missing:
        raw["no_reference"] = missing
    return ok(value, raw)
