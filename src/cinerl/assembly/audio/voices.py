"""Who speaks each scene's line, and in which voice: one narrator, or the cast.

``audio.voice`` is either an espeak-ng voice (``en-us``, ``en-gb+f3``): one narrator speaks every
line; or ``cast`` (the default): each scene's line is spoken in the voice of the scene's first
character. A character's voice comes from the bible: the espeak-ng variant of its gender (``+f1``
.. ``+f5``, ``+m1`` .. ``+m7``; ``+grandma``/``+grandpa`` from 65), a base pitch and a pace by age
(children higher and a little faster, the old lower and slower), and a small per-character step
of pitch and variant (a digest of its id), so two characters of one age and gender still sound
apart. ``audio.cast_voices`` overrides any of it per character: ``"mara=en-gb+f2:170:70,
karim=en-us+m3"`` (voice, then optional words per minute and pitch 0-99), by id or by name.

The pitch figures are espeak-ng's 0-99 scale (50 is its default, about 118 Hz for ``+m1``);
the steps between them follow the usual speaking F0 of the groups (adult women about an octave
above children's fall, men around 100-120 Hz, lower again with age; Titze, *Principles of Voice
Production*, ch. 8), mapped onto that scale by ear, not measured.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cinerl.core.errors import UserError
from cinerl.core.schema import Character, Scene, StoryBible

__all__ = ["CAST", "Voice", "cast_voice", "parse_cast_voices", "scene_voice"]

CAST = "cast"
FEMALE = ("f1", "f2", "f3", "f4", "f5")
MALE = ("m1", "m2", "m3", "m4", "m5", "m6", "m7")


@dataclass(frozen=True)
class Voice:
    """An espeak-ng voice (language, ``+variant``), its pace and its pitch; who it speaks for."""

    name: str
    wpm: int
    pitch: int
    speaker: str = "narrator"

    def describe(self) -> str:
        return f"{self.speaker}: {self.name}, {self.wpm} wpm, pitch {self.pitch}"


def _step(cid: str, n: int) -> int:
    return int(hashlib.sha256(cid.encode()).hexdigest()[:8], 16) % n


def cast_voice(character: Character, language: str, wpm: int) -> Voice:
    """A character's voice from its age and gender (see the module's note)."""
    gender = (character.gender or "").strip().lower()
    female = gender.startswith(("fem", "wom", "girl", "lady", "she"))  # a group speaks as a man
    age = int(character.age)
    if age >= 65:
        variant, pitch, pace = ("grandma" if female else "grandpa"), (52 if female else 30), 0.88
    else:
        variant = (FEMALE if female else MALE)[_step(character.id, len(FEMALE if female else MALE))]
        if age < 13:
            pitch, pace = 80, 1.05
        elif age < 18:
            pitch, pace = (70 if female else 55), 1.03
        else:
            pitch, pace = (64 if female else 38), 1.0
    pitch += _step(character.id + "/pitch", 9) - 4  # -4..+4: characters of one group differ
    return Voice(f"{language}+{variant}", int(round(wpm * pace)), int(min(99, max(0, pitch))), character.name)


def parse_cast_voices(spec: str) -> dict[str, tuple[str, int | None, int | None]]:
    """``"id=voice[:wpm[:pitch]], ..."`` as ``{id_or_name: (voice, wpm, pitch)}`` (lower-case keys);
    a malformed entry is a UserError naming it and the setting."""
    out: dict[str, tuple[str, int | None, int | None]] = {}
    for entry in (e.strip() for e in (spec or "").split(",")):
        if not entry:
            continue
        who, _, what = entry.partition("=")
        parts = what.strip().split(":")
        try:
            if not who.strip() or not parts[0] or len(parts) > 3:
                raise ValueError
            wpm = int(parts[1]) if len(parts) > 1 and parts[1] else None
            pitch = int(parts[2]) if len(parts) > 2 and parts[2] else None
            if (wpm is not None and not 80 <= wpm <= 450) or (pitch is not None and not 0 <= pitch <= 99):
                raise ValueError
        except ValueError:
            raise UserError(
                f"audio.cast_voices entry {entry!r} is not CHARACTER=VOICE[:WPM[:PITCH]] "
                "(WPM 80-450, PITCH 0-99), e.g. 'mara=en-gb+f2:170:70'"
            ) from None
        out[who.strip().lower()] = (parts[0], wpm, pitch)
    return out


def scene_voice(scene: Scene, bible: StoryBible, audio) -> Voice:
    """The voice of ``scene``'s line under the audio settings (see the module's note)."""
    if audio.voice.strip().lower() != CAST:
        return Voice(audio.voice.strip(), audio.rate_wpm, audio.pitch)
    chars = [c for cid in scene.character_ids for c in bible.characters if c.id == cid]
    if not chars:
        return Voice(audio.cast_language, audio.rate_wpm, audio.pitch)
    who = chars[0]
    voice = cast_voice(who, audio.cast_language, audio.rate_wpm)
    override = parse_cast_voices(audio.cast_voices)
    got = override.get(who.id.lower()) or override.get(who.name.lower())
    if got:
        name, wpm, pitch = got
        voice = Voice(name, wpm or voice.wpm, voice.pitch if pitch is None else pitch, who.name)
    return voice
