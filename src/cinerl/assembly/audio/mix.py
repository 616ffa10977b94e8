"""The mix: narration over a music bed ducked under it, at -16 LUFS and under -1 dBTP.

Ducking is side-chained on the narration: where its envelope is above a threshold (held 150 ms
over the gaps between words) the music is lowered by ``duck_db``; the gain curve is smoothed by
a centred 120 ms window, so the bed starts to dip just before a line, like a look-ahead ducker.
Levels: the narration alone at the target loudness, the undocked bed ``music_db`` LU under it;
then the sum is brought to the target (BS.1770-4, audio/loudness.py) and a look-ahead true-peak
limiter (gain = min over a 5 ms window of ceiling / 4x-oversampled peak, then smoothed) keeps it
under the ceiling; what limiting takes is made up and limited again (at most three rounds), so
limiting does not leave the mix quiet.
These few lines of DSP are written here: pyloudnorm measures but has no ducker or limiter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import maximum_filter1d, minimum_filter1d, uniform_filter1d

from cinerl.assembly.audio.loudness import integrated_loudness, true_peak_envelope

__all__ = ["Mix", "duck_gain", "mix", "place_lines"]

RATE = 48_000


def place_lines(lines: list[tuple[float, np.ndarray]], seconds: float) -> np.ndarray:
    """A mono narration track of ``seconds``: each ``(start_s, samples)`` added at its start."""
    n = int(round(seconds * RATE))
    track = np.zeros(n, dtype=np.float32)
    for start, audio in lines:
        i = int(round(start * RATE))
        k = max(0, min(len(audio), n - i))
        track[i : i + k] += audio[:k]
    return track


def duck_gain(narration: np.ndarray, duck_db: float, threshold_db: float = -36.0) -> np.ndarray:
    """Per-sample linear gain for the music: ``10**(-duck_db/20)`` under speech, 1 between lines."""
    level = np.abs(narration)
    peak = level.max() if level.size else 0.0
    if peak <= 0 or duck_db <= 0:
        return np.ones(len(narration), dtype=np.float32)
    active = maximum_filter1d((level > peak * 10 ** (threshold_db / 20)).astype(np.float32), int(0.15 * RATE))
    gain_db = uniform_filter1d(-duck_db * active, int(0.12 * RATE), mode="nearest")
    return (10 ** (gain_db / 20)).astype(np.float32)


def _limit(x: np.ndarray, env: np.ndarray, ceiling_db: float) -> np.ndarray:
    ceiling = 10 ** (ceiling_db / 20)
    need = np.minimum(1.0, ceiling / np.maximum(env, 1e-12))
    w = int(0.005 * RATE)
    gain = uniform_filter1d(minimum_filter1d(need, 2 * w + 1), w, mode="nearest")
    gain = np.minimum(gain, 1.0)
    return x * gain[:, None]


@dataclass
class Mix:
    audio: np.ndarray  # (samples, 2) float32, the film's soundtrack
    music: np.ndarray | None  # the ducked bed as it sits in the mix (before the final gain)
    gain: np.ndarray  # the ducking gain
    loudness: float  # LUFS integrated
    true_peak: float  # dBTP

    def figures(self) -> dict:
        return {"integrated_lufs": round(self.loudness, 2), "true_peak_dbtp": round(self.true_peak, 2)}


def _gain_to(x: np.ndarray, target: float) -> float:
    lufs = integrated_loudness(x)
    return 1.0 if not np.isfinite(lufs) else float(10 ** ((target - lufs) / 20))


def mix(
    narration: np.ndarray,
    music: np.ndarray | None,
    target_lufs: float = -16.0,
    ceiling_dbtp: float = -1.0,
    duck_db: float = 12.0,
    music_db: float = -8.0,
) -> Mix:
    """Narration (mono) and an optional bed ((samples, 2)) mixed to stereo at ``target_lufs``
    with a true peak at or under ``ceiling_dbtp``."""
    n = len(narration) if music is None else max(len(narration), len(music))
    voice = np.zeros(n, dtype=np.float64)
    voice[: len(narration)] = narration
    has_voice = np.any(voice)
    if has_voice:
        voice *= _gain_to(voice, target_lufs)
    out = np.repeat(voice[:, None], 2, axis=1)
    gain = duck_gain(voice, duck_db)
    bed = None
    if music is not None and np.any(music):
        bed = np.zeros((n, 2))
        bed[: len(music)] = music[:n]
        bed *= _gain_to(bed, target_lufs + (music_db if has_voice else 0.0))
        bed *= gain[:, None]
        out = out + bed
    out = (out * _gain_to(out, target_lufs)).astype(np.float32)
    ceiling = 10 ** (ceiling_dbtp / 20)
    floor = ceiling / 2  # only samples near one over -6 dB under the ceiling are oversampled
    env = true_peak_envelope(out, floor)
    for _ in range(3):  # limit (0.3 dB under the ceiling), make up what it took, check again
        if env.max() <= ceiling:
            break
        out = _limit(out, env, ceiling_dbtp - 0.3)
        short = target_lufs - integrated_loudness(out)
        if np.isfinite(short) and short > 0.05:
            out *= np.float32(10 ** (short / 20))
        env = true_peak_envelope(out, floor)
    peak = float(true_peak_envelope(out).max())  # the figure itself: every sample oversampled
    if peak > ceiling:  # still over after three rounds: the whole mix comes down
        out *= np.float32(ceiling / peak * 10 ** (-0.02 / 20))
        peak = ceiling * 10 ** (-0.02 / 20)
    tp = float(20 * np.log10(peak)) if peak > 0 else float("-inf")
    audio = out.astype(np.float32)
    return Mix(audio, None if bed is None else bed.astype(np.float32), gain, integrated_loudness(audio), tp)
