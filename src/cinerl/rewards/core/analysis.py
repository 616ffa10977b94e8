"""One analysis pass per clip, shared by every reward component.

The clip is resized ONCE to an analysis resolution (longest side 256 px by default, INTER_AREA);
grayscale, CIE Lab and dense optical flow (OpenCV DIS) are derived from those frames lazily and
cached, so components that need the same data share it instead of recomputing it. Components
may run on several threads at once (``RewardSettings(workers=...)``): every lazy value is computed under
its own lock, exactly once, whichever component asks first.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from cinerl.rewards.colour import analysis_size, rgb_to_lab
from cinerl.models.cache import resolve_device
from cinerl.core.settings import RewardSettings
from cinerl.core.schema import Clip

DEFAULT_MAX_SIDE = 256
DEFAULT_MAX_FLOW_PAIRS = 96
DETAIL_MAX_SIDE = 640  # keyframes for faces, BRISQUE and framing (never upscaled)


def in_chunks(n: int, work, workers: int | None = None, min_items: int = 2) -> None:
    """Run work(lo, hi) over [0, n) in contiguous chunks of at least ``min_items`` on threads.
    OpenCV, numpy and dlib release the GIL in their kernels, so this uses every core; each item
    is computed alone, so the result does not depend on the number of threads."""
    workers = min(workers or min(8, os.cpu_count() or 1), n // max(1, min_items))
    if workers <= 1:
        work(0, n)
        return
    bounds = np.linspace(0, n, workers + 1).astype(int)
    with ThreadPoolExecutor(workers) as pool:
        for f in [pool.submit(work, lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:]) if hi > lo]:
            f.result()


def parallel_map(fn, items) -> list:
    """[fn(x) for x in items], one item per thread where there are cores for it (in_chunks)."""
    items = list(items)
    out: list = [None] * len(items)

    def work(lo: int, hi: int) -> None:
        for i in range(lo, hi):
            out[i] = fn(items[i])

    in_chunks(len(items), work, min_items=1)
    return out


class ClipAnalysis:
    """Frames at analysis resolution plus lazily computed, cached derived data.

    Attributes
    ----------
    frames: uint8 (T, h, w, 3) RGB at analysis resolution (never upscaled).
    fps, source_shape: the clip's frame rate and original (T, H, W, 3) shape.
    gray: uint8 (T, h, w); lab: float32 (T, h, w, 3), L in 0..100.
    flow: float32 (P, h, w, 2) DIS flow for the frame pairs ``flow_pairs`` (i -> i+1).
    """

    def __init__(
        self,
        clip: Clip | np.ndarray,
        fps: int | None = None,
        max_side: int = DEFAULT_MAX_SIDE,
        max_flow_pairs: int = DEFAULT_MAX_FLOW_PAIRS,
        flow_preset: int = cv2.DISOpticalFlow_PRESET_FAST,
        config: RewardSettings | None = None,
        metadata: dict | None = None,
    ):
        self.config = config or RewardSettings()
        self.device = resolve_device(self.config.device)
        self.metadata = dict(metadata or {})
        if isinstance(clip, Clip):
            frames, fps = clip.frames, clip.fps if fps is None else fps
            self.metadata = {**clip.metadata, **self.metadata}
        else:
            frames = np.asarray(clip)
            if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[3] != 3 or frames.shape[0] < 1:
                raise ValueError("frames must be uint8 (T, H, W, 3) with T >= 1")
        self.fps = int(fps) if fps else 24
        self.source_shape = tuple(frames.shape)
        self.max_side = int(max_side)
        self.max_flow_pairs = max(2, int(max_flow_pairs))
        self.flow_preset = flow_preset
        h, w = analysis_size(frames.shape[1], frames.shape[2], self.max_side)
        if (h, w) == frames.shape[1:3]:
            small = np.ascontiguousarray(frames)
        else:
            small = np.empty((frames.shape[0], h, w, 3), np.uint8)

            def resize(lo: int, hi: int) -> None:
                for i in range(lo, hi):
                    cv2.resize(frames[i], (w, h), dst=small[i], interpolation=cv2.INTER_AREA)

            in_chunks(len(frames), resize)
        self.frames = small
        self.height, self.width = h, w
        # flow magnitudes are reported in pixels of a 256-px-long-side frame whatever the clip size
        self.flow_unit_scale = DEFAULT_MAX_SIDE / float(max(h, w))
        self._source = frames  # a reference (no copy) for the few detail keyframes
        self._values: dict[object, object] = {}  # lazily computed views and shared results
        self._locks: dict[object, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def _once(self, key, compute):
        """compute() once per clip under a lock of its own, so concurrent components share it."""
        if key in self._values:
            return self._values[key]
        with self._locks_guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._values:
                self._values[key] = compute()
        return self._values[key]

    # ---------------------------------------------------------------- basic views
    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def gray(self) -> np.ndarray:
        return self._once("gray", self._compute_gray)

    def _compute_gray(self) -> np.ndarray:
        t, h, w, _ = self.frames.shape
        return cv2.cvtColor(self.frames.reshape(t * h, w, 3), cv2.COLOR_RGB2GRAY).reshape(t, h, w)

    @property
    def lab(self) -> np.ndarray:
        return self._once("lab", self._compute_lab)

    def _compute_lab(self) -> np.ndarray:
        """float32 Lab of every analysis frame (L 0..100)."""
        return rgb_to_lab(self.frames)

    def sample_indices(self, n: int = 8) -> np.ndarray:
        """n frame indices spread evenly over the clip (fewer if the clip is shorter)."""
        t = self.num_frames
        n = max(1, min(int(n), t))
        return np.unique(np.rint(np.linspace(0, t - 1, n)).astype(np.int64))

    def sampled_lab_pixels(self, n_frames: int = 8, stride: int = 2) -> np.ndarray:
        """(N, 3) float32 Lab pixels of ~n_frames evenly spaced frames, every stride-th px each way."""

        def compute() -> np.ndarray:
            sub = np.ascontiguousarray(self.frames[self.sample_indices(n_frames), ::stride, ::stride])
            return rgb_to_lab(sub).reshape(-1, 3)

        return self._once(("lab_pixels", int(n_frames), int(stride)), compute)

    def first_frame(self) -> np.ndarray:
        return self.frames[0]

    # ---------------------------------------------------------------- optical flow
    @property
    def flow_pairs(self) -> np.ndarray:
        return self._once("flow_pairs", self._compute_flow_pairs)

    def _compute_flow_pairs(self) -> np.ndarray:
        """Start indices i of the (i, i+1) pairs that flow is computed for.

        All consecutive pairs when there are at most ``max_flow_pairs``; otherwise pairs of
        adjacent pairs (i, i+1), (i+1, i+2) at evenly spaced i, so that flow *acceleration*
        F_{i+1} - F_i is still measured on truly consecutive flows.
        """
        t = self.num_frames
        n_pairs = t - 1
        if n_pairs <= 0:
            return np.zeros(0, np.int64)
        if n_pairs <= self.max_flow_pairs or t < 3:
            return np.arange(n_pairs, dtype=np.int64)
        n_starts = self.max_flow_pairs // 2
        starts = np.unique(np.rint(np.linspace(0, t - 3, n_starts)).astype(np.int64))
        return np.unique(np.concatenate([starts, starts + 1]))

    @property
    def flow(self) -> np.ndarray:
        return self._once("flow", self._compute_flow)

    def _compute_flow(self) -> np.ndarray:
        """float32 (P, h, w, 2) DIS optical flow (OpenCV, Kroeger et al. 2016) for ``flow_pairs``."""
        pairs = self.flow_pairs
        out = np.empty((len(pairs), self.height, self.width, 2), np.float32)
        if len(pairs) == 0:
            return out
        g = self.gray

        def flow(lo: int, hi: int) -> None:
            dis = cv2.DISOpticalFlow_create(self.flow_preset)  # one per thread: not thread-safe
            for k in range(lo, hi):
                out[k] = dis.calc(g[pairs[k]], g[pairs[k] + 1], None)

        in_chunks(len(pairs), flow)
        return out

    def flow_at(self, i: int) -> np.ndarray:
        """DIS flow for the pair (i, i+1): the shared one when computed, else computed once here."""
        pairs = self.flow_pairs
        k = int(np.searchsorted(pairs, i))
        if k < len(pairs) and pairs[k] == i:
            return self.flow[k]
        return self._once(
            ("extra_flow", int(i)),
            lambda: cv2.DISOpticalFlow_create(self.flow_preset).calc(self.gray[i], self.gray[i + 1], None),
        )

    @property
    def uniform_flow_rows(self) -> np.ndarray:
        return self._once("uniform_flow_rows", self._compute_uniform_flow_rows)

    def _compute_uniform_flow_rows(self) -> np.ndarray:
        """Rows of ``flow`` whose start frames are evenly spaced in time (one per couple when
        the pairs are sub-sampled in consecutive couples), for spectral and interval statistics."""
        pairs = self.flow_pairs
        if len(pairs) == self.num_frames - 1:
            return np.arange(len(pairs), dtype=np.int64)
        starts = [
            k
            for k, i in enumerate(pairs)
            if k + 1 < len(pairs) and pairs[k + 1] == i + 1 and (k == 0 or pairs[k - 1] != i - 1)
        ]
        return np.asarray(starts, dtype=np.int64)

    @property
    def warped_next(self) -> tuple[np.ndarray, np.ndarray]:
        return self._once("warped_next", self._compute_warped_next)

    def _compute_warped_next(self) -> tuple[np.ndarray, np.ndarray]:
        """For every flow pair (i, i+1): gray frame i+1 warped back onto frame i by the flow,
        and a mask of pixels whose source lies inside frame i+1 (bilinear, OpenCV remap)."""
        pairs = self.flow_pairs
        h, w = self.height, self.width
        gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        out = np.empty((len(pairs), h, w), np.uint8)
        valid = np.empty((len(pairs), h, w), bool)
        flow, gray = self.flow, self.gray

        def warp(lo: int, hi: int) -> None:
            for k in range(lo, hi):
                fx = gx + flow[k, ..., 0]
                fy = gy + flow[k, ..., 1]
                out[k] = cv2.remap(
                    gray[pairs[k] + 1], fx, fy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
                )
                valid[k] = (fx >= 0) & (fx <= w - 1) & (fy >= 0) & (fy <= h - 1)

        in_chunks(len(pairs), warp)
        return out, valid

    def detail_frames(
        self, n: int = 6, max_side: int = DETAIL_MAX_SIDE
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """n evenly spaced keyframes resized from the source to at most ``max_side`` (cached)."""

        def compute() -> tuple[np.ndarray, list[np.ndarray]]:
            idx = self.sample_indices(n)
            th, tw = analysis_size(self._source.shape[1], self._source.shape[2], max_side)
            frames = []
            for i in idx:
                f = self._source[i]
                if (th, tw) != f.shape[:2]:
                    f = cv2.resize(f, (tw, th), interpolation=cv2.INTER_AREA)
                frames.append(np.ascontiguousarray(f))
            return idx, frames

        return self._once(("detail", int(n), int(max_side)), compute)  # type: ignore[return-value]

    def shared(self, key: str, compute):
        """A per-clip result computed once and shared by every component that asks for it."""

        def attempt() -> tuple[bool, object]:
            try:
                return True, compute()
            except Exception as exc:  # remembered, so a missing model is tried once per clip
                return False, exc

        good, value = self._once(("shared", key), attempt)
        if not good:
            raise value
        return value
