"""The music bed: a short procedural score per scene, or the user's file looped to the film.

The generated bed is written by hand with numpy (no library composes a mood-driven bed from a
few words offline): each scene gets a tempo from its beat (faster at the turn), a key and mode
from its mood words (minor for night, storm, fear...; major for dawn, home, joy...), a four-chord
progression played by a detuned additive pad, a bass on every beat and a plucked arpeggio on the
eighths, all drawn from a generator seeded by the run seed and the scene index, so the same film
gets the same bed. Scenes are joined with an equal-power crossfade: the film's crossfade length
when it crossfades, 50 ms at a cut.

``load_music`` reads any file PyAV decodes, as 48 kHz stereo float, looped or trimmed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

from cinerl.core.errors import UserError

__all__ = ["SceneMood", "check_music_file", "generated_bed", "load_music", "scene_mood"]

RATE = 48_000
SYNTH_RATE = 16_000  # the bed is synthesised here (nothing in it is above 6 kHz) and resampled
DARK = set(
    "night dark darkness storm rain fear flee flees fled lost alone cold grief chase chases danger "
    "shadow shadows dusk fog escape escapes ruin ruins fight fights war wound dies death dead "
    "midnight thunder hunt hunted".split()
)
BRIGHT = set(
    "dawn day morning sun sunny joy home reunite reunites laugh laughs festival spring find finds "
    "found celebrate celebrates wedding friend friends garden market bright warm meet meets".split()
)
FAST = set("chase chases run runs race races fight fights storm escape escapes flee flees hunt".split())
BEAT_TEMPO = {"beginning": 84.0, "turn": 108.0, "end": 76.0}
PROGRESSION = {  # (semitones above the key's root, chord is minor)
    "major": [(0, False), (7, False), (9, True), (5, False)],
    "minor": [(0, True), (8, False), (3, False), (10, False)],
}


@dataclass(frozen=True)
class SceneMood:
    """What the score of one scene is made of."""

    tempo: float
    mode: str  # major or minor
    root: int  # MIDI note of the key's root (bass octave)
    brightness: float  # 0..1: how many harmonics the pluck keeps

    def describe(self) -> str:
        names = "C C# D D# E F F# G G# A A# B".split()
        return f"{names[self.root % 12]} {self.mode}, {self.tempo:.0f} bpm"


def scene_mood(words: str, beat: str, rng: np.random.Generator) -> SceneMood:
    toks = re.findall(r"[a-z]+", words.lower())
    dark = sum(t in DARK for t in toks)
    bright = sum(t in BRIGHT for t in toks)
    tempo = BEAT_TEMPO.get(beat, 92.0) + 12.0 * any(t in FAST for t in toks)
    mode = "minor" if dark > bright or (dark == bright and beat == "turn") else "major"
    root = 40 + int(rng.integers(0, 8))  # E2..B2
    brightness = float(np.clip(0.35 + 0.15 * (bright - dark) + (0.2 if beat == "turn" else 0.0), 0.1, 0.9))
    return SceneMood(tempo, mode, root, brightness)


def _hz(midi: float) -> float:
    return 440.0 * 2.0 ** ((midi - 69) / 12.0)


def _add(out: np.ndarray, start: int, sig: np.ndarray, gains: tuple[float, float]) -> None:
    end = min(out.shape[0], start + len(sig))
    if end <= start:
        return
    out[start:end, 0] += gains[0] * sig[: end - start]
    out[start:end, 1] += gains[1] * sig[: end - start]


def _tone(freq: float, n: int, harmonics: list[float], env: np.ndarray, detune: float = 0.0) -> np.ndarray:
    """Additive tone: harmonic k is sin(k x), from sin x and cos x by the Chebyshev recurrence
    sin((k+1)x) = 2 cos x sin(kx) - sin((k-1)x) (two trig calls whatever the harmonic count)."""
    x = (2 * np.pi * freq * (1 + detune) / SYNTH_RATE) * np.arange(n, dtype=np.float32)
    s1, c2 = np.sin(x), 2 * np.cos(x)
    prev, cur = np.zeros_like(s1), s1
    sig = harmonics[0] * s1
    for amp in harmonics[1:]:
        prev, cur = cur, c2 * cur - prev
        sig += amp * cur
    return sig * env


def scene_score(mood: SceneMood, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """``seconds`` of the scene's bed at :data:`SYNTH_RATE`, (samples, 2) float32."""
    n = max(1, int(round(seconds * SYNTH_RATE)))
    out = np.zeros((n, 2), dtype=np.float32)
    beat_s = 60.0 / mood.tempo
    bar = int(round(4 * beat_s * SYNTH_RATE))
    beat = bar // 4
    chords = PROGRESSION[mood.mode]
    arp_pattern = rng.integers(0, 4, size=8)
    pan = float(rng.uniform(-0.5, 0.5))
    for b, start in enumerate(range(0, n, bar)):
        step, minor = chords[b % len(chords)]
        tones = [mood.root + 12 + step + i for i in (0, 3 if minor else 4, 7)]
        # the pad: each chord tone twice, detuned left and right, swelling over the bar
        env = np.sin(np.linspace(0, np.pi, bar)) ** 0.5
        for note in tones:
            _add(out, start, _tone(_hz(note), bar, [1.0, 0.3, 0.1], env, -0.002), (0.10, 0.06))
            _add(out, start, _tone(_hz(note), bar, [1.0, 0.3, 0.1], env, +0.002), (0.06, 0.10))
        for q in range(4):  # the bass: the chord's root on every beat
            env = np.exp(-np.arange(beat) / (0.25 * SYNTH_RATE)) * np.minimum(1, np.arange(beat) / 200)
            _add(out, start + q * beat, _tone(_hz(mood.root + step), beat, [1.0, 0.4], env), (0.22, 0.22))
        eighth = beat // 2
        harm = [mood.brightness**k for k in range(5)]
        for e in range(8):  # the pluck: chord tones an octave up, on the eighths
            note = (tones + [tones[0] + 12])[arp_pattern[e]] + 12
            env = np.exp(-np.arange(eighth) / (0.08 * SYNTH_RATE)) * np.minimum(1, np.arange(eighth) / 100)
            g = 0.07 * (1.1 if e % 2 == 0 else 0.8)
            _add(out, start + e * eighth, _tone(_hz(note), eighth, harm, env), (g * (1 - pan), g * (1 + pan)))
    return out


