"""Each scene's line in the voice of its first character (from age and gender, or
audio.cast_voices), or one narrator (--voice)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cinerl.assembly.audio.preflight import check_audio
from cinerl.assembly.audio.soundtrack import speak_lines
from cinerl.assembly.audio.voices import cast_voice, parse_cast_voices, scene_voice
from cinerl.core.errors import UserError
from cinerl.core.schema import StoryBible
from cinerl.core.settings import Settings
from cinerl.core.store import RunStore

RATE = 48_000
LINE = "The lamp is lit, and the harbour waits for the boats to come home."


def bible() -> StoryBible:
    colour = {"name": "red", "rgb": (200, 30, 30)}
    person = lambda cid, name, age, gender: {  # noqa: E731
        "id": cid,
        "name": name,
        "age": age,
        "gender": gender,
        "wardrobe": [colour],
    }
    scene = lambda i, who: {  # noqa: E731
        "index": i,
        "title": f"s{i}",
        "beat": "beginning",
        "duration_s": 6.0,
        "character_ids": who,
        "location_id": "harbour",
        "action": LINE,
        "narration": LINE,
    }
    return StoryBible.model_validate(
        {
            "seed_prompt": "p",
            "title": "t",
            "logline": "l",
            "characters": [person("mara", "Mara", 29, "woman"), person("karim", "Karim", 58, "man")],
            "locations": [{"id": "harbour", "name": "Harbour", "scenery_type": "coast", "palette": [colour]}],
            "scenes": [scene(0, ["mara", "karim"]), scene(1, ["karim"]), scene(2, [])],
        }
    )


def f0(audio: np.ndarray) -> float:
    """Median fundamental frequency (Hz) of the voiced 40 ms frames: the autocorrelation's peak
    between 60 and 400 Hz, kept where it holds at least half the frame's energy."""
    n, lo, hi = int(0.04 * RATE), RATE // 400, RATE // 60
    found = []
    for i in range(0, len(audio) - n, n // 2):
        x = audio[i : i + n] - audio[i : i + n].mean()
        if np.sqrt((x**2).mean()) < 0.02:
            continue
        r = np.correlate(x, x, "full")[n - 1 :]
        lag = lo + int(np.argmax(r[lo:hi]))
        if r[lag] > 0.5 * r[0]:
            found.append(RATE / lag)
    assert len(found) > 10, "too few voiced frames"
    return float(np.median(found))


def test_voices_come_from_age_and_gender_and_settings_override_them():
    b = bible()
    mara, karim = cast_voice(b.characters[0], "en-us", 160), cast_voice(b.characters[1], "en-us", 160)
    assert "+f" in mara.name and "+m" in karim.name and mara.pitch > karim.pitch + 15
    audio = Settings.of().audio
    assert audio.voice == "cast"
    assert scene_voice(b.scenes[0], b, audio) == mara  # the scene's first character speaks
    assert scene_voice(b.scenes[2], b, audio).speaker == "narrator"  # nobody in it
    over = Settings.of(audio__cast_voices="Karim=en-gb+m7:140:20").audio  # by name, any case
    got = scene_voice(b.scenes[1], b, over)
    assert (got.name, got.wpm, got.pitch, got.speaker) == ("en-gb+m7", 140, 20, "Karim")
    one = Settings.of(audio__voice="en-gb").audio
    assert {scene_voice(sc, b, one).name for sc in b.scenes} == {"en-gb"}
    assert parse_cast_voices(" mara=en-us+f2 ,karim=en-us+m1::30") == {
        "mara": ("en-us+f2", None, None),
        "karim": ("en-us+m1", None, 30),
    }
    for bad in ("mara", "mara=en-us:fast", "=en-us", "mara=en-us:160:120"):
        with pytest.raises(UserError, match=r"audio\.cast_voices entry .* CHARACTER=VOICE"):
            parse_cast_voices(bad)


def test_two_characters_lines_differ_in_pitch(tmp_path):
    """The same words in scene 1 (Mara, 29) and scene 2 (Karim, 58): her median F0 is well above
    his; with one narrator (--voice en-us) the two lines are the same samples."""
    b = bible()
    store = RunStore(tmp_path / "run" / "state.db")
    lines, engine, _ = speak_lines(b, [6.0, 6.0, 6.0], Settings.of().audio, store, tmp_path / "run")
    assert engine == "espeak-ng, the cast's voices" and [ln.scene for ln in lines] == [0, 1, 2]
    her, him = f0(lines[0].audio), f0(lines[1].audio)
    assert her > 1.4 * him, (her, him)
    meta = json.loads((tmp_path / "run" / "audio" / "narration_00.json").read_text())
    assert meta["voice"].startswith("Mara: en-us+f") and lines[1].voice.startswith("Karim: en-us+m")
    store.close()
    store = RunStore(tmp_path / "one" / "state.db")
    one = Settings.of(audio__voice="en-us").audio
    lines, engine, _ = speak_lines(b, [6.0, 6.0, 6.0], one, store, tmp_path / "one")
    assert engine.startswith("espeak-ng en-us")
    assert np.array_equal(lines[0].audio, lines[1].audio) and lines[0].voice.startswith("narrator")
    store.close()


def test_bad_cast_voices_are_one_line_before_the_film(tmp_path):
    with pytest.raises(UserError, match="no voice variant 'zz9'"):
        check_audio(Settings.of(audio__cast_voices="mara=en-us+zz9"))
    with pytest.raises(UserError, match="no voice 'xx-nowhere'"):
        check_audio(Settings.of(audio__cast_language="xx-nowhere"))
    with pytest.raises(UserError, match="CHARACTER=VOICE"):
        check_audio(Settings.of(audio__cast_voices="mara"))
    check_audio(Settings.of(audio__cast_voices="mara=en-gb+f4:170"))  # fine
