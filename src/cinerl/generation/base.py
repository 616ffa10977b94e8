"""The backend contracts. The director, policy and rewards only ever see these."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from cinerl.core.errors import BackendUnavailable
from cinerl.core.schema import Clip, ClipRequest

__all__ = ["BackendUnavailable", "ImageBackend", "VideoBackend"]


@runtime_checkable
class VideoBackend(Protocol):
    name: str

    def generate(self, request: ClipRequest) -> Clip:
        """Render request.num_frames frames at request.width x request.height."""
        ...


@runtime_checkable
class ImageBackend(Protocol):
    name: str

    def generate_image(self, prompt: str, width: int, height: int, seed: int) -> np.ndarray:
        """Return one uint8 (H, W, 3) RGB image for the prompt."""
        ...
