"""espeak-ng through the espeakng-loader wheel; lines fitted to their scene; piper unavailable."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from cinerl.assembly.audio.speech import MAX_SPEEDUP, espeak_speak, fit_line, piper_voice
from cinerl.assembly.audio.soundtrack import speech_engine
from cinerl.assembly.audio.voices import Voice
from cinerl.core.errors import ModelUnavailable, UserError
from cinerl.core.settings import Settings

RATE = 48_000


def test_espeak_speaks_the_same_line_the_same_whatever_came_before():
    first = espeak_speak("The lamp is lit.")
    espeak_speak("Something else entirely, spoken in between, with other words.", wpm=220, pitch=80)
    again = espeak_speak("The lamp is lit.")
    assert np.array_equal(first, again)
    assert 0.5 < len(first) / RATE < 3.0 and np.abs(first).max() > 0.1
    faster = espeak_speak("The lamp is lit.", wpm=300)
    assert len(faster) < 0.8 * len(first)


def test_unknown_voice_is_a_user_error():
    with pytest.raises(UserError, match="no voice 'xx-nowhere'"):
        espeak_speak("hello", voice="xx-nowhere")
    assert len(espeak_speak("hello", voice="en-gb")) > 0


def test_a_long_line_is_sped_up_within_the_bound_then_trimmed_at_a_word():
    speak = lambda text, wpm: espeak_speak(text, wpm=wpm)  # noqa: E731
    short = fit_line("The boat comes home.", 5.0, speak)
    assert short.speedup == 1.0 and not short.trimmed and not short.warnings
    text = "Karim and Mara search the stormy harbour for a lost boat at night while the storm grows"
    natural = len(espeak_speak(text)) / RATE
    fitted = fit_line(text, natural / 1.2, speak)  # fits when sped up 1.2x
    assert 1.15 < fitted.speedup <= MAX_SPEEDUP and not fitted.trimmed
    assert fitted.seconds <= natural / 1.2 and fitted.text == text and "sped up" in fitted.warnings[0]
    tight = fit_line(text, 2.0, speak)
    assert tight.trimmed and tight.speedup == pytest.approx(MAX_SPEEDUP) and tight.seconds <= 2.0
    said = tight.text.rstrip("…").split()
    assert said == text.split()[: len(said)] and 1 <= len(said) < len(text.split())
    assert "trimmed" in tight.warnings[-1]


def test_piper_without_a_voice_is_unavailable_with_the_setting_to_set(tmp_path):
    with pytest.raises(ModelUnavailable, match=r"audio\.tts_model \(--tts-model VOICE\.onnx\)"):
        piper_voice(None)
    with pytest.raises(ModelUnavailable, match="not found: set audio.tts_model"):
        piper_voice(str(tmp_path / "missing.onnx"))
    speak, engine, warnings = speech_engine(Settings.of(audio__tts="piper").audio)
    assert engine.startswith("espeak-ng") and "audio.tts_model" in warnings[0] and "espeak-ng" in warnings[0]
    assert len(speak("hello", 160, Voice("en-us", 160, 50))) > 0


def test_a_piper_voice_that_does_not_load_is_unavailable_and_espeak_narrates(tmp_path):
    """piper-tts is installed (the test extra): a voice file without its .onnx.json, and one that
    is not an ONNX model, are each `unavailable` naming the setting; the engine falls back."""
    voice = tmp_path / "voice.onnx"
    voice.write_bytes(b"not an onnx model" * 10)
    with pytest.raises(ModelUnavailable, match=r"no voice\.onnx\.json beside it: set audio\.tts_model"):
        piper_voice(str(voice))
    (tmp_path / "voice.onnx.json").write_text('{"audio": {"sample_rate": 22050}}')
    with pytest.raises(ModelUnavailable, match=r"piper could not load the voice .*set audio\.tts_model"):
        piper_voice(str(voice))
    audio = Settings.of(audio__tts="piper", audio__tts_model=str(voice)).audio
    speak, engine, warnings = speech_engine(audio)
    assert engine.startswith("espeak-ng") and "could not load" in warnings[0] and "espeak-ng" in warnings[0]


def test_piper_voice_file_without_the_package_is_unavailable(tmp_path, monkeypatch):
    voice = tmp_path / "voice.onnx"
    voice.write_bytes(b"onnx")
    (tmp_path / "voice.onnx.json").write_text("{}")
    monkeypatch.setitem(sys.modules, "piper", None)  # `import piper` raises ImportError, as uninstalled
    with pytest.raises(ModelUnavailable, match=r"needs the piper-tts package .*cinerl\[sound-piper\]"):
        piper_voice(str(voice))
