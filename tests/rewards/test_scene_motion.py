"""scene_motion: the take's optical-flow energy against the band the action's verbs expect, on
previz takes (96x64, 8 frames) and numpy clips made to move and to stay still."""

from __future__ import annotations

import numpy as np
import pytest

from cinerl.core.schema import Clip
from cinerl.core.vocabulary import action_energy, verb_forms
from cinerl.rewards import ScoreContext
from cinerl.rewards.components.scene_motion import band_score, motion_energy, scene_motion
from cinerl.rewards.core.analysis import ClipAnalysis
from tests.rewards.conftest import pan_clip
from tests.rewards.scene_plan_clips import bible, take


@pytest.mark.parametrize(
    "text, band, words",
    [
        ("Ana chases Ben through the crowded street", "vigorous", ["chase"]),
        ("The two knights fought at the gate", "vigorous", ["fight"]),
        ("Mara waits by the window, then runs to the door", "vigorous", ["run"]),
        ("Ed keeps a silent vigil by the candles", "calm", ["silent", "vigil"]),
        ("They sat and talked until dawn", "calm", ["sit", "talk"]),
        ("Ana, Ben and Cy bargain and stroll between the stalls", "moderate", ["bargain", "stroll"]),
        ("The storm hits the harbour", "vigorous", ["storm"]),
        ("A red lamp on a table", None, []),
    ],
)
def test_action_energy_lexicon(text, band, words):
    assert action_energy(text) == (band, words)


def test_verb_forms_cover_regular_inflections():
    assert {"chases", "chased", "chasing"} <= verb_forms("chase")
    assert {"running", "runs"} <= verb_forms("run")
    assert {"hurries", "hurried"} <= verb_forms("hurry")


def test_band_score_falls_off_by_factor_of_two():
    assert band_score(0.1, (0.0, 0.35)) == 1.0
    assert band_score(0.7, (0.0, 0.35)) == pytest.approx(np.exp(-1.0))
    assert band_score(1.0, (2.0, np.inf)) == pytest.approx(np.exp(-1.0))
    assert band_score(0.0, (0.2, 1.5)) < 1e-6


def test_energy_is_in_pixels_of_a_256_px_frame_per_24th_of_a_second():
    # a texture panned 2 px/frame at 24 fps on a 640-px-wide clip: 0.8 px at 256 px
    e, _ = motion_energy(ClipAnalysis(pan_clip(t=6, h=180, w=320, speed=2.0)))
    assert e == pytest.approx(2.0 * 256 / 320, rel=0.25)


def test_a_chase_must_move():
    b = bible("city", cast=2, action="Ana chases Ben through the street", time_of_day="day")
    moving = scene_motion(*take(b, motion="frantic"))
    still = scene_motion(*take(b, motion="still"))
    assert moving.value == pytest.approx(1.0) and still.value < 0.05
    assert (
        moving.reason.startswith("vigorous action (chase): motion energy")
        and "inside [2, inf]" in moving.reason
    )
    assert "below [2, inf]" in still.reason
    # a static camera on still figures is the worst; a handheld camera alone is not a chase
    handheld = scene_motion(*take(b, motion="still", camera_move="handheld"))
    assert still.value < handheld.value < 0.6


def test_a_vigil_must_not_move():
    b = bible("chapel", action="Ana keeps a silent vigil", time_of_day="night")
    calm = scene_motion(*take(b, motion="still", lighting="candlelight"))
    frantic = scene_motion(*take(b, motion="frantic", lighting="candlelight"))
    assert calm.value == pytest.approx(1.0) and frantic.value < 0.05
    assert calm.reason.startswith("calm action (silent, vigil)") and "above [0, 0.35]" in frantic.reason


def test_a_walk_wants_some_motion_but_not_frenzy():
    b = bible("meadow", action="Ana walks across the field")
    gentle = scene_motion(*take(b, motion="gentle", camera_move="pan"))
    frantic = scene_motion(*take(b, motion="frantic"))
    assert gentle.value > 0.9 and frantic.value < 0.7
    assert "above [0.2, 1.2]" in frantic.reason


def test_numpy_clips_static_against_panning():
    b = bible("meadow", action="They race to the river")
    ctx = ScoreContext(scene=b.scenes[0], bible=b)
    fast = scene_motion(ClipAnalysis(pan_clip(t=8, h=90, w=160, speed=3.0)), ctx)
    frozen = scene_motion(ClipAnalysis(pan_clip(t=8, h=90, w=160, speed=0.0)), ctx)
    assert fast.value == pytest.approx(1.0) and frozen.value < 0.01


def test_not_applicable_without_a_motion_word_or_a_scene():
    b = bible("meadow", action="A red lamp on a table")
    clip = ClipAnalysis(Clip(frames=np.zeros((3, 16, 16, 3), np.uint8), fps=8))
    r = scene_motion(clip, ScoreContext(scene=b.scenes[0], bible=b))
    assert r.status == "not_applicable" and "no motion word" in r.reason
    assert "no scene" in scene_motion(clip, ScoreContext()).reason
