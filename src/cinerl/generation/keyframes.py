"""Keyframe-then-inbetween shooting (`--mode keyframes`).

First one keyframe image per scene boundary (N scenes: N+1 boundaries, the last one the end of
the final scene), then each scene's clips run from their first keyframe to their last. Scene i
ends on the image scene i+1 starts from, so the film stays continuous while the clips no longer
depend on each other (they could be shot in any order or in parallel). Keyframes are saved as
PNGs and recorded in the run store, so a resumed run reuses them.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from cinerl.core.errors import BackendUnavailable
from cinerl.core.media import load_png, save_png
from cinerl.core.store import RunStore
from cinerl.prompting.composer import compose
from cinerl.core.schema import StoryBible

log = logging.getLogger(__name__)
# A still, fully locked description: a keyframe is the look the clips are held to.
KEYFRAME_ACTION = {
    "shot_size": "wide",
    "camera_move": "static",
    "lighting": "soft daylight",
    "identity_lock": "full",
    "location_lock": "full",
    "motion": "still",
    "negative_preset": "full",
}


def boundary_prompt(bible: StoryBible, boundary: int) -> str:
    """Boundary b opens scene b; the last boundary closes the final scene."""
    n = len(bible.scenes)
    scene = bible.scenes[min(boundary, n - 1)]
    prompt, _ = compose(scene, bible, KEYFRAME_ACTION)
    return prompt + (" The closing moment of the scene." if boundary == n else "")


def keyframe_seed(seed: int, boundary: int) -> int:
    return int(np.random.SeedSequence([seed, 10_000 + boundary]).generate_state(1)[0])


def render_keyframe(backend, fallback, prompt: str, width: int, height: int, seed: int) -> np.ndarray:
    """The video backend renders its own keyframes where it can draw an image from text;
    otherwise (previz-free variants such as i2v-a14b) the fallback image backend does."""
    if callable(getattr(backend, "generate_image", None)):
        try:
            return backend.generate_image(prompt, width, height, seed)
        except BackendUnavailable as e:
            log.warning("keyframes: %s; using the %s image backend", e, fallback.name)
    return fallback.generate_image(prompt, width, height, seed)


def scene_keyframes(
    bible: StoryBible, backend, fallback, out_dir: Path, store: RunStore, size: tuple[int, int], seed: int
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """{scene index: (first keyframe, last keyframe)} for every scene."""
    width, height = size
    images: list[np.ndarray] = []
    for b in range(len(bible.scenes) + 1):
        key = f"boundary_{b:02d}"
        images.append(
            store.cached(
                "keyframe",
                key,
                make=lambda b=b: render_keyframe(
                    backend, fallback, boundary_prompt(bible, b), width, height, keyframe_seed(seed, b)
                ),
                write=lambda image, key=key: save_png(image, out_dir / "keyframes" / f"{key}.png"),
                read=load_png,
            )
        )
    return {sc.index: (images[i], images[i + 1]) for i, sc in enumerate(bible.scenes)}
