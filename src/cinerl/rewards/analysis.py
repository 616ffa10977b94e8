"""One analysis pass per clip, shared by every reward component.

The clip is resized ONCE to an analysis resolution (longest side 256 px by default, INTER_AREA);
grayscale, CIE Lab and dense optical flow (OpenCV DIS) are derived from those frames lazily and
cached, so components that need the same data share it instead of recomputing it.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property

import cv2
import numpy as np

from cinerl.rewards.base import analysis_size, rgb_to_lab
from cinerl.rewards.models import RewardConfig, resolve_device
from cinerl.schema import Clip

DEFAULT_MAX_SIDE = 256
DEFAULT_MAX_FLOW_PAIRS = 96
DETAIL_MAX_SIDE = 640      # keyframes for faces, BRISQUE and framing (never upscaled)


def in_chunks(n: int, work, workers: int | None = None) -> None:
    """Run work(lo, hi) over [0, n) in contiguous chunks on threads. OpenCV releases the GIL in
    resize and DIS, so this uses every core; each item is computed alone, so the result does not
    depend on the number of threads."""
    workers = workers or min(8, os.cpu_count() or 1)
    if workers <= 1 or n < 2 * workers:
        work(0, n)
        return
    bounds = np.linspace(0, n, workers + 1).astype(int)
    with ThreadPoolExecutor(workers) as pool:
        for f in [pool.submit(work, lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:]) if hi > lo]:
            f.result()


class ClipAnalysis:
    """Frames at analysis resolution plus lazily computed, cached derived data.

    Attributes
    ----------
    frames: uint8 (T, h, w, 3) RGB at analysis resolution (never upscaled).
    fps, source_shape: the clip's frame rate and original (T, H, W, 3) shape.
    gray: uint8 (T, h, w); lab: float32 (T, h, w, 3), L in 0..100.
    flow: float32 (P, h, w, 2) DIS flow for the frame pairs ``flow_pairs`` (i -> i+1).
    """

    def __init__(self, clip: Clip | np.ndarray, fps: int | None = None, max_side: int = DEFAULT_MAX_SIDE,
                 max_flow_pairs: int = DEFAULT_MAX_FLOW_PAIRS, flow_preset: int = cv2.DISOpticalFlow_PRESET_FAST,
                 config: RewardConfig | None = None, metadata: dict | None = None):
        self.config = config or RewardConfig()
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
        self._sample_cache: dict[tuple, np.ndarray] = {}
        self._source = frames  # a reference (no copy) for the few detail keyframes
        self._extra_flow: dict[int, np.ndarray] = {}
        self._shared: dict[tuple, object] = {}  # detail keyframes
        self._results: dict[str, tuple[bool, object]] = {}  # per-clip results shared between components

    # ---------------------------------------------------------------- basic views
    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @cached_property
    def gray(self) -> np.ndarray:
        t, h, w, _ = self.frames.shape
        return cv2.cvtColor(self.frames.reshape(t * h, w, 3), cv2.COLOR_RGB2GRAY).reshape(t, h, w)

    @cached_property
    def lab(self) -> np.ndarray:
        """float32 Lab of every analysis frame (L 0..100)."""
        return rgb_to_lab(self.frames)

    def sample_indices(self, n: int = 8) -> np.ndarray:
        """n frame indices spread evenly over the clip (fewer if the clip is shorter)."""
        t = self.num_frames
        n = max(1, min(int(n), t))
        return np.unique(np.rint(np.linspace(0, t - 1, n)).astype(np.int64))

    def sampled_lab_pixels(self, n_frames: int = 8, stride: int = 2) -> np.ndarray:
        """(N, 3) float32 Lab pixels of ~n_frames evenly spaced frames, every stride-th px each way."""
        key = (int(n_frames), int(stride))
        if key not in self._sample_cache:
            idx = self.sample_indices(n_frames)
            sub = np.ascontiguousarray(self.frames[idx, ::stride, ::stride])
            self._sample_cache[key] = rgb_to_lab(sub).reshape(-1, 3)
        return self._sample_cache[key]

    def first_frame(self) -> np.ndarray:
        return self.frames[0]

    # ---------------------------------------------------------------- optical flow
    @cached_property
    def flow_pairs(self) -> np.ndarray:
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

    @cached_property
    def flow(self) -> np.ndarray:
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
        if i not in self._extra_flow:
            dis = cv2.DISOpticalFlow_create(self.flow_preset)
            self._extra_flow[i] = dis.calc(self.gray[i], self.gray[i + 1], None)
        return self._extra_flow[i]

    @cached_property
    def uniform_flow_rows(self) -> np.ndarray:
        """Rows of ``flow`` whose start frames are evenly spaced in time (one per couple when
        the pairs are sub-sampled in consecutive couples), for spectral and interval statistics."""
        pairs = self.flow_pairs
        if len(pairs) == self.num_frames - 1:
            return np.arange(len(pairs), dtype=np.int64)
        starts = [k for k, i in enumerate(pairs) if k + 1 < len(pairs) and pairs[k + 1] == i + 1
                  and (k == 0 or pairs[k - 1] != i - 1)]
        return np.asarray(starts, dtype=np.int64)

    @cached_property
    def warped_next(self) -> tuple[np.ndarray, np.ndarray]:
        """For every flow pair (i, i+1): gray frame i+1 warped back onto frame i by the flow,
        and a mask of pixels whose source lies inside frame i+1 (bilinear, OpenCV remap)."""
        pairs = self.flow_pairs
        h, w = self.height, self.width
        gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        out = np.empty((len(pairs), h, w), np.uint8)
        valid = np.empty((len(pairs), h, w), bool)
        for k, i in enumerate(pairs):
            fx = gx + self.flow[k, ..., 0]
            fy = gy + self.flow[k, ..., 1]
            out[k] = cv2.remap(self.gray[i + 1], fx, fy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            valid[k] = (fx >= 0) & (fx <= w - 1) & (fy >= 0) & (fy <= h - 1)
        return out, valid

    def detail_frames(self, n: int = 6, max_side: int = DETAIL_MAX_SIDE) -> tuple[np.ndarray, list[np.ndarray]]:
        """n evenly spaced keyframes resized from the source to at most ``max_side`` (cached)."""
        key = ("detail", int(n), int(max_side))
        if key not in self._shared:
            idx = self.sample_indices(n)
            th, tw = analysis_size(self._source.shape[1], self._source.shape[2], max_side)
            frames = []
            for i in idx:
                f = self._source[i]
                if (th, tw) != f.shape[:2]:
                    f = cv2.resize(f, (tw, th), interpolation=cv2.INTER_AREA)
                frames.append(np.ascontiguousarray(f))
            self._shared[key] = (idx, frames)
        return self._shared[key]  # type: ignore[return-value]

    def shared(self, key: str, compute):
        """A per-clip result computed once and shared by every component that asks for it."""
        if key not in self._results:
            try:
                self._results[key] = (True, compute())
            except Exception as exc:  # remembered, so a missing model is tried once per clip
                self._results[key] = (False, exc)
        good, value = self._results[key]
        if not good:
            raise value
        return value
