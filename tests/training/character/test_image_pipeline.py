"""`cinerl train character --model-dir` a diffusers image pipeline: a tiny random Stable-Diffusion
style pipeline (UNet2D + AutoencoderKL + CLIP text encoder, built and saved here, nothing from
a hub) trains a character LoRA with the same loop, in the epsilon objective of its DDPM
scheduler or the flow-matching one of a FlowMatch scheduler; the LoRA loads back into the
pipeline exactly."""

from __future__ import annotations

import json

import pytest
import torch

from cinerl.core.media import load_png
from cinerl.training.character.config import CharacterConfig
from cinerl.training.character.run import train
from tests.training.character.test_character_lora import image_folder


def write_tiny_sd(folder, scheduler: str):
    from diffusers import (
        AutoencoderKL,
        DDPMScheduler,
        FlowMatchEulerDiscreteScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    from tests.generation.wan_tiny import make_tokenizer

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=16,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(8, 16),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=16,
        attention_head_dim=4,
        norm_num_groups=4,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=(8, 8),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        latent_channels=4,
        norm_num_groups=4,
    )
    tok = make_tokenizer()
    tok.model_max_length = 12
    text = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tok),
            hidden_size=16,
            intermediate_size=32,
            num_attention_heads=2,
            num_hidden_layers=2,
            max_position_embeddings=12,
        )
    )
    sched = FlowMatchEulerDiscreteScheduler() if scheduler == "flow" else DDPMScheduler()
    StableDiffusionPipeline(
        vae=vae,
        text_encoder=text,
        tokenizer=tok,
        unet=unet,
        scheduler=sched,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    ).save_pretrained(str(folder))
    return folder


def config(model, data, out, **kw) -> CharacterConfig:
    base = dict(
        dataset=str(data),
        name="Mara",
        model_dir=str(model),
        out=str(out),
        steps=8,
        size="32x32",
        lora_rank=4,
        lora_alpha=4,
        learning_rate=3e-2,
        checkpoint_every=8,
    )
    return CharacterConfig(**{**base, **kw})


# each case builds, trains (8 steps), samples and reloads a tiny pipeline: ~6 s of CPU; the
# flow-matching case is heavy to keep the non-heavy suite short
@pytest.mark.parametrize("scheduler", ["ddpm", pytest.param("flow", marks=pytest.mark.heavy)])
def test_an_image_pipeline_trains_in_its_objective_and_the_lora_loads_back(tmp_path, scheduler):
    from diffusers import DiffusionPipeline
    from safetensors.torch import load_file

    model = write_tiny_sd(tmp_path / "sd", scheduler)
    out = tmp_path / "lora"
    sampling = dict(sample_every=8, sample_count=1, sample_steps=2)
    res = train(config(model, image_folder(tmp_path / "imgs"), out, **sampling))
    assert res.steps == 8 and res.eval_loss["end"] < res.eval_loss["start"]
    card = json.loads((out / "character.json").read_text())
    assert card["objective"] == ("epsilon" if scheduler == "ddpm" else "flow")
    assert card["pipeline"] == "StableDiffusionPipeline" and card["trigger"] == "mara person"
    assert load_png(out / "samples" / "step_000008_0.png").shape == (32, 32, 3)  # its scheduler samples
    # diffusers' own loader takes the LoRA back, equal to the last checkpoint's tensors
    pipe = DiffusionPipeline.from_pretrained(str(model), local_files_only=True)
    pipe.load_lora_weights(str(out), adapter_name="mara")
    ckpt = load_file(str(out / "checkpoints" / "step_000008" / "lora.safetensors"))
    seen = 0
    for name, p in pipe.unet.named_parameters():
        if ".lora_" in name:
            assert torch.equal(p.detach(), ckpt["experts.unet." + name.replace(".mara.", ".default.")]), name
            seen += 1
    assert seen == len(ckpt) > 0


def test_an_image_pipeline_refuses_clips_through_the_cli(tmp_path):
    from typer.testing import CliRunner

    from cinerl.apps.cli.app import app

    model = write_tiny_sd(tmp_path / "sd", "ddpm")
    clips = tmp_path / "clips"
    clips.mkdir()
    args = [str(image_folder(tmp_path / "imgs", n=1)), "--name", "Mara", "--model-dir", str(model)]
    args += ["--out", str(tmp_path / "o"), "--clips", str(clips)]
    res = CliRunner().invoke(app, ["train", "character", *args])
    text = " ".join(res.output.split())
    assert res.exit_code == 2 and "--clips needs a video model" in text and "Traceback" not in text, text
