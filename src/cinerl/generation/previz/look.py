"""The look of a previz clip: concrete colours, light and generator artifacts for a ShotSpec.

It exists because everything previz does not read from the prompt it draws from the request seed,
and that is where the failures the reward suite measures come from: unstated hair, wardrobe and
palette colours drift with the seed (identity and location drift), and the artifacts a real
generator shows (flicker, colour drift, colour wobble of figures, blur, grain) are always on unless
the negative prompt names them. Lighting and grading are colour maths on finished pixels; nothing
here draws a shape. Every random draw comes from a named seeded stream (`rng`), so one purpose's
draws never move another's.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import cv2
import numpy as np

from cinerl.core.vocabulary import ANIMAL_NOUNS, COLORS, SCENERY_TYPES
from cinerl.generation.previz.parse import ShotSpec

__all__ = [
    "STUDIO_GREY",
    "Artifacts",
    "Grade",
    "Lighting",
    "figure_wobble",
    "resolve_look",
    "rng",
    "smooth_series",
]

STUDIO_GREY = (128, 128, 128)
SKIN_TONES = (
    (241, 198, 170),
    (226, 176, 140),
    (200, 140, 104),
    (164, 112, 80),
    (118, 78, 54),
    (236, 188, 160),
)
HAIR_CHOICES = (
    "black",
    "jet black",
    "brown",
    "chestnut",
    "auburn",
    "blonde",
    "grey",
    "ash grey",
    "walnut",
    "copper",
)
WARDROBE_CHOICES = tuple(sorted(COLORS))
PALETTE_CHOICES = tuple(sorted(COLORS))
FEMALE_NOUNS = {"woman", "girl", "witch", "queen", "princess", "heroine"}
CHILD_NOUNS = {"girl", "boy", "child"}
ROBOT_NOUNS = {"robot", "android"}
# an animal's height against a standing adult's; the rest stand about knee-high
ANIMAL_HEIGHTS = {"horse": 0.9, "elephant": 1.0, "camel": 0.95, "cow": 0.75, "deer": 0.8, "bear": 0.7}
ANIMAL_HEIGHTS |= {"dragon": 1.0, "lion": 0.6, "tiger": 0.6, "wolf": 0.5, "sheep": 0.5, "goat": 0.5}


# --------------------------------------------------------------------------------------------
# randomness


def rng(seed: int, tag: str) -> np.random.Generator:
    """A stream per purpose, so e.g. a figure's colours do not change when the camera does.

    zlib.crc32 (not hash()) keeps streams identical across processes."""
    return np.random.default_rng([int(seed) % (2**63), zlib.crc32(tag.encode("utf-8"))])


def smooth_series(r: np.random.Generator, t: np.ndarray, fmin: float, fmax: float, k: int = 3) -> np.ndarray:
    """Sum of k random sinusoids, unit-ish amplitude: a cheap smooth random signal over time t."""
    out = np.zeros_like(t, dtype=np.float64)
    for _ in range(k):
        out += np.sin(2 * np.pi * r.uniform(fmin, fmax) * t + r.uniform(0, 2 * np.pi))
    return out / math.sqrt(k / 2)


# --------------------------------------------------------------------------------------------
# artifacts: the modelled generator failures


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
        return cls(
            flicker=0.6 if "flicker" in n else 6.0,
            jitter=0.0001 if "jitter" in n else 0.0013,
            morph=2.0 if "morphing" in n else 16.0,
            colour_shift=1.5 if "colour shift" in n else 12.0,
            blur=0.0 if "blurry" in n else 0.0022,
            grain=1.2 if "low quality" in n else 4.0,
        )

    @classmethod
    def none(cls) -> "Artifacts":
        return cls(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


def figure_wobble(art: Artifacts, seed: int, index: int, t: np.ndarray) -> np.ndarray:
    """Colour wobble of figure `index`: a (len(t), 3) offset per unit of sprite alpha (0-255)."""
    r = rng(seed, f"morph{index}")
    morph = np.stack([art.morph * smooth_series(r, t, 0.2, 0.8, 2) for _ in range(3)], 1)
    return morph / 255.0


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
        scenery = spec.scenery_type or _choose(rng(seed, "scenery"), tuple(SCENERY_TYPES))
        if spec.palette:
            palette, source = [(c, COLORS[c]) for c in spec.palette], "prompt"
        else:
            r = rng(seed, "palette")
            names = r.choice(len(PALETTE_CHOICES), size=3, replace=False)
            palette = [(PALETTE_CHOICES[i], COLORS[PALETTE_CHOICES[i]]) for i in names]
            source = "seed"
    # A named place keeps its layout across scenes (a model imagines "the Old Harbour" alike);
    # an unnamed one gets a new layout each seed.
    layout_seed = (
        zlib.crc32(spec.location_name.lower().encode()) if spec.location_name else int(seed) % (2**32)
    )

    figures = []
    for i, f in enumerate(spec.figures):
        r = rng(seed, f"figure{i}")
        if f.noun in ANIMAL_NOUNS:
            figures.append(_animal_look(f, r))
            continue
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
        figures.append(
            {
                "name": f.name,
                "noun": f.noun,
                "hair": hair,
                "hair_rgb": COLORS[hair] if hair else None,
                "wardrobe": wardrobe[:3],
                "wardrobe_rgb": [COLORS[c] for c in wardrobe[:3]],
                "skin_rgb": skin,
                "height": float(np.clip(height, 0.35, 1.0)),
                "female": f.noun in FEMALE_NOUNS,
                "robot": robot,
                "locked": {"hair": f.hair is not None or robot, "wardrobe": len(f.wardrobe) >= 2},
            }
        )
    return {
        "scenery_type": scenery,
        "palette": [[n, list(c)] for n, c in palette],
        "palette_source": source,
        "layout_seed": layout_seed,
        "figures": figures,
    }


def _animal_look(f, r: np.random.Generator) -> dict:
    """An animal figure: coat, collar and markings colours (the prompt's, else the seed's)."""
    coat = list(f.wardrobe)
    while len(coat) < 2:
        coat.append(_choose(r, WARDROBE_CHOICES))
    return {
        "name": f.name,
        "noun": f.noun,
        "hair": None,
        "hair_rgb": None,
        "wardrobe": coat[:3],
        "wardrobe_rgb": [COLORS[c] for c in coat[:3]],
        "skin_rgb": None,
        "height": ANIMAL_HEIGHTS.get(f.noun, 0.4),
        "female": False,
        "robot": False,
        "animal": True,
        "locked": {"hair": True, "wardrobe": len(f.wardrobe) >= 2},
    }


# --------------------------------------------------------------------------------------------
# lighting: a colour affine (A, b) in sRGB levels baked into canvas and sprites


def _affine(gain=(1.0, 1.0, 1.0), offset=(0.0, 0.0, 0.0), desat: float = 0.0):
    luma = np.array([0.299, 0.587, 0.114])
    a = (1 - desat) * np.eye(3) + desat * np.tile(luma, (3, 1))
    return np.diag(gain) @ a, np.asarray(offset, dtype=np.float64)


_TIME_LIGHT = {
    "day": _affine(),
    "noon": _affine((1.04, 1.04, 1.04)),
    "morning": _affine((1.03, 1.0, 0.95)),
    "dawn": _affine((1.02, 0.92, 0.9), (6, 2, 6)),
    "dusk": _affine((0.9, 0.76, 0.7), (10, 2, 6)),
    "sunset": _affine((0.95, 0.78, 0.66), (12, 2, 0)),
    "night": _affine((0.42, 0.48, 0.62), (4, 6, 16)),
}
# name -> (affine, vignette strength, neon overlay strength, candle flicker amplitude)
_LIGHTS = {
    "soft daylight": (_affine(), 0.0, 0.0, 0.0),
    "golden hour": (_affine((1.06, 0.93, 0.72), (14, 6, -4)), 0.1, 0.0, 0.0),
    "overcast": (_affine((0.9, 0.92, 0.95), (6, 8, 12), desat=0.45), 0.0, 0.0, 0.0),
    "low key": (_affine((0.62, 0.62, 0.62), (-4, -4, -2)), 0.6, 0.0, 0.0),
    "candlelight": (_affine((0.92, 0.7, 0.45), (10, 2, -4)), 0.4, 0.0, 0.04),
    "neon": (_affine((0.6, 0.55, 0.7)), 0.15, 0.5, 0.0),
}
# neon signs: a gradient from neon pink to electric violet-blue across the frame, so neon light
# reads saturated and blue-magenta (Lab hue 270-350 degrees), as neon-lit night streets do
_NEON_A, _NEON_B = np.array([255, 40, 180], np.float32), np.array([70, 60, 255], np.float32)
# Under an explicit lighting phrase the time of day still acts, at TIME_UNDER_LIGHTING of its
# colour cast; night also darkens to NIGHT_DARKENING of its full luminance drop whatever the
# lighting says (a model asked for "night, soft even daylight" still draws a night: darker than
# day, but flat and neutral instead of dark). A flame brings its own colour: the time of day only
# dims it (no blue night cast inside a candle-lit room).
TIME_UNDER_LIGHTING = 0.5
NIGHT_DARKENING = 0.7
FLAME_LIGHTS = {"candlelight"}
# figures stand nearer the camera than the signs: neon tints them at this share of the set's tint
SPRITE_NEON = 0.25


def _luma_gain(a: np.ndarray) -> float:
    """The gain an affine gives a neutral grey's luma (Rec. 601 weights)."""
    return float(np.array([0.299, 0.587, 0.114]) @ a @ np.ones(3))


