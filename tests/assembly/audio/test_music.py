"""The generated bed: mood words pick mode and tempo; deterministic per seed; joins crossfade."""

from __future__ import annotations

import numpy as np

from cinerl.assembly.audio.music import generated_bed, scene_mood

RATE = 48_000


def test_mood_words_pick_mode_and_tempo():
    rng = np.random.default_rng(0)
    night = scene_mood("they flee the storm at night", "turn", rng)
    dawn = scene_mood("a warm dawn at home with friends", "beginning", rng)
    assert night.mode == "minor" and dawn.mode == "major"
    assert night.tempo > dawn.tempo  # the turn, and a chase, run faster
    assert dawn.brightness > night.brightness


def test_bed_is_deterministic_per_seed_and_fills_the_film():
    moods = [
        scene_mood("dawn", "beginning", np.random.default_rng(1)),
        scene_mood("storm", "end", np.random.default_rng(2)),
    ]
    a = generated_bed(moods, [0.0, 3.0], 6.0, seed=7)
    b = generated_bed(moods, [0.0, 3.0], 6.0, seed=7)
    c = generated_bed(moods, [0.0, 3.0], 6.0, seed=8)
    assert a.shape == (6 * RATE, 2) and a.dtype == np.float32
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    win = RATE // 10
    rms = np.sqrt((a[: len(a) // win * win, 0].reshape(-1, win) ** 2).mean(axis=1))
    assert rms.min() > 0.005  # no hole anywhere, the join included
    # scene 2 is its own score: a different key or mode than scene 1
    spec = [np.abs(np.fft.rfft(a[s * RATE : (s + 2) * RATE, 0])) for s in (0, 4)]
    assert np.corrcoef(spec[0], spec[1])[0, 1] < 0.9
