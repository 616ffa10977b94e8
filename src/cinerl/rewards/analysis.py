"""One analysis pass per clip, shared by every reward component.

The clip is resized ONCE to an analysis resolution (longest side 256 px by default, INTER_AREA);
grayscale, CIE Lab and dense optical flow (OpenCV DIS) are derived from those frames lazily and
cached, so components that need the same data share it instead of recomputing it.
"""

from __future__ import annotations

from functools import cached_property

import cv2
import numpy as np

from cinerl.rewards.base import analysis_size, rgb_to_lab
from cinerl.schema import Clip

DEFAULT_MAX_SIDE = 256
DEFAULT_MAX_FLOW_PAIRS = 96


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
                 max_flow_pairs: int = DEFAULT_MAX_FLOW_PAIRS, flow_preset: int = cv2.DISOpticalFlow_PRESET_FAST):
        if isinstance(clip, Clip):
            frames, fps = clip.frames, clip.fps if fps is None else fps
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
            for i, f in enumerate(frames):
                cv2.resize(f, (w, h), dst=small[i], interpolation=cv2.INTER_AREA)
        self.frames = small
        self.height, self.width = h, w
        # flow magnitudes are reported in pixels of a 256-px-long-side frame whatever the clip size
        self.flow_unit_scale = DEFAULT_MAX_SIDE / float(max(h, w))
        self._sample_cache: dict[tuple, np.ndarray] = {}

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
        dis = cv2.DISOpticalFlow_create(self.flow_preset)
        g = self.gray
        for k, i in enumerate(pairs):
            out[k] = dis.calc(g[i], g[i + 1], None)
        return out
