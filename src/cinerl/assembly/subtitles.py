"""SubRip (.srt) subtitles for the film: one cue per scene saying what happens in it."""

from __future__ import annotations

import os
from pathlib import Path

from cinerl.core.media import atomic_write_text
from cinerl.core.schema import StoryBible

__all__ = ["MAX_CUE_CHARS", "scene_subtitles", "srt_timestamp", "write_srt"]

#: Longest cue text scene_subtitles produces (characters, ellipsis included).
MAX_CUE_CHARS = 120


def srt_timestamp(seconds: float) -> str:
    """Format seconds as an SRT timestamp ``HH:MM:SS,mmm`` (rounded to the millisecond;
    negative values clamp to zero)."""
    total_ms = max(0, int(round(float(seconds) * 1000.0)))
    hours, rem = divmod(total_ms, 3_600_000)
    minutes, rem = divmod(rem, 60_000)
    secs, ms = divmod(rem, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d},{ms:03d}"


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _shorten(text: str, limit: int = MAX_CUE_CHARS) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:—-") + "…"


def write_srt(entries: list[tuple[float, float, str]], path: str | os.PathLike) -> Path:
    """Write ``(start_s, end_s, text)`` entries as numbered SRT cues (atomic, UTF-8).

    Whitespace in the text (newlines included) is collapsed to single spaces, so each cue is one
    line; an empty text becomes ``…`` (an empty cue would end the block). A cue whose end is not
    after its start is given one millisecond.
    """
    blocks = []
    for number, (start, end, text) in enumerate(entries, start=1):
        start, end = max(0.0, float(start)), float(end)
        if end <= start:
            end = start + 0.001
        line = _one_line(text) or "…"
        blocks.append(f"{number}\n{srt_timestamp(start)} --> {srt_timestamp(end)}\n{line}\n")
    return atomic_write_text(path, "\n".join(blocks))


def scene_subtitles(
    bible: StoryBible, scene_offsets: list[float], scene_seconds: list[float]
) -> list[tuple[float, float, str]]:
    """One cue per scene: ``"Scene N: <title> — <action>"`` (N counts from 1, at most
    :data:`MAX_CUE_CHARS` characters).

    ``scene_offsets[i]`` / ``scene_seconds[i]`` are the start and length in the film of the i-th
    scene of ``bible.scenes``. A cue ends at ``offset + seconds`` or where the next scene starts,
    whichever is first, so crossfaded scenes do not show two cues at once.
    """
    scenes = list(bible.scenes)
    if not (len(scenes) == len(scene_offsets) == len(scene_seconds)):
        raise ValueError(
            f"need one offset and one duration per scene: {len(scenes)} scenes, "
            f"{len(scene_offsets)} offsets, {len(scene_seconds)} durations"
        )
    cues = []
    for i, scene in enumerate(scenes):
        start = float(scene_offsets[i])
        end = start + float(scene_seconds[i])
        if i + 1 < len(scenes):
            end = min(end, float(scene_offsets[i + 1]))
        title = _one_line(scene.title)
        action = _one_line(scene.action)
        text = f"Scene {scene.index + 1}: {title}" + (f" — {action}" if action else "")
        cues.append((start, end, _shorten(text)))
    return cues
