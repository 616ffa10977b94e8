"""Scene light: is the take lit the way the scene plan implies? Night is dark and cool, golden hour
warm, an interior by candlelight warm and dim, a neon-lit city night saturated blue-magenta,
overcast or rainy daylight grey and flat, clear daylight neutral.

Expected light (:func:`expected_light`), from the bible: Scene.time_of_day (night, midnight ->
night; dawn, sunrise, dusk, sunset, evening, twilight -> golden; else day), Scene.weather or
StoryBible.weather (fog, mist, haze, rain, storm, snow, cloud... turn day or golden light into
overcast), the Location (an interior; a city) and its words with the scene's action (candles,
lanterns, a hearth; neon), and StoryBible.era (before 1880, or medieval, Victorian, ancient...:
no electric light, so no neon, and an interior at night is lit by flame).

Measured:

* the take's light, fitted to the colours the plan says are in the scene (location palette,
  skin, the cast's wardrobe and hair; scene_illuminant.take_light: a per-channel gain and offset
  of linear light against the daylight reference), so that it does not depend on what fills the
  frame (a close-up of a blonde in a rose dress is not warm light): exposure = log2 of the gain's
  luminance (stops under daylight) and warmth = ln(g_R / g_B), the red-blue balance a lower
  colour temperature raises (candle flame about 1900 K, low sun about 3500 K, daylight 6500 K);
* on the outer 20 % of the width and height of ~8 evenly spaced frames (every 2nd pixel), where
  the set shows even in a close-up, against the same border of the reference: mean lightness
  L* (reported), chroma ratio = mean C*_take / mean C*_ref (C* = sqrt(a*^2 + b*^2)), and the
  blue-magenta share (pixels with C* > 20 and hue angle atan2(b*, a*) in [250, 360) degrees:
  violet, blue-violet and magenta, not cyan or red).

The reference is the location reference image (ctx.location_ref, the empty establishing shot in
soft daylight) when given, else the bible's location palette (rougher: a palette is not a lit
frame).

Each expected light is a set of bands (:data:`PROFILES`); a measure x inside [lo, hi] scores 1,
outside exp(-(d / s)^2) with d its distance to the band and s the measure's scale
(:data:`SCALES`). value = the product of the parts, exp(-sum_k (d_k / s_k)^2): a Gaussian in
the scaled distance to the expected look, so one badly wrong measure (a daylight night) is enough
to fail. Bands were set on previz renders of every lighting under each time of day, wide shot
to close-up (tests/rewards/test_scene_light.py), and follow the conventions of cinematography:
night is exposed stops under day and not warm unless a flame lights it, magic hour and flame
are warm, overcast light is flat and desaturated, neon light saturated.
"""

from __future__ import annotations

import math
import re

import numpy as np

from cinerl.core.schema import Location, Scene, StoryBible
from cinerl.rewards.colour import as_rgb_uint8, resize_to, rgb_to_lab
from cinerl.rewards.components.scene_illuminant import (
    LightFit,
    border_pixels,
    sampled_frames,
    scene_colours,
    scene_light_fit,
)
from cinerl.rewards.core.analysis import ClipAnalysis
from cinerl.rewards.core.context import ScoreContext
from cinerl.rewards.core.registry import not_applicable, ok, register

NIGHT_TIMES = {"night", "midnight", "nighttime", "nightfall", "overnight", "tonight"}
GOLDEN_TIMES = {"dawn", "sunrise", "daybreak", "dusk", "sunset", "evening", "twilight", "golden hour"}
OVERCAST_WORDS = re.compile(
    r"\b(fog|foggy|mist|misty|haze|hazy|rain|rainy|raining|drizzle|downpour|storm|stormy|thunder"
    r"\w*|snow\w*|sleet|blizzard|hurricane|typhoon|gale|overcast|cloud\w*|grey sky|gray sky)\b",
    re.I,
)
FLAME_WORDS = re.compile(
    r"\b(candles?|candlelit|candlelight|lanterns?|lantern-lit|torch(es|lit)?|hearth|fireplace|"
    r"firelight|campfire|bonfire|oil lamps?)\b",
    re.I,
)
NEON_WORDS = re.compile(r"\b(neon|cyberpunk|neon-lit)\b", re.I)
PRE_ELECTRIC_WORDS = re.compile(
    r"\b(medieval|middle ages|victorian|ancient|antiquity|renaissance|viking|prehistor\w*|roman|"
    r"feudal|bronze age|iron age|steampunk)\b",
    re.I,
)
ELECTRIC_YEAR = 1880
BORDER = 0.2  # share of width and height measured on each side
URBAN_TYPES = {"city"}
INTERIOR_TYPES = {"interior"}

