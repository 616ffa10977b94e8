"""scene_cast: everyone the scene plan puts in the scene is in frame, on previz takes (96x64, 8
frames) where the shot size keeps or crops the cast, and on numpy frames."""

from __future__ import annotations

import numpy as np
import pytest

from cinerl.core.schema import Clip
from cinerl.rewards import ScoreContext
from cinerl.rewards.components.scene_cast import scene_cast
from cinerl.rewards.core.analysis import ClipAnalysis
from tests.rewards.scene_plan_clips import CAST, bible, take


@pytest.mark.parametrize("lighting", ["soft daylight", "low key"])
def test_a_close_up_of_four_loses_to_a_wide_shot(lighting):
    b = bible("meadow", cast=4, action="They bargain at the stalls")
    wide = scene_cast(*take(b, shot_size="wide", lighting=lighting))
    medium = scene_cast(*take(b, shot_size="medium", lighting=lighting))
    close = scene_cast(*take(b, shot_size="close-up", lighting=lighting))
    assert wide.value >= 0.95 and wide.reason == "4 of 4 characters visible"
    assert medium.value == pytest.approx(0.75, abs=0.05)  # a medium shot holds three
    assert medium.reason == "3 of 4 characters visible; missing: di"
    assert close.value <= 0.35 and close.reason == "1 of 4 characters visible; missing: ben, cy, di"
    assert close.raw["visible"] == ["ana"]  # the close-up frames the first character


def test_a_lone_figure_is_seen_in_every_shot_size():
    b = bible("meadow", cast=1, action="Ana stands alone")
    for shot in ("wide", "medium", "close-up"):
        r = scene_cast(*take(b, shot_size=shot))
        assert r.value == pytest.approx(1.0) and r.reason == "1 of 1 characters visible", shot


def test_a_night_take_finds_the_cast_in_the_dark():
    b = bible("city", cast=2, action="Ana chases Ben", time_of_day="night")
    wide = scene_cast(*take(b, shot_size="wide", lighting="low key"))
    close = scene_cast(*take(b, shot_size="close-up", lighting="low key"))
    assert wide.value == pytest.approx(1.0) and close.value <= 0.55
    assert close.reason == "1 of 2 characters visible; missing: ben"


def test_numpy_frames_with_and_without_the_second_figure():
    """Two flat figures (coat over trousers) on a sand field, then the same frame with one."""
    b = bible("meadow", cast=2, action="Ana and Ben talk")
    frames = np.zeros((4, 64, 96, 3), np.uint8)
    frames[:] = b.locations[0].palette[0].rgb
    for x0, ch in ((20, CAST[0]), (60, CAST[1])):
        frames[:, 16:34, x0 : x0 + 10] = ch.wardrobe[0].rgb
        frames[:, 34:52, x0 : x0 + 10] = ch.wardrobe[1].rgb
    ctx = ScoreContext(scene=b.scenes[0], bible=b)
    both = scene_cast(ClipAnalysis(Clip(frames=frames, fps=8)), ctx)
    one = frames.copy()
    one[:, :, 55:] = b.locations[0].palette[0].rgb
    alone = scene_cast(ClipAnalysis(Clip(frames=one, fps=8)), ctx)
    assert both.value == pytest.approx(1.0) and both.reason == "2 of 2 characters visible"
    assert alone.value == pytest.approx(0.5) and alone.reason == "1 of 2 characters visible; missing: ben"


def test_a_character_without_distinctive_colours_is_left_out_and_said_so():
    b = bible("meadow", cast=2, action="Ana and Ben talk")
    ben = b.characters[1]
    ben.wardrobe = [b.locations[0].palette[0], b.locations[0].palette[1]]
    ben.hair = b.locations[0].palette[2]
    r = scene_cast(*take(b, shot_size="wide"))
    assert r.raw["not_measurable"] == ["ben"] and "not measurable (no distinctive colour): ben" in r.reason


def test_not_applicable_without_cast_or_scene():
    clip = ClipAnalysis(Clip(frames=np.zeros((2, 16, 16, 3), np.uint8), fps=8))
    assert "no scene" in scene_cast(clip, ScoreContext()).reason
    b = bible("meadow", cast=1)
    b.scenes[0].character_ids = []
    r = scene_cast(clip, ScoreContext(scene=b.scenes[0], bible=b))
    assert r.status == "not_applicable" and r.reason == "the scene has no characters"
