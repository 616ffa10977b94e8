"""previz: a fast CPU animatic renderer that reads nothing but the prompt.

It stands in for a text-to-video model so the whole RL loop (compose prompt -> render -> score ->
update policy) runs on a laptop. It is deliberately not "good": it reproduces the failures a real
generator shows, driven by the same prompt wording a real model responds to, so the reward suite
gets meaningful differences between prompts:

* identity drift: a person whose hair/wardrobe colours are not written gets colours drawn from the
  request seed, so they change from scene to scene (but not within a clip);
* location drift: a place without named colours (or without a scenery word) gets a palette (and a
  layout type) drawn from the seed;
* camera shake: handheld is a random walk plus per-frame shake; pans, tilts, dollies and zooms are
  smooth affine moves over a canvas larger than the frame;
* generator artifacts (brightness flicker, jitter, colour morphing of figures, slow colour shift,
  blur and grain) are always present and weakened by the matching negative-prompt words.

Rendering is cheap by construction: the background canvas and the figure sprites are drawn once per
clip; each frame is a few sprite pastes, one cv2.warpAffine, one cv2.transform and a grain add.
"""

from __future__ import annotations

import math
import time
import zlib
from dataclasses import dataclass

import cv2
import numpy as np

from cinerl.generation.previz.parse import FigureSpec, ShotSpec, parse_prompt
from cinerl.core.vocabulary import COLORS, SCENERY_TYPES
from cinerl.core.schema import Clip, ClipRequest

__all__ = ["PrevizBackend", "parse_prompt", "ShotSpec", "FigureSpec", "resolve_look", "render",
           "fit_image"]

CANVAS_SCALE = 1.5  # background canvas is this much larger than the frame, room for camera moves
STUDIO_GREY = (128, 128, 128)
SKIN_TONES = ((241, 198, 170), (226, 176, 140), (200, 140, 104), (164, 112, 80), (118, 78, 54),
              (236, 188, 160))
HAIR_CHOICES = ("black", "jet black", "brown", "chestnut", "auburn", "blonde", "grey", "ash grey",
                "walnut", "copper")
WARDROBE_CHOICES = tuple(sorted(COLORS))
PALETTE_CHOICES = tuple(sorted(COLORS))
FEMALE_NOUNS = {"woman", "girl", "witch", "queen", "princess", "heroine"}
CHILD_NOUNS = {"girl", "boy", "child"}
ROBOT_NOUNS = {"robot", "android"}

# Shot size -> (figure height, feet line), both as fractions of the frame height.
SHOT_FRAMING = {"extreme wide": (0.2, 0.8), "wide": (0.55, 0.86), "medium": (1.3, 1.38),
                "close-up": (2.3, 2.36)}
# Extra depth-of-field blur of the background, as a fraction of the frame width.
SHOT_DOF = {"extreme wide": 0.0, "wide": 0.0, "medium": 0.0015, "close-up": 0.004}


