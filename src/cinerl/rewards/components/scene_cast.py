"""Scene cast: is everyone the scene plan puts in the scene visible in the frame? A close-up of a
scene with four characters shows one of them and loses.

Method (written here: no person detector ships offline; this is colour indexing, Swain & Ballard,
"Color indexing", IJCV 1991, with a von Kries illuminant correction): each scene character is
found by its own colours, the bible's wardrobe and hair (Character.wardrobe, Character.hair).

1. Classes: every scene character's colours, the location palette at four shades and five skin
   tones (scene_illuminant.py: every figure shows skin, so skin names nobody). A character
   colour within deltaE76 12 of a palette shade, a skin tone or another character's colour is
   not distinctive and is not used; a character with no distinctive colour is left out of the
   count (and said so).
2. Light: the take's light changes every colour, so the classes are adapted to it first: the
   affine light of scene_illuminant.take_light, fitted twice (from the set's light and from its
   luminance alone); each character keeps the better of the two fits.
3. Each sampled pixel (~8 evenly spaced frames, every 2nd pixel) takes the nearest class in Lab
   when it is within deltaE76 25 of it. For each of a character's colours, its share is the
   median over the frames of the share of pixels assigned to it.
4. visible_i = min(1, s1 / 0.004) * min(1, s2 / 0.0015): s1 is the share of the character's
   most visible colour (a figure covering 0.4 % of the frame or more counts as seen: an adult's
   coat and trousers in an extreme wide shot cover about that) and s2 the share of its second
   colour lying within 10 % of the frame width of the first (:func:`adjacent_share`: a figure's
   colours touch, stray pixels of one colour do not); s2 is not needed for a character with
   one distinctive colour. value = mean of visible_i over the measurable characters: the share
   of the cast in frame. The reason names who is missing.

Limitations: this is colour, not identity. A prop that happens to wear a character's distinctive
colour counts for them, and a character whose look the prompt did not lock (previz then draws
other colours) counts as missing, which the identity components also punish.
"""

from __future__ import annotations

import cv2
import numpy as np

from cinerl.rewards.colour import delta_e76
from cinerl.rewards.components.scene_illuminant import (
    character_colours,
    lab_of,
    sampled_frames,
    scene_colours,
    take_light,
)
from cinerl.rewards.core.analysis import ClipAnalysis
from cinerl.rewards.core.context import ScoreContext
from cinerl.rewards.core.registry import not_applicable, ok, register

DISTINCT_DE = 12.0
VISIBLE_SHARE = 0.004
SECOND_SHARE = 0.0015
ADJACENT = 0.1  # of the frame width: how near two colours of one figure lie


def adjacent_share(first: np.ndarray, second: np.ndarray) -> float:
    """Median over frames of the share of pixels of `second` (F, h, w) within ADJACENT of the
    frame width of a pixel of `first`: two colours of one figure touch (coat over trousers, hair
    over coat); stray pixels that merely share a colour do not (a colour correlogram at one
    distance, Huang et al., "Image indexing using color correlograms", CVPR 1997)."""
    r = max(2, round(ADJACENT * first.shape[2]))
    k = np.ones((2 * r + 1, 2 * r + 1), np.uint8)
    near = np.stack([cv2.dilate(f.astype(np.uint8), k) > 0 for f in first])
    return float(np.median((second & near).mean(axis=(1, 2))))


@register(name="scene_cast", group="scene_plan")
def scene_cast(analysis: ClipAnalysis, ctx: ScoreContext):
    """Share of the scene's characters visible in frame, found by their wardrobe colours."""
    if ctx.scene is None or ctx.bible is None:
        return not_applicable("no scene and story bible to read the cast from")
    ids = list(dict.fromkeys(ctx.scene.character_ids))
    if not ids:
        return not_applicable("the scene has no characters")
    known = {c.id: c for c in ctx.bible.characters}
    cast = [known[i] for i in ids if i in known]
    if not cast:
        return not_applicable(f"none of the scene's characters {ids} is in the bible")
    # 1. distinctive colours
    colours = {c.id: character_colours(c) for c in cast}
    bg_lab = lab_of(scene_colours(ctx, classes=[]).rgb)
    classes: list[tuple[str, tuple[int, int, int]]] = []  # (character id, rgb)
    left_out = []
    for c in cast:
        others = [rgb for o in cast if o.id != c.id for _, rgb in colours[o.id]]
        rivals = np.concatenate([bg_lab, lab_of(others)])
        mine = [rgb for _, rgb in colours[c.id]]
        keep = delta_e76(lab_of(mine), rivals).min(axis=1) > DISTINCT_DE
        if not keep.any():
            left_out.append(c.id)
        classes += [(c.id, rgb) for rgb, k in zip(mine, keep) if k]
    measurable = [c for c in cast if c.id not in left_out]
    if not measurable:
        return not_applicable(
            f"no character of the scene has a colour distinct from the location and the others ({left_out})"
        )

    # 2. the take's light, fitted to the known colours
    fits = take_light(analysis, ctx, scene_colours(ctx, classes))
    shape = sampled_frames(analysis).shape[:3]
    owner = scene_colours(ctx, classes).owner
    visible = {c.id: 0.0 for c in measurable}
    share = {c.id: 0.0 for c in measurable}
    for fit in fits.values():
        near, hit = fit.near, fit.hit
        # 3. nearest class per pixel; a character's share: the median over frames
        for c in measurable:
            masks = [((near == k) & hit).reshape(shape) for k in np.flatnonzero(owner == c.id)]
            # median over frames of each of its colours' share, largest first
            shares_k = [float(np.median(m.mean(axis=(1, 2)))) for m in masks]
            order = np.argsort(shares_k)[::-1]
            v = min(1.0, shares_k[order[0]] / VISIBLE_SHARE)
            if len(order) > 1:  # a figure shows two of its colours side by side
                v *= min(1.0, adjacent_share(masks[order[0]], masks[order[1]]) / SECOND_SHARE)
            if v >= visible[c.id]:
                visible[c.id], share[c.id] = v, float(sum(shares_k))
    value = float(np.mean(list(visible.values())))
    seen = [cid for cid, v in visible.items() if v >= 0.5]
    missing = [cid for cid, v in visible.items() if v < 0.5]
    reason = f"{len(seen)} of {len(measurable)} characters visible" + (
        f"; missing: {', '.join(missing)}" if missing else ""
    )
    if left_out:
        reason += f"; not measurable (no distinctive colour): {', '.join(left_out)}"
    return ok(
        value,
        expected=len(ids),
        visible=seen,
        missing=missing,
        not_measurable=left_out,
        screen_share={k: round(v, 4) for k, v in share.items()},
        light={k: f.summary() for k, f in fits.items()},
        formula="mean over characters of min(1, s1/0.004) * min(1, s2 adjacent/0.0015), s1 >= s2 the median "
        "screen shares of its distinctive colours under the fitted light",
    ).model_copy(update={"reason": reason})
