"""cinerl.assembly.stitch: cut / crossfade films from scene clips."""

from __future__ import annotations

import os

import numpy as np
import pytest

from cinerl.assembly.stitch import TRANSITIONS, stitch
from cinerl.core.media import read_mp4, write_mp4

FPS = 12


def ramp_clip(n: int, start: float, step: float, h: int = 48, w: int = 64, tint=(1.0, 0.8, 0.6)):
    """Flat frames whose brightness ramps per frame, plus a soft horizontal gradient."""
    xx = np.linspace(-12, 12, w, dtype=np.float32)[None, :, None]
    frames = []
    for i in range(n):
        level = start + step * i
        frame = np.broadcast_to(level * np.asarray(tint, np.float32) + xx, (h, w, 3))
        frames.append(frame)
    return np.clip(np.stack(frames), 0, 255).astype(np.uint8)


@pytest.fixture()
def clips(tmp_path):
    specs = [(20, 40.0, 4.0), (16, 220.0, -5.0), (18, 100.0, 2.0)]
    paths = []
    for k, (n, start, step) in enumerate(specs):
        paths.append(write_mp4(ramp_clip(n, start, step), FPS, tmp_path / f"scene_{k}.mp4"))
    return paths


def mae(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def test_cut_concatenates(clips, tmp_path):
    out = tmp_path / "film" / "film.mp4"
    info = stitch(clips, out)
    lengths = [read_mp4(p)[0].shape[0] for p in clips]
    assert lengths == [20, 16, 18]
    assert info["frames"] == sum(lengths) == 54
    assert info["fps"] == FPS
    assert info["path"] == str(out)
    assert info["seconds"] == pytest.approx(54 / FPS)
    assert info["scene_offsets"] == pytest.approx([0.0, 20 / FPS, 36 / FPS])
    film, fps = read_mp4(out)
    assert fps == FPS and film.shape == (54, 48, 64, 3)
    decoded = np.concatenate([read_mp4(p)[0] for p in clips])
    assert mae(film, decoded) < 2.5
    assert sorted(os.listdir(out.parent)) == ["film.mp4"]  # no temp files left behind


def test_crossfade_blends_neighbours(clips, tmp_path):
    n = 6
    out = tmp_path / "xfade.mp4"
    info = stitch(clips, out, transition="crossfade", crossfade_frames=n)
    assert info["frames"] == 54 - n * 2
    assert info["scene_offsets"] == pytest.approx([0.0, (20 - n) / FPS, (36 - 2 * n) / FPS])
    film, _ = read_mp4(out)
    assert film.shape[0] == info["frames"]
    a, b = read_mp4(clips[0])[0], read_mp4(clips[1])[0]
    # untouched frames before the first fade are clip A
    assert mae(film[: 20 - n], a[: 20 - n]) < 2.5
    for j in range(n):
        alpha = (j + 1) / (n + 1)
        expected = (1 - alpha) * a[20 - n + j].astype(np.float32) + alpha * b[j].astype(np.float32)
        got = film[20 - n + j]
        assert mae(got, expected) < 3.0, j
        # and it is really a mix: far from both neighbours
        assert mae(got, a[20 - n + j]) > 5 and mae(got, b[j]) > 5
    # after the fade: clip B continues from its (n)-th frame
    assert mae(film[20 : 20 + 16 - 2 * n], b[n : 16 - n]) < 2.5


def test_crossfade_zero_frames_is_a_cut(clips, tmp_path):
    info = stitch(clips, tmp_path / "x.mp4", transition="crossfade", crossfade_frames=0)
    assert info["frames"] == 54


def test_single_clip(clips, tmp_path):
    info = stitch(clips[:1], tmp_path / "one.mp4", transition="crossfade")
    assert info["frames"] == 20 and info["scene_offsets"] == [0.0]


def test_different_sizes_and_odd_sizes_are_resized(tmp_path):
    first = write_mp4(ramp_clip(8, 50, 3, h=48, w=64), FPS, tmp_path / "a.mp4")
    odd = write_mp4(ramp_clip(7, 150, -3, h=33, w=45), FPS, tmp_path / "b.mp4")  # pads to 34x46
    big = write_mp4(ramp_clip(6, 90, 1, h=96, w=128), FPS, tmp_path / "c.mp4")
    info = stitch([first, odd, big], tmp_path / "film.mp4", transition="crossfade", crossfade_frames=3)
    assert info["frames"] == 8 + 7 + 6 - 2 * 3
    film, _ = read_mp4(tmp_path / "film.mp4")
    assert film.shape == (15, 48, 64, 3)
    # the big clip's last frame survives resizing (flat content, so levels are preserved)
    assert mae(film[-1], ramp_clip(6, 90, 1)[-1]) < 3.0


def test_odd_first_clip(tmp_path):
    odd = write_mp4(ramp_clip(5, 80, 2, h=35, w=47), FPS, tmp_path / "odd.mp4")
    info = stitch([odd, odd], tmp_path / "film.mp4")
    film, _ = read_mp4(tmp_path / "film.mp4")
    assert info["frames"] == 10 and film.shape[1:3] == (36, 48)


def test_crossfade_clamped_to_short_clips(tmp_path):
    a = write_mp4(ramp_clip(10, 50, 3), FPS, tmp_path / "a.mp4")
    short = write_mp4(ramp_clip(4, 150, -3), FPS, tmp_path / "s.mp4")
    info = stitch([a, short], tmp_path / "film.mp4", transition="crossfade", crossfade_frames=12)
    assert info["frames"] == 10 + 4 - 4
    assert info["scene_offsets"] == pytest.approx([0.0, 6 / FPS])
    assert read_mp4(tmp_path / "film.mp4")[0].shape[0] == 10


def test_fps_override(clips, tmp_path):
    info = stitch(clips, tmp_path / "film.mp4", fps=24)
    assert info["fps"] == 24 and info["seconds"] == pytest.approx(54 / 24)
    assert read_mp4(tmp_path / "film.mp4")[1] == 24


def test_deterministic(clips, tmp_path):
    a = stitch(clips, tmp_path / "a.mp4", transition="crossfade", crossfade_frames=4)
    b = stitch(clips, tmp_path / "b.mp4", transition="crossfade", crossfade_frames=4)
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()
    assert a["frames"] == b["frames"]


def test_bad_transition_names_allowed_ones(clips, tmp_path):
    with pytest.raises(ValueError) as err:
        stitch(clips, tmp_path / "film.mp4", transition="wipe")
    msg = str(err.value)
    assert "wipe" in msg and all(t in msg for t in TRANSITIONS)
    assert not (tmp_path / "film.mp4").exists()


def test_missing_clip_and_empty_list(clips, tmp_path):
    with pytest.raises(FileNotFoundError):
        stitch([clips[0], tmp_path / "nope.mp4"], tmp_path / "film.mp4")
    with pytest.raises(ValueError):
        stitch([], tmp_path / "film.mp4")
    assert not (tmp_path / "film.mp4").exists()


def test_cut_remux_and_reencode_give_the_same_film(clips, tmp_path):
    """Takes of one encoder are joined by remuxing: the film decodes to exactly the clips'
    decoded frames; the re-encoding fallback gives the same frames up to H.264's loss, with the
    same length and scene offsets."""
    remuxed = stitch(clips, tmp_path / "remux.mp4")
    encoded = stitch(clips, tmp_path / "encode.mp4", remux=False)
    assert remuxed["remuxed"] is True and encoded["remuxed"] is False
    for key in ("frames", "seconds", "fps", "scene_offsets"):
        assert remuxed[key] == pytest.approx(encoded[key])
    decoded = np.concatenate([read_mp4(p)[0] for p in clips])
    a, fps_a = read_mp4(tmp_path / "remux.mp4")
    b, fps_b = read_mp4(tmp_path / "encode.mp4")
    assert fps_a == fps_b == FPS
    assert np.array_equal(a, decoded)  # not one pixel changed
    assert a.shape == b.shape and mae(a, b) < 2.5
    again = stitch(clips, tmp_path / "remux2.mp4")
    assert (
        again["remuxed"] and (tmp_path / "remux.mp4").read_bytes() == (tmp_path / "remux2.mp4").read_bytes()
    )


def test_clips_that_differ_are_re_encoded(tmp_path):
    small = write_mp4(ramp_clip(8, 50.0, 3.0), FPS, tmp_path / "a.mp4")
    big = write_mp4(ramp_clip(8, 90.0, 3.0, h=64, w=96), FPS, tmp_path / "b.mp4")
    info = stitch([small, big], tmp_path / "film.mp4")
    assert info["remuxed"] is False and info["frames"] == 16
    assert read_mp4(tmp_path / "film.mp4")[0].shape == (16, 48, 64, 3)  # resized to the first clip
    other_rate = stitch([small, small], tmp_path / "film24.mp4", fps=24)
    assert other_rate["remuxed"] is False and other_rate["fps"] == 24


def test_cards_and_burned_subtitles(tmp_path):
    from cinerl.assembly.stitch import overlay_film

    film = write_mp4(np.full((24, 64, 96, 3), 120, np.uint8), FPS, tmp_path / "film.mp4")
    info = {"fps": FPS, "frames": 24, "seconds": 2.0, "scene_offsets": [0.0, 1.0]}
    cues = [(0.5, 1.5, "Karim and Mara search the stormy harbour for a lost boat")]
    out = overlay_film(
        film, info, cues, title=("The Boat", "A logline."), cast=["Karim"], palette=[(20, 60, 120)]
    )
    card = int(2.5 * FPS)
    assert out["frames"] == 24 + 2 * card and out["title_seconds"] == pytest.approx(card / FPS)
    assert out["scene_offsets"] == pytest.approx([card / FPS, card / FPS + 1.0])
    frames, _ = read_mp4(film)
    body = frames[card : card + 24]
    plain = [j for j in range(24) if not 0.5 <= j / FPS < 1.5]
    captioned = [j for j in range(24) if 0.5 <= j / FPS < 1.5]
    assert max(mae(body[j], np.full_like(body[j], 120)) for j in plain) < 1.5  # untouched
    for j in captioned:  # text in the lower part, inside the safe margin; the top untouched
        assert mae(body[j][40:], np.full_like(body[j][40:], 120)) > 10
        assert mae(body[j][:20], np.full_like(body[j][:20], 120)) < 1.5
        assert mae(body[j][:, :3], np.full_like(body[j][:, :3], 120)) < 3  # the 6 % side margin
    title, end = frames[0], frames[-1]
    assert title.mean() < 80 and mae(title, end) > 1  # dark palette cards, different text


def textured_clip(n: int, seed: int, h: int = 64, w: int = 96) -> np.ndarray:
    """A blurred noise texture panning a pixel a frame: H.264 uses B-frames on it."""
    import cv2

    base = np.random.default_rng(seed).integers(0, 255, (h, w + n, 3)).astype(np.uint8)
    base = cv2.GaussianBlur(base, (5, 5), 0)
    return np.stack([base[:, i : i + w] for i in range(n)])


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean())
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def test_crossfade_encodes_only_the_join_windows(tmp_path):
    """Takes written with IDR frames at their fades (crossfade_keyframes, as a crossfade run
    writes them): only the 2 x N blended frames are encoded, everything else is copied packet by
    packet and decodes to exactly the takes' frames. The blends are H.264-encoded in both paths
    (here as short streams of their own, there inside the whole film), so they are not equal
    bit for bit: the frame counts and scene offsets are exact, and each blend is within 30 dB
    PSNR of the exact blend of the decoded takes in both paths (crf 20 on this texture: ~31-36 dB)."""
    from cinerl.assembly.stitch import crossfade_keyframes

    n, lengths = 6, (40, 36, 44)
    clips = [
        write_mp4(textured_clip(k, i), FPS, tmp_path / f"t{i}.mp4", keyframes=crossfade_keyframes(k, n))
        for i, k in enumerate(lengths)
    ]
    joined = stitch(clips, tmp_path / "joins.mp4", transition="crossfade", crossfade_frames=n)
    full = stitch(clips, tmp_path / "full.mp4", transition="crossfade", crossfade_frames=n, remux=False)
    assert joined["remuxed"] and joined["encoded_frames"] == 2 * n
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no join window left
    assert not full["remuxed"] and full["encoded_frames"] == full["frames"] == sum(lengths) - 2 * n
    for key in ("frames", "seconds", "fps", "scene_offsets"):
        assert joined[key] == pytest.approx(full[key])
    takes = [read_mp4(p)[0] for p in clips]
    exact = [takes[0][: 40 - n]]  # the film an exact blend of the decoded takes would be
    for a, b in ((takes[0], takes[1]), (takes[1], takes[2])):
        alphas = (np.arange(1, n + 1) / (n + 1))[:, None, None, None]
        exact.append(np.rint((1 - alphas) * a[-n:] + alphas * b[:n]).astype(np.uint8))
        exact.append(b[n : len(b) - n] if b is takes[1] else b[n:])
    exact = np.concatenate(exact)
    got, again = read_mp4(tmp_path / "joins.mp4")[0], read_mp4(tmp_path / "full.mp4")[0]
    assert got.shape == again.shape == exact.shape
    blends = np.zeros(len(exact), bool)
    for start in (40 - n, 40 - n + 36 - n):
        blends[start : start + n] = True
    assert np.array_equal(got[~blends], exact[~blends])  # copied: not one pixel changed
    assert not np.array_equal(again[~blends], exact[~blends])  # (the full path re-encodes them)
    for j in np.flatnonzero(blends):
        assert psnr(got[j], exact[j]) > 30 and psnr(again[j], exact[j]) > 30, j
    assert psnr(got, again) > 33
    twice = stitch(clips, tmp_path / "joins2.mp4", transition="crossfade", crossfade_frames=n)
    assert twice == {**joined, "path": str(tmp_path / "joins2.mp4")}
    assert (tmp_path / "joins.mp4").read_bytes() == (tmp_path / "joins2.mp4").read_bytes()


