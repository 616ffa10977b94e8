"""`cinerl actors`: an actor's 17-image training set from one portrait."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from cinerl.apps.cli.common import err, fail, progress, setup_logging
from cinerl.core.errors import Unavailable, UserError


def actors(
    portrait: Path = typer.Argument(..., help="the actor's portrait (JPEG, PNG, WebP, ...)"),
    actor_type: str = typer.Option(
        ..., "--type", help="human, creature, robotic, anthropomorphic or mythical"
    ),
    sex: Optional[str] = typer.Option(None, "--sex", help="male or female (humans)"),
    out: Path = typer.Option(..., "--out", "-o", help="folder for the images, payloads and grid"),
    batch_size: int = typer.Option(5, "--batch-size", help="images rendered per batch"),
    storage: Optional[str] = typer.Option(None, "--storage", help="also upload to s3://bucket/prefix"),
    width: int = typer.Option(1024, "--width", help="image width; height is 9/16 of it"),
    seed: int = typer.Option(0, "--seed"),
    backend: str = typer.Option(
        "previz",
        "--backend",
        help="previz (portrait-conditioned, CPU) "
        "or diffusers (an image-conditioned pipeline, e.g. FLUX Kontext)",
    ),
    model_path: Optional[Path] = typer.Option(None, "--model-path", help="local diffusers folder"),
    steps: int = typer.Option(28, "--steps", help="diffusion steps (diffusers)"),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Make an actor's 17-image training set (7 photo, 6 b/w, 4 colour) from one portrait."""
    from cinerl.training.character.dataset.actors import generate_actor_dataset
    from cinerl.training.character.dataset.prompts import TOTAL

    setup_logging(verbose)
    try:
        with progress("actor images", total=TOTAL) as (bar, task):
            result = generate_actor_dataset(
                portrait,
                actor_type,
                out,
                actor_sex=sex,
                batch_size=batch_size,
                storage=storage,
                width=width,
                seed=seed,
                backend=backend,
                model_path=str(model_path) if model_path else None,
                steps=steps,
                on_image=lambda p, ok: bar.advance(task),
            )
    except (UserError, Unavailable) as e:
        fail(str(e))
    for location in result.image_locations:
        typer.echo(location)
    typer.echo(
        f"generated {result.generated}/{result.target} images; grid: {result.grid}; "
        f"result: {result.result_path}"
    )
    for f in result.failures:
        err.print(f"image {f['index']} ({f['style']}) failed: {f['error']}", highlight=False)
    for f in result.upload_failures:
        err.print(f"upload failed, kept locally: {f['file']}", highlight=False)
    raise typer.Exit(0 if result.generated == result.target and not result.upload_failures else 1)
