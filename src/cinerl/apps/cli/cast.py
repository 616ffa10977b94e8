"""`cinerl cast PORTRAIT --name NAME --out DIR`: the whole casting chain from one portrait: the
actor's 17-image set (`cinerl actors`), the character LoRA when a Wan model folder is configured
(`cinerl train character`), and the `--cast` argument for `cinerl make` (docs/cast.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from cinerl.apps.cli.common import config_option, err, fail, progress, settings_from, setup_logging
from cinerl.core.errors import Unavailable, UserError


def cast(
    ctx: typer.Context,
    portrait: Path = typer.Argument(..., help="the actor's portrait (JPEG, PNG, WebP, ...)"),
    name: str = typer.Option(..., "--name", help="the character the actor plays (name or id in the story)"),
    out: Path = typer.Option(
        ..., "--out", "-o", help="folder for the actor set (actor/) and the LoRA (lora/)"
    ),
    sex: Optional[str] = typer.Option(None, "--sex", help="male or female"),
    wan__model_dir: Optional[Path] = typer.Option(
        None,
        "--model-dir",
        help="local Wan2.2 diffusers folder for the LoRA (else WAN_MODEL_ROOT; none: no LoRA)",
    ),
    trigger: str = typer.Option("", "--trigger", help="trigger phrase; empty: '<name> person'"),
    steps: int = typer.Option(1500, "--steps", help="LoRA training steps"),
    size: str = typer.Option("", "--size", help="LoRA training area WxH (default 512x512)"),
    width: int = typer.Option(768, "--width", help="actor image width; height is 9/16 of it"),
    seed: int = typer.Option(0, "--seed"),
    config: Optional[Path] = config_option(),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """From one portrait to a `--cast` argument: the actor set, the character LoRA, the command."""
    from cinerl.training.character.dataset.actors import generate_actor_dataset
    from cinerl.training.character.dataset.face_crop import find_face
    from cinerl.training.character.dataset.portrait import load_portrait
    from cinerl.training.character.dataset.prompts import TOTAL

    setup_logging(verbose)
    try:
        if not name.strip() or "=" in name or "," in name:
            raise UserError(f"--name {name!r}: give the character's name (no '=' or ',')")
        settings, _ = settings_from(config, ctx.params)
        rgb = load_portrait(portrait).rgb
        if find_face(rgb).method == "centre-crop":
            err.print(
                f"warning: no face found in {portrait}; the set is made from a centre crop and identity "
                "lock will have no face to measure against",
                highlight=False,
            )
        with progress("actor images", total=TOTAL) as (bar, task):
            result = generate_actor_dataset(
                portrait,
                "human",
                out / "actor",
                actor_sex=sex,
                width=width,
                seed=seed,
                on_image=lambda p, ok: bar.advance(task),
            )
        typer.echo(f"actor set: {out / 'actor'} ({result.generated}/{result.target} images)")
        lora = None
        model_dir = settings.wan.model_dir
        if model_dir:
            from cinerl.training.character.config import CharacterConfig
            from cinerl.training.character.run import train

            res = train(
                CharacterConfig(
                    dataset=str(out / "actor"),
                    name=name,
                    model_dir=str(model_dir),
                    out=str(out / "lora"),
                    trigger=trigger,
                    steps=steps,
                    size=size,
                    seed=seed,
                )
            )
            lora = res.out
            typer.echo(f"lora:      {lora} (trigger '{res.trigger}')")
        else:
            typer.echo("lora:      none (no Wan model folder: --model-dir or WAN_MODEL_ROOT)")
    except (UserError, Unavailable) as e:
        fail(str(e))
    arg = f"{name}={Path(portrait).resolve()}" + (f",{Path(lora).resolve()}" if lora else "")
    typer.echo(f"cast with: cinerl make PROMPT --cast '{arg}'")
