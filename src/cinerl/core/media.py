"""Frame and video file I/O shared by the whole project.

Conventions:

* Frames are numpy ``uint8`` arrays, RGB, shaped ``(H, W, 3)`` (one image) or ``(T, H, W, 3)``
  (a clip).
* Every write is atomic: the bytes go to a temporary file in the destination directory, which is
  then renamed over the final name with :func:`os.replace`. A crash (or an exception while
  encoding) never leaves a half-written file under the final name; the temporary file is removed
  on failure.
* Videos are H.264 (libx264, ``yuv420p``, BT.601 limited range) in MP4, written with PyAV. The
  encoder runs with a fixed thread count and no wall-clock metadata, so the same frames always
  give a byte-identical file. Because ``yuv420p`` needs even dimensions, odd widths/heights are
  padded to the next even number by repeating the last column/row; the decoded video is then
  that padded (even) size.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

__all__ = [
    "ENCODER_THREADS",
    "X264_PARAMS",
    "Mp4Writer",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "frame_to_rgb",
    "iter_mp4_frames",
    "load_png",
    "probe_mp4",
    "read_mp4",
    "save_jpeg",
    "save_png",
    "thumbnail",
    "write_mp4",
]

#: libx264 thread count. Fixed (never "auto") so the bitstream does not depend on the machine.
ENCODER_THREADS = 2

#: Extra x264 options. ``cpu-independent=1`` makes x264 use the same (portable) float code paths on
#: every CPU. Without it the AVX-512 routines of the bundled x264 gave run-to-run different
#: bitstreams for identical input (seen on an AVX-512 Xeon, even with one thread; about 1 run in 5
#: on small clips). It costs ~5% encode time.
X264_PARAMS = "cpu-independent=1"


# --------------------------------------------------------------------------------------------
# atomic writes


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it onto ``path``.

    The temporary name keeps the final suffix (so format guessing by extension still works) and
    starts with a dot. On any exception the temporary file is deleted and the final path is left
    untouched. Parent directories are created.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=f".tmp{final.suffix}", dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file in the same directory + os.replace)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (UTF-8 by default)."""
    return atomic_write_bytes(path, text.encode(encoding))


# --------------------------------------------------------------------------------------------
# images


def _as_rgb_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {image.dtype}")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"image must be (H, W, 3) RGB, got shape {image.shape}")
    if image.shape[2] == 4:
        image = image[:, :, :3]
    return np.ascontiguousarray(image)


def _encode_image(image: np.ndarray, ext: str, params: list[int]) -> bytes:
    bgr = cv2.cvtColor(_as_rgb_image(image), cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(ext, bgr, params)
    if not ok:  # pragma: no cover - OpenCV only fails on impossible inputs
        raise RuntimeError(f"could not encode image as {ext}")
    return buf.tobytes()


def save_png(image: np.ndarray, path: str | os.PathLike) -> Path:
    """Save a uint8 RGB (H, W, 3) image as a lossless PNG, atomically."""
    return atomic_write_bytes(path, _encode_image(image, ".png", [cv2.IMWRITE_PNG_COMPRESSION, 3]))


def load_png(path: str | os.PathLike) -> np.ndarray:
    """Load an image file (PNG, or anything OpenCV reads) as uint8 RGB (H, W, 3)."""
    data = np.fromfile(str(path), dtype=np.uint8)
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"could not decode image {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def save_jpeg(image: np.ndarray, path: str | os.PathLike, quality: int = 85) -> Path:
    """Save a uint8 RGB (H, W, 3) image as a JPEG (lossy), atomically."""
    quality = int(min(max(quality, 1), 100))
    return atomic_write_bytes(path, _encode_image(image, ".jpg", [cv2.IMWRITE_JPEG_QUALITY, quality]))


def thumbnail(image: np.ndarray, width: int = 320) -> np.ndarray:
    """Resize ``image`` to ``width`` pixels wide, keeping the aspect ratio (area filter)."""
    image = _as_rgb_image(image)
    h, w = image.shape[:2]
    width = max(1, int(width))
    height = max(1, int(round(h * width / w)))
    if (height, width) == (h, w):
        return image.copy()
    interp = cv2.INTER_AREA if width < w else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=interp)


# --------------------------------------------------------------------------------------------
# video writing


def _pad_even(frame: np.ndarray) -> np.ndarray:
    h, w = frame.shape[:2]
    ph, pw = h % 2, w % 2
    if ph or pw:
        frame = np.pad(frame, ((0, ph), (0, pw), (0, 0)), mode="edge")
    return frame


