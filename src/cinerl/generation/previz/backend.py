"""The previz backend: the animatic renderer behind the VideoBackend and ImageBackend contracts."""

from __future__ import annotations

import time

import numpy as np

from cinerl.core.schema import Clip, ClipRequest
from cinerl.generation.previz.parse import parse_prompt
from cinerl.generation.previz.render import render
from cinerl.generation.registry import register_backend


class PrevizBackend:
    """Video and image backend: ClipRequest -> Clip from the prompt text alone."""

    name = "previz"

    def generate(self, request: ClipRequest) -> Clip:
        start = time.perf_counter()
        spec = parse_prompt(request.prompt, request.negative_prompt)
        frames, look = render(
            spec,
            request.width,
            request.height,
            request.num_frames,
            request.fps,
            request.seed,
            request.init_image,
            artifacts=True,
        )
        meta = {
            "backend": self.name,
            "seed": request.seed,
            "prompt": request.prompt,
            "negative_prompt": request.negative_prompt,
            "spec": spec.to_dict(),
            "look": look,
            "render_seconds": time.perf_counter() - start,
        }
        return Clip(frames=frames, fps=request.fps, metadata=meta)

    def generate_image(self, prompt: str, width: int, height: int, seed: int) -> np.ndarray:
        """One clean still (no flicker, grain, blur or shake): used for reference images."""
        spec = parse_prompt(prompt)
        frames, _ = render(spec, width, height, 1, 24, seed, None, artifacts=False)
        return frames[0]


register_backend(
    "previz",
    lambda _settings, kind, **_: PrevizBackend(),
    None,
    kinds=("video", "image"),
    description="the built-in CPU animatic renderer (a preview, not a generative model)",
)
