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

Remuxing: clips whose H.264 streams agree (codec, size, pixel format, frame rate and the
encoder's parameter sets, as every take of one run does: they come from one Mp4Writer) are
joined by copying their packets with shifted timestamps. At a cut nothing is decoded or encoded;
each take opens on an IDR frame, so the film decodes to exactly the frames its clips decode to.
At a crossfade only the frames around each join are encoded (the blend, by the same Mp4Writer
settings, so its parameter sets equal the takes'); the span of a clip between its fades is copied
from an IDR frame to a clean cut of its stream (no packet past the cut is referenced before it).
Takes written with :func:`crossfade_keyframes` have IDR frames exactly where the fades begin and
end, so the encoded frames are the blends alone; a take without them has more of its frames
encoded, up to all of it. The copied spans decode to exactly the clips' frames; the blends differ
from the full re-encode's only by H.264's loss on each. Any disagreement of the streams falls
back to the streaming re-encode (``remux=False`` forces it). The "smart cut" of video editors
(re-encode from a cut to the next keyframe, copy the rest), applied at both ends of each join.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from cinerl.core.media import Mp4Writer, atomic_path, frame_to_rgb, iter_mp4_frames, probe_mp4

TRANSITIONS = ("cut", "crossfade")

__all__ = ["TRANSITIONS", "card_frame", "crossfade_keyframes", "overlay_film", "stitch"]


def _fit(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    h, w = size
    if frame.shape[:2] == (h, w):
        return frame
    interp = cv2.INTER_AREA if frame.shape[0] * frame.shape[1] > h * w else cv2.INTER_LINEAR
    return cv2.resize(frame, (w, h), interpolation=interp)


def crossfade_keyframes(frames: int, crossfade_frames: int) -> list[int]:
    """Where a take of ``frames`` frames should have IDR frames for a crossfade film: where its
    fade-in ends and where its fade-out begins, so that :func:`stitch` copies the frames between
    and encodes only the blends (the fades are clamped as :func:`stitch` clamps them, to the take
    itself; a shorter neighbour moves a fade, and then a few more frames are encoded)."""
    n = min(max(0, int(crossfade_frames)), int(frames))
    return sorted({k for k in (n, frames - n) if 0 < k < frames})


def _blend(tail: np.ndarray, head: np.ndarray, alpha: float) -> np.ndarray:
    out = tail.astype(np.float32) * (1.0 - alpha) + head.astype(np.float32) * alpha
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


class _NoRemux(Exception):
    """The streams cannot be joined without re-encoding them (the caller falls back)."""


@dataclass
class _Take:
    """One clip's H.264 packets in decode order, and where its stream may be cut unencoded."""

    stream: av.video.stream.VideoStream
    packets: list[av.Packet]
    index: list[int]  # each packet's frame number (presentation order)
    pts: list[int]  # the stream's pts of frame k, ascending
    keyframes: set[int]  # frames that are IDR frames (x264's GOPs are closed)
    clean: set[int]  # m such that the first m packets in decode order are frames 0..m-1
    data: list[tuple[bytes, int, int]]  # (payload, pts, dts) of each packet: muxing empties a packet

    @classmethod
    def read(cls, container, stream) -> _Take:
        packets = [p for p in container.demux(stream) if p.dts is not None and p.pts is not None]
        pts = sorted(p.pts for p in packets)
        rank = {v: k for k, v in enumerate(pts)}
        if len(rank) != len(pts):
            raise _NoRemux("two frames share a timestamp")
        index = [rank[p.pts] for p in packets]
        clean, top = {0}, -1
        for m, k in enumerate(index, start=1):
            top = max(top, k)
            if top == m - 1:
                clean.add(m)
        keyframes = {k for p, k in zip(packets, index) if p.is_keyframe}
        data = [(bytes(p), p.pts, p.dts) for p in packets]
        return cls(stream, packets, index, pts, keyframes, clean, data)

    @property
    def frames(self) -> int:
        return len(self.packets)

    def span(self, start: int, stop: int) -> tuple[int, int] | None:
        """The largest ``[s, e)`` inside ``[start, stop)`` whose packets decode alone: ``s`` an IDR
        frame and a clean cut, ``e`` a clean cut; None when there is none."""
        s = min((k for k in self.keyframes & self.clean if k >= start), default=None)
        e = max((k for k in self.clean if k <= stop), default=None)
        return (s, e) if s is not None and e is not None and s < e else None

    def decode(self, start: int, stop: int) -> list[np.ndarray]:
        """Frames ``[start, stop)`` decoded from the IDR frame at or before ``start`` on (an IDR
        frame resets the decoder, so they are the frames a decode from the first frame gives)."""
        first = max((k for k in self.keyframes & self.clean if k <= start), default=None)
        if first is None:
            raise _NoRemux("the clip does not open on an IDR frame")
        codec = av.CodecContext.create(self.stream.codec_context.name, "r")
        codec.extradata = self.stream.codec_context.extradata
        wanted = {self.pts[k]: k for k in range(start, stop)}
        got: dict[int, np.ndarray] = {}
        tb = self.stream.time_base
        for item in [*self.data[first:], None]:
            packet = None
            if item is not None:
                packet = av.Packet(item[0])
                packet.pts, packet.dts, packet.time_base = item[1], item[2], tb
            for frame in codec.decode(packet):
                if frame.pts in wanted:
                    got[wanted[frame.pts]] = frame_to_rgb(frame)
            if len(got) == stop - start:
                break
        if len(got) != stop - start:
            raise _NoRemux("a clip decodes to fewer frames than it has packets")
        return [got[k] for k in range(start, stop)]


def _signature(st) -> tuple:
    cc = st.codec_context
    return (cc.name, cc.width, cc.height, cc.pix_fmt, st.average_rate, bytes(cc.extradata or b""))


def _joinable(streams: list, fps: int | None) -> bool:
    """Streams one H.264 encoder made with the same settings (as every take of a run is)."""
    if any(st is None for st in streams):
        return False
    first = streams[0]
    if first.codec_context.name != "h264" or any(_signature(st) != _signature(first) for st in streams):
        return False
    rate = first.average_rate
    return bool(rate) and not (fps and Fraction(int(fps)) != rate)


class _Muxer:
    """Packets of many sources placed one after another on the film's timeline (frame ``at``)."""

    def __init__(self, dst, template, rate: Fraction) -> None:
        self.dst, self.rate = dst, rate
        self.out = dst.add_stream_from_template(template)
        self.at = 0  # frames of the film so far
        self.last_dts: Fraction | None = None

    def add(self, packets: list, first_pts: int, frames: int) -> None:
        """``packets`` (decode order) whose frame ``first_pts`` lands at film frame ``self.at``."""
        tb = packets[0].time_base
        shift = round((Fraction(self.at) / self.rate - first_pts * tb) / tb)
        for packet in packets:
            packet.dts += shift
            packet.pts += shift
            dts = packet.dts * tb
            if self.last_dts is not None and dts <= self.last_dts:
                raise _NoRemux("joined streams would decode out of order")
            self.last_dts = dts
            packet.stream = self.out
            self.dst.mux(packet)
        self.at += frames


def _remux_cut(paths: list[Path], out_path: Path, fps: int | None) -> list[int] | None:
    """Join the clips' H.264 packets into ``out_path`` (atomic); each clip's frame count, or
    None (nothing written) when the streams differ and the film must be re-encoded."""
    with ExitStack() as stack:
        inputs = [stack.enter_context(av.open(str(p))) for p in paths]
        streams = [c.streams.video[0] if c.streams.video else None for c in inputs]
        if not _joinable(streams, fps):
            return None
        try:
            takes = [_Take.read(c, st) for c, st in zip(inputs, streams)]
            with atomic_path(out_path) as tmp:
                with av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as dst:
                    mux = _Muxer(dst, streams[0], streams[0].average_rate)
                    for take in takes:
                        mux.add(take.packets, take.pts[0], take.frames)
        except _NoRemux:
            return None
        return [t.frames for t in takes]


def _remux_crossfade(
    paths: list[Path],
    out_path: Path,
    fps: int | None,
    film_fps: int,
    overlaps: list[int],
    frame_counts: list[int],
) -> int | None:
    """The crossfade film with only the frames around each join encoded: each clip's span
    between its fades is copied from the IDR frame at or after its fade-in to the last clean cut
    at or before its fade-out (a take written with :func:`crossfade_keyframes` has IDR frames
    exactly there); the frames between two copied spans (the blend, plus any untouched frames
    short of an IDR frame) are encoded as one short stream by the same :class:`Mp4Writer`, whose
    parameter sets must equal the clips'. Returns the number of frames encoded, or None
    (nothing written) when the streams cannot be joined so."""
    with ExitStack() as stack:
        inputs = [stack.enter_context(av.open(str(p))) for p in paths]
        streams = [c.streams.video[0] if c.streams.video else None for c in inputs]
        if not _joinable(streams, fps):
            return None
        try:
            takes = [_Take.read(c, st) for c, st in zip(inputs, streams)]
            if [t.frames for t in takes] != list(frame_counts):
                return None
            encoded = 0
            with atomic_path(out_path) as tmp:
                with av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as dst:
                    mux = _Muxer(dst, streams[0], streams[0].average_rate)
                    pending: list[np.ndarray] = []

                    def flush() -> None:
                        nonlocal encoded
                        if not pending:
                            return
                        # a temporary name beside the film (.film.join.<random>.tmp.mp4, which a
                        # resumed run removes if this one is killed), gone once its packets are in
                        fd, name = tempfile.mkstemp(
                            prefix=f".{out_path.stem}.join.", suffix=".tmp.mp4", dir=out_path.parent
                        )
                        os.close(fd)
                        seg = Path(name)
                        try:
                            with Mp4Writer(seg, film_fps) as writer:
                                writer.write_many(pending)
                            with av.open(str(seg)) as c:
                                st = c.streams.video[0]
                                if _signature(st) != _signature(streams[0]):
                                    raise _NoRemux(
                                        "the join windows' encoder settings differ from the clips'"
                                    )
                                enc = _Take.read(c, st)
                                mux.add(enc.packets, enc.pts[0], enc.frames)
                        finally:
                            seg.unlink(missing_ok=True)
                        encoded += len(pending)
                        pending.clear()

                    for i, take in enumerate(takes):
                        fade_in = overlaps[i]
                        fade_out = overlaps[i + 1] if i + 1 < len(takes) else 0
                        if fade_in:  # the blend with the previous clip's tail
                            prev = takes[i - 1]
                            tail = prev.decode(prev.frames - fade_in, prev.frames)
                            head = take.decode(0, fade_in)
                            pending += [
                                _blend(t, h, (j + 1) / (fade_in + 1))
                                for j, (t, h) in enumerate(zip(tail, head))
                            ]
                        lo, hi = fade_in, take.frames - fade_out
                        span = take.span(lo, hi)
                        if span is None:
                            pending += take.decode(lo, hi) if hi > lo else []
                            continue
                        s, e = span
                        pending += take.decode(lo, s) if s > lo else []
                        flush()
                        mux.add(take.packets[s:e], take.pts[s], e - s)
                        if hi > e:
                            pending += take.decode(e, hi)
                    flush()
        except _NoRemux:
            return None
        return encoded


def stitch(
    clip_paths: list[Path],
    out_path: Path,
    transition: str = "cut",
    crossfade_frames: int = 12,
    fps: int | None = None,
    remux: bool = True,
) -> dict:
    """Write the clips as one H.264 film at ``out_path``.

    Returns ``{"path", "frames", "seconds", "fps", "scene_offsets", "remuxed", "encoded_frames"}``
    where ``scene_offsets[i]`` is the time (seconds) in the film at which scene ``i`` first appears
    (for a crossfade, where its fade-in starts), ``remuxed`` says whether the clips' streams were
    copied (all of them at cuts, all but the join windows at crossfades) and ``encoded_frames``
    how many frames were encoded. ``remux=False`` forces the full re-encode.
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
    # Overlap (in frames) between clip i-1 and clip i; entry 0 is always 0.
    overlaps = [0] * len(paths)
    if transition == "crossfade":
        n = max(0, int(crossfade_frames))
        for i in range(1, len(paths)):
            overlaps[i] = min(n, infos[i - 1]["frames"], infos[i]["frames"])
    counts = [int(info["frames"]) for info in infos]

    def result(frames: int, offsets_frames: list[int], remuxed: bool, encoded: int) -> dict:
        return {
            "path": str(out_path),
            "frames": int(frames),
            "seconds": frames / film_fps,
            "fps": int(film_fps),
            "scene_offsets": [int(f) / film_fps for f in offsets_frames],
            "remuxed": remuxed,
            "encoded_frames": int(encoded),
        }

    if remux and transition == "cut":
        got = _remux_cut(paths, out_path, fps)
        if got is not None:
            starts = np.concatenate([[0], np.cumsum(got)[:-1]]).astype(int)
            return result(sum(got), list(starts), True, 0)
    elif remux:
        encoded = _remux_crossfade(paths, out_path, fps, film_fps, overlaps, counts)
        if encoded is not None:
            starts = [sum(counts[:i]) - sum(overlaps[: i + 1]) for i in range(len(paths))]
            return result(sum(counts) - sum(overlaps), starts, True, encoded)

    size: tuple[int, int] | None = None  # (H, W) of the film: the first clip's decoded size
    offsets_frames: list[int] = []
    tail: list[np.ndarray] = []  # held back end of the previous clip, to be blended

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

    return result(total, offsets_frames, False, total)


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
