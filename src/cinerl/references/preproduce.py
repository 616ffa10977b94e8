"""Preproduction: one reference image per character and per location.

References are rendered from full-lock prompts, reused across every scene, and read by the
reward suite as the look each scene is held to. Any image backend of the registry renders them:
previz (CPU, default), Wan single frame, or any diffusers image pipeline from a local folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cinerl.generation.base import ImageBackend
from cinerl.core.media import load_png, save_png
from cinerl.core.store import RunStore
from cinerl.prompting.composer import reference_prompt_character, reference_prompt_location
from cinerl.core.schema import StoryBible


@dataclass
class References:
    characters: dict[str, np.ndarray] = field(default_factory=dict)
    locations: dict[str, np.ndarray] = field(default_factory=dict)
    paths: dict[str, str] = field(default_factory=dict)  # "character:<id>" -> relative path


def preproduce(
    bible: StoryBible, backend: ImageBackend, out_dir: Path, store: RunStore, size: tuple[int, int], seed: int
) -> References:
    """Render (or, on resume, reload) every reference; ids are slugs, so paths stay in out_dir."""
    refs = References()
    width, height = size
    jobs = [("character", c.id, reference_prompt_character(c)) for c in bible.characters]
    jobs += [("location", loc.id, reference_prompt_location(loc)) for loc in bible.locations]
    for kind, key, prompt in jobs:
        path = out_dir / "references" / f"{kind}_{key}.png"
        image = store.cached(
            kind,
            key,
            make=lambda prompt=prompt: backend.generate_image(prompt, width, height, seed),
            write=lambda image, path=path: save_png(image, path),
            read=load_png,
        )
        (refs.characters if kind == "character" else refs.locations)[key] = image
        refs.paths[f"{kind}:{key}"] = str(path.relative_to(out_dir))
    return refs
