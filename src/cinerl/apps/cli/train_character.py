"""`cinerl train character DATASET_DIR --name NAME --model-dir WAN --out LORA_DIR`: a character
LoRA of Wan2.2 from one actor's images (training/character/trainer.py). The flags are generated
from `CharacterConfig` (as `video-dpo`'s are from its Config); DATASET_DIR is the one argument."""

from __future__ import annotations

import inspect
from pathlib import Path

import typer

from cinerl.apps.cli.train_video import config_command


def _run(cfg) -> None:
    from cinerl.training.character.run import train

    result = train(cfg)
    if not result.main:
        return
    last = result.metrics[-1] if result.metrics else {}
    typer.echo(f"lora:    {result.out}")
    typer.echo(f"trigger: {result.trigger}")
    typer.echo(f"report:  {result.out / 'training_report.html'}")
    if last:
        typer.echo(
            f"steps:   {result.steps}, loss {last['loss']:.4f}; fixed-noise loss "
            f"{result.eval_loss['start']:.4f} -> {result.eval_loss['end']:.4f}"
        )
    typer.echo(f"use it:  cinerl make ... --cast NAME=PORTRAIT,{result.out}")


def _command():
    from cinerl.training.character.config import CharacterConfig

    inner = config_command(
        CharacterConfig,
        "character",
        _run,
        "Train a character LoRA of Wan2.2 on a `cinerl actors` folder or a folder of images "
        "(resumes from --out's last checkpoint).",
        skip=("dataset",),
    )
    sig = inspect.signature(inner)
    dataset = inspect.Parameter(
        "dataset",
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        default=typer.Argument(
            ..., help="a `cinerl actors` output folder or a folder of images (+ .txt captions)"
        ),
        annotation=Path,
    )
    params = [dataset] + [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in sig.parameters.values()]

    def command(dataset: Path, **kw):
        inner(dataset=str(dataset), **kw)

    command.__signature__ = inspect.Signature(params)
    command.__doc__ = inner.__doc__
    command.__name__ = "character"
    return command


character = _command()
