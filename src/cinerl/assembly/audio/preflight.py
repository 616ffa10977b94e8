"""The soundtrack's checks before a film is shot: a bad ``--music FILE`` or ``--voice`` is one
line (exit 2) at the start, not after every scene is rendered."""

from __future__ import annotations

import importlib.util

__all__ = ["check_audio"]


def check_audio(settings) -> None:
    a = settings.audio
    choice = a.music.strip()
    if choice.lower() not in ("generated", "none"):
        from cinerl.assembly.audio.music import check_music_file

        check_music_file(choice)
    if a.narration and a.tts == "espeak" and importlib.util.find_spec("espeakng_loader") is not None:
        from cinerl.assembly.audio.speech import espeak_speak

        espeak_speak("a", a.voice)  # a voice espeak-ng does not have is a UserError naming it
