"""The take's light, estimated from the colours the plan says are in the scene: shared by
scene_light (what the light is) and scene_cast (whose colours are in frame under it).

Written here: no illuminant estimator for a known set of scene colours ships with OpenCV or
scikit-image. The method is colour indexing (Swain & Ballard, "Color indexing", IJCV 1991) with
an illuminant fitted to the indexed colours:

* known colours: the location palette at four shades (x 0.6, 0.8, 1.0, 1.2: the location's
  colours in shadow and light), five human skin tones (light to dark), and the scene characters'
  wardrobe and hair (Character.wardrobe, Character.hair);
* the light is a per-channel affine map of linear light, pixel = g * colour + o (the gain g is
  the von Kries diagonal model of a change of illuminant; the offset o carries light that adds,
  such as a sign's glow on a dark coat);
* start: g0 = mean linear colour of the frames' border (the outer 12 % of width and height,
  where the location shows even in a close-up) / the same of the reference (the location
  reference image, ctx.location_ref, lit by daylight; else the palette colours), o = 0;
* 3 rounds of: adapt the known colours, give each sampled pixel (~8 evenly spaced frames, every
  2nd pixel) the nearest in CIE Lab when within deltaE76 25, refit g and o per channel by least
  squares over the 80 % of matched pixels with the smallest residual. The round matching the
  most pixels is kept.

It is fitted twice: from g0 ("set"), and from g0's luminance alone ("neutral": figures lit apart
from a coloured set, as neon signs tint the street more than the people in front of them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cinerl.core.schema import Character
from cinerl.rewards.colour import as_rgb_uint8, delta_e76, resize_to, rgb_to_lab
from cinerl.rewards.core.analysis import ClipAnalysis
from cinerl.rewards.core.context import ScoreContext

SHADES = (0.6, 0.8, 1.0, 1.2)
SKIN_TONES = ((241, 198, 170), (226, 176, 140), (200, 140, 104), (164, 112, 80), (118, 78, 54))
MATCH_DE = 25.0
BORDER = 0.12
N_FRAMES = 8
ROUNDS = 3
LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)  # Rec. 709 weights of linear light


def srgb_to_linear(rgb) -> np.ndarray:
    """uint8 sRGB -> linear light in [0, 1] (IEC 61966-2-1 transfer function)."""
    c = np.asarray(rgb, np.float32) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(lin: np.ndarray) -> np.ndarray:
    c = np.clip(lin, 0.0, 1.0)
    s = np.where(c <= 0.0031308, c * 12.92, 1.055 * np.power(c, 1 / 2.4) - 0.055)
    return np.clip(np.rint(s * 255.0), 0, 255).astype(np.uint8)


def lab_of(colours) -> np.ndarray:
    """(N, 3) Lab of a list of sRGB triples (empty in, empty out)."""
    arr = np.asarray(colours, np.uint8).reshape(-1, 1, 3)
    return rgb_to_lab(arr).reshape(-1, 3) if len(arr) else np.zeros((0, 3), np.float32)


def border_pixels(frames: np.ndarray, share: float = BORDER) -> np.ndarray:
    """(N, 3) pixels of the outer `share` of each frame's width and height, (F, h, w, 3) in:
    where the location shows even in a close-up."""
    _, h, w, _ = frames.shape
    bh, bw = max(1, int(h * share)), max(1, int(w * share))
    parts = [frames[:, :bh], frames[:, -bh:], frames[:, bh:-bh, :bw], frames[:, bh:-bh, -bw:]]
    return np.concatenate([p.reshape(-1, 3) for p in parts])


def character_colours(ch: Character) -> list[tuple[str, tuple[int, int, int]]]:
    """(label, sRGB) of a character's garments and hair."""
    garments = ch.garments or ["outfit"] * len(ch.wardrobe)
    out = [(f"{c.name} {g}", c.rgb) for c, g in zip(ch.wardrobe, garments)]
    if ch.hair is not None:
        out.append((f"{ch.hair.name} hair", ch.hair.rgb))
    return out