@dataclass(frozen=True)
class Artifacts:
    """Strength of the modelled generator failures; the negative prompt turns each one down.

    Defaults are strong on purpose (an empty negative prompt should cost reward). Negative words
    previz has no failure for ("deformed", "watermark", "text") are accepted and change nothing."""

    flicker: float  # sigma of per-frame global brightness offset, 0-255 levels
    jitter: float  # sigma of per-frame camera translation, fraction of frame width
    morph: float  # amplitude of figure colour wobble, levels
    colour_shift: float  # sigma of the end-of-clip global per-channel drift, levels
    blur: float  # gaussian blur sigma, fraction of frame width
    grain: float  # sigma of per-frame film grain, levels

    @classmethod
    def from_negatives(cls, negatives: list[str]) -> "Artifacts":
        n = set(negatives)
        return cls(flicker=0.6 if "flicker" in n else 6.0,
                   jitter=0.0001 if "jitter" in n else 0.0013,
                   morph=2.0 if "morphing" in n else 16.0,
                   colour_shift=1.5 if "colour shift" in n else 12.0,
                   blur=0.0 if "blurry" in n else 0.0022,
                   grain=1.2 if "low quality" in n else 4.0)

    @classmethod
    def none(cls) -> "Artifacts":
        return cls(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


# --------------------------------------------------------------------------------------------
# randomness


def _rng(seed: int, tag: str) -> np.random.Generator:
    """A stream per purpose, so e.g. a figure's colours do not change when the camera does.

    zlib.crc32 (not hash()) keeps streams identical across processes."""
    return np.random.default_rng([int(seed) % (2**63), zlib.crc32(tag.encode("utf-8"))])


def _smooth_series(r: np.random.Generator, t: np.ndarray, fmin: float, fmax: float,
                   k: int = 3) -> np.ndarray:
    """Sum of k random sinusoids, unit-ish amplitude: a cheap smooth random signal over time t."""
    out = np.zeros_like(t, dtype=np.float64)
    for _ in range(k):
        out += np.sin(2 * np.pi * r.uniform(fmin, fmax) * t + r.uniform(0, 2 * np.pi))
    return out / math.sqrt(k / 2)


# --------------------------------------------------------------------------------------------
# look: turn what the prompt says (and the seed, for what it does not) into concrete colours


def _choose(r: np.random.Generator, seq):
    return seq[int(r.integers(len(seq)))]


def resolve_look(spec: ShotSpec, seed: int) -> dict:
    """Concrete scenery, palette and figure colours. Unstated attributes are drawn from the seed:
    this is where identity and location drift come from."""
    if spec.studio:
        scenery, palette, source = "studio", [("studio grey", STUDIO_GREY)], "studio"
    else:
        scenery = spec.scenery_type or _choose(_rng(seed, "scenery"), tuple(SCENERY_TYPES))
        if spec.palette:
            palette, source = [(c, COLORS[c]) for c in spec.palette], "prompt"
        else:
            r = _rng(seed, "palette")
            names = r.choice(len(PALETTE_CHOICES), size=3, replace=False)
            palette = [(PALETTE_CHOICES[i], COLORS[PALETTE_CHOICES[i]]) for i in names]
            source = "seed"
    # A named place keeps its layout across scenes (a model imagines "the Old Harbour" alike);
    # an unnamed one gets a new layout each seed.
    layout_seed = (zlib.crc32(spec.location_name.lower().encode()) if spec.location_name
                   else int(seed) % (2**32))

    figures = []
    for i, f in enumerate(spec.figures):
        r = _rng(seed, f"figure{i}")
        robot = f.noun in ROBOT_NOUNS
        hair = None if robot else (f.hair or _choose(r, HAIR_CHOICES))
        wardrobe = list(f.wardrobe)
        while len(wardrobe) < 2:
            wardrobe.append(_choose(r, WARDROBE_CHOICES))
        if robot:
            skin = COLORS["silver"]
        elif f.name:
            skin = SKIN_TONES[zlib.crc32(f.name.lower().encode()) % len(SKIN_TONES)]
        else:
            skin = SKIN_TONES[int(r.integers(len(SKIN_TONES)))]
        if f.age is not None:
            a = f.age
            height = 0.42 + 0.58 * a / 17 if a < 17 else (0.96 if a >= 75 else 1.0)
        else:
            height = 0.62 if f.noun in CHILD_NOUNS else 1.0
        figures.append({
            "name": f.name, "noun": f.noun, "hair": hair,
            "hair_rgb": COLORS[hair] if hair else None,
            "wardrobe": wardrobe[:3], "wardrobe_rgb": [COLORS[c] for c in wardrobe[:3]],
            "skin_rgb": skin, "height": float(np.clip(height, 0.35, 1.0)),
            "female": f.noun in FEMALE_NOUNS, "robot": robot,
            "locked": {"hair": f.hair is not None or robot,
                       "wardrobe": len(f.wardrobe) >= 2},
        })
    return {"scenery_type": scenery, "palette": [[n, list(c)] for n, c in palette],
            "palette_source": source, "layout_seed": layout_seed, "figures": figures}


# --------------------------------------------------------------------------------------------
# lighting: a colour affine (A, b) in sRGB levels baked into canvas and sprites


def _affine(gain=(1.0, 1.0, 1.0), offset=(0.0, 0.0, 0.0), desat: float = 0.0):
    luma = np.array([0.299, 0.587, 0.114])
    a = (1 - desat) * np.eye(3) + desat * np.tile(luma, (3, 1))
    return np.diag(gain) @ a, np.asarray(offset, dtype=np.float64)


_TIME_LIGHT = {
    "day": _affine(), "noon": _affine((1.04, 1.04, 1.04)),
    "morning": _affine((1.03, 1.0, 0.95)),
    "dawn": _affine((1.02, 0.92, 0.9), (6, 2, 6)),
    "dusk": _affine((0.9, 0.76, 0.7), (10, 2, 6)), "sunset": _affine((0.95, 0.78, 0.66), (12, 2, 0)),
    "night": _affine((0.42, 0.48, 0.62), (4, 6, 16)),
}
# name -> (affine, vignette strength, neon overlay strength, candle flicker amplitude)
_LIGHTS = {
    "soft daylight": (_affine(), 0.0, 0.0, 0.0),
    "golden hour": (_affine((1.06, 0.93, 0.72), (14, 6, -4)), 0.1, 0.0, 0.0),
    "overcast": (_affine((0.9, 0.92, 0.95), (6, 8, 12), desat=0.45), 0.0, 0.0, 0.0),
    "low key": (_affine((0.62, 0.62, 0.62), (-4, -4, -2)), 0.6, 0.0, 0.0),
    "candlelight": (_affine((0.92, 0.7, 0.45), (10, 2, -4)), 0.4, 0.0, 0.07),
    "neon": (_affine((0.66, 0.62, 0.7)), 0.15, 0.3, 0.0),
}
_NEON_A, _NEON_B = np.array([255, 40, 180], np.float32), np.array([40, 210, 230], np.float32)


def _lighting(spec: ShotSpec):
    """Combined (A, b), vignette, neon strength, candle flicker. An explicit lighting phrase
    dominates: the time of day then acts at half strength."""
    a, b = np.eye(3), np.zeros(3)
    vign = neon = candle = 0.0
    if spec.lighting in _LIGHTS:
        (a, b), vign, neon, candle = _LIGHTS[spec.lighting]
    if spec.time_of_day in _TIME_LIGHT and not spec.studio:
        ta, tb = _TIME_LIGHT[spec.time_of_day]
        if spec.lighting:
            ta, tb = np.eye(3) + 0.5 * (ta - np.eye(3)), 0.5 * tb
        a, b = a @ ta, a @ tb + b
    return a.astype(np.float32), b.astype(np.float32), vign, neon, candle


def _apply_affine(img: np.ndarray, a: np.ndarray, b: np.ndarray, alpha: np.ndarray | None = None):
    """img float32 (..., 3) -> A img + b (b scaled by alpha for premultiplied sprites)."""
    out = img @ a.T
    out += b if alpha is None else alpha[..., None] * b
    return out


# --------------------------------------------------------------------------------------------
# background layouts: a label map whose elements are later coloured from the palette


class _Painter:
    """Draws layout elements into a label map in frame-relative units (fx, fy in [0, 1] is the
    home view; the canvas spans about [-0.25, 1.25]). Each element has a rank (base + slope * fy)
    that orders it for palette assignment, and a brightness shade that keeps shapes readable when
    neighbouring elements share a colour."""

    def __init__(self, wc: int, hc: int, ox: float, oy: float, w: int, h: int):
        self.wc, self.hc, self.ox, self.oy, self.w, self.h = wc, hc, ox, oy, w, h
        self.lab = np.zeros((hc, wc), np.uint8)
        self.detail = np.ones((hc, wc), np.float32)
        self.base: list[float] = []
        self.slope: list[float] = []
        self.shade: list[float] = []
        self.colfx = (np.arange(wc, dtype=np.float32) - ox) / w

    def element(self, base: float, slope: float = 0.04, shade: float = 1.0) -> int:
        self.base.append(base)
        self.slope.append(slope)
        self.shade.append(shade)
        return len(self.base) - 1

    def _pts(self, pts) -> np.ndarray:
        arr = np.asarray(pts, np.float64)
        x = (self.ox + arr[:, 0] * self.w) * 16
        y = (self.oy + arr[:, 1] * self.h) * 16
        return np.round(np.stack([x, y], 1)).astype(np.int32)

    def poly(self, eid: int, pts, img=None, value=None):
        img = self.lab if img is None else img
        cv2.fillPoly(img, [self._pts(pts)], eid if value is None else value, cv2.LINE_8, 4)

    def rect(self, eid: int, x0, y0, x1, y1):
        self.poly(eid, [(x0, y0), (x1, y0), (x1, y1), (x0, y1)])

    def shade_rect(self, value: float, x0, y0, x1, y1):
        self.poly(0, [(x0, y0), (x1, y0), (x1, y1), (x0, y1)], img=self.detail, value=value)

    def ellipse(self, eid: int, fx, fy, rx_h, ry_h, img=None, value=None):
        """Ellipse centred at (fx, fy) with radii in frame-height units (so circles stay round)."""
        img = self.lab if img is None else img
        c = (int(round((self.ox + fx * self.w) * 16)), int(round((self.oy + fy * self.h) * 16)))
        ax = (max(1, int(round(rx_h * self.h * 16))), max(1, int(round(ry_h * self.h * 16))))
        cv2.ellipse(img, c, ax, 0, 0, 360, eid if value is None else value, -1, cv2.LINE_8, 4)

    def below(self, eid: int, xs, ys):
        """Fill everything below the curve y(x) (x, y in frame units, linearly interpolated)."""
        thr = self.oy + np.interp(self.colfx, xs, ys).astype(np.float32) * self.h
        rows = np.arange(self.hc, dtype=np.float32)[:, None]
        self.lab[rows >= thr[None, :]] = eid

    def curve_shade(self, value: float, xs, ys, thickness_h: float):
        pts = self._pts(np.stack([xs, ys], 1)).reshape(-1, 1, 2)
        t = max(1, int(round(thickness_h * self.h)))
        cv2.polylines(self.detail, [pts], False, value, t, cv2.LINE_8, 4)


_XS = np.linspace(-0.3, 1.3, 97)


def _wavy(r, base, amp, fmin=1.0, fmax=4.0, k=3):
    return base + amp * _smooth_series(r, _XS, fmin, fmax, k)


def _lay_forest(p: _Painter, r):
    h = r.uniform(0.5, 0.6)
    far = p.element(0.45, shade=0.88)
    p.below(far, _XS, _wavy(r, h - 0.14, 0.03, 2, 6))
    ground = p.element(0.8, 0.3, 0.97)
    p.below(ground, _XS, _wavy(r, h, 0.01))
    canopy, trunk = p.element(0.35, shade=0.95), p.element(0.62, shade=0.8)
    for _ in range(int(r.integers(9, 15))):
        x, yb = r.uniform(-0.3, 1.3), h + r.uniform(0.0, 0.35)
        w = 0.012 + 0.06 * (yb - h)
        p.ellipse(canopy, x, r.uniform(-0.15, 0.12), r.uniform(0.1, 0.2), r.uniform(0.1, 0.2))
        p.rect(trunk, x - w / 2, -0.35, x + w / 2, yb)


def _lay_city(p: _Painter, r):
    h = r.uniform(0.6, 0.68)
    back, front = p.element(0.5, shade=0.86), p.element(0.62, shade=1.0)
    x = -0.3
    while x < 1.3:
        w = r.uniform(0.06, 0.14)
        p.rect(back, x, r.uniform(0.05, 0.35), x + w, h)
        x += w
    x = -0.3 + r.uniform(0, 0.1)
    while x < 1.3:
        w, top = r.uniform(0.1, 0.2), r.uniform(-0.1, 0.3)
        p.rect(front, x, top, x + w, h)
        for wy in np.arange(top + 0.04, h - 0.08, 0.07):
            for wx in np.arange(x + 0.02, x + w - 0.03, 0.04):
                p.shade_rect(0.72, wx, wy, wx + 0.018, wy + 0.035)
        x += w + r.uniform(0.02, 0.12)
    street = p.element(0.85, 0.3, 0.95)
    p.below(street, _XS, np.full_like(_XS, h))
    p.shade_rect(0.85, -0.3, h, 1.3, h + 0.015)


def _lay_harbour(p: _Painter, r):
    h = r.uniform(0.42, 0.5)
    bld = p.element(0.45, shade=0.9)
    x = -0.3
    while x < 1.3:
        w, top = r.uniform(0.05, 0.12), h - r.uniform(0.07, 0.2)
        p.rect(bld, x, top, x + w, h)
        if r.random() < 0.5:
            p.poly(bld, [(x, top), (x + w, top), (x + w / 2, top - 0.05)])
        x += w + r.uniform(0.0, 0.05)
    water = p.element(0.7, 0.15, 0.93)
    p.below(water, _XS, np.full_like(_XS, h))
    qy = r.uniform(0.74, 0.8)
    for k in range(9):
        y = h + (k + 1) * (qy - h) / 10
        p.curve_shade(0.86, _XS, y + 0.006 * np.sin(_XS * (20 + k) + r.uniform(0, 6)), 0.004)
    boat = p.element(0.58, shade=0.88)
    for _ in range(int(r.integers(2, 4))):
        bx, by = r.uniform(-0.1, 1.1), r.uniform(h + 0.05, qy - 0.02)
        s = 0.5 + (by - h) / (qy - h)
        bw = 0.16 * s
        p.poly(boat, [(bx - bw / 2, by - 0.04 * s), (bx + bw / 2, by - 0.04 * s),
                      (bx + bw * 0.38, by), (bx - bw * 0.38, by)])
        p.rect(boat, bx - bw * 0.15, by - 0.08 * s, bx + bw * 0.1, by - 0.04 * s)
        p.rect(boat, bx - 0.003, by - 0.3 * s, bx + 0.003, by - 0.04 * s)
    quay = p.element(0.92, 0.3, 1.0)
    p.below(quay, _XS, np.full_like(_XS, qy))
    p.shade_rect(0.8, -0.3, qy, 1.3, qy + 0.012)


def _lay_sea(p: _Painter, r):
    h = r.uniform(0.38, 0.48)
    sea = p.element(0.55, 0.4, 0.95)
    p.below(sea, _XS, np.full_like(_XS, h))
    beach_y = r.uniform(0.8, 0.9)
    for k in range(12):
        y = h + (beach_y - h) * ((k + 1) / 13) ** 1.3
        p.curve_shade(1.12, _XS, y + 0.01 * np.sin(_XS * (9 + k) + r.uniform(0, 6)), 0.005)
    beach = p.element(0.92, 0.3, 1.02)
    p.below(beach, _XS, _wavy(r, beach_y, 0.015))


def _lay_desert(p: _Painter, r):
    h = r.uniform(0.45, 0.55)
    for k, (base, shade) in enumerate(((0.5, 1.0), (0.65, 0.92), (0.8, 1.05))):
        d = p.element(base, 0.2, shade)
        p.below(d, _XS, _wavy(r, h + k * 0.12, 0.035, 0.5, 2.5))


def _zigzag(r, lo, hi, vlo, vhi):
    xs, ys, x, peak = [-0.35], [vhi], -0.35, True
    while x < 1.35:
        x += r.uniform(0.08, 0.2)
        xs.append(x)
        ys.append(r.uniform(lo, hi) if peak else r.uniform(vlo, vhi))
        peak = not peak
    return xs + [1.4, -0.35], ys + [1.4, 1.4]


def _lay_mountain(p: _Painter, r):
    h = r.uniform(0.55, 0.65)
    for base, shade, lo, hi in ((0.45, 0.88, h - 0.45, h - 0.25), (0.6, 1.0, h - 0.3, h - 0.15)):
        e = p.element(base, 0.1, shade)
        xs, ys = _zigzag(r, lo, hi, h - 0.12, h - 0.02)
        p.poly(e, list(zip(xs, ys)))
    ground = p.element(0.85, 0.3, 0.95)
    p.below(ground, _XS, _wavy(r, h + 0.08, 0.02))


def _lay_snow(p: _Painter, r):
    h = r.uniform(0.5, 0.58)
    hills = p.element(0.45, 0.1, 0.9)
    p.below(hills, _XS, _wavy(r, h - 0.1, 0.04, 0.5, 2))
    field = p.element(0.8, 0.3, 1.03)
    p.below(field, _XS, _wavy(r, h, 0.015, 0.5, 2))
    pine = p.element(0.62, 0.05, 0.8)
    for _ in range(int(r.integers(4, 9))):
        x, yb = r.uniform(-0.3, 1.3), h + r.uniform(0.0, 0.2)
        s = 0.12 + 0.6 * (yb - h)
        p.poly(pine, [(x, yb - s * 1.6), (x + s * 0.3, yb), (x - s * 0.3, yb)])


def _lay_interior(p: _Painter, r):
    fy = r.uniform(0.64, 0.72)
    l, rt = r.uniform(0.05, 0.2), r.uniform(0.8, 0.95)
    ceil_y = r.uniform(0.08, 0.18)
    ceiling = p.element(-0.1, 0.05, 0.92)
    p.poly(ceiling, [(-0.35, -0.35), (1.35, -0.35), (rt, ceil_y), (l, ceil_y)])
    side = p.element(0.55, 0.05, 0.88)
    p.poly(side, [(-0.35, -0.35), (l, ceil_y), (l, fy), (-0.35, 1.35)])
    p.poly(side, [(1.35, -0.35), (rt, ceil_y), (rt, fy), (1.35, 1.35)])
    floor = p.element(0.85, 0.3, 0.96)
    p.poly(floor, [(-0.35, 1.35), (1.35, 1.35), (rt, fy), (l, fy)])
    win = p.element(0.3, 0.05, 1.08)
    wx = r.uniform(l + 0.05, rt - 0.25)
    p.rect(win, wx, ceil_y + 0.1, wx + 0.2, ceil_y + 0.32)
    p.shade_rect(0.75, wx + 0.097, ceil_y + 0.1, wx + 0.103, ceil_y + 0.32)
    door = p.element(0.62, 0.05, 0.85)
    dx = r.choice([l + 0.03, rt - 0.15])
    p.rect(door, dx, fy - 0.33, dx + 0.12, fy)
    table = p.element(0.7, 0.05, 0.8)
    tx = r.uniform(-0.2, 0.9)
    p.rect(table, tx, fy + 0.05, tx + 0.35, fy + 0.1)
    p.rect(table, tx + 0.02, fy + 0.1, tx + 0.04, fy + 0.22)
    p.rect(table, tx + 0.31, fy + 0.1, tx + 0.33, fy + 0.22)


def _lay_castle(p: _Painter, r):
    h = r.uniform(0.6, 0.68)
    hills = p.element(0.4, 0.1, 0.9)
    p.below(hills, _XS, _wavy(r, h - 0.1, 0.03, 0.5, 2))
    wall = p.element(0.55, 0.05, 1.0)
    x0, x1, top = r.uniform(-0.25, 0.1), r.uniform(0.9, 1.25), h - r.uniform(0.25, 0.35)
    p.rect(wall, x0, top, x1, h)
    for cx in np.arange(x0, x1, 0.05):
        p.rect(wall, cx, top - 0.04, cx + 0.025, top)
    tower = p.element(0.62, 0.05, 0.92)
    for tx in (x0, (x0 + x1) / 2 + r.uniform(-0.2, 0.2), x1 - 0.1):
        tt = top - r.uniform(0.15, 0.3)
        p.rect(tower, tx, tt, tx + 0.1, h)
        for cx in np.arange(tx, tx + 0.1, 0.033):
            p.rect(tower, cx, tt - 0.035, cx + 0.017, tt)
    gate_x = (x0 + x1) / 2
    p.shade_rect(0.55, gate_x - 0.05, h - 0.16, gate_x + 0.05, h)
    ground = p.element(0.85, 0.3, 0.96)
    p.below(ground, _XS, _wavy(r, h, 0.01))


def _lay_meadow(p: _Painter, r):
    h = r.uniform(0.45, 0.55)
    far = p.element(0.45, 0.1, 0.9)
    p.below(far, _XS, _wavy(r, h, 0.04, 0.5, 2))
    near = p.element(0.75, 0.3, 1.0)
    p.below(near, _XS, _wavy(r, h + 0.12, 0.04, 0.5, 2))
    bush = p.element(0.6, 0.05, 0.82)
    for _ in range(int(r.integers(3, 7))):
        x, y = r.uniform(-0.3, 1.3), h + r.uniform(0.0, 0.1)
        p.ellipse(bush, x, y, r.uniform(0.04, 0.1), r.uniform(0.03, 0.06))
    fy = h + r.uniform(0.2, 0.3)
    p.shade_rect(0.8, -0.3, fy, 1.3, fy + 0.008)
    for px in np.arange(-0.3, 1.3, 0.08):
        p.shade_rect(0.8, px, fy - 0.05, px + 0.008, fy + 0.03)


def _lay_space(p: _Painter, r):
    n = int(60 * (p.wc * p.hc) / (640 * 360)) + 10
    xs, ys = r.uniform(0, p.wc, n).astype(int), r.uniform(0, p.hc * 0.8, n).astype(int)
    p.detail[ys, xs] = 1.8
    planet = p.element(0.5, 0.1, 1.0)
    cx, cy, rad = r.uniform(0.2, 0.8), r.uniform(0.15, 0.35), r.uniform(0.15, 0.3)
    p.ellipse(planet, cx, cy, rad, rad)
    p.ellipse(planet, cx, cy, rad * 1.7, rad * 0.18, img=p.detail, value=0.8)
    deck = p.element(0.85, 0.3, 0.95)
    dy = r.uniform(0.72, 0.8)
    p.below(deck, _XS, np.full_like(_XS, dy))
    for k in range(6):
        p.shade_rect(0.85, -0.3, dy + k * 0.06, 1.3, dy + k * 0.06 + 0.006)


def _lay_underground(p: _Painter, r):
    # element 0 is the opening (darkest, far); rock is everything else
    rock = p.element(0.5, 0.1, 0.88)
    p.rect(rock, -0.35, -0.35, 1.35, 1.35)
    cx = r.uniform(0.3, 0.7)
    opening = 0
    p.ellipse(opening, cx, 0.5, r.uniform(0.25, 0.35), r.uniform(0.3, 0.4))
    p.shade_rect(0.8, cx - 0.5, 0.0, cx + 0.5, 0.1)
    stal = p.element(0.62, 0.05, 0.8)
    for _ in range(int(r.integers(4, 9))):
        x = r.uniform(-0.3, 1.3)
        p.poly(stal, [(x - 0.03, -0.35), (x + 0.03, -0.35), (x, r.uniform(0.05, 0.25))])
    floor = p.element(0.85, 0.3, 0.95)
    p.below(floor, _XS, _wavy(r, r.uniform(0.7, 0.78), 0.02, 2, 8))


_LAYOUTS = {"forest": _lay_forest, "city": _lay_city, "harbour": _lay_harbour, "sea": _lay_sea,
            "desert": _lay_desert, "mountain": _lay_mountain, "snow": _lay_snow,
            "interior": _lay_interior, "castle": _lay_castle, "meadow": _lay_meadow,
            "space": _lay_space, "underground": _lay_underground}


def _texture(r, hc: int, wc: int, amp: float) -> np.ndarray:
    """Low-frequency multiplicative texture, 1 +- amp."""
    gh, gw = max(2, hc // 40), max(2, wc // 40)
    small = r.standard_normal((gh, gw)).astype(np.float32)
    return 1.0 + amp * cv2.resize(small, (wc, hc), interpolation=cv2.INTER_CUBIC)


def _background(look: dict, w: int, h: int, wc: int, hc: int, ox: float, oy: float) -> np.ndarray:
    """Float32 RGB canvas (hc, wc, 3) before lighting. Palette colours split the visible
    background into (nearly) equal shares by quantiles of the layout's rank field."""
    r = _rng(look["layout_seed"], "layout:" + look["scenery_type"])
    if look["scenery_type"] == "studio":
        canvas = np.empty((hc, wc, 3), np.float32)
        canvas[:] = STUDIO_GREY
        rows = (np.arange(hc, dtype=np.float32) - oy) / h
        floor = np.clip((rows - 0.8) / 0.1, 0, 1) * -8.0  # a faint floor line, still neutral
        canvas += floor[:, None, None]
        return canvas
    p = _Painter(wc, hc, ox, oy, w, h)
    sky = p.element(0.0, 0.3, 1.03)
    assert sky == 0
    _LAYOUTS[look["scenery_type"]](p, r)
    base, slope, shade = (np.asarray(v, np.float32) for v in (p.base, p.slope, p.shade))
    fy = ((np.arange(hc, dtype=np.float32) - oy) / h)[:, None]
    rank = base[p.lab] + slope[p.lab] * fy
    colours = np.asarray([c for _n, c in look["palette"]], np.float32)
    k = len(colours)
    if k > 1:
        view = rank[int(oy):int(oy) + h:2, int(ox):int(ox) + w:2]
        thresholds = np.quantile(view, np.arange(1, k) / k)
        idx = np.searchsorted(thresholds, rank, side="right")
    else:
        idx = np.zeros(rank.shape, np.intp)
    # thin dark outlines between elements keep shapes legible when neighbours share a colour
    edges = np.zeros(p.lab.shape, np.uint8)
    edges[:, 1:] |= p.lab[:, 1:] != p.lab[:, :-1]
    edges[1:, :] |= p.lab[1:, :] != p.lab[:-1, :]
    if w >= 400:
        edges = cv2.dilate(edges, np.ones((2, 2), np.uint8))
    p.detail[edges.astype(bool)] *= 0.8
    mult = shade[p.lab] * p.detail * _texture(r, hc, wc, 0.025)
    canvas = colours[idx] * mult[..., None]
    canvas += r.normal(0.0, 1.5, size=(hc, wc, 1)).astype(np.float32)
    return canvas


# --------------------------------------------------------------------------------------------
# figures


_SPRITE_PAD = 2.0  # transparent margin around a sprite, pixels


def _figure_sprite(fig: dict, hf: float) -> tuple[np.ndarray, float, float]:
    """Premultiplied RGBA float32 sprite of one figure hf pixels tall, plus the feet anchor (x, y).

    Flat colours on purpose: the wardrobe colour is what the identity reward measures."""
    hf = max(hf, 6.0)
    sw, sh = int(math.ceil(hf * 0.56)) + 4, int(math.ceil(hf)) + 2 * int(_SPRITE_PAD)
    rgb = np.zeros((sh, sw, 3), np.uint8)
    alpha = np.zeros((sh, sw), np.uint8)
    cx, y0 = sw / 2.0, _SPRITE_PAD

    def pt(x, y):
        return (int(round((cx + x * hf) * 16)), int(round((y0 + y * hf) * 16)))

    def poly(points, colour):
        arr = np.array([pt(x, y) for x, y in points], np.int32)
        cv2.fillPoly(rgb, [arr], tuple(int(c) for c in colour), cv2.LINE_AA, 4)
        cv2.fillPoly(alpha, [arr], 255, cv2.LINE_AA, 4)

    def ellipse(x, y, rx, ry, colour, a0=0, a1=360):
        c, ax = pt(x, y), (max(1, int(round(rx * hf * 16))), max(1, int(round(ry * hf * 16))))
        cv2.ellipse(rgb, c, ax, 0, a0, a1, tuple(int(v) for v in colour), -1, cv2.LINE_AA, 4)
        cv2.ellipse(alpha, c, ax, 0, a0, a1, 255, -1, cv2.LINE_AA, 4)

    torso, legs = fig["wardrobe_rgb"][0], fig["wardrobe_rgb"][1]
    skin, hair = fig["skin_rgb"], fig["hair_rgb"]
    sh_w = 0.14 if fig["female"] else 0.16
    shoe = tuple(int(c * 0.45) for c in legs)
    # legs, shoes
    poly([(-0.105, 0.55), (-0.012, 0.55), (-0.02, 0.97), (-0.095, 0.97)], legs)
    poly([(0.012, 0.55), (0.105, 0.55), (0.095, 0.97), (0.02, 0.97)], legs)
    ellipse(-0.065, 0.975, 0.05, 0.022, shoe)
    ellipse(0.065, 0.975, 0.05, 0.022, shoe)
    if fig["female"] and hair is not None:  # long hair behind the shoulders
        poly([(-0.082, 0.08), (0.082, 0.08), (0.097, 0.27), (-0.097, 0.27)], hair)
    # arms (sleeves in the torso colour), hands
    poly([(-sh_w, 0.205), (-sh_w + 0.05, 0.22), (-sh_w - 0.005, 0.52), (-sh_w - 0.055, 0.5)], torso)
    poly([(sh_w, 0.205), (sh_w - 0.05, 0.22), (sh_w + 0.005, 0.52), (sh_w + 0.055, 0.5)], torso)
    ellipse(-sh_w - 0.03, 0.535, 0.028, 0.03, skin)
    ellipse(sh_w + 0.03, 0.535, 0.028, 0.03, skin)
    # neck, torso (a coat down to the hips)
    poly([(-0.03, 0.14), (0.03, 0.14), (0.03, 0.21), (-0.03, 0.21)], skin)
    poly([(-sh_w, 0.2), (sh_w, 0.2), (0.13, 0.6), (-0.13, 0.6)], torso)
    if len(fig["wardrobe_rgb"]) > 2:  # accessory: a scarf
        acc = fig["wardrobe_rgb"][2]
        poly([(-0.075, 0.19), (0.075, 0.19), (0.07, 0.235), (-0.07, 0.235)], acc)
        poly([(0.02, 0.22), (0.065, 0.22), (0.06, 0.4), (0.025, 0.4)], acc)
    # head and hair
    ellipse(0.0, 0.082, 0.062, 0.075, skin)
    if hair is not None:
        ellipse(0.0, 0.072, 0.068, 0.068, hair, 180, 360)
        poly([(-0.068, 0.072), (-0.054, 0.072), (-0.058, 0.11), (-0.07, 0.1)], hair)
        poly([(0.068, 0.072), (0.054, 0.072), (0.058, 0.11), (0.07, 0.1)], hair)
    else:  # robot: a visor
        poly([(-0.045, 0.07), (0.045, 0.07), (0.045, 0.095), (-0.045, 0.095)], (20, 200, 230))
    a = alpha.astype(np.float32) / 255.0
    sprite = np.dstack([rgb.astype(np.float32), a])
    return sprite, cx, y0 + hf


def _figure_paths(spec: ShotSpec, n: int, t: np.ndarray, fps: int, w: int, seed: int):
    """World-space offsets (dx, dy) per frame and figure, in pixels. Frantic motion changes
    direction at random every few frames: that is what makes its optical flow jerky."""
    dx = np.zeros((len(t), n))
    dy = np.zeros((len(t), n))
    for i in range(n):
        r = _rng(seed, f"motion{i}")
        if spec.motion == "still":
            dx[:, i] = 0.002 * w * _smooth_series(r, t, 0.05, 0.15, 2)
            dy[:, i] = 0.001 * w * np.sin(2 * np.pi * 0.25 * t + r.uniform(0, 6))
        elif spec.motion == "dynamic":
            dx[:, i] = 0.07 * w * _smooth_series(r, t, 0.15, 0.45, 2)
            dy[:, i] = 0.006 * w * np.sin(2 * np.pi * 1.6 * t + r.uniform(0, 6))
        elif spec.motion == "frantic":
            x, v, out = 0.0, 0.0, []
            k = 0
            for _ in range(len(t)):
                if k <= 0:
                    v = r.normal(0.0, 0.012 * w) * 24.0 / max(fps, 1)
                    k = int(r.integers(2, 6))
                k -= 1
                x += v
                if abs(x) > 0.12 * w:
                    v, x = -v, math.copysign(0.12 * w, x)
                out.append(x)
            dx[:, i] = out
            dy[:, i] = 0.004 * w * r.standard_normal(len(t))
        else:  # gentle
            dx[:, i] = 0.025 * w * _smooth_series(r, t, 0.08, 0.2, 2)
            dy[:, i] = 0.003 * w * np.sin(2 * np.pi * 1.0 * t + r.uniform(0, 6))
    return dx, dy


# --------------------------------------------------------------------------------------------
# camera


def _camera_path(spec: ShotSpec, t: np.ndarray, w: int, h: int, seed: int, art: Artifacts):
    """Per-frame view centre offset (px, py), zoom and roll. Smooth moves are linear or
    exponential in time; handheld is a random walk plus per-frame shake."""
    n = len(t)
    dur = max(float(t[-1]) if n > 1 else 0.0, 1e-6)
    px, py = np.zeros(n), np.zeros(n)
    zoom, roll = np.ones(n), np.zeros(n)
    r = _rng(seed, "camera")
    speed = {"slow": 0.6, "normal": 1.0, "fast": 2.0, "whip": 2.0}[spec.camera_speed]
    move, d = spec.camera_move, spec.camera_direction
    max_x, max_y = 0.21 * w, 0.21 * h
    if move == "pan":
        sign = {"left": -1.0, "right": 1.0}.get(d or "", 1.0 if r.random() < 0.5 else -1.0)
        if spec.camera_speed == "whip":
            mid = r.uniform(0.3, 0.7) * dur
            s = np.clip((t - mid) / 0.4 + 0.5, 0, 1)
            s = s * s * (3 - 2 * s)
            px = sign * (s - 0.5) * 2 * max_x
        else:
            travel = min(0.035 * w * speed * dur, 2 * max_x)
            px = sign * (t / dur - 0.5) * travel
    elif move == "tilt":
        sign = 1.0 if d == "down" else -1.0
        travel = min(0.03 * h * speed * dur, 2 * max_y)
        py = sign * (t / dur - 0.5) * travel
    elif move in ("dolly", "zoom"):
        rate = (0.02 if move == "dolly" else 0.03) * speed
        end = min(math.exp(rate * dur), 1.4)
        z = np.exp(np.log(end) * t / dur)
        zoom = z[::-1].copy() if d == "out" else z
    elif move == "handheld":
        walk, shake, rot = {"slow": (0.002, 0.0008, 0.05), "normal": (0.003, 0.002, 0.12),
                            "fast": (0.005, 0.005, 0.3), "whip": (0.005, 0.005, 0.3)}[
                                spec.camera_speed]
        for arr, lim in ((px, max_x), (py, max_y)):
            p = 0.0
            steps = r.normal(0.0, walk * w, n)
            for i in range(n):
                p = 0.97 * p + steps[i]
                arr[i] = p
            arr += r.normal(0.0, shake * w, n)
            np.clip(arr, -lim, lim, out=arr)
        roll = np.deg2rad(np.cumsum(r.normal(0, rot * 0.3, n)) * 0.2 + r.normal(0, rot, n))
    if art.jitter > 0:
        px = px + r.normal(0.0, art.jitter * w, n)
        py = py + r.normal(0.0, art.jitter * w, n)
    return px, py, zoom, roll


# --------------------------------------------------------------------------------------------
# rendering


def fit_image(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize an init image to the clip size (INTER_AREA when shrinking, linear when growing)."""
    if image.shape[0] == height and image.shape[1] == width:
        return np.ascontiguousarray(image)
    shrink = image.shape[0] * image.shape[1] > width * height
    return cv2.resize(image, (width, height),
                      interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def _vignette(w: int, h: int, strength: float) -> np.ndarray:
    ys, xs = np.ogrid[-1:1:complex(0, h), -1:1:complex(0, w)]
    d2 = (xs**2 + ys**2) / 2.0
    v = 1.0 - strength * np.clip(d2, 0, 1) ** 1.2
    return np.repeat((v * 255).astype(np.uint8)[..., None], 3, axis=2)


def _sprite_pair(spr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Premultiplied float sprite -> (P, Q) uint8 RGBA: P = premultiplied colour and alpha, Q =
    255 - alpha in every channel. Compositing is then roi * Q / 255 + P, two saturating uint8 ops."""
    p = spr * np.float32([1.0, 1.0, 1.0, 255.0])  # colour is already premultiplied 0-255
    p = np.clip(p + 0.5, 0, 255).astype(np.uint8)
    q = np.repeat((255 - p[..., 3:4]), 4, axis=2)
    return np.ascontiguousarray(p), np.ascontiguousarray(q)


def render(spec: ShotSpec, width: int, height: int, num_frames: int, fps: int, seed: int,
           init_image: np.ndarray | None = None, artifacts: bool = True) -> tuple[np.ndarray, dict]:
    """Render (num_frames, height, width, 3) uint8 RGB frames for a parsed prompt.

    Per frame: one warpAffine of the RGBA background canvas (4 channels warp several times faster
    than 3), figure sprites warped straight into frame space with the same camera matrix, then one
    colour transform (flicker, drift, candle light) and a grain add."""
    w, h, n = int(width), int(height), int(num_frames)
    if w < 1 or h < 1 or n < 1:
        raise ValueError("width, height and num_frames must be positive")
    fps = max(int(fps), 1)
    art = Artifacts.from_negatives(spec.negatives) if artifacts else Artifacts.none()
    look = resolve_look(spec, seed)
    t = np.arange(n, dtype=np.float64) / fps

    wc, hc = int(round(w * CANVAS_SCALE)), int(round(h * CANVAS_SCALE))
    ox, oy = (wc - w) / 2.0, (hc - h) / 2.0
    la, lb, vign, neon, candle = _lighting(spec)

    # --- background canvas, once per clip
    bg = _background(look, w, h, wc, hc, ox, oy)
    sigma = math.hypot(art.blur, SHOT_DOF[spec.shot_size] if look["figures"] else 0.0) * w
    if sigma > 0.3:
        bg = cv2.GaussianBlur(bg, (0, 0), sigma)
    bg = _apply_affine(bg, la, lb)
    if neon > 0:
        g = np.linspace(0, 1, wc, dtype=np.float32)[None, :, None]
        overlay = _NEON_A * (1 - g) + _NEON_B * g
        bg = (1 - neon) * bg + neon * overlay * (bg.mean(axis=2, keepdims=True) / 160.0 + 0.3)
    canvas = np.empty((hc, wc, 4), np.uint8)
    canvas[..., :3] = np.clip(bg + 0.5, 0, 255)
    canvas[..., 3] = 255

    # --- figure sprites, once per clip
    hf_frac, feet_frac = SHOT_FRAMING[spec.shot_size]
    figs = look["figures"]
    dx, dy = _figure_paths(spec, len(figs), t, fps, w, seed)
    sprites = []
    crowd = 1.0 if len(figs) <= 2 or hf_frac < 1.0 else (0.85 if len(figs) == 3 else 0.75)
    for i, fig in enumerate(figs):
        spr, ax, ay = _figure_sprite(fig, hf_frac * h * fig["height"] * crowd)
        prem, alpha = spr[..., :3], spr[..., 3]
        prem = _apply_affine(prem, la, lb, alpha)
        nf = len(figs)
        fx = 0.5 + (i - (nf - 1) / 2) * min(0.4, 0.8 / nf)  # side by side, centred
        if neon > 0:
            tint = _NEON_A * (1 - fx) + _NEON_B * fx
            prem = (1 - neon) * prem + neon * alpha[..., None] * tint * 0.5
        spr = np.dstack([prem, alpha])
        if art.blur * w > 0.3:
            spr = cv2.GaussianBlur(spr, (0, 0), art.blur * w)
        x0 = ox + fx * w - ax
        if hf_frac < 1.0:  # wide shots: everyone stands on the ground line
            y0 = oy + feet_frac * h - ay
        else:  # medium and close-up frame the faces: a child's head sits a little lower
            top = feet_frac - hf_frac * crowd + 0.3 * (1.0 - fig["height"])
            y0 = oy + top * h - _SPRITE_PAD
        # keep only rows the canvas can show (close-ups put the feet far below the frame)
        keep = int(min(spr.shape[0], math.ceil(hc - y0 + np.abs(dy[:, i]).max() + 3)))
        pq = _sprite_pair(spr[:max(keep, 1)])
        r = _rng(seed, f"morph{i}")
        morph = np.stack([art.morph * _smooth_series(r, t, 0.2, 0.8, 2) for _ in range(3)], 1)
        sprites.append((pq, x0, y0, morph / 255.0))

    # --- per-frame global signals
    ra = _rng(seed, "artifacts")
    px, py, zoom, roll = _camera_path(spec, t, w, h, seed, art)
    flicker = ra.normal(0.0, art.flicker, n) if art.flicker > 0 else np.zeros(n)
    drift = np.outer(t / max(t[-1], 1e-6), ra.normal(0.0, art.colour_shift, 3))
    gain = 1.0 + candle * _smooth_series(_rng(seed, "candle"), t, 0.4, 2.0, 3)
    grain_bank = []
    if art.grain > 0:
        for _ in range(6):
            g = np.round(ra.normal(0.0, art.grain, (h, w, 1))).astype(np.int16)
            grain_bank.append((np.repeat(np.clip(g, 0, 255).astype(np.uint8), 3, 2),
                               np.repeat(np.clip(-g, 0, 255).astype(np.uint8), 3, 2)))
    grain_order = ra.integers(1, max(len(grain_bank), 2), n)
    vig = _vignette(w, h, vign) if vign > 0 else None
    colour_op = artifacts or candle > 0

    frames = np.empty((n, h, w, 3), np.uint8)
    buf = np.empty((h, w, 4), np.uint8)
    cxc, cyc = ox + w / 2.0, oy + h / 2.0
    m4 = np.eye(4, dtype=np.float32)
    m3 = np.zeros((3, 4), np.float32)
    gi = 0
    for f in range(n):
        z, th = zoom[f], roll[f]
        c, s = z * math.cos(th), z * math.sin(th)
        vx, vy = cxc + px[f], cyc + py[f]
        tx, ty = w / 2.0 - (c * vx - s * vy), h / 2.0 - (s * vx + c * vy)
        cam = np.array([[c, -s, tx], [s, c, ty]], np.float64)
        cv2.warpAffine(canvas, cam, (w, h), dst=buf, flags=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REFLECT101)
        for i, ((p_spr, q_spr), x0, y0, morph) in enumerate(sprites):
            xw, yw = x0 + dx[f, i], y0 + dy[f, i]
            sh, sw = p_spr.shape[:2]
            # sprite -> frame: camera matrix after a translation to the sprite's world position
            mt = cam.copy()
            mt[:, 2] = cam[:, :2] @ (xw, yw) + cam[:, 2]
            corners = mt[:, :2] @ np.array([[0, sw, 0, sw], [0, 0, sh, sh]], np.float64) + \
                mt[:, 2:3]
            rx0 = max(int(math.floor(corners[0].min())) - 1, 0)
            ry0 = max(int(math.floor(corners[1].min())) - 1, 0)
            rx1 = min(int(math.ceil(corners[0].max())) + 2, w)
            ry1 = min(int(math.ceil(corners[1].max())) + 2, h)
            if rx1 <= rx0 or ry1 <= ry0:
                continue
            mt[:, 2] -= (rx0, ry0)
            size = (rx1 - rx0, ry1 - ry0)
            pw = cv2.warpAffine(p_spr, mt, size, flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))
            qw = cv2.warpAffine(q_spr, mt, size, flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=(255, 255, 255, 255))
            if art.morph > 0:  # colour wobble, scaled by alpha so it stays on the figure
                m4[:3, 3] = morph[f]
                cv2.transform(pw, m4, dst=pw)
            roi = buf[ry0:ry1, rx0:rx1]
            cv2.multiply(roi, qw, dst=roi, scale=1.0 / 255.0)
            cv2.add(roi, pw, dst=roi)
        frame = frames[f]
        cv2.cvtColor(buf, cv2.COLOR_RGBA2RGB, dst=frame)
        if colour_op:
            m3[[0, 1, 2], [0, 1, 2]] = gain[f]
            m3[:, 3] = flicker[f] + drift[f]
            cv2.transform(frame, m3, dst=frame)
        if vig is not None:
            cv2.multiply(frame, vig, dst=frame, scale=1.0 / 255.0)
        if grain_bank:
            gi = (gi + int(grain_order[f])) % len(grain_bank)
            cv2.add(frame, grain_bank[gi][0], dst=frame)
            cv2.subtract(frame, grain_bank[gi][1], dst=frame)

    if init_image is not None:
        init = fit_image(init_image, w, h)
        nd = max(1, int(round(0.5 * fps)))
        for f in range(1, min(nd, n)):
            a = f / nd
            cv2.addWeighted(init, 1.0 - a, frames[f], a, 0.0, dst=frames[f])
        frames[0] = init
    return frames, look
