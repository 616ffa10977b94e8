"""Stitch the chosen scene clips into one film.

Clips are decoded one frame at a time and fed straight into a single streaming H.264 writer
(:class:`cinerl.core.media.Mp4Writer`), so memory stays at a few frames (plus the ``crossfade_frames``
tail of the previous clip) however long the film is. The film is written atomically and, since the
encoder is deterministic, the same clips always give a byte-identical film.

Transitions:

* ``"cut"``: clips are concatenated; the film has ``sum(len(clip))`` frames.
* ``"crossfade"``: the last ``N`` frames of clip ``i`` are blended linearly with the first ``N``
  frames of clip ``i + 1``; blended frame ``j`` (0-based) is
  ``(1 - a) * tail[j] + a * head[j]`` with ``a = (j + 1) / (N + 1)``, so the film is shorter by
  ``N * (n - 1)`` frames. ``N`` is clamped per junction to the shorter of the two clips (so a clip
  is never swallowed whole by its neighbour's fade).

Clips whose size differs from the first clip's are resized to it. All clips are played at the
film's frame rate (``fps``, or the first clip's): frames are never dropped or duplicated.

Remuxing: at a cut, clips whose H.264 streams agree (codec, size, pixel format, frame rate and
the encoder's parameter sets, as every take of one run does: they come from one Mp4Writer) are
joined by copying their packets with shifted timestamps, no decoding or encoding at all; each
take opens on an IDR frame, so the film decodes to exactly the frames its clips decode to. Any
disagreement falls back to the streaming re-encode (``remux=False`` forces it).
"""

from __future__ import annotations

from contextlib import ExitStack
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from cinerl.core.media import Mp4Writer, atomic_path, iter_mp4_frames, probe_mp4

TRANSITIONS = ("cut", "crossfade")

__all__ = ["TRANSITIONS", "card_frame", "overlay_film", "stitch"]