def assign(pixels_lab: np.ndarray, class_lab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(nearest class index, within MATCH_DE) for each pixel."""
    d = delta_e76(pixels_lab, class_lab)
    near = d.argmin(axis=1)
    return near, d[np.arange(len(near)), near] < MATCH_DE


@dataclass(frozen=True)
class LightFit:
    """One fitted light: pixel = gain * colour + offset (linear light), and the assignment."""

    gain: np.ndarray  # (3,)
    offset: np.ndarray  # (3,)
    near: np.ndarray  # (N,) nearest class of each sampled pixel
    hit: np.ndarray  # (N,) within MATCH_DE of it

    @property
    def exposure_stops(self) -> float:
        """log2 of the luminance gain against the daylight reference."""
        return float(np.log2(max(float(LUMA @ self.gain), 1e-4)))

    @property
    def warmth(self) -> float:
        """ln(g_R / g_B): the red-blue balance a lower colour temperature raises."""
        return float(np.log(max(float(self.gain[0]), 1e-4) / max(float(self.gain[2]), 1e-4)))

    def summary(self) -> dict:
        return {
            "gain": [round(float(x), 3) for x in self.gain],
            "offset": [round(float(x), 4) for x in self.offset],
            "matched": round(float(self.hit.mean()), 4),
        }


def fit_light(
    pixels: np.ndarray, class_rgb: np.ndarray, start_gain: np.ndarray, rounds: int = ROUNDS
) -> LightFit:
    """The affine light that makes the known colours explain the most pixels (module docstring)."""
    px_lab = rgb_to_lab(pixels.reshape(-1, 1, 3)).reshape(-1, 3)
    px_lin = srgb_to_linear(pixels).reshape(-1, 3)
    cls_lin = srgb_to_linear(class_rgb).reshape(-1, 3)
    g = np.clip(np.asarray(start_gain, np.float32), 0.02, 4.0)
    o = np.zeros(3, np.float32)
    best: LightFit | None = None
    for _ in range(rounds + 1):
        near, hit = assign(px_lab, lab_of(linear_to_srgb(cls_lin * g + o)))
        if best is None or hit.mean() > best.hit.mean():
            best = LightFit(g, o, near, hit)
        if hit.sum() < 50:
            break
        x, y = cls_lin[near[hit]], px_lin[hit]
        g, o = g.copy(), o.copy()
        for ch in range(3):
            res = np.abs(y[:, ch] - (g[ch] * x[:, ch] + o[ch]))
            keep = res <= np.quantile(res, 0.8)
            xs, ys = x[keep, ch], y[keep, ch]
            var = float(xs.var())
            if var < 1e-6:
                continue
            g[ch] = np.clip(float(((xs - xs.mean()) * (ys - ys.mean())).mean() / var), 0.02, 4.0)
            o[ch] = np.clip(ys.mean() - g[ch] * xs.mean(), -0.2, 0.2)
    assert best is not None
    return best


@dataclass(frozen=True)
class SceneColours:
    """The known colours of a scene: rgb (K, 3) and, per colour, the character it belongs to
    ("" for the location's shades and skin)."""

    rgb: np.ndarray
    owner: np.ndarray
    palette: list[tuple[int, int, int]]


def scene_colours(
    ctx: ScoreContext, classes: list[tuple[str, tuple[int, int, int]]] | None = None
) -> SceneColours:
    """Palette shades and skin tones, plus `classes` ((character id, rgb)) or, when None, every
    colour of every scene character."""
    palette: list[tuple[int, int, int]] = []
    if ctx.bible is not None and ctx.scene is not None:
        try:
            palette = [c.rgb for c in ctx.bible.location(ctx.scene.location_id).palette]
        except StopIteration:
            palette = []
    if classes is None:
        classes = []
        if ctx.bible is not None and ctx.scene is not None:
            known = {c.id: c for c in ctx.bible.characters}
            for cid in dict.fromkeys(ctx.scene.character_ids):
                if cid in known:
                    classes += [(cid, rgb) for _, rgb in character_colours(known[cid])]
    bg = [tuple(min(255, round(v * s)) for v in rgb) for rgb in palette for s in SHADES] + list(SKIN_TONES)
    rgb = np.asarray([c for _, c in classes] + bg, np.uint8).reshape(-1, 3)
    owner = np.asarray([cid for cid, _ in classes] + [""] * len(bg))
    return SceneColours(rgb, owner, palette)


def sampled_frames(analysis: ClipAnalysis) -> np.ndarray:
    """(F, h/2, w/2, 3) evenly spaced analysis frames, every 2nd pixel each way."""
    return analysis.frames[analysis.sample_indices(N_FRAMES), ::2, ::2]


def take_light(
    analysis: ClipAnalysis, ctx: ScoreContext, colours: SceneColours, neutral: bool = True
) -> dict[str, LightFit]:
    """{"set": fit from the border's grey world, "neutral": fit from its luminance alone (only
    when `neutral`)}."""
    frames = sampled_frames(analysis)
    if ctx.location_ref is not None:
        ref = resize_to(as_rgb_uint8(ctx.location_ref, "location reference"), analysis.width, analysis.height)
        ref_mean = srgb_to_linear(border_pixels(ref[None, ::2, ::2])).mean(0)
    else:
        ref_mean = srgb_to_linear(np.asarray(colours.palette or [(128, 128, 128)], np.uint8)).mean(0)
    start = srgb_to_linear(border_pixels(frames)).mean(0) / np.maximum(ref_mean, 1e-3)
    pixels = frames.reshape(-1, 3)
    fits = {"set": fit_light(pixels, colours.rgb, start)}
    if neutral:
        fits["neutral"] = fit_light(pixels, colours.rgb, np.full(3, float(LUMA @ start), np.float32))
    return fits


def scene_light_fit(analysis: ClipAnalysis, ctx: ScoreContext) -> LightFit | None:
    """The take's light fitted to every colour of the scene plan (the "set" fit), computed once
    per clip and context and shared; None without a scene, a bible or a palette."""
    if ctx.scene is None or ctx.bible is None:
        return None
    colours = scene_colours(ctx)
    if not colours.palette:
        return None
    key = f"scene_light_fit:{ctx.scene.index}:{ctx.scene.location_id}:{id(ctx.location_ref)}:{id(ctx.bible)}"
    return analysis.shared(key, lambda: take_light(analysis, ctx, colours, neutral=False)["set"])


def daylight_lab_pixels(analysis: ClipAnalysis, ctx: ScoreContext) -> list[np.ndarray]:
    """The sampled pixels (as analysis.sampled_lab_pixels(8, 2)) relit to the daylight of the
    references, once per fit of take_light ("set" and "neutral"): the fitted light undone,
    lin = (pixel - o) / g per channel (von Kries adaptation, as colour constancy does), in Lab;
    [] without a scene, a bible or a palette.

    Why: the character and location references are lit by daylight, so a take lit as its plan
    asks (a candlelit room, a neon street) failed the wardrobe and palette matches for its light
    alone. A face or DINO embedding largely ignores a global colour cast; matching the relit pixels
    does the same for the colour components, and scene_light is the one that judges the light.
    Both fits, because figures under neon signs are lit apart from the set ("neutral")."""
    if ctx.scene is None or ctx.bible is None:
        return []
    colours = scene_colours(ctx)
    if not colours.palette:
        return []

    def relight() -> list[np.ndarray]:
        frames = np.ascontiguousarray(analysis.frames[analysis.sample_indices(N_FRAMES), ::2, ::2])
        lin = srgb_to_linear(frames)
        out = []
        for fit in take_light(analysis, ctx, colours).values():
            day = (lin - fit.offset) / np.maximum(fit.gain, 0.02)
            out.append(rgb_to_lab(linear_to_srgb(day)).reshape(-1, 3))
        return out

    key = f"daylight_lab:{ctx.scene.index}:{ctx.scene.location_id}:{id(ctx.location_ref)}:{id(ctx.bible)}"
    return analysis.shared(key, relight)