def _fade(n: int, rising: bool) -> np.ndarray:
    x = np.linspace(0.0, 1.0, n) if n > 1 else np.ones(n)
    return np.sin(0.5 * np.pi * (x if rising else 1 - x))  # equal power


def generated_bed(
    moods: list[SceneMood], offsets: list[float], total_s: float, seed: int, fade_s: float = 0.05
) -> np.ndarray:
    """The film's bed: scene ``i``'s score from ``offsets[i]``, crossfaded (equal power,
    ``fade_s``) into the next scene's; (samples, 2) float32 of ``total_s`` seconds."""
    n = int(round(total_s * RATE))
    out = np.zeros((n, 2))
    fade = max(1, int(round(fade_s * RATE)))
    for i, mood in enumerate(moods):
        start = int(round(offsets[i] * RATE))
        end = int(round(offsets[i + 1] * RATE)) if i + 1 < len(moods) else n
        length = min(n, end + (fade if i + 1 < len(moods) else 0)) - start
        if length <= 0:
            continue
        rng = np.random.default_rng([seed, i, 17])
        seg = resample_poly(scene_score(mood, length / RATE, rng), RATE // SYNTH_RATE, 1, axis=0)
        seg = np.pad(seg, ((0, max(0, length - len(seg))), (0, 0)))[:length]
        f = min(fade, length)
        if i > 0:
            seg[:f] *= _fade(f, True)[:, None]
        if i + 1 < len(moods):
            seg[-f:] *= _fade(f, False)[:, None]
        out[start : start + length] += seg
    return out.astype(np.float32)


def _decode(path: Path) -> np.ndarray:
    import av

    resampler = av.AudioResampler(format="fltp", layout="stereo", rate=RATE)
    parts = []
    with av.open(str(path)) as container:
        if not container.streams.audio:
            raise ValueError("it has no audio stream")
        for frame in container.decode(audio=0):
            for out in resampler.resample(frame):
                parts.append(out.to_ndarray())
        for out in resampler.resample(None):
            parts.append(out.to_ndarray())
    if not parts:
        raise ValueError("it decodes to no samples")
    return np.concatenate(parts, axis=1).T.astype(np.float32)


def check_music_file(path: str | Path) -> np.ndarray:
    """The file's audio as (samples, 2) float32 at 48 kHz, or a UserError of one line."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(f"music file not found: {p} (--music FILE, or --music none)")
    try:
        audio = _decode(p)
    except Exception as e:  # PyAV's errors for a file it cannot read
        raise UserError(f"cannot read music file {p}: {e}".splitlines()[0]) from None
    if audio.shape[0] < RATE // 10:
        raise UserError(f"music file {p} is shorter than 0.1 s")
    return audio


def load_music(path: str | Path, total_s: float, fade_s: float = 1.0) -> np.ndarray:
    """The file looped (20 ms fades at each seam) or trimmed to ``total_s``, faded out at the end."""
    audio = check_music_file(path)
    n = int(round(total_s * RATE))
    seam = min(int(0.02 * RATE), audio.shape[0] // 4)
    if audio.shape[0] < n:
        audio = audio.copy()
        audio[:seam] *= _fade(seam, True)[:, None]
        audio[-seam:] *= _fade(seam, False)[:, None]
        audio = np.tile(audio, (int(np.ceil(n / audio.shape[0])), 1))
    out = audio[:n].copy()
    f = min(n, int(fade_s * RATE))
    if f:
        out[-f:] *= np.linspace(1.0, 0.0, f)[:, None]
    return out.astype(np.float32)