def _apply_affine(img: np.ndarray, a: np.ndarray, b: np.ndarray, alpha: np.ndarray | None = None):
    """img float32 (..., 3) -> A img + b (b scaled by alpha for premultiplied sprites)."""
    out = img @ a.T
    out += b if alpha is None else alpha[..., None] * b
    return out


@dataclass(frozen=True)
class Lighting:
    """The light of a shot: a colour affine plus vignette, neon overlay and candle flicker."""

    a: np.ndarray  # float32 (3, 3)
    b: np.ndarray  # float32 (3,), levels
    vignette: float  # vignette strength
    neon: float  # neon overlay strength
    candle: float  # candle flicker amplitude (a relative gain)

    @classmethod
    def for_spec(cls, spec: ShotSpec) -> "Lighting":
        """An explicit lighting phrase dominates: the time of day then acts at TIME_UNDER_LIGHTING
        strength, a night still darkens to NIGHT_DARKENING of its own drop, and a flame light
        takes the time's dimming but not its colour."""
        a, b = np.eye(3), np.zeros(3)
        vign = neon = candle = 0.0
        if spec.lighting in _LIGHTS:
            (a, b), vign, neon, candle = _LIGHTS[spec.lighting]
        if spec.time_of_day in _TIME_LIGHT and not spec.studio:
            ta, tb = _TIME_LIGHT[spec.time_of_day]
            if spec.lighting:
                full_gain = _luma_gain(ta)
                k = TIME_UNDER_LIGHTING
                if spec.lighting in FLAME_LIGHTS:  # the flame lights the shot: no sky colour cast
                    ta, tb = np.eye(3) * (1.0 - k * (1.0 - full_gain)), np.zeros(3)
                else:
                    ta, tb = np.eye(3) + k * (ta - np.eye(3)), k * tb
                if spec.time_of_day == "night":  # darker than the half-strength cast alone
                    target = 1.0 - NIGHT_DARKENING * (1.0 - full_gain)
                    ta = ta * (target / _luma_gain(ta))
            a, b = a @ ta, a @ tb + b
        return cls(a.astype(np.float32), b.astype(np.float32), vign, neon, candle)

    def light_canvas(self, bg: np.ndarray) -> np.ndarray:
        """Float32 RGB background (hc, wc, 3) -> lit, with the neon gradient across its width."""
        bg = _apply_affine(bg, self.a, self.b)
        neon = self.neon
        if neon > 0:
            g = np.linspace(0, 1, bg.shape[1], dtype=np.float32)[None, :, None]
            overlay = _NEON_A * (1 - g) + _NEON_B * g
            bg = (1 - neon) * bg + neon * overlay * (bg.mean(axis=2, keepdims=True) / 160.0 + 0.3)
        return bg

    def light_sprite(self, spr: np.ndarray, fx: float) -> np.ndarray:
        """Premultiplied RGBA float32 sprite -> lit; neon tints it by its place fx in the frame."""
        prem, alpha = spr[..., :3], spr[..., 3]
        prem = _apply_affine(prem, self.a, self.b, alpha)
        neon = self.neon * SPRITE_NEON
        if neon > 0:
            tint = _NEON_A * (1 - fx) + _NEON_B * fx
            prem = (1 - neon) * prem + neon * alpha[..., None] * tint * 0.5
        return np.dstack([prem, alpha])


