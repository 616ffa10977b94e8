"""SubRip (.srt) subtitles for the film (one cue per scene saying what happens in it, or the
narration with its timing), and the same cues drawn into frames for ``--burn-subtitles``
(Pillow's default FreeType font, wrapped to the frame, inside a 6 % safe margin)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from cinerl.core.media import atomic_write_text
from cinerl.core.schema import StoryBible

__all__ = ["MAX_CUE_CHARS", "draw_caption", "scene_subtitles", "srt_timestamp", "wrap_text", "write_srt"]

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


SAFE_MARGIN = 0.06  # of the frame's width and height, kept clear of text


@lru_cache(maxsize=8)
def _font(px: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=px)


def wrap_text(text: str, font, width: int) -> list[str]:
    """Words wrapped into lines no wider than ``width`` pixels (a longer word stands alone)."""
    lines: list[str] = []
    for word in _one_line(text).split():
        if lines and font.getlength(f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines


def _layout(h: int, w: int, text: str, scale: float):
    px = max(8, int(round(h / 16 * scale)))
    font = _font(px)
    lines = wrap_text(text, font, w - 2 * int(w * SAFE_MARGIN))
    step = int(px * 1.25)
    return font, px, lines, step, step * len(lines)


def caption_height(frame_size: tuple[int, int], text: str, scale: float = 1.0) -> int:
    """Pixels the wrapped ``text`` takes on a frame of ``(H, W)``."""
    return _layout(*frame_size, text, scale)[4]


def draw_caption(
    frame: np.ndarray, text: str, where: str = "bottom", scale: float = 1.0, top: int | None = None
) -> np.ndarray:
    """``text`` wrapped and drawn on a copy of ``frame`` (uint8 RGB), light on a dark band, at
    the bottom (subtitles), the centre, or from row ``top`` (cards), inside the safe margin."""
    h, w = frame.shape[:2]
    font, px, lines, step, block = _layout(h, w, text, scale)
    my = int(h * SAFE_MARGIN)
    if not lines:
        return frame
    if top is None:
        top = h - my - block if where == "bottom" else (h - block) // 2
    top = max(my, top)
    image = Image.fromarray(frame)
    draw = ImageDraw.Draw(image, "RGBA")
    widest = max(font.getlength(line) for line in lines)
    pad = max(2, px // 4)
    draw.rectangle(
        [(w - widest) / 2 - pad, top - pad, (w + widest) / 2 + pad, top + block + pad], fill=(0, 0, 0, 150)
    )
    for k, line in enumerate(lines):
        x = (w - font.getlength(line)) / 2
        draw.text((x, top + k * step), line, font=font, fill=(245, 245, 235, 255))
    return np.asarray(image)
