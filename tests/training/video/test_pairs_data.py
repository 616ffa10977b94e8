"""Pairs files: the row schema (a bad row named by its line and skipped), the VideoDPO importer
on a small fixture written here, plain {prompt, chosen, rejected} JSONL of videos, and the latent
cache that encodes such clips once with the Wan VAE."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

from cinerl.core.errors import UserError
from cinerl.core.media import write_mp4
from cinerl.generation.wan.variants import VARIANTS
from cinerl.training.datasets.video_pairs import import_videodpo, read_pairs
from cinerl.training.video.data import Target, crop
from tests.e2e.helpers import CINERL, run
from tests.generation.wan_tiny import write_tiny_model


def clip(path, seed, frames=9, w=64, h=32):
    rng = np.random.default_rng(seed)
    write_mp4(rng.integers(0, 256, (frames, h, w, 3), dtype=np.uint8), 8, path)
    return path


def test_a_bad_row_is_reported_with_its_line_and_skipped(tmp_path, caplog):
    good = {"prompt": "a boat", "chosen": "a.mp4", "rejected": "b.mp4", "margin": 0.2}
    lines = [
        json.dumps(good),
        json.dumps({**good, "margin": -0.1}),
        "{not json",
        "",
        json.dumps({**good, "rejected": "a.mp4"}),
        json.dumps({**good, "extra": 1}),
        json.dumps({**good, "chosen": "c.mp4"}),
    ]
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with caplog.at_level(logging.WARNING):
        rows = read_pairs(path)
    assert [r.chosen for r in rows] == [str(tmp_path / "a.mp4"), str(tmp_path / "c.mp4")]
    text = caplog.text
    for n, why in ((2, "margin is negative"), (3, "line 3"), (5, "same file"), (6, "extra")):
        assert f"line {n} skipped" in text and why in text
    assert "4 of 6 rows skipped" in text
    with pytest.raises(UserError, match="is empty"):
        (tmp_path / "e.jsonl").write_text("")
        read_pairs(tmp_path / "e.jsonl")
    with pytest.raises(UserError, match="does not exist"):
        read_pairs(tmp_path / "missing.jsonl")


def test_videodpo_release_format_is_imported(tmp_path):
    root = tmp_path / "videodpo"
    (root / "clips").mkdir(parents=True)
    for i in range(4):
        clip(root / "clips" / f"{i:03d}.mp4", i)
    (root / "metadata.json").write_text(json.dumps([{"path": f"clips/{i:03d}.mp4"} for i in range(4)]))
    (root / "pair.json").write_text(
        json.dumps(
            [
                {
                    "video1": 0,
                    "video2": 1,
                    "frame_caption": "a red boat at sea",
                    "label": 0,
                    "scores": [0.9, 0.2],
                },
                {
                    "video1": 2,
                    "video2": 3,
                    "caption": "a lighthouse at night",
                    "label": 1,
                    "scores": [0.1, 0.7],
                },
                {"video1": 9, "video2": 1, "frame_caption": "unknown clip"},
            ]
        )
    )
    rows = import_videodpo(root)
    assert len(rows) == 2
    assert rows[0].chosen.endswith("000.mp4") and rows[0].rejected.endswith("001.mp4")
    assert (rows[0].chosen_score, rows[0].rejected_score, rows[0].margin) == (0.9, 0.2, 0.7)
    assert rows[1].chosen.endswith("003.mp4") and rows[1].rejected.endswith("002.mp4")  # label 1
    assert rows[1].prompt == "a lighthouse at night" and rows[1].margin == pytest.approx(0.6)
    # the release layout without metadata.json: even index -> winvideos, odd -> losevideos
    bare = tmp_path / "bare"
    for sub in ("winvideos", "losevideos"):
        (bare / sub).mkdir(parents=True)
        clip(bare / sub / "000000.mp4", 7)
    (bare / "pair.json").write_text(json.dumps([{"video1": 0, "video2": 1, "frame_caption": "x"}]))
    (row,) = import_videodpo(bare)
    assert row.chosen.endswith("winvideos/000000.mp4") and row.rejected.endswith("losevideos/000000.mp4")
    out = tmp_path / "pairs.jsonl"
    res = run([CINERL, "train", "pairs", "--from", str(root), "--out", str(out)])
    assert res.returncode == 0, res.stderr
    assert len(read_pairs(out)) == 2 and "imported 2" in res.stdout


def test_crop_is_exact_in_time_and_central_in_space():
    x = torch.arange(2 * 5 * 4 * 6).float().view(2, 5, 4, 6)
    y = crop(x, Target(3, 2, 2))
    assert torch.equal(y, x[:, :3, 1:3, 2:4])
    assert Target.of(VARIANTS["ti2v-5b"], 64, 32, 13) == Target(4, 2, 4)


@pytest.mark.slow
def test_plain_video_pairs_are_encoded_once_into_the_latent_cache(tmp_path):
    from cinerl.generation.wan.take_latents import read_take_latents

    model = write_tiny_model("ti2v-5b", tmp_path / "model")
    data = tmp_path / "data"
    data.mkdir()
    for i in range(4):
        clip(data / f"{i}.mp4", i, w=80, h=40)  # cover-resized to 64x32
    rows = [
        {"prompt": "a red boat at sea", "chosen": "0.mp4", "rejected": "1.mp4"},
        {"prompt": "a lighthouse at night", "chosen": "2.mp4", "rejected": "3.mp4"},
    ]
    pairs = data / "pairs.jsonl"
    pairs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "lora"
    cmd = [
        CINERL,
        "train",
        "video-dpo",
        "--model-dir",
        str(model),
        "--pairs",
        str(pairs),
        "--out",
        str(out),
        "--size",
        "64x32",
        "--frames",
        "9",
        "--steps",
        "2",
        "--lora-rank",
        "4",
        "--lora-alpha",
        "4",
    ]
    res = run(cmd)
    assert res.returncode == 0, res.stderr
    cached = sorted((out / "latent_cache").glob("*.latents.safetensors"))
    assert len(cached) == 4
    stamps = [p.stat().st_mtime_ns for p in cached]
    take = read_take_latents(cached[0])
    assert take.latents.shape == (48, 3, 2, 4) and take.prompt_embeds.shape == (512, 32)
    res = run(
        [
            *cmd[:-8],
            "--size",
            "64x32",
            "--frames",
            "9",
            "--steps",
            "3",
            "--lora-rank",
            "4",
            "--lora-alpha",
            "4",
        ]
    )
    assert res.returncode == 0, res.stderr
    assert [p.stat().st_mtime_ns for p in sorted((out / "latent_cache").glob("*.safetensors"))] == stamps