# --------------------------------------------------------------------------------------------
# grading: what happens to each finished frame


def _vignette(w: int, h: int, strength: float) -> np.ndarray:
    ys, xs = np.ogrid[-1 : 1 : complex(0, h), -1 : 1 : complex(0, w)]
    d2 = (xs**2 + ys**2) / 2.0
    v = 1.0 - strength * np.clip(d2, 0, 1) ** 1.2
    return np.repeat((v * 255).astype(np.uint8)[..., None], 3, axis=2)


@dataclass(frozen=True)
class Grade:
    """Per-frame grading of a clip: one colour transform (flicker, drift, candle gain), the
    vignette, then grain from a small bank of noise frames picked in a random order."""

    gain: np.ndarray  # (n,) candle gain
    offset: np.ndarray  # (n, 3) flicker + colour drift, levels
    colour_op: bool  # whether the colour transform runs at all
    vignette: np.ndarray | None  # (h, w, 3) uint8 multiplier, 255 = 1
    grain: list[tuple[np.ndarray, np.ndarray]]  # (positive, negative) uint8 grain frames
    grain_index: np.ndarray  # (n,) which grain frame each frame gets

    @classmethod
    def for_clip(
        cls, art: Artifacts, light: Lighting, t: np.ndarray, w: int, h: int, seed: int, artifacts: bool
    ) -> "Grade":
        n = len(t)
        ra = rng(seed, "artifacts")
        flicker = ra.normal(0.0, art.flicker, n) if art.flicker > 0 else np.zeros(n)
        drift = np.outer(t / max(t[-1], 1e-6), ra.normal(0.0, art.colour_shift, 3))
        gain = 1.0 + light.candle * smooth_series(rng(seed, "candle"), t, 0.4, 2.0, 3)
        grain = []
        if art.grain > 0:
            for _ in range(6):
                g = np.round(ra.normal(0.0, art.grain, (h, w, 1))).astype(np.int16)
                grain.append(
                    (
                        np.repeat(np.clip(g, 0, 255).astype(np.uint8), 3, 2),
                        np.repeat(np.clip(-g, 0, 255).astype(np.uint8), 3, 2),
                    )
                )
        order = ra.integers(1, max(len(grain), 2), n)
        index = np.cumsum(order) % len(grain) if grain else np.zeros(n, np.int64)
        vig = _vignette(w, h, light.vignette) if light.vignette > 0 else None
        return cls(gain, flicker[:, None] + drift, artifacts or light.candle > 0, vig, grain, index)

    def apply(self, frame: np.ndarray, f: int) -> None:
        """Grade frame number f, a (h, w, 3) uint8 RGB image, in place."""
        if self.colour_op:
            m3 = np.zeros((3, 4), np.float32)
            m3[[0, 1, 2], [0, 1, 2]] = self.gain[f]
            m3[:, 3] = self.offset[f]
            cv2.transform(frame, m3, dst=frame)
        if self.vignette is not None:
            cv2.multiply(frame, self.vignette, dst=frame, scale=1.0 / 255.0)
        if self.grain:
            plus, minus = self.grain[int(self.grain_index[f])]
            cv2.add(frame, plus, dst=frame)
            cv2.subtract(frame, minus, dst=frame)
