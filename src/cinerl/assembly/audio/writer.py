"""Audio files: 16-bit WAV stems (the standard library's ``wave``) and the film's AAC track.

:func:`mux_audio` copies the film's H.264 packets unchanged (no re-encode) and adds the mix as
AAC stereo 48 kHz, written atomically over (or beside) the film. The audio is cut or padded
with silence to the video's length, so the two agree to a sample before AAC's framing.
"""

from __future__ import annotations

import os
import wave
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from cinerl.core.failpoints import fault_point
from cinerl.core.media import atomic_path

__all__ = ["RATE", "decode_audio", "mux_audio", "read_wav", "write_wav"]

RATE = 48_000
AAC_FRAME = 1024


def write_wav(audio: np.ndarray, path: str | os.PathLike, rate: int = RATE) -> Path:
    """(samples,) or (samples, channels) float in [-1, 1] as 16-bit PCM WAV, atomically."""
    a = np.asarray(audio, dtype=np.float32)
    a = a[:, None] if a.ndim == 1 else a
    pcm = np.clip(np.rint(a * 32767.0), -32768, 32767).astype("<i2")
    with atomic_path(path) as tmp:
        with wave.open(str(tmp), "wb") as w:
            w.setnchannels(a.shape[1])
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(pcm.tobytes())
    return Path(path)


def read_wav(path: str | os.PathLike) -> np.ndarray:
    """A 16-bit WAV as float32: (samples,) when mono, else (samples, channels)."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: only 16-bit WAV is read here")
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, w.getnchannels())
    a = pcm.astype(np.float32) / 32767.0
    return a[:, 0] if a.shape[1] == 1 else a


def mux_audio(
    video: str | os.PathLike, audio: np.ndarray, out: str | os.PathLike, bitrate: int = 160_000
) -> Path:
    """``video``'s streams copied into ``out`` with ``audio`` ((samples, 2) float, 48 kHz) as AAC
    stereo; the audio is fitted to the video's duration. ``out`` may be ``video`` itself."""
    video, out = Path(video), Path(out)
    with av.open(str(video)) as src:
        vin = src.streams.video[0]
        frames = vin.frames
        fps = vin.average_rate or vin.guessed_rate
        seconds = float(frames / fps) if frames and fps else float(vin.duration * vin.time_base)
        n = int(round(seconds * RATE))
        a = np.zeros((n, 2), dtype=np.float32)
        k = min(n, len(audio))
        a[:k] = np.asarray(audio, dtype=np.float32)[:k].reshape(k, -1)[:, :2]
        with atomic_path(out) as tmp:
            with av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as dst:
                vout = dst.add_stream_from_template(vin)
                # FFmpeg's "fast" AAC coder: half the time of its default "twoloop" search at this
                # bit rate (the encode was the largest part of the audio stage), still deterministic
                aout = dst.add_stream("aac", rate=RATE, layout="stereo", options={"aac_coder": "fast"})
                aout.bit_rate = bitrate
                aout.time_base = Fraction(1, RATE)
                packets = [p for p in src.demux(vin) if p.dts is not None]
                planar = np.ascontiguousarray(a.T)
                audio_packets = []
                for i in range(0, n, AAC_FRAME):
                    frame = av.AudioFrame.from_ndarray(
                        planar[:, i : i + AAC_FRAME], format="fltp", layout="stereo"
                    )
                    frame.sample_rate = RATE
                    frame.pts = i
                    frame.time_base = Fraction(1, RATE)
                    audio_packets.extend(aout.encode(frame))
                audio_packets.extend(aout.encode(None))
                # interleave by time so players need not seek between the tracks
                for p in packets:
                    p.stream = vout
                timed = [(float(p.dts * p.time_base), 0, j, p) for j, p in enumerate(packets)]
                timed += [(float(p.dts * p.time_base), 1, j, p) for j, p in enumerate(audio_packets)]
                for k, (*_, p) in enumerate(sorted(timed, key=lambda t: t[:3])):
                    dst.mux(p)
                    if k == len(timed) // 2:
                        fault_point("audio.mid_mux")  # half the film written to its temporary name
    return out


def decode_audio(path: str | os.PathLike) -> np.ndarray:
    """The first audio stream of a media file as (samples, channels) float32 (for tests, reports)."""
    parts = []
    with av.open(str(path)) as c:
        for frame in c.decode(audio=0):
            parts.append(frame.to_ndarray())
    if not parts:
        return np.zeros((0, 2), dtype=np.float32)
    return np.concatenate(parts, axis=1).T.astype(np.float32)
