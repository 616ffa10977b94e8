"""`cinerl train character` on a tiny random Wan2.2 (CPU, no hub): captions with the trigger, the
loss falls at fixed noise, the LoRA round-trips exactly through the loader `make` uses, resume,
`make --backend wan --cast` with the LoRA; bad input is one line and exit 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from cinerl.apps.cli.app import app
from cinerl.core.errors import UserError
from cinerl.core.media import save_png
from cinerl.training.character.config import CharacterConfig
from cinerl.training.character.data import bucket_size, read_examples, with_trigger
from cinerl.training.character.trainer import train
from tests.fixtures.faces import FACE
from tests.generation.wan_tiny import write_tiny_model


def image_folder(folder, n=2):
    """n images of the packaged portrait, recoloured, each with a caption naming 'a woman'."""
    from cinerl.training.character.data import load_image

    folder.mkdir(parents=True, exist_ok=True)
    face = load_image(FACE)
    for i in range(n):
        save_png(np.ascontiguousarray(np.roll(face, 40 * i, axis=2 if i % 2 else 1)), folder / f"img{i}.png")
        (folder / f"img{i}.txt").write_text(f"a close-up of a woman, photo {i}")
    return folder


def config(model, data, out, **kw) -> CharacterConfig:
    base = dict(
        dataset=str(data),
        name="Mara",
        model_dir=str(model),
        out=str(out),
        steps=6,
        size="64x64",
        lora_rank=4,
        lora_alpha=4,
        learning_rate=1e-2,
        checkpoint_every=3,
    )
    return CharacterConfig(**{**base, **kw})


def test_captions_put_the_trigger_where_the_descriptor_was(tmp_path):
    assert with_trigger("A portrait of the woman by a window.", "woman", "mara person") == (
        "A portrait of the mara person by a window."
    )
    assert with_trigger("a street at night", None, "mara person") == "mara person, a street at night"
    ex = read_examples(image_folder(tmp_path / "imgs"), "mara person")
    assert [e.caption for e in ex] == [
        "mara person, a close-up of a woman, photo 0",
        "mara person, a close-up of a woman, photo 1",
    ]
    assert bucket_size(1920, 1080, (512, 512), 32) == (672, 384)  # 16:9 at about 512x512 pixels
    assert bucket_size(240, 240, (512, 512), 32) == (512, 512)


def test_training_lowers_the_loss_and_the_lora_loads_back_exactly(model, tmp_path):
    from diffusers import WanPipeline

    from cinerl.generation.wan.loading import load_components, make_scheduler, resolve_sources
    from cinerl.generation.wan.lora import LoraSpec, load_lora
    from cinerl.generation.wan.variants import get_variant

    out = tmp_path / "lora"
    res = train(config(model, image_folder(tmp_path / "imgs"), out))
    assert res.steps == 6 and [m["step"] for m in res.metrics] == list(range(1, 7))
    assert res.eval_loss["end"] < res.eval_loss["start"] - 0.01  # fixed noise and timesteps
    card = json.loads((out / "character.json").read_text())
    assert card["trigger"] == "mara person" and card["variant"] == "ti2v-5b" and card["images"] == 2
    assert (out / "metrics.jsonl").read_text().count("\n") == 6
    # the LoRA through the loader `make --lora` / `--cast` uses, against the last checkpoint
    v = get_variant("ti2v-5b")
    comp = load_components(resolve_sources(v, model, env={}), torch.float32, torch.float32, torch.float32)
    pipe = WanPipeline(
        tokenizer=comp.tokenizer,
        text_encoder=comp.text_encoder,
        vae=comp.vae,
        transformer=comp.transformer,
        scheduler=make_scheduler(v),
    )
    info = load_lora(pipe, comp, LoraSpec(out, 1.0), "ti2v-5b")
    assert info["trainer"] == "character" and info["experts"] == ["transformer"]
    ckpt = load_file(str(out / "checkpoints" / "step_000006" / "lora.safetensors"))
    seen = 0
    for name, p in comp.transformer.named_parameters():
        if ".lora_" in name and ".cinerl." in name:
            key = "experts.transformer." + name.replace(".cinerl.", ".default.")
            assert torch.equal(p.detach(), ckpt[key]), name
            seen += 1
    assert seen == len(ckpt) and seen > 0


# three training runs, each encoding its images with the VAE and UMT5 again: ~25 s on 2 cores
@pytest.mark.heavy
def test_running_again_resumes_from_the_last_checkpoint(model, tmp_path):
    data = image_folder(tmp_path / "imgs")
    whole = train(config(model, data, tmp_path / "whole", steps=4, checkpoint_every=2))
    train(config(model, data, tmp_path / "parts", steps=2, checkpoint_every=2))
    res = train(config(model, data, tmp_path / "parts", steps=4, checkpoint_every=2))
    a = load_file(str(tmp_path / "whole" / "pytorch_lora_weights.safetensors"))
    b = load_file(str(tmp_path / "parts" / "pytorch_lora_weights.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [m["step"] for m in res.metrics] == [1, 2, 3, 4] and whole.steps == 4


def test_bad_input_is_one_line_and_exit_2(model, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    with pytest.raises(UserError, match="holds no image"):
        read_examples(empty, "mara person")
    runner = CliRunner()
    cases = [
        (
            [str(empty), "--name", "Mara", "--model-dir", str(model), "--out", str(tmp_path / "o1")],
            "holds no image",
        ),
        (
            [
                str(tmp_path / "nope"),
                "--name",
                "Mara",
                "--model-dir",
                str(model),
                "--out",
                str(tmp_path / "o2"),
            ],
            "is not a folder",
        ),
        ([str(empty), "--model-dir", str(model), "--out", str(tmp_path / "o3")], "--name is required"),
    ]
    for args, message in cases:
        res = runner.invoke(app, ["train", "character", *args])
        text = " ".join(res.output.split())
        assert res.exit_code == 2 and message in text and "Traceback" not in text, text


# a `cinerl actors` set (17 images), a training run, then a whole tiny-Wan film: ~90 s here
@pytest.mark.heavy
def test_an_actors_folder_trains_a_lora_that_make_cast_loads_with_its_trigger(model, tmp_path):
    from cinerl.training.character.dataset.actors import generate_actor_dataset

    actors = tmp_path / "actor"
    generate_actor_dataset(FACE, "human", actors, actor_sex="female", batch_size=4, width=128, seed=7)
    out = tmp_path / "lora"
    res = train(config(model, actors, out, steps=8, checkpoint_every=4))
    assert res.eval_loss["end"] < res.eval_loss["start"]
    card = json.loads((out / "character.json").read_text())
    assert card["images"] == 17 and all("mara person" in c and " woman " not in c for c in card["captions"])
    runner = CliRunner()
    film = tmp_path / "film"
    prompt = "Mara, a woman in a red coat, walks through a quiet canyon at dusk"
    common = ["--policy", str(tmp_path / "p.pt"), "--backend", "wan", "--steps", "2", "--size", "64x32"]
    common += ["--fps", "1", "--scenes", "1", "--attempts", "1", "--max-attempts", "1", "--music", "none"]
    res = runner.invoke(
        app,
        [
            "make",
            prompt,
            "--out",
            str(film),
            "--model-dir",
            str(model),
            *common,
            "--cast",
            f"Mara={FACE},{out}",
        ],
    )
    assert res.exit_code == 0, res.output
    report = json.loads((film / "report.json").read_text())
    take = report["scenes"][0]["attempts"][0]
    assert take["backend_info"]["lora"]["trainer"] == "character"
    assert take["backend_info"]["lora"]["path"] == str(out) and "Mara (mara person)" in take["prompt"]
    assert report["references"]["character:mara"] == "references/cast_mara.png"
    # the same LoRA on another model: one line, exit 2, before anything is written
    other = write_tiny_model("t2v-a14b", tmp_path / "a14b")
    res = runner.invoke(
        app,
        [
            "make",
            prompt,
            "--out",
            str(tmp_path / "film2"),
            "--model-dir",
            str(other),
            "--variant",
            "t2v-a14b",
            *common,
            "--cast",
            f"Mara={FACE},{out}",
        ],
    )
    text = " ".join(res.output.split())
    assert res.exit_code == 2 and "trained for Wan2.2 ti2v-5b" in text and "Traceback" not in text, text
    assert not (tmp_path / "film2").exists() or not any((tmp_path / "film2").iterdir())
