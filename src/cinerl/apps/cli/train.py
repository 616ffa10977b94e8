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
