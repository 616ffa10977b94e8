"""Wan2.2 variants and their own sampling defaults, and the rounding of a request to what a
variant accepts.

Defaults are Wan2.2's published inference settings (Wan-Video/Wan2.2, wan/configs/
wan_ti2v_5B.py, wan_t2v_A14B.py, wan_i2v_A14B.py, shared_config.py). Wan's guidance pairs are
written (low noise, high noise); diffusers' `guidance_scale` drives the high-noise expert
(`transformer`) and `guidance_scale_2` the low-noise one (`transformer_2`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WanVariant:
    name: str
    width: int  # default frame size (landscape)
    height: int
    num_frames: int  # default clip length, 4n+1
    fps: int
    steps: int
    guidance: float  # high-noise expert (or the only one)
    guidance_2: float | None  # low-noise expert; None for the single-expert 5B
    flow_shift: float
    boundary_ratio: float | None  # None: one expert
    vae_spatial: int  # VAE spatial stride
    patch: int = 2  # transformer spatial patch
    latent_channels: int = 16
    transformer_in_channels: int = 16
    text_to_video: bool = True  # can render without an input image
    image_to_video: bool = True  # can start from an image
    first_last_frame: bool = False  # can also end on a given image (last_image)
    max_seq_len: int = 512  # Wan's text_len

    @property
    def size_multiple(self) -> int:
        return self.vae_spatial * self.patch

    @property
    def experts(self) -> int:
        return 1 if self.boundary_ratio is None else 2


VARIANTS: dict[str, WanVariant] = {
    # TI2V-5B: one dense expert, Wan2.2 VAE (4x16x16, 48 channels), image conditioning by
    # replacing the first latent frame (diffusers: expand_timesteps=True).
    "ti2v-5b": WanVariant(
        "ti2v-5b",
        1280,
        704,
        121,
        24,
        50,
        5.0,
        None,
        5.0,
        None,
        vae_spatial=16,
        latent_channels=48,
        transformer_in_channels=48,
    ),
    # T2V-A14B: two experts switched at t = 0.875 * 1000; guide (3.0 low, 4.0 high), shift 12.
    "t2v-a14b": WanVariant(
        "t2v-a14b", 1280, 720, 81, 16, 40, 4.0, 3.0, 12.0, 0.875, vae_spatial=8, image_to_video=False
    ),
    # I2V-A14B: two experts switched at 0.900; guide (3.5, 3.5), shift 5; image channels
    # concatenated (16 noise + 4 mask + 16 condition = 36), first-last-frame capable.
    "i2v-a14b": WanVariant(
        "i2v-a14b",
        1280,
        720,
        81,
        16,
        40,
        3.5,
        3.5,
        5.0,
        0.900,
        vae_spatial=8,
        transformer_in_channels=36,
        text_to_video=False,
        first_last_frame=True,
    ),
}
DEFAULT_VARIANT = "ti2v-5b"


def get_variant(name: str) -> WanVariant:
    from cinerl.core.errors import UserError

    try:
        return VARIANTS[name.lower()]
    except KeyError:
        raise UserError(f"unknown Wan variant {name!r}; choose one of {', '.join(VARIANTS)}") from None


@dataclass(frozen=True)
class FittedSize:
    width: int
    height: int
    num_frames: int
    warnings: tuple[str, ...]


def round_frames(n: int) -> int:
    """The nearest 4n+1 frame count (the VAE packs 4 frames per latent after the first)."""
    return max(1, 4 * round((max(1, n) - 1) / 4) + 1)


def fit_request(
    variant: WanVariant, width: int, height: int, num_frames: int, max_frames: int | None = None
) -> FittedSize:
    """Round a size to the variant's multiple and a frame count to 4n+1 no longer than the
    variant's trained length; every change is logged and returned as a warning."""
    m = variant.size_multiple
    notes: list[str] = []
    w = max(m, int(width / m + 0.5) * m)  # nearest multiple, halves up
    h = max(m, int(height / m + 0.5) * m)
    if (w, h) != (width, height):
        notes.append(f"size {width}x{height} rounded to {w}x{h} (multiples of {m} for {variant.name})")
    cap = max_frames or variant.num_frames
    f = min(round_frames(num_frames), round_frames(cap))
    if f != num_frames:
        why = f"at most {cap} frames" if round_frames(num_frames) > cap else "4n+1 frames"
        notes.append(f"{num_frames} frames rounded to {f} ({why} for {variant.name})")
    for n in notes:
        log.warning("wan: %s", n)
    return FittedSize(w, h, f, tuple(notes))
