"""The BS.1770-4 meter against EBU Tech 3341's test signals (loudness within 0.1 LU, true peak
within +0.2/-0.4 dB, the tolerances Tech 3341 gives) and ITU-R BS.1770-4's own statement that a
0 dBFS 997 Hz sine on one channel reads -3.01 LKFS."""

from __future__ import annotations

import numpy as np
import pytest

from cinerl.assembly.audio.loudness import integrated_loudness, true_peak

RATE = 48_000


def sine(db: float, seconds: float, freq: float = 1000.0, channels: int = 2, phase: float = 0.0):
    t = np.arange(int(round(seconds * RATE))) / RATE
    x = 10 ** (db / 20) * np.sin(2 * np.pi * freq * t + phase)
    return np.repeat(x[:, None], channels, axis=1)


def test_bs1770_997hz_full_scale_one_channel():
    x = sine(0.0, 10, 997.0, channels=1)
    stereo = np.concatenate([x, np.zeros_like(x)], axis=1)
    assert integrated_loudness(stereo) == pytest.approx(-3.01, abs=0.05)
    x20 = sine(-20.0, 10, 997.0, channels=1)
    assert integrated_loudness(np.concatenate([x20, np.zeros_like(x20)], axis=1)) == pytest.approx(
        -23.01, abs=0.05
    )


@pytest.mark.parametrize(
    "parts, expected",
    [
        ([(-23, 20)], -23.0),  # Tech 3341 case 1
        ([(-33, 20)], -33.0),  # case 2
        ([(-36, 10), (-23, 60), (-36, 10)], -23.0),  # case 3: relative gate
        ([(-72, 10), (-36, 10), (-23, 60), (-36, 10), (-72, 10)], -23.0),  # case 4: both gates
        ([(-26, 20), (-20, 20.1), (-26, 20)], -23.0),  # case 5
    ],
)
def test_tech3341_loudness(parts, expected):
    x = np.concatenate([sine(db, s) for db, s in parts])
    assert integrated_loudness(x) == pytest.approx(expected, abs=0.1)


@pytest.mark.parametrize("phase_deg", [0.0, 45.0, 60.0, 67.5])
def test_tech3341_true_peak_quarter_rate_sine(phase_deg):
    """Cases 15-18: a -6.02 dBFS sine at fs/4; at 45 degrees its samples peak at -9 dBFS, yet the
    true peak is still -6.0 dBTP."""
    x = sine(-6.02, 1.0, RATE / 4, channels=1, phase=np.deg2rad(phase_deg))
    assert true_peak(x) == pytest.approx(-6.0, abs=0.25)
    if phase_deg == 45.0:
        assert 20 * np.log10(np.abs(x).max()) < -8.9  # a sample-peak meter would read -9 dB


def test_silence():
    assert integrated_loudness(np.zeros((RATE, 2))) == float("-inf")
    assert true_peak(np.zeros((RATE, 2))) == float("-inf")


def test_agrees_with_pyloudnorm():
    """This meter and pyloudnorm's (the same standard, written independently) agree within
    0.06 LU: pyloudnorm normalises the RLB high-pass to b = 0.995 * [1, -2, 1] where Table 2 of
    BS.1770-4 has [1, -2, 1], reading 0.043 dB lower on every signal."""
    import pyloudnorm

    rng = np.random.default_rng(3)
    t = np.arange(12 * RATE) / RATE
    x = rng.normal(0, 0.05, (t.size, 2)) * (1 + np.sin(2 * np.pi * 0.3 * t))[:, None] ** 3
    x[3 * RATE : 5 * RATE] *= 1e-4  # a quiet stretch for the gates to drop
    assert integrated_loudness(x) == pytest.approx(
        pyloudnorm.Meter(RATE).integrated_loudness(x) + 0.043, abs=0.01
    )
