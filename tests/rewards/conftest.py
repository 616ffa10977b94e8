"""Synthetic clips for the reward-suite tests (built with numpy/cv2, deterministic)."""

from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from cinerl.core.vocabulary import COLORS
from cinerl.core.schema import Character, Clip, Location, NamedColor, Scene, StoryBible


def texture(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Textured RGB image: random noise blurred at two scales, stretched to 0-255."""
    r = np.random.default_rng(seed)
    n = r.random((h, w, 3)).astype(np.float32)
    n = cv2.GaussianBlur(n, (0, 0), 3) + 2 * cv2.GaussianBlur(n, (0, 0), 12)
    n = (n - n.min()) / (n.max() - n.min())
    return (n * 255).astype(np.uint8)


def pan_clip(
    t: int = 48, h: int = 360, w: int = 640, speed: float = 1.0, jitter: float = 0.0, seed: int = 0
) -> Clip:
    """A textured image panned `speed` px/frame; `jitter` adds uniform random +-px per frame."""
    big = texture(h + 64, w + 64, seed)
    r = np.random.default_rng(seed + 1)
    frames = []
    for i in range(t):
        dx = speed * i + (r.uniform(-jitter, jitter) if jitter else 0.0)
        dy = r.uniform(-jitter, jitter) if jitter else 0.0
        m = np.float32([[1, 0, -(32 + dx)], [0, 1, -(32 + dy)]])
        frames.append(cv2.warpAffine(big, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))
    return Clip(frames=np.stack(frames), fps=24)


def flicker_clip(t: int = 32, h: int = 180, w: int = 320, amount: float = 0.0, seed: int = 0) -> Clip:
    """A static textured shot whose brightness alternates by +-amount (0 = steady)."""
    img = texture(h, w, seed).astype(np.float32)
    gains = [1.0 + (amount if i % 2 else -amount) for i in range(t)]
    return Clip(frames=np.stack([np.clip(img * g, 0, 255).astype(np.uint8) for g in gains]), fps=24)


WARDROBE = {
    "hair": COLORS["chestnut"],
    "skin": COLORS["peach"],
    "coat": COLORS["crimson"],
    "trousers": COLORS["navy"],
}
RECOLOURED = {
    "hair": COLORS["blonde"],
    "skin": COLORS["peach"],
    "coat": COLORS["emerald"],
    "trousers": COLORS["ochre"],
}


def draw_figure(img: np.ndarray, x: int, y: int, s: float, look: dict) -> np.ndarray:
    """A crude standing figure of height ~200*s px with its top-left at (x, y)."""

    def rect(x0, y0, x1, y1, c):
        cv2.rectangle(img, (int(x + x0 * s), int(y + y0 * s)), (int(x + x1 * s), int(y + y1 * s)), c, -1)

    rect(20, 0, 60, 14, look["hair"])
    rect(24, 12, 56, 44, look["skin"])
    rect(8, 44, 72, 120, look["coat"])
    rect(14, 120, 66, 200, look["trousers"])
    return img


def character_ref(look: dict = WARDROBE) -> np.ndarray:
    """The character on a plain neutral mid-grey studio backdrop."""
    img = np.full((384, 256, 3), 128, np.uint8)
    return draw_figure(img, 48, 70, 1.2, look)


def figure_clip(
    look: dict, t: int = 24, h: int = 360, w: int = 640, bg_seed: int = 3, tint: tuple = (60, 110, 50)
) -> Clip:
    """The figure walking across a tinted textured background, with slight lighting change."""
    bg = (texture(h, w, bg_seed).astype(np.float32) / 255.0 * 0.6 + 0.4) * np.float32(tint)
    bg = np.clip(bg, 0, 255).astype(np.uint8)
    frames = []
    for i in range(t):
        f = draw_figure(bg.copy(), 120 + 8 * i, 90, 1.1, look)
        gain = 1.0 + 0.05 * np.sin(i / 4.0)
        frames.append(np.clip(f.astype(np.float32) * gain, 0, 255).astype(np.uint8))
    return Clip(frames=np.stack(frames), fps=24)


def palette_clip(
    colors: list, t: int = 24, h: int = 180, w: int = 320, seed: int = 5, drift_to: list | None = None
) -> Clip:
    """Regions of the given colours (plus texture noise); optional linear drift to other colours."""
    n = texture(h, w, seed)[..., 0].astype(np.float32)
    edges = np.quantile(n, np.linspace(0, 1, len(colors) + 1)[1:-1])
    region = np.digitize(n, edges)
    detail = (texture(h, w, seed + 1).astype(np.float32) - 128) * 0.12
    frames = []
    for i in range(t):
        a = i / max(1, t - 1) if drift_to else 0.0
        pal = np.float32(colors) * (1 - a) + (np.float32(drift_to) * a if drift_to else 0)
        f = pal[region] + detail
        f = np.roll(f, i, axis=1)
        frames.append(np.clip(f, 0, 255).astype(np.uint8))
    return Clip(frames=np.stack(frames), fps=24)


ON_PALETTE = ["sandstone", "terracotta", "sky blue"]
OFF_PALETTE = ["emerald", "violet", "midnight blue"]


def bible(palette_names: list = ON_PALETTE) -> StoryBible:
    ch = Character(
        id="mara",
        name="Mara",
        age=34,
        gender="woman",
        wardrobe=[
            NamedColor(name="crimson", rgb=COLORS["crimson"]),
            NamedColor(name="navy", rgb=COLORS["navy"]),
        ],
        garments=["coat", "trousers"],
        hair=NamedColor(name="chestnut", rgb=COLORS["chestnut"]),
    )
    loc = Location(
        id="canyon",
        name="Red Canyon",
        scenery_type="desert",
        palette=[NamedColor(name=n, rgb=COLORS[n]) for n in palette_names],
    )
    scenes = [
        Scene(
            index=0,
            title="Arrival",
            beat="beginning",
            duration_s=11.0,
            character_ids=["mara"],
            location_id="canyon",
            action="Mara walks into the canyon.",
        ),
        Scene(
            index=1,
            title="Empty",
            beat="turn",
            duration_s=5.0,
            character_ids=[],
            location_id="canyon",
            action="Wind over the rocks.",
        ),
    ]
    return StoryBible(
        seed_prompt="test", title="T", logline="L", characters=[ch], locations=[loc], scenes=scenes
    )


@pytest.fixture
def synth() -> SimpleNamespace:
    return SimpleNamespace(
        texture=texture,
        pan_clip=pan_clip,
        flicker_clip=flicker_clip,
        draw_figure=draw_figure,
        character_ref=character_ref,
        figure_clip=figure_clip,
        palette_clip=palette_clip,
        bible=bible,
        WARDROBE=WARDROBE,
        RECOLOURED=RECOLOURED,
        ON_PALETTE=ON_PALETTE,
        OFF_PALETTE=OFF_PALETTE,
        COLORS=COLORS,
    )
