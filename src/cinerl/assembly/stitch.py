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
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from cinerl.core.media import Mp4Writer, iter_mp4_frames, probe_mp4

TRANSITIONS = ("cut", "crossfade")

__all__ = ["TRANSITIONS", "stitch"]


def _fit(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    h, w = size
    if frame.shape[:2] == (h, w):
        return frame
    interp = cv2.INTER_AREA if frame.shape[0] * frame.shape[1] > h * w else cv2.INTER_LINEAR
    return cv2.resize(frame, (w, h), interpolation=interp)


def _blend(tail: np.ndarray, head: np.ndarray, alpha: float) -> np.ndarray:
    out = tail.astype(np.float32) * (1.0 - alpha) + head.astype(np.float32) * alpha
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def stitch(
    clip_paths: list[Path],
    out_path: Path,
    transition: str = "cut",
    crossfade_frames: int = 12,
    fps: int | None = None,
) -> dict:
    """Write the clips as one H.264 film at ``out_path``.

    Returns ``{"path", "frames", "seconds", "fps", "scene_offsets"}`` where ``scene_offsets[i]``
    is the time (seconds) in the film at which scene ``i`` first appears (for a crossfade, where
    its fade-in starts).
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
    }