BLUE_MAGENTA_HUE = (250.0, 360.0)
COLOURFUL_C = 20.0

# measure -> fall-off scale s outside its band
SCALES = {"exposure": 0.5, "warmth": 0.2, "L": 8.0, "chroma_ratio": 0.25, "blue_magenta": 0.2}
INF = math.inf
# expected light -> measure -> (lo, hi)
PROFILES: dict[str, dict[str, tuple[float, float]]] = {
    "day": {"exposure": (-0.8, 0.5), "warmth": (-0.3, 0.45), "chroma_ratio": (0.75, 1.4)},
    "interior day": {"exposure": (-1.2, 0.5), "warmth": (-0.3, 0.55), "chroma_ratio": (0.7, 1.4)},
    "overcast": {"exposure": (-1.5, 0.3), "warmth": (-1.2, 0.4), "chroma_ratio": (0.2, 0.65)},
    "golden": {"exposure": (-1.5, 0.5), "warmth": (0.75, 2.0), "chroma_ratio": (0.8, 2.5)},
    "night": {
        "exposure": (-7.0, -2.2),
        "warmth": (-INF, 0.5),
        "chroma_ratio": (0.0, 1.2),
        "blue_magenta": (0.0, 0.3),
    },
    # chroma against the reference only rules out a grey night: a location with saturated colours
    # of its own (amber signs) has a high reference chroma, and its neon take measured 0.97;
    # the blue-magenta share is what tells neon from any other light
    "neon": {"exposure": (-3.5, -1.2), "blue_magenta": (0.6, 1.0), "chroma_ratio": (0.85, INF)},
    "flame": {"exposure": (-3.5, -1.0), "warmth": (1.2, 3.2), "blue_magenta": (0.0, 0.1)},
}
DESCRIPTIONS = {
    "day": "clear daylight: the location's own lightness and colour",
    "interior day": "daylight indoors: about the location's lightness, neutral to warm",
    "overcast": "overcast light: grey and flat, desaturated, slightly cool",
    "golden": "golden hour: warm (red over blue), about as bright as day",
    "night": "night: dark (2.2 stops or more under daylight), not warm, not neon-saturated",
    "neon": "a neon-lit night: dim, saturated blue-magenta",
    "flame": "candle or firelight: dim (1 to 3.5 stops under daylight) and warm",
}


def _era_pre_electric(era: str | None) -> bool:
    if not era:
        return False
    if PRE_ELECTRIC_WORDS.search(era):
        return True
    m = re.search(r"\b(\d{3,4})s?\b", era)
    if m:
        return int(m.group(1)) < ELECTRIC_YEAR
    m = re.search(r"\b(\d{1,2})(?:st|nd|rd|th) century\b", era, re.I)
    return bool(m) and int(m.group(1)) <= 19


def expected_light(scene: Scene, bible: StoryBible | None) -> tuple[str, list[str]]:
    """(expected light, the facts it was read from) for a scene of the plan."""
    loc: Location | None = None
    if bible is not None:
        loc = next((x for x in bible.locations if x.id == scene.location_id), None)
    tod = (scene.time_of_day or "day").strip().lower()
    weather = scene.weather or (bible.weather if bible is not None else None) or ""
    era = bible.era if bible is not None else None
    words = " ".join(
        t
        for t in (
            scene.action,
            scene.shot_notes,
            loc.name if loc else "",
            loc.visual_description if loc else "",
        )
        if t
    )
    stype = loc.scenery_type if loc else None
    interior = stype in INTERIOR_TYPES
    night = tod in NIGHT_TIMES
    golden = tod in GOLDEN_TIMES
    pre_electric = _era_pre_electric(era)
    facts = [f"time of day {tod!r}"]
    if stype:
        facts.append(f"location {stype}")
    if weather:
        facts.append(f"weather {weather!r}")
    if era:
        facts.append(f"era {era!r}")
    flame = FLAME_WORDS.search(words)
    if flame and (night or interior):
        facts.append(f"flame light ({flame.group(0)!r})")
        return "flame", facts
    if night and interior:
        if pre_electric:
            facts.append("no electric light in that era")
        return "flame", facts  # a lit room at night: candles, or warm practical lamps
    if night:
        neon = NEON_WORDS.search(words) or NEON_WORDS.search(era or "")
        if neon or (stype in URBAN_TYPES and not pre_electric):
            facts.append("neon" if neon else "a modern city at night")
            return "neon", facts
        return "night", facts
    if OVERCAST_WORDS.search(weather):
        return "overcast", facts
    if golden:
        return "golden", facts
    return ("interior day" if interior else "day"), facts


