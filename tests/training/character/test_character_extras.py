"""The character trainer's extras on a tiny random Wan2.2: sample images every N steps (fixed
prompts with the trigger, fixed seeds) and `--clips` mixed in at `--clip-ratio`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cinerl.core.errors import UserError
from cinerl.core.media import load_png, write_mp4
from cinerl.training.character.data import read_clips
from cinerl.training.character.samples import sample_prompts
from cinerl.training.character.trainer import train
from tests.training.character.test_character_lora import config, image_folder


def clip_folder(folder, n=2):
    """n 9-frame clips of a bright square moving right, one with a caption beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(n):
        frames = np.zeros((9, 64, 64, 3), np.uint8)
        for f in range(9):
            frames[f, 20:40, 4 * f + 4 * k : 4 * f + 4 * k + 20] = (230, 120 + 40 * k, 40)
        write_mp4(frames, 8, folder / f"clip{k}.mp4")
    (folder / "clip0.txt").write_text("a woman walks to the right")
    return folder


# 8 training steps with 4 sample images (2 denoising steps each) and 2 clips encoded: ~20 s on
# the shared 2 cores, over the non-heavy budget
@pytest.mark.heavy
def test_samples_every_n_steps_at_fixed_seeds_and_clips_mixed_in(model, tmp_path):
    out = tmp_path / "lora"
    cfg = config(
        model,
        image_folder(tmp_path / "imgs"),
        out,
        steps=8,
        checkpoint_every=4,
        sample_every=4,
        sample_count=2,
        sample_steps=2,
        clips=str(clip_folder(tmp_path / "clips")),
        clip_ratio=0.5,
        clip_frames=9,
    )
    res = train(cfg)
    # samples at steps 4 and 8, two prompts each, at the square bucket of the 64x64 area
    names = sorted(p.name for p in (out / "samples").iterdir())
    assert names == ["step_000004_0.png", "step_000004_1.png", "step_000008_0.png", "step_000008_1.png"]
    a4, a8 = load_png(out / "samples" / "step_000004_0.png"), load_png(out / "samples" / "step_000008_0.png")
    assert a4.shape == (64, 64, 3)
    # the LoRA moved between the two samples: same prompt and noise, another image
    assert np.abs(a4.astype(int) - a8.astype(int)).mean() > 0
    assert not np.array_equal(a4, load_png(out / "samples" / "step_000004_1.png"))  # another seed and prompt
    assert sample_prompts("mara person", 2)[0].startswith("a portrait photo of mara person")
    # the training report shows every sample, linked relative to the LoRA folder
    page = (out / "training_report.html").read_text()
    assert "<h2>Samples</h2>" in page
    assert all(f"<img src='samples/{n}'" in page for n in names)
    # clips were trained on, in about the ratio asked, and counted in the card
    picked = [m["clip"] for m in res.metrics]
    assert 1 <= sum(picked) <= 7, picked
    clip_rows = [m for m in res.metrics if m["clip"]]
    assert {m["image"] for m in clip_rows} <= {"clip0.mp4", "clip1.mp4"}
    card = json.loads((out / "character.json").read_text())
    assert card["clips"] == 2 and "a woman walks to the right" in card["captions"]
    assert "mara person" in card["captions"]  # the uncaptioned clip: the trigger alone
    assert res.eval_loss["end"] < res.eval_loss["start"]


def test_clips_folder_errors_are_one_line(model, tmp_path):
    from typer.testing import CliRunner

    from cinerl.apps.cli.app import app

    with pytest.raises(UserError, match="is not a folder"):
        read_clips(tmp_path / "nope", "mara person")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="holds no clip"):
        read_clips(tmp_path / "empty", "mara person")
    args = [str(image_folder(tmp_path / "imgs", n=1)), "--name", "Mara", "--model-dir", str(model)]
    args += ["--out", str(tmp_path / "o"), "--clips", str(tmp_path / "empty"), "--clip-ratio", "1.5"]
    res = CliRunner().invoke(app, ["train", "character", *args])
    text = " ".join(res.output.split())
    assert res.exit_code == 2 and "--clip-ratio must be in [0, 1]" in text and "Traceback" not in text, text
    res = CliRunner().invoke(app, ["train", "character", *args[:-2]])
    text = " ".join(res.output.split())
    assert res.exit_code == 2 and "holds no clip" in text and "Traceback" not in text, text


def test_a_clip_shorter_than_clip_frames_is_refused(model, tmp_path):
    clips = clip_folder(tmp_path / "clips", n=1)
    cfg = config(
        model, image_folder(tmp_path / "imgs", n=1), tmp_path / "o", clips=str(clips), clip_frames=17
    )
    with pytest.raises(UserError, match="has 9 frames; 17 are needed"):
        train(cfg)
