"""Preproduction: one reference image per character and per location.

References are rendered from full-lock prompts, reused across every scene, and read by the
reward suite as the look each scene is held to. `pick_image_backend` chooses what renders them:
previz (CPU, default), Wan single frame, or any diffusers image pipeline from a local folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cinerl.generation.base import BackendUnavailable, ImageBackend
from cinerl.media import load_png, save_png
from cinerl.memory import RunStore
from cinerl.prompting.composer import reference_prompt_character, reference_prompt_location
from cinerl.schema import StoryBible


IMAGE_BACKENDS = ("previz", "wan", "diffusers")


def pick_image_backend(name: str = "previz", model_path: str | None = None,
                       settings=None) -> ImageBackend:
    """The reference-image backend by name. Wan and diffusers load from local folders only and
    raise BackendUnavailable with the reason when none is configured or it cannot load."""
    if name == "previz":
        from cinerl.generation.previz import PrevizBackend

        return PrevizBackend()
    if name == "wan":
        return wan_single_frame(model_path, settings)
    if name == "diffusers":
        from cinerl.generation.diffusers_image import DiffusersImageBackend

        return DiffusersImageBackend(model_path)
    raise BackendUnavailable(f"unknown image backend {name!r}; available: {', '.join(IMAGE_BACKENDS)}")


def wan_single_frame(model_path: str | None, settings=None) -> ImageBackend:
    """Wan2.2 text-to-video asked for one frame (generation/wan.py's generate_image): a thin
    adapter, the model folder comes from image_model_path or the Wan settings."""
    try:
        from cinerl.generation.wan import WanOptions, shared_backend
    except ImportError as e:
        raise BackendUnavailable(f"the Wan image backend needs cinerl.generation.wan ({e})") from None
    if settings is not None and hasattr(settings, "wan_model_dir"):
        options = WanOptions.from_settings(settings)
    else:
        options = WanOptions()
    if model_path:
        options.model_dir = model_path
    if not options.model_dir:
        raise BackendUnavailable("the Wan image backend needs a local Wan2.2 diffusers folder: set "
                                 "image_model_path (or wan_model_dir)")
    return shared_backend(options)  # the video backend of the same run shares these weights


@dataclass
class References:
    characters: dict[str, np.ndarray] = field(default_factory=dict)
    locations: dict[str, np.ndarray] = field(default_factory=dict)
    paths: dict[str, str] = field(default_factory=dict)  # "character:<id>" -> relative path


def preproduce(bible: StoryBible, backend: ImageBackend, out_dir: Path, store: RunStore,
               size: tuple[int, int], seed: int) -> References:
    """Render (or, on resume, reload) every reference; ids are slugs, so paths stay in out_dir."""
    refs = References()
    width, height = size
    jobs = [("character", c.id, reference_prompt_character(c)) for c in bible.characters]
    jobs += [("location", loc.id, reference_prompt_location(loc)) for loc in bible.locations]
    for kind, key, prompt in jobs:
        path = store.artifact(kind, key, out_dir)
        if path is None:
            path = out_dir / "references" / f"{kind}_{key}.png"
            image = backend.generate_image(prompt, width, height, seed)
            save_png(image, path)
            store.record_artifact(kind, key, path, out_dir)
        image = load_png(path)
        (refs.characters if kind == "character" else refs.locations)[key] = image
        refs.paths[f"{kind}:{key}"] = str(path.relative_to(out_dir))
    return refs
