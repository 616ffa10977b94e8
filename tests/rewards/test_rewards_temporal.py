import numpy as np
import pytest

from cinerl.rewards import ClipAnalysis, ScoreContext, Scorer
from cinerl.rewards.components.temporal import flow_smoothness, temporal_flicker
from cinerl.core.schema import Clip


def _score(clip, name):
    return Scorer(components=[name]).score(clip, ScoreContext()).components[name]


def test_temporal_flicker_matches_hand_computed_vbench_value():
    # 3 frames of 2x2 RGB, every channel equal. Small enough that the analysis does not resize.
    f0 = np.full((2, 2, 3), 10, np.uint8)
    f1 = np.full((2, 2, 3), 40, np.uint8)  # |f1 - f0| = 30 everywhere -> MAE 30
    f2 = np.full((2, 2, 3), 40, np.uint8)
    f2[0, 1] = 100  # |f2 - f1| = 60 on 1 of 4 pixels -> MAE 15
    c = _score(Clip(frames=np.stack([f0, f1, f2]), fps=24), "temporal_flicker")
    assert c.status == "ok"
    assert c.raw["mean_abs_diff"] == pytest.approx(22.5)  # (30 + 15) / 2
    assert c.value == pytest.approx((255 - 22.5) / 255)  # = 0.91176...


def test_temporal_flicker_ranks_steady_above_flickering(synth):
    steady = _score(synth.flicker_clip(amount=0.0), "temporal_flicker")
    flick = _score(synth.flicker_clip(amount=0.15), "temporal_flicker")
    assert steady.value == pytest.approx(1.0)
    assert steady.value > flick.value + 0.05
    assert flick.raw["mean_abs_diff"] > 10


def test_single_frame_clip_is_not_applicable(synth):
    one = Clip(frames=synth.flicker_clip(t=1).frames, fps=24)
    a = ClipAnalysis(one)
    assert temporal_flicker(a, ScoreContext()).status == "not_applicable"
    assert flow_smoothness(a, ScoreContext()).status == "not_applicable"
    two = Clip(frames=synth.flicker_clip(t=2).frames, fps=24)
    assert flow_smoothness(ClipAnalysis(two), ScoreContext()).status == "not_applicable"


def test_flow_smoothness_ranks_smooth_pan_above_jitter(synth):
    smooth = _score(synth.pan_clip(t=40, speed=1.5), "flow_smoothness")
    shaky = _score(synth.pan_clip(t=40, speed=1.5, jitter=6.0), "flow_smoothness")  # +-2.4 px at 256 px
    static = _score(synth.pan_clip(t=12, speed=0.0), "flow_smoothness")
    assert smooth.value > 0.8
    assert shaky.value < 0.5
    assert smooth.value > shaky.value + 0.2
    assert static.value == pytest.approx(1.0, abs=1e-3)
    assert shaky.raw["accel"] > smooth.raw["accel"]
    assert shaky.raw["reversals"] > smooth.raw["reversals"]
    # a 1.5 px/frame pan at 640 px is 0.6 px/frame at 256 px
    assert smooth.raw["mean_magnitude"] == pytest.approx(0.6, abs=0.15)
