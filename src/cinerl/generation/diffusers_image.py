"""Any diffusers image pipeline from a local folder as an ImageBackend.

Text-to-image pipelines (Stable Diffusion, FLUX, ...) render reference images from the prompt;
pipelines whose call takes an `image` (FLUX Kontext, img2img) can also be conditioned on a
picture, which is how the actor dataset edits a portrait. Nothing is fetched from a hub: the
folder must hold a saved pipeline (model_index.json), otherwise the backend is unavailable and
says why.
"""

from __future__ import annotations

import inspect
import logging
import math
from pathlib import Path

import cv2
import numpy as np

from cinerl.core.errors import BackendUnavailable
from cinerl.generation.registry import register_backend

log = logging.getLogger(__name__)


def _round_up(v: int, multiple: int) -> int:
    return max(multiple, int(math.ceil(v / multiple) * multiple))


class DiffusersImageBackend:
    name = "diffusers"

    def __init__(
        self,
        model_path: str | Path | None,
        steps: int = 28,
        guidance: float | None = None,
        device: str | None = None,
    ):
        if not model_path:
            raise BackendUnavailable(
                "the diffusers image backend needs a local pipeline folder: set image_model_path "
                "(CINERL_IMAGE_MODEL_PATH, or --model-path for `cinerl actors`)"
            )
        path = Path(model_path).expanduser()
        if not (path / "model_index.json").is_file():
            raise BackendUnavailable(f"{path} is not a saved diffusers pipeline (no model_index.json)")
        try:
            import torch
            from diffusers import DiffusionPipeline
        except ImportError:
            raise BackendUnavailable(
                "the diffusers image backend needs diffusers: pip install 'cinerl[references]'"
            ) from None
        self.torch = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
        try:
            self.pipe = DiffusionPipeline.from_pretrained(str(path), local_files_only=True, torch_dtype=dtype)
        except (OSError, ValueError, EnvironmentError) as e:
            raise BackendUnavailable(f"could not load the diffusers pipeline in {path}: {e}") from None
        self.pipe.to(self.device)
        self.pipe.set_progress_bar_config(disable=True)
        self.model_path = str(path)
        self.steps, self.guidance = steps, guidance
        params = inspect.signature(self.pipe.__call__).parameters
        self.accepts_image = "image" in params
        self._params = params
        self.multiple = 2 * int(getattr(self.pipe, "vae_scale_factor", 8) or 8)
        log.info("diffusers pipeline %s loaded from %s on %s", type(self.pipe).__name__, path, self.device)

    def describe(self) -> dict:
        return {
            "backend": self.name,
            "pipeline": type(self.pipe).__name__,
            "model_path": self.model_path,
            "steps": self.steps,
            "guidance": self.guidance,
            "accepts_image": self.accepts_image,
        }

    def generate_image(self, prompt: str, width: int, height: int, seed: int) -> np.ndarray:
        return self.generate_images([prompt], width, height, [seed])[0]

    def generate_images(
        self, prompts: list[str], width: int, height: int, seeds: list[int], image: np.ndarray | None = None
    ) -> list[np.ndarray]:
        """One pipeline call for a batch; `image` conditions every prompt on one picture."""
        from PIL import Image

        w, h = _round_up(width, self.multiple), _round_up(height, self.multiple)
        kw = {
            "prompt": list(prompts),
            "output_type": "np",
            "num_inference_steps": self.steps,
            "generator": [self.torch.Generator("cpu").manual_seed(int(s)) for s in seeds],
        }
        sized = "width" in self._params and "height" in self._params
        if sized:
            kw.update(width=w, height=h)
        if self.guidance is not None and "guidance_scale" in self._params:
            kw["guidance_scale"] = self.guidance
        if image is not None:
            if not self.accepts_image:
                raise BackendUnavailable(f"{type(self.pipe).__name__} takes no input image")
            if not sized:  # img2img: the output has the input's size
                image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
            kw["image"] = [Image.fromarray(image)] * len(prompts)
        if "max_area" in self._params:  # FLUX Kontext: keep the asked-for area
            kw["max_area"] = w * h
        out = self.pipe(**kw).images
        frames = [
            (np.clip(np.asarray(im, dtype=np.float32), 0, 1) * 255).round().astype(np.uint8) for im in out
        ]
        return [
            f
            if f.shape[:2] == (height, width)
            else cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA)
            for f in frames
        ]


def _factory(
    _settings, kind: str, model_path: str | None = None, steps: int = 28, **_
) -> DiffusersImageBackend:
    return DiffusersImageBackend(model_path, steps=steps)


register_backend(
    "diffusers",
    _factory,
    None,
    kinds=("image",),
    description="any diffusers image pipeline from a local folder",
)
