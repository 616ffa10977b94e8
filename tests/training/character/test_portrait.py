"""Portrait loading: EXIF rotation, colour modes, size limits, and refusing bad files early."""

import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from cinerl.core.errors import UserError
from cinerl.training.character.dataset.portrait import MAX_PIXELS, load_portrait


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_bomb_png(path, side=20_000):
    """A valid 1-bit PNG of side x side white pixels: ~50 KB on disk, 400 MP when decoded."""
    row = b"\x00" + b"\xff" * ((side + 7) // 8)
    comp = zlib.compressobj(9)
    data = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", data)
        + _png_chunk(b"IEND", b"")
    )
    return path


def test_exif_rotation_is_applied(tmp_path):
    arr = np.zeros((80, 120, 3), np.uint8)
    arr[:, :60] = (255, 0, 0)  # left half red, right half blue as stored
    arr[:, 60:] = (0, 0, 255)
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    img.save(tmp_path / "p.jpg", exif=exif, quality=95)
    p = load_portrait(tmp_path / "p.jpg")
    assert p.rgb.shape == (120, 80, 3)  # upright: portrait orientation
    assert p.rgb[5, 40, 0] > 200 and p.rgb[-5, 40, 2] > 200  # red on top, blue below
    assert "EXIF orientation 6 applied" in p.notes
    assert Image.open(__import__("io").BytesIO(p.jpeg)).format == "JPEG"


def test_colour_modes_become_rgb(tmp_path):
    rgba = np.zeros((70, 70, 4), np.uint8)
    rgba[..., 1] = 200
    rgba[:35, :, 3] = 255  # top half opaque green, bottom transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    p = load_portrait(tmp_path / "a.png")
    assert p.rgb.shape == (70, 70, 3) and p.source_mode == "RGBA"
    assert tuple(p.rgb[10, 10]) == (0, 200, 0) and tuple(p.rgb[60, 10]) == (255, 255, 255)
    Image.fromarray(np.full((64, 64), 90, np.uint8), "L").save(tmp_path / "g.png")
    g = load_portrait(tmp_path / "g.png")
    assert g.rgb.shape == (64, 64, 3) and np.all(g.rgb == 90)
    Image.fromarray(np.full((64, 64), 40000, np.uint16)).save(tmp_path / "i16.png")
    assert np.all(load_portrait(tmp_path / "i16.png").rgb == 156)  # 40000 / 257
    Image.fromarray(np.full((64, 64, 4), 128, np.uint8), "RGBA").convert("CMYK").save(tmp_path / "c.jpg")
    assert load_portrait(tmp_path / "c.jpg").rgb.shape == (64, 64, 3)


def test_large_portraits_are_downscaled(tmp_path):
    Image.fromarray(np.full((300, 900, 3), 120, np.uint8)).save(tmp_path / "wide.png")
    p = load_portrait(tmp_path / "wide.png", max_side=450)
    assert p.rgb.shape == (150, 450, 3) and p.source_size == (900, 300)
    assert any("downscaled" in n for n in p.notes)


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda d: d / "missing.jpg", "does not exist"),
        (lambda d: (d / "t.jpg").write_text("not an image") and d / "t.jpg", "is not an image"),
        (lambda d: (d / "e.jpg").write_bytes(b"") or d / "e.jpg", "is empty"),
        (lambda d: Image.new("RGB", (1, 1)).save(d / "one.png") or d / "one.png", "1x1 pixels"),
        (lambda d: d, "is not a file"),
    ],
)
def test_bad_portraits_are_user_errors(tmp_path, make, message):
    with pytest.raises(UserError, match=message):
        load_portrait(make(tmp_path))


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    bomb = write_bomb_png(tmp_path / "bomb.png")
    assert bomb.stat().st_size < 200_000 and 20_000**2 > MAX_PIXELS
    t0 = time.perf_counter()
    with pytest.raises(UserError, match=r"(400000000 pixels|400 MP).*refused before decoding"):
        load_portrait(bomb)
    assert time.perf_counter() - t0 < 2.0  # decoding 400 MP would take far longer