def test_crossfade_of_takes_without_keyframes_encodes_up_to_the_next_idr(tmp_path):
    """Takes with one IDR frame each (written before crossfade_keyframes): the first take's
    frames before its fade are still copied (to the last clean cut of its stream); the rest is
    encoded, and the film has the same length and offsets as the full re-encode."""
    n, lengths = 6, (40, 36)
    clips = [write_mp4(textured_clip(k, i), FPS, tmp_path / f"t{i}.mp4") for i, k in enumerate(lengths)]
    joined = stitch(clips, tmp_path / "joins.mp4", transition="crossfade", crossfade_frames=n)
    full = stitch(clips, tmp_path / "full.mp4", transition="crossfade", crossfade_frames=n, remux=False)
    assert joined["remuxed"] and joined["frames"] == full["frames"] == 70
    assert joined["scene_offsets"] == pytest.approx(full["scene_offsets"])
    copied = joined["frames"] - joined["encoded_frames"]
    assert 40 - n - 4 <= copied <= 40 - n  # a B-frame group short of the fade at most
    first = read_mp4(clips[0])[0]
    assert np.array_equal(read_mp4(tmp_path / "joins.mp4")[0][:copied], first[:copied])


def test_crossfade_keyframes_sit_where_the_fades_begin_and_end():
    from cinerl.assembly.stitch import crossfade_keyframes

    assert crossfade_keyframes(264, 12) == [12, 252]
    assert crossfade_keyframes(20, 12) == [8, 12]
    assert crossfade_keyframes(8, 12) == [] and crossfade_keyframes(30, 0) == []