def band_part(x: float, band: tuple[float, float], scale: float) -> float:
    lo, hi = band
    if lo <= x <= hi:
        return 1.0
    d = lo - x if x < lo else x - hi
    return math.exp(-((d / scale) ** 2))


def light_measures(rgb: np.ndarray, ref_rgb: np.ndarray, fit: LightFit) -> dict[str, float]:
    """The measures of the take: exposure and warmth of the fitted light; lightness, chroma ratio
    and blue-magenta share of the border pixels (sRGB (N, 3)) against the reference's."""
    lab, ref_lab = (
        rgb_to_lab(rgb.reshape(-1, 1, 3)).reshape(-1, 3),
        rgb_to_lab(ref_rgb.reshape(-1, 1, 3)).reshape(-1, 3),
    )
    chroma = np.hypot(lab[:, 1], lab[:, 2])
    hue = np.degrees(np.arctan2(lab[:, 2], lab[:, 1])) % 360.0
    ref_c = float(np.hypot(ref_lab[:, 1], ref_lab[:, 2]).mean())
    lo, hi = BLUE_MAGENTA_HUE
    return {
        "exposure": fit.exposure_stops,
        "warmth": fit.warmth,
        "L": float(lab[:, 0].mean()),
        "chroma_ratio": float(chroma.mean() / max(ref_c, 4.0)),
        "blue_magenta": float(((chroma > COLOURFUL_C) & (hue >= lo) & (hue < hi)).mean()),
    }


@register(name="scene_light", group="scene_plan")
def scene_light(analysis: ClipAnalysis, ctx: ScoreContext):
    """Lightness, colour temperature, chroma and hue of the frames against the plan's light."""
    if ctx.scene is None:
        return not_applicable("no scene to read the time of day from")
    if ctx.bible is None:
        return not_applicable("no story bible to read the location and era from")
    key, facts = expected_light(ctx.scene, ctx.bible)
    colours = scene_colours(ctx)
    if not colours.palette:
        return not_applicable(f"location {ctx.scene.location_id!r} is not in the bible")
    fit = scene_light_fit(analysis, ctx)
    if ctx.location_ref is not None:
        ref = resize_to(as_rgb_uint8(ctx.location_ref, "location reference"), analysis.width, analysis.height)
        ref_rgb, ref_src = border_pixels(ref[None, ::2, ::2], BORDER), "location reference image"
    else:
        ref_rgb, ref_src = np.asarray(colours.palette, np.uint8), "location palette"
    m = light_measures(border_pixels(sampled_frames(analysis), BORDER), ref_rgb, fit)
    parts = {k: band_part(m[k], band, SCALES[k]) for k, band in PROFILES[key].items()}
    value = float(np.prod(list(parts.values())))
    worst = min(parts, key=parts.get)
    verdict = "matches" if value >= 0.8 else f"{worst} {m[worst]:.2f} outside {_fmt(PROFILES[key][worst])}"
    reason = f"expected {key} ({', '.join(facts)}): {verdict}"
    return ok(
        value,
        expected=key,
        expected_look=DESCRIPTIONS[key],
        facts=facts,
        reference=ref_src,
        light=fit.summary(),
        measures={k: round(v, 3) for k, v in m.items()},
        parts={k: round(v, 4) for k, v in parts.items()},
        bands={k: _fmt(b) for k, b in PROFILES[key].items()},
        formula="product over the profile's measures of 1 inside [lo, hi] else exp(-(d/s)^2)",
    ).model_copy(update={"reason": reason})


def _fmt(band: tuple[float, float]) -> str:
    lo, hi = band
    return f"[{'-inf' if math.isinf(lo) else f'{lo:g}'}, {'inf' if math.isinf(hi) else f'{hi:g}'}]"