class Mp4Writer:
    """Streaming, atomic, deterministic H.264 writer.

    Use as a context manager; frames (uint8 RGB (H, W, 3)) are appended with :meth:`write`. The
    first frame fixes the size; later frames must match it. The file appears under ``path`` only
    when the block exits without an exception. Odd sizes are padded to even (edge repeat).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        fps: int,
        crf: int = 20,
        preset: str = "veryfast",
        threads: int = ENCODER_THREADS,
        keyframes: Iterable[int] = (),
    ) -> None:
        fps = int(round(fps))
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.path = Path(path)
        self.fps = fps
        self.crf = int(crf)
        self.preset = preset
        self.threads = int(threads)
        # frame indexes forced to be IDR frames (closed GOPs: nothing after one refers before it),
        # where a stitch may later cut the stream without decoding (assembly/stitch.py)
        self.keyframes = frozenset(int(k) for k in keyframes)
        self.frames = 0
        self.size: tuple[int, int] | None = None  # (height, width) of the input frames
        self._atomic = None
        self._tmp: Path | None = None
        self._container = None
        self._stream = None

    # context management -------------------------------------------------------------------
    def __enter__(self) -> Mp4Writer:
        self._atomic = atomic_path(self.path)
        self._tmp = self._atomic.__enter__()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            if exc_type is None:
                if self.frames == 0:
                    raise ValueError("no frames were written")
                self._flush()
            else:
                self._abort()
        except BaseException as err:
            self._abort()
            self._atomic.__exit__(type(err), err, err.__traceback__)
            raise
        self._atomic.__exit__(exc_type, exc, tb)
        return False

    # internals ------------------------------------------------------------------------------
    def _open(self, h: int, w: int) -> None:
        container = av.open(str(self._tmp), mode="w", format="mp4", options={"movflags": "+faststart"})
        stream = container.add_stream(
            "libx264",
            rate=self.fps,
            options={"crf": str(self.crf), "preset": self.preset, "x264-params": X264_PARAMS},
        )
        stream.width = w + (w % 2)
        stream.height = h + (h % 2)
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, self.fps)
        stream.codec_context.thread_count = self.threads
        self._container, self._stream = container, stream
        self.size = (h, w)

    def _flush(self) -> None:
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()
        self._container = self._stream = None

    def _abort(self) -> None:
        if self._container is not None:
            try:
                self._container.close()
            except Exception:  # pragma: no cover - best effort on an already failing path
                pass
            self._container = self._stream = None

    # public -----------------------------------------------------------------------------------
    def write(self, frame: np.ndarray) -> None:
        if self._tmp is None:
            raise RuntimeError("Mp4Writer must be used as a context manager")
        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frame must be uint8 (H, W, 3), got {frame.dtype} {frame.shape}")
        h, w = frame.shape[:2]
        if self._container is None:
            self._open(h, w)
        elif (h, w) != self.size:
            raise ValueError(f"frame size {(h, w)} differs from the first frame's {self.size}")
        yuv = cv2.cvtColor(np.ascontiguousarray(_pad_even(frame)), cv2.COLOR_RGB2YUV_I420)
        vframe = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        vframe.pts = self.frames
        if self.frames in self.keyframes:
            vframe.pict_type = av.video.frame.PictureType.I
        for packet in self._stream.encode(vframe):
            self._container.mux(packet)
        self.frames += 1

    def write_many(self, frames: Iterable[np.ndarray]) -> None:
        for frame in frames:
            self.write(frame)


def write_mp4(
    frames: np.ndarray,
    fps: int,
    path: str | os.PathLike,
    crf: int = 20,
    preset: str = "veryfast",
    keyframes: Iterable[int] = (),
) -> Path:
    """Encode uint8 RGB frames (T, H, W, 3) to an H.264 MP4 at ``path`` (atomic, deterministic).

    Odd widths/heights are padded to even by repeating the last column/row; ``keyframes`` are
    frame indexes forced to IDR frames.
    """
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[3] != 3 or frames.shape[0] < 1:
        raise ValueError(f"frames must be uint8 (T, H, W, 3) with T >= 1, got {frames.dtype} {frames.shape}")
    with Mp4Writer(path, fps, crf=crf, preset=preset, keyframes=keyframes) as writer:
        writer.write_many(frames)
    return Path(path)


# --------------------------------------------------------------------------------------------
# video reading


def _frame_to_rgb(frame: av.VideoFrame) -> np.ndarray:
    if frame.format.name == "yuv420p" and frame.width % 2 == 0 and frame.height % 2 == 0:
        return cv2.cvtColor(frame.to_ndarray(format="yuv420p"), cv2.COLOR_YUV2RGB_I420)
    return frame.to_ndarray(format="rgb24")


def _stream_fps(stream) -> int:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return int(round(float(rate))) if rate else 0


def frame_to_rgb(frame: av.VideoFrame) -> np.ndarray:
    """A decoded frame as uint8 RGB (H, W, 3), converted as every reader here converts it."""
    return _frame_to_rgb(frame)


def iter_mp4_frames(path: str | os.PathLike) -> Iterator[np.ndarray]:
    """Yield the frames of a video file one by one as uint8 RGB (H, W, 3)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            yield _frame_to_rgb(frame)


def probe_mp4(path: str | os.PathLike) -> dict:
    """Return {"frames", "fps", "width", "height"} without decoding (frames counted by demuxing
    when the container does not store a count)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        info = {
            "fps": _stream_fps(stream),
            "width": stream.codec_context.width,
            "height": stream.codec_context.height,
            "frames": int(stream.frames or 0),
        }
        if info["frames"] <= 0:
            info["frames"] = sum(1 for p in container.demux(stream) if p.size)
    return info


def read_mp4(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Decode a whole video: (uint8 RGB frames (T, H, W, 3), fps rounded to an int)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        fps = _stream_fps(stream)
        frames = [_frame_to_rgb(f) for f in container.decode(stream)]
    if not frames:
        raise ValueError(f"no video frames in {path}")
    return np.stack(frames), fps
