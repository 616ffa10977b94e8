"""`cinerl train ...`: the training half. One subcommand per trainer, each a thin wrapper that
builds its trainer's Config from flags (and `--config FILE`) and calls its `train(config)`.

Trainers live in `cinerl.training` (video/, enhancer/, character/); this module only parses."""

from __future__ import annotations

import typer

from cinerl.apps.cli.common import OneLineErrors

train_app = typer.Typer(
    cls=OneLineErrors,
    no_args_is_help=True,
    help="Train CineRL's models on its own films: video preference LoRAs, the prompt enhancer.",
)

# the video preference trainer (issue 21): `cinerl train pairs`, `cinerl train video-dpo`
from cinerl.apps.cli.train_video import pairs, video_dpo  # noqa: E402

train_app.command("pairs")(pairs)
train_app.command("video-dpo")(video_dpo)

# online Flow-GRPO of the video LoRA (issue 22): `cinerl train video-grpo`
from cinerl.apps.cli.train_video_grpo import video_grpo  # noqa: E402

train_app.command("video-grpo")(video_grpo)

# the prompt enhancer (issue 14): `cinerl train enhancer sft | grpo | eval`
from cinerl.apps.cli.train_enhancer import enhancer_app  # noqa: E402

train_app.add_typer(enhancer_app, name="enhancer")

# the character LoRA (issue 15): `cinerl train character DATASET_DIR --name NAME ...`
from cinerl.apps.cli.train_character import character  # noqa: E402

train_app.command("character")(character)
