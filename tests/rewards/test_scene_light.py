"""scene_light: the take's light against the plan's time of day, weather, place and era, on
previz takes made right and wrong (96x64, 8 frames)."""

from __future__ import annotations

import numpy as np
import pytest

from cinerl.core.schema import Clip
from cinerl.rewards import ScoreContext, Scorer
from cinerl.rewards.components.scene_light import expected_light, scene_light
from cinerl.rewards.core.analysis import ClipAnalysis
from tests.rewards.scene_plan_clips import bible, take


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({"location": "city", "time_of_day": "night"}, "neon"),
        ({"location": "city", "time_of_day": "night", "era": "the 1850s"}, "night"),
        ({"location": "chapel", "time_of_day": "night"}, "flame"),
        ({"location": "chapel", "time_of_day": "day"}, "flame"),  # "rows of candles" in the chapel
        ({"location": "meadow", "time_of_day": "night"}, "night"),
        ({"location": "meadow", "time_of_day": "dusk"}, "golden"),
        ({"location": "meadow", "time_of_day": "dawn", "weather": "heavy rain"}, "overcast"),
        ({"location": "meadow", "time_of_day": "day"}, "day"),
        ({"location": "meadow", "time_of_day": "day", "weather": "fog"}, "overcast"),
    ],
)
def test_expected_light_reads_time_weather_place_and_era(kwargs, expected):
    b = bible(**kwargs)
    assert expected_light(b.scenes[0], b)[0] == expected


def test_interior_by_day_without_flames_is_interior_daylight():
    b = bible("chapel", time_of_day="day")
    b.locations[0].visual_description = "stone walls"
    assert expected_light(b.scenes[0], b)[0] == "interior day"


# (scene, right lighting, wrong lightings, the measure the worst wrong one fails on)
CASES = [
    (
        dict(location="city", cast=2, action="Ana chases Ben", time_of_day="night"),
        "neon",
        ["soft daylight", "low key", "candlelight"],
        "blue_magenta",
    ),
    (  # a street of saturated colours of its own (amber) named for its neon: the lighting phrase
        # decides what previz renders, and only the neon take has a neon night's hue
        dict(location="neon street", action="Ana races through the streets", time_of_day="night"),
        "neon",
        ["soft daylight", "golden hour", "candlelight"],
        None,
    ),
    (
        dict(location="chapel", action="Ana keeps vigil", time_of_day="night", era="the 1850s"),
        "candlelight",
        ["neon", "soft daylight", "golden hour"],
        "warmth",
    ),
    (
        dict(location="meadow", time_of_day="day"),
        "soft daylight",
        ["golden hour", "overcast", "neon"],
        "warmth",
    ),
    (
        dict(location="meadow", time_of_day="dusk"),
        "golden hour",
        ["soft daylight", "overcast", "neon"],
        "warmth",
    ),
    (
        dict(location="meadow", time_of_day="night"),
        "low key",
        ["soft daylight", "golden hour", "candlelight"],
        None,
    ),
    (dict(location="meadow", weather="rain"), "overcast", ["soft daylight", "golden hour"], "chroma_ratio"),
]


@pytest.mark.parametrize("scene, right, wrongs, measure", CASES)
def test_right_light_scores_clearly_above_the_wrong_ones(scene, right, wrongs, measure):
    b = bible(**scene)
    good = scene_light(*take(b, lighting=right))
    assert good.status == "ok" and good.value >= 0.9, good.reason
    assert good.reason.endswith(": matches")
    for wrong in wrongs:
        bad = scene_light(*take(b, lighting=wrong))
        assert bad.value <= good.value - 0.6, (wrong, bad.reason)
        assert "outside" in bad.reason and bad.reason.startswith(f"expected {good.raw['expected']} (")
    if measure:
        worst = scene_light(*take(b, lighting=wrongs[0]))
        assert worst.reason.split(": ", 1)[1].startswith(measure), worst.reason


def test_night_in_soft_daylight_is_too_bright_even_though_previz_darkens_it():
    b = bible("meadow", time_of_day="night")
    day = scene_light(*take(bible("meadow", time_of_day="day"), lighting="soft daylight"))
    night = scene_light(*take(b, lighting="soft daylight"))
    # the time of day darkens the frame whatever the lighting phrase says ...
    assert night.raw["measures"]["L"] < day.raw["measures"]["L"] - 10
    # ... but not to a night's darkness
    assert night.value < 0.1 and night.reason.split(": ", 1)[1].startswith("exposure ")


def test_palette_reference_without_a_location_image():
    b = bible("meadow", time_of_day="day")
    analysis, ctx = take(b, lighting="soft daylight")
    no_ref = ScoreContext(scene=ctx.scene, bible=b)
    good = scene_light(analysis, no_ref)
    bad = scene_light(take(b, lighting="neon")[0], no_ref)
    assert good.raw["reference"] == "location palette"
    assert good.value > bad.value + 0.5


def test_numpy_frames_dark_blue_for_night_and_grey_for_day():
    """Hand-made frames: a dark blue frame is a night, a mid-grey one is not."""
    b = bible("meadow", time_of_day="night")
    ctx = ScoreContext(scene=b.scenes[0], bible=b)
    night = np.zeros((4, 32, 48, 3), np.uint8)
    night[..., :] = (18, 26, 52)
    grey = np.full((4, 32, 48, 3), 150, np.uint8)
    rn = scene_light(ClipAnalysis(Clip(frames=night, fps=8)), ctx)
    rg = scene_light(ClipAnalysis(Clip(frames=grey, fps=8)), ctx)
    assert rn.value > 0.9 and rg.value < 0.05


def test_not_applicable_without_a_scene():
    r = scene_light(ClipAnalysis(Clip(frames=np.zeros((2, 16, 16, 3), np.uint8), fps=8)), ScoreContext())
    assert r.status == "not_applicable" and "no scene" in r.reason


def test_registered_in_the_scene_plan_group():
    scorer = Scorer(components=["scene_light", "scene_motion", "scene_cast"])
    b = bible("meadow", time_of_day="day")
    analysis, ctx = take(b, lighting="soft daylight")
    r = scorer.score(Clip(frames=analysis.frames, fps=analysis.fps), ctx)
    assert {c.group for c in r.components.values()} == {"scene_plan"}
    assert r.components["scene_light"].value == pytest.approx(1.0)
