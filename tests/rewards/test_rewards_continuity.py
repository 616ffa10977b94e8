import numpy as np
import pytest

from cinerl.rewards import ClipAnalysis, ScoreContext
from cinerl.rewards.components.continuity import seam_continuity, ssim


def test_ssim_identity_and_noise(synth):
    img = synth.texture(64, 64, 1)[..., 0]
    assert ssim(img, img) == pytest.approx(1.0)
    other = synth.texture(64, 64, 2)[..., 0]
    assert ssim(img, other) < 0.3


def test_seam_high_for_identical_low_for_different(synth):
    clip = synth.pan_clip(t=4, speed=1.0, seed=0)
    a = ClipAnalysis(clip)
    same = seam_continuity(a, ScoreContext(previous_last_frame=clip.frames[0].copy()))
    near = seam_continuity(a, ScoreContext(previous_last_frame=clip.frames[1].copy()))
    other = synth.figure_clip(synth.WARDROBE, t=1).frames[0]
    diff = seam_continuity(a, ScoreContext(previous_last_frame=other))
    assert same.value > 0.98
    assert near.value > 0.8
    assert diff.value < 0.4
    assert same.raw["ssim"] > diff.raw["ssim"] and same.raw["mean_delta_e"] < diff.raw["mean_delta_e"]


def test_previous_frame_of_another_size_is_resized(synth):
    clip = synth.pan_clip(t=2, h=180, w=320)
    prev = np.ascontiguousarray(synth.pan_clip(t=1, h=360, w=640).frames[0])
    c = seam_continuity(ClipAnalysis(clip), ScoreContext(previous_last_frame=prev))
    assert c.status == "ok" and 0 <= c.value <= 1


def test_first_scene_is_not_applicable(synth):
    c = seam_continuity(ClipAnalysis(synth.pan_clip(t=2)), ScoreContext())
    assert c.status == "not_applicable" and c.value is None and c.reason
