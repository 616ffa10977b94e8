"""The mix: the bed ducks under narration by its depth; loudness and true peak hit their marks."""

from __future__ import annotations

import numpy as np
import pytest

from cinerl.assembly.audio.loudness import integrated_loudness, true_peak
from cinerl.assembly.audio.mix import duck_gain, mix, place_lines
from cinerl.assembly.audio.speech import espeak_speak

RATE = 48_000


@pytest.fixture(scope="module")
def lines():
    a = espeak_speak("The harbour is dark and the boat is gone.")
    b = espeak_speak("Then the lamp shows them the way home.")
    return [(1.0, a), (8.0, b)]


def steady_bed(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    x = 0.2 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 330 * t)
    return np.stack([x, x], axis=1).astype(np.float32)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x))))


def test_music_is_lower_under_speech_by_the_ducking_depth(lines):
    seconds, depth = 14.0, 12.0
    voice = place_lines(lines, seconds)
    bed = steady_bed(seconds)
    m = mix(voice, bed, duck_db=depth)
    (s1, a), (s2, b) = lines
    under = [(s1 + 0.3, s1 + len(a) / RATE - 0.3), (s2 + 0.3, s2 + len(b) / RATE - 0.3)]
    between = [(s1 + len(a) / RATE + 0.6, s2 - 0.6)]

    def level(spans):
        return rms(np.concatenate([m.music[int(x * RATE) : int(y * RATE)] for x, y in spans]))

    drop = 20 * np.log10(level(between) / level(under))
    assert drop >= depth - 0.5, drop
    assert drop <= depth + 0.5  # ...and not much more: the bed is not switched off
    g = duck_gain(voice, depth)
    assert g.max() == pytest.approx(1.0) and 20 * np.log10(g.min()) == pytest.approx(-depth, abs=0.05)


@pytest.mark.parametrize("with_music", [True, False])
def test_mix_meets_loudness_and_true_peak(lines, with_music):
    voice = place_lines(lines, 14.0)
    m = mix(voice, steady_bed(14.0) if with_music else None, target_lufs=-16.0, ceiling_dbtp=-1.0)
    assert m.audio.shape == (14 * RATE, 2)
    assert integrated_loudness(m.audio) == pytest.approx(-16.0, abs=0.5)
    assert true_peak(m.audio) <= -1.0 + 1e-3
    assert m.loudness == pytest.approx(integrated_loudness(m.audio)) and m.true_peak == pytest.approx(
        true_peak(m.audio), abs=0.01
    )


def test_a_hot_mix_is_limited_not_clipped():
    """Peaks far over the ceiling at the target loudness: the limiter holds the true peak and
    the loudness is made up again."""
    rng = np.random.default_rng(0)
    x = rng.normal(0, 0.02, 10 * RATE)
    x[::4800] = 1.0  # a click every 100 ms
    m = mix(x.astype(np.float32), None, target_lufs=-16.0)
    assert true_peak(m.audio) <= -1.0 + 1e-3
    assert integrated_loudness(m.audio) == pytest.approx(-16.0, abs=0.5)


def test_place_lines_puts_each_line_at_its_start():
    a = np.ones(100, np.float32)
    track = place_lines([(0.5, a), (1.0, 2 * a)], 2.0)
    assert track.shape == (96_000,)
    assert np.flatnonzero(track)[0] == 24_000 and track[48_000] == 2.0 and track[:24_000].sum() == 0