def _fit(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    h, w = size
    if frame.shape[:2] == (h, w):
        return frame
    interp = cv2.INTER_AREA if frame.shape[0] * frame.shape[1] > h * w else cv2.INTER_LINEAR
    return cv2.resize(frame, (w, h), interpolation=interp)


def _blend(tail: np.ndarray, head: np.ndarray, alpha: float) -> np.ndarray:
    out = tail.astype(np.float32) * (1.0 - alpha) + head.astype(np.float32) * alpha
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _remux_cut(paths: list[Path], out_path: Path, fps: int | None) -> list[int] | None:
    """Join the clips' H.264 packets into ``out_path`` (atomic); each clip's frame count, or
    None (nothing written) when the streams differ and the film must be re-encoded."""
    with ExitStack() as stack:
        inputs = [stack.enter_context(av.open(str(p))) for p in paths]
        streams = [c.streams.video[0] if c.streams.video else None for c in inputs]
        if any(st is None for st in streams):
            return None
        first = streams[0]

        def signature(st) -> tuple:
            cc = st.codec_context
            return (cc.name, cc.width, cc.height, cc.pix_fmt, st.average_rate, bytes(cc.extradata or b""))

        if first.codec_context.name != "h264" or any(signature(st) != signature(first) for st in streams):
            return None
        rate = first.average_rate
        if not rate or (fps and Fraction(int(fps)) != rate):
            return None
        counts: list[int] = []
        with atomic_path(out_path) as tmp:
            with av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as dst:
                out = dst.add_stream_from_template(first)
                start = Fraction(0)  # seconds: where this clip begins in the film
                for container, st in zip(inputs, streams):
                    n = 0
                    for packet in container.demux(st):
                        if packet.dts is None:  # the demuxer's empty flush packet
                            continue
                        shift = int(start / packet.time_base)
                        packet.dts += shift
                        packet.pts = (packet.pts if packet.pts is not None else packet.dts - shift) + shift
                        packet.stream = out
                        dst.mux(packet)
                        n += 1
                    counts.append(n)
                    start += Fraction(n) / rate
        return counts


def stitch(
    clip_paths: list[Path],
    out_path: Path,
    transition: str = "cut",
    crossfade_frames: int = 12,
    fps: int | None = None,
    remux: bool = True,
) -> dict:
    """Write the clips as one H.264 film at ``out_path``.

    Returns ``{"path", "frames", "seconds", "fps", "scene_offsets", "remuxed"}`` where
    ``scene_offsets[i]`` is the time (seconds) in the film at which scene ``i`` first appears (for
    a crossfade, where its fade-in starts) and ``remuxed`` says whether the clips were joined
    without re-encoding.
    """
    if transition not in TRANSITIONS:
        raise ValueError(f"unknown transition {transition!r}; allowed transitions: {', '.join(TRANSITIONS)}")
    paths = [Path(p) for p in clip_paths]
    if not paths:
        raise ValueError("stitch needs at least one clip")
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(f"scene clip not found: {p}")

    infos = [probe_mp4(p) for p in paths]
    film_fps = int(fps) if fps else infos[0]["fps"]
    if film_fps <= 0:
        raise ValueError(f"cannot determine the frame rate of {paths[0]}; pass fps=")
    out_path = Path(out_path)
    if transition == "cut" and remux:
        counts = _remux_cut(paths, out_path, fps)
        if counts is not None:
            starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(int)
            return {
                "path": str(out_path),
                "frames": int(sum(counts)),
                "seconds": sum(counts) / film_fps,
                "fps": int(film_fps),
                "scene_offsets": [int(f) / film_fps for f in starts],
                "remuxed": True,
            }

    # Overlap (in frames) between clip i-1 and clip i; entry 0 is always 0.
    overlaps = [0] * len(paths)
    if transition == "crossfade":
        n = max(0, int(crossfade_frames))
        for i in range(1, len(paths)):
            overlaps[i] = min(n, infos[i - 1]["frames"], infos[i]["frames"])

    size: tuple[int, int] | None = None  # (H, W) of the film: the first clip's decoded size
    offsets_frames: list[int] = []
    tail: list[np.ndarray] = []  # held back end of the previous clip, to be blended
    out_path = Path(out_path)

    with Mp4Writer(out_path, film_fps) as writer:
        for i, path in enumerate(paths):
            fade_in = overlaps[i]
            fade_out = overlaps[i + 1] if i + 1 < len(paths) else 0
            # Everything before this clip is written except the held-back tail, which this clip's
            # first frames blend with (and replace): so this clip starts at writer.frames.
            offsets_frames.append(writer.frames)
            held: list[np.ndarray] = []  # the last `fade_out` frames of this clip, held back

            def push(frame: np.ndarray, held: list[np.ndarray] = held, fade_out: int = fade_out):
                """Write a frame, holding the last `fade_out` back for the next crossfade."""
                held.append(frame)
                if len(held) > fade_out:
                    writer.write(held.pop(0))

            j = -1
            for j, frame in enumerate(iter_mp4_frames(path)):
                if size is None:
                    size = frame.shape[:2]
                frame = _fit(frame, size)
                if j < fade_in and j < len(tail):
                    frame = _blend(tail[j], frame, (j + 1) / (fade_in + 1))
                push(frame)
            # A container whose stored frame count overstates the clip can leave part of the
            # previous tail without a partner: keep those frames, in order, after the blend.
            for frame in tail[j + 1 :]:
                push(frame)
            tail = held
        for frame in tail:  # empty unless the last clip held frames back (it never fades out)
            writer.write(frame)
        total = writer.frames

    return {
        "path": str(out_path),
        "frames": int(total),
        "seconds": total / film_fps,
        "fps": int(film_fps),
        "scene_offsets": [f / film_fps for f in offsets_frames],
        "remuxed": False,
    }


CARD_SECONDS = 2.5


def card_frame(size: tuple[int, int], lines: list[str], palette: list[tuple[int, int, int]]) -> np.ndarray:
    """A card (H, W) in the film's palette: a vertical gradient between its first two colours,
    darkened for contrast, the lines centred on it."""
    from cinerl.assembly.subtitles import SAFE_MARGIN, caption_height, draw_caption

    h, w = size
    cols = [np.asarray(c, np.float32) for c in (palette or [(40, 40, 48)])] * 2
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    frame = ((1 - t) * cols[0] + t * cols[1]) * 0.45
    frame = np.broadcast_to(frame, (h, w, 3)).astype(np.uint8)
    # one centred block: the first line larger, the rest under it; smaller type until it fits
    room = h - 2 * int(h * SAFE_MARGIN)
    scale = 1.0
    while True:
        scales = [1.4 * scale] + [scale] * (len(lines) - 1)
        heights = [caption_height((h, w), t, sc) for t, sc in zip(lines, scales)]
        gap = int(h / 40)
        total = sum(heights) + gap * (len(lines) - 1)
        if total <= room or scale < 0.5:
            break
        scale *= 0.85
    y = (h - total) // 2
    for text, sc, height in zip(lines, scales, heights):
        frame = draw_caption(frame, text, scale=sc, top=y)
        y += height + gap
    return frame


def overlay_film(
    film: Path,
    info: dict,
    cues: list[tuple[float, float, str]],
    title: tuple[str, str] | None = None,
    cast: list[str] | None = None,
    palette: list[tuple[int, int, int]] | None = None,
    card_seconds: float = CARD_SECONDS,
) -> dict:
    """Re-encode ``film`` with ``cues`` drawn into their frames, a title card (title, logline)
    before it and an end card (the cast) after it. Returns ``info`` updated: frames, seconds,
    ``scene_offsets`` moved by the title card, ``title_seconds``."""
    from cinerl.assembly.subtitles import draw_caption

    film = Path(film)
    fps = int(info["fps"])
    card = max(1, int(round(card_seconds * fps)))
    with Mp4Writer(film, fps) as writer:
        size = None
        for j, frame in enumerate(iter_mp4_frames(film)):
            if size is None:
                size = frame.shape[:2]
                if title:
                    writer.write_many([card_frame(size, [title[0], title[1]], palette or [])] * card)
            t = j / fps
            text = next((c for s, e, c in cues if s <= t < e), None)
            writer.write(draw_caption(frame, text) if text else frame)
        if cast:
            writer.write_many([card_frame(size, ["Cast", " · ".join(cast)], palette or [])] * card)
        total = writer.frames
    shift = card / fps if title else 0.0
    return {
        **info,
        "frames": int(total),
        "seconds": total / fps,
        "scene_offsets": [o + shift for o in info["scene_offsets"]],
        "title_seconds": shift,
    }
