"""cinerl.assembly.subtitles: SRT timestamps, files and per-scene cues."""

from __future__ import annotations

import os

import pytest

from cinerl.assembly.subtitles import MAX_CUE_CHARS, scene_subtitles, srt_timestamp, write_srt
from cinerl.core.schema import Character, Location, NamedColor, Scene, StoryBible


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (3725.5, "01:02:05,500"),
        (0, "00:00:00,000"),
        (1.0004, "00:00:01,000"),
        (59.9996, "00:01:00,000"),
        (0.001, "00:00:00,001"),
        (36000 + 61.25, "10:01:01,250"),
        (-2.0, "00:00:00,000"),
    ],
)
def test_srt_timestamp(seconds, expected):
    assert srt_timestamp(seconds) == expected


def test_write_srt_exact(tmp_path):
    path = write_srt(
        [(0.0, 2.5, "Hello\nworld"), (2.5, 3725.5, "  second   cue\r\n  here "), (4000, 4000, "")],
        tmp_path / "film.srt",
    )
    assert path.read_text(encoding="utf-8") == (
        "1\n00:00:00,000 --> 00:00:02,500\nHello world\n"
        "\n"
        "2\n00:00:02,500 --> 01:02:05,500\nsecond cue here\n"
        "\n"
        "3\n01:06:40,000 --> 01:06:40,001\n…\n"
    )
    assert os.listdir(tmp_path) == ["film.srt"]


def bible(action2: str = "She lights the last lantern.") -> StoryBible:
    return StoryBible(
        seed_prompt="a keeper and her son",
        title="The Lantern",
        logline="A keeper and her son save the festival.",
        characters=[
            Character(
                id="mara",
                name="Mara",
                age=64,
                gender="woman",
                wardrobe=[NamedColor(name="navy", rgb=(20, 30, 80))],
            )
        ],
        locations=[
            Location(
                id="harbour",
                name="Harbour",
                scenery_type="harbor",
                palette=[NamedColor(name="slate", rgb=(80, 90, 100))],
            )
        ],
        scenes=[
            Scene(
                index=0,
                title="Storm",
                beat="beginning",
                duration_s=5,
                character_ids=["mara"],
                location_id="harbour",
                action="Mara rows\ninto the storm.",
            ),
            Scene(
                index=1,
                title="Harbour",
                beat="turn",
                duration_s=4,
                character_ids=["mara"],
                location_id="harbour",
                action=action2,
            ),
            Scene(
                index=2,
                title="Dawn",
                beat="end",
                duration_s=3,
                character_ids=["mara"],
                location_id="harbour",
                action="",
            ),
        ],
    )


def test_scene_subtitles_one_cue_per_scene():
    cues = scene_subtitles(bible(), [0.0, 5.0, 9.0], [5.0, 4.0, 3.0])
    assert cues == [
        (0.0, 5.0, "Scene 1: Storm — Mara rows into the storm."),
        (5.0, 9.0, "Scene 2: Harbour — She lights the last lantern."),
        (9.0, 12.0, "Scene 3: Dawn"),
    ]


def test_scene_subtitles_crossfade_ends_at_next_offset_and_long_text_is_cut():
    long_action = "She climbs the tower " + "and keeps climbing " * 20 + "to the lamp."
    cues = scene_subtitles(bible(long_action), [0.0, 4.5, 8.0], [5.0, 4.0, 3.0])
    assert [c[:2] for c in cues] == [(0.0, 4.5), (4.5, 8.0), (8.0, 11.0)]
    text = cues[1][2]
    assert text.startswith("Scene 2: Harbour — She climbs the tower")
    assert len(text) <= MAX_CUE_CHARS and text.endswith("…")


def test_scene_subtitles_length_mismatch():
    with pytest.raises(ValueError):
        scene_subtitles(bible(), [0.0, 5.0], [5.0, 4.0, 3.0])


def test_scene_subtitles_to_file(tmp_path):
    cues = scene_subtitles(bible(), [0.0, 5.0, 9.0], [5.0, 4.0, 3.0])
    text = write_srt(cues, tmp_path / "film.srt").read_text(encoding="utf-8")
    assert text.count(" --> ") == 3
    assert text.startswith("1\n00:00:00,000 --> 00:00:05,000\nScene 1: Storm — ")
