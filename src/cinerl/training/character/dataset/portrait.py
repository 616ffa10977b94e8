"""Load a user's portrait safely and normalise it to an upright RGB JPEG.

The size is read from the file header before any pixel is decoded, so a decompression bomb (a
small file that claims 20,000 x 20,000 pixels) is refused without allocating it. EXIF orientation
is applied (Pillow's ImageOps.exif_transpose), every colour mode becomes RGB (alpha composited on
white), and the longest side is capped so later stages work on a bounded image.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from cinerl.core.errors import UserError

MIN_SIDE = 64  # smaller than this holds no usable face
MAX_PIXELS = 50_000_000  # refused before decoding (a 20,000 x 20,000 claim is 400 MP)
MAX_FILE_BYTES = 100 * 1024 * 1024
NORMALISED_MAX_SIDE = 2048
JPEG_QUALITY = 95


@dataclass
class Portrait:
    rgb: np.ndarray  # uint8 (H, W, 3), upright
    jpeg: bytes  # the normalised JPEG
    source: str
    source_size: tuple[int, int]  # (width, height) as stored in the file, before rotation
    source_format: str
    source_mode: str
    notes: list[str] = field(default_factory=list)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.jpeg).hexdigest()

    def summary(self) -> dict:
        h, w = self.rgb.shape[:2]
        return {
            "source": self.source,
            "source_size": list(self.source_size),
            "source_format": self.source_format,
            "source_mode": self.source_mode,
            "size": [w, h],
            "sha256": self.sha256,
            "notes": self.notes,
        }


def _to_rgb(img: Image.Image, notes: list[str]) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGB", rgba.size, (255, 255, 255))
        white.paste(rgba, mask=rgba.getchannel("A"))
        notes.append(f"{img.mode} with transparency composited on white")
        return white
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        if arr.max() > 255:  # 16-bit samples: 65535 -> 255
            arr = arr / 257.0
        notes.append(f"{img.mode} scaled to 8 bits")
        return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8)).convert("RGB")
    notes.append(f"colour mode {img.mode} converted to RGB")
    return img.convert("RGB")


def load_portrait(path: str | Path, max_side: int = NORMALISED_MAX_SIDE) -> Portrait:
    """Read and normalise a portrait; every problem a user can cause raises UserError."""
    path = Path(path).expanduser()
    if not path.exists():
        raise UserError(f"portrait {path} does not exist")
    if not path.is_file():
        raise UserError(f"portrait {path} is not a file")
    size = path.stat().st_size
    if size == 0:
        raise UserError(f"portrait {path} is empty")
    if size > MAX_FILE_BYTES:
        raise UserError(
            f"portrait {path} is {size / 2**20:.0f} MiB; the limit is {MAX_FILE_BYTES // 2**20} MiB"
        )
    notes: list[str] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:  # reads the header only
                w, h = img.size
                fmt, mode = img.format or "unknown", img.mode
                if w * h > MAX_PIXELS:
                    raise UserError(
                        f"portrait {path} is {w:,}x{h:,} pixels ({w * h / 1e6:.0f} MP); "
                        f"the limit is {MAX_PIXELS / 1e6:.0f} MP, refused before decoding"
                    )
                if min(w, h) < MIN_SIDE:
                    raise UserError(
                        f"portrait {path} is {w}x{h} pixels; both sides must be at "
                        f"least {MIN_SIDE} pixels to hold a face"
                    )
                img.load()
                orientation = _orientation(img)
                upright = ImageOps.exif_transpose(img)
                if orientation != 1:
                    notes.append(f"EXIF orientation {orientation} applied")
                rgb = _to_rgb(upright, notes)
    except UserError:
        raise
    except Image.DecompressionBombError as e:
        raise UserError(
            f"portrait {path} is too large ({e}); the limit is "
            f"{MAX_PIXELS / 1e6:.0f} MP, refused before decoding"
        ) from None
    except UnidentifiedImageError:
        raise UserError(f"portrait {path} is not an image (Pillow cannot identify it)") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise UserError(f"portrait {path} could not be decoded: {e}") from None
    if max(rgb.size) > max_side:
        scale = max_side / max(rgb.size)
        new = (max(1, round(rgb.size[0] * scale)), max(1, round(rgb.size[1] * scale)))
        rgb = rgb.resize(new, Image.Resampling.LANCZOS)
        notes.append(f"downscaled to {new[0]}x{new[1]} (longest side {max_side})")
    buf = io.BytesIO()
    rgb.save(buf, format="JPEG", quality=JPEG_QUALITY)
    return Portrait(
        rgb=np.asarray(rgb, dtype=np.uint8).copy(),
        jpeg=buf.getvalue(),
        source=str(path),
        source_size=(w, h),
        source_format=fmt,
        source_mode=mode,
        notes=notes,
    )


def _orientation(img: Image.Image) -> int:
    """The EXIF Orientation tag (0x0112), 1 (upright) when absent or unreadable."""
    try:
        return int(img.getexif().get(0x0112, 1) or 1)
    except Exception:  # a broken EXIF block only means no rotation
        return 1
