import numpy as np

from cinerl.rewards import ClipAnalysis
from cinerl.core.schema import Clip


def test_resized_once_to_analysis_resolution(synth):
    clip = synth.pan_clip(t=5)
    a = ClipAnalysis(clip)
    assert a.frames.shape == (5, 144, 256, 3) and a.frames.dtype == np.uint8
    assert a.gray.shape == (5, 144, 256)
    lab = a.lab
    assert lab.dtype == np.float32 and 0 <= lab[..., 0].min() and lab[..., 0].max() <= 100
    small = ClipAnalysis(Clip(frames=np.zeros((2, 20, 30, 3), np.uint8), fps=24))
    assert small.frames.shape == (2, 20, 30, 3)  # never upscaled


def test_flow_is_computed_once_and_shared(synth):
    a = ClipAnalysis(synth.pan_clip(t=6))
    assert a.flow is a.flow
    assert a.flow.shape == (5, 144, 256, 2)


def test_long_clips_subsample_flow_pairs_in_consecutive_couples():
    frames = np.zeros((264, 36, 64, 3), np.uint8)
    a = ClipAnalysis(Clip(frames=frames, fps=24), max_flow_pairs=96)
    p = a.flow_pairs
    assert len(p) <= 96 and p[0] == 0 and p[-1] == 262
    assert set(p[:-1] + 1) & set(p)  # consecutive couples exist
    starts = [i for i in p if i + 1 in set(p)]
    assert len(starts) >= 40
