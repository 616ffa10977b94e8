"""cinerl.core.media: video/image round trips, determinism, atomic writes."""

from __future__ import annotations

import os

import numpy as np
import pytest

from cinerl.core import media


def smooth_clip(t: int = 24, h: int = 72, w: int = 96) -> np.ndarray:
    """Slowly moving smooth gradients: easy for H.264, so decoded error is small."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    frames = []
    for i in range(t):
        r = 128 + 90 * np.sin((xx + 2 * i) / 23.0)
        g = 128 + 90 * np.cos((yy + i) / 17.0)
        b = 60 + 120 * (xx + yy) / (w + h) + i
        frames.append(np.stack([r, g, b], axis=-1))
    return np.clip(np.stack(frames), 0, 255).astype(np.uint8)


def leftovers(folder) -> list[str]:
    return sorted(n for n in os.listdir(folder) if ".tmp" in n or n.startswith("."))


def test_mp4_round_trip(tmp_path):
    frames = smooth_clip()
    path = media.write_mp4(frames, 24, tmp_path / "clip.mp4")
    assert path == tmp_path / "clip.mp4" and path.is_file()
    decoded, fps = media.read_mp4(path)
    assert fps == 24
    assert decoded.dtype == np.uint8 and decoded.shape == frames.shape
    assert np.abs(decoded.astype(np.int16) - frames).mean() < 3.0
    streamed = np.stack(list(media.iter_mp4_frames(path)))
    np.testing.assert_array_equal(streamed, decoded)
    info = media.probe_mp4(path)
    assert info == {"fps": 24, "width": 96, "height": 72, "frames": 24}
    assert leftovers(tmp_path) == []


def test_mp4_other_fps_and_single_frame(tmp_path):
    frames = smooth_clip(t=1)
    decoded, fps = media.read_mp4(media.write_mp4(frames, 30, tmp_path / "one.mp4"))
    assert fps == 30 and decoded.shape == frames.shape


def test_mp4_is_byte_identical_on_reencode(tmp_path):
    frames = smooth_clip(t=30)
    a = media.write_mp4(frames, 24, tmp_path / "a.mp4")
    b = media.write_mp4(frames, 24, tmp_path / "b.mp4")
    c = media.write_mp4(frames, 24, tmp_path / "a.mp4")  # overwrite in place
    assert a.read_bytes() == b.read_bytes() == c.read_bytes()
    # x264's AVX-512 paths were once non-deterministic ~1 run in 5 on small clips: repeat a few
    small = smooth_clip(t=30, h=48, w=64)
    hashes = {media.write_mp4(small, 24, tmp_path / f"s{i}.mp4").read_bytes() for i in range(8)}
    assert len(hashes) == 1
    frames2 = frames.copy()
    frames2[5, 10:20, 10:20] = 0
    d = media.write_mp4(frames2, 24, tmp_path / "d.mp4")
    assert d.read_bytes() != a.read_bytes()


def test_mp4_odd_size_is_padded_to_even(tmp_path):
    frames = smooth_clip(t=6, h=35, w=47)
    decoded, _ = media.read_mp4(media.write_mp4(frames, 12, tmp_path / "odd.mp4"))
    assert decoded.shape == (6, 36, 48, 3)
    assert np.abs(decoded[:, :35, :47].astype(np.int16) - frames).mean() < 3.0
    # the padding repeats the edge row/column
    assert np.abs(decoded[:, 35].astype(np.int16) - decoded[:, 34]).mean() < 4.0


def test_mp4_rejects_bad_frames(tmp_path):
    with pytest.raises(ValueError):
        media.write_mp4(np.zeros((4, 8, 8, 3), np.float32), 24, tmp_path / "x.mp4")
    with pytest.raises(ValueError):
        media.write_mp4(np.zeros((0, 8, 8, 3), np.uint8), 24, tmp_path / "x.mp4")
    assert not (tmp_path / "x.mp4").exists()
    assert leftovers(tmp_path) == []


def test_mp4_failed_write_leaves_previous_file_and_no_temp(tmp_path):
    path = media.write_mp4(smooth_clip(t=4), 24, tmp_path / "keep.mp4")
    before = path.read_bytes()
    with pytest.raises(ValueError, match="differs"):
        with media.Mp4Writer(path, 24) as writer:
            writer.write(np.zeros((72, 96, 3), np.uint8))
            writer.write(np.zeros((10, 10, 3), np.uint8))  # size change -> error mid-file
    assert path.read_bytes() == before
    with pytest.raises(RuntimeError):
        with media.Mp4Writer(tmp_path / "new.mp4", 24) as writer:
            writer.write(np.zeros((16, 16, 3), np.uint8))
            raise RuntimeError("crash while encoding")
    assert not (tmp_path / "new.mp4").exists()
    assert leftovers(tmp_path) == []


def test_png_round_trip_exact_and_atomic(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(37, 53, 3), dtype=np.uint8)
    path = media.save_png(image, tmp_path / "sub" / "img.png")
    assert path.is_file()
    loaded = media.load_png(path)
    assert loaded.dtype == np.uint8
    np.testing.assert_array_equal(loaded, image)
    media.save_png(image[::-1], path)  # overwrite
    np.testing.assert_array_equal(media.load_png(path), image[::-1])
    assert leftovers(tmp_path / "sub") == []


def test_png_rgb_order():
    image = np.zeros((4, 4, 3), np.uint8)
    image[..., 0] = 255  # pure red stays red (no BGR swap)
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        p = media.save_png(image, Path(d) / "red.png")
        assert media.load_png(p)[0, 0].tolist() == [255, 0, 0]


def test_jpeg_and_thumbnail(tmp_path):
    image = smooth_clip(t=1, h=180, w=640)[0]
    thumb = media.thumbnail(image, width=320)
    assert thumb.shape == (90, 320, 3) and thumb.dtype == np.uint8
    path = media.save_jpeg(thumb, tmp_path / "thumb.jpg", quality=90)
    assert path.read_bytes()[:2] == b"\xff\xd8"
    loaded = media.load_png(path)  # load_png reads any image format OpenCV knows
    assert loaded.shape == thumb.shape
    assert np.abs(loaded.astype(np.int16) - thumb).mean() < 4.0
    assert media.thumbnail(image, width=640).shape == image.shape
    assert leftovers(tmp_path) == []


def test_atomic_text_and_bytes(tmp_path):
    p = media.atomic_write_text(tmp_path / "a" / "b.txt", "héllo\n")
    assert p.read_text(encoding="utf-8") == "héllo\n"
    media.atomic_write_text(p, "second")
    assert p.read_text() == "second"
    q = media.atomic_write_bytes(tmp_path / "c.bin", b"\x00\x01\x02")
    assert q.read_bytes() == b"\x00\x01\x02"
    assert leftovers(tmp_path) == [] and leftovers(tmp_path / "a") == []


def test_atomic_path_cleans_up_on_error(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(KeyError):
        with media.atomic_path(target) as tmp:
            tmp.write_text("half written")
            raise KeyError("boom")
    assert target.read_text() == "old"
    assert leftovers(tmp_path) == []
