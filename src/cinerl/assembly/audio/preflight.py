"""The soundtrack's checks before a film is shot: a bad ``--music FILE``, ``--voice`` or
``audio.cast_voices`` is one line (exit 2) at the start, not after every scene is rendered."""

from __future__ import annotations

import importlib.util

__all__ = ["check_audio"]


def check_audio(settings) -> None:
    a = settings.audio
    choice = a.music.strip()
    if choice.lower() not in ("generated", "none"):
        from cinerl.assembly.audio.music import check_music_file

        check_music_file(choice)
    if not a.narration:
        return
    from cinerl.assembly.audio.voices import CAST, parse_cast_voices

    cast = a.voice.strip().lower() == CAST
    overrides = parse_cast_voices(a.cast_voices) if cast else {}  # a malformed entry: a UserError
    if a.tts == "espeak" and importlib.util.find_spec("espeakng_loader") is not None:
        from cinerl.assembly.audio.speech import check_espeak_voice

        # a voice espeak-ng does not have is a UserError naming it
        for voice in [a.cast_language, *(v for v, _, _ in overrides.values())] if cast else [a.voice]:
            check_espeak_voice(voice)
