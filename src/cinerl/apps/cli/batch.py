"""`cinerl batch PROMPTS.txt --out DIR`: many films, one folder each, and a summary table."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cinerl.apps.cli.common import (
    config_option,
    err,
    executor_option,
    fail,
    parse_size,
    progress,
    ray_address_option,
    set_option,
    settings_from,
    setup_logging,
    workers_option,
)
from cinerl.core.errors import Unavailable, UserError
from cinerl.core.inputs import check_scene_count


def batch(
    ctx: typer.Context,
    prompts: Path = typer.Argument(..., help="text file: one seed prompt a line ('#' starts a comment)"),
    out: str = typer.Option(..., "--out", "-o", help="batch folder: one run folder per film, batch.json"),
    executor__kind: Optional[str] = executor_option(),
    executor__address: Optional[str] = ray_address_option(),
    executor__workers: Optional[int] = workers_option(),
    run__seed: Optional[int] = typer.Option(None, "--seed", help="seed of every film"),
    plan__scenes: Optional[int] = typer.Option(None, "--scenes", help="force this many scenes"),
    run__attempts: Optional[int] = typer.Option(None, "--attempts", help="attempts per scene"),
    run__max_attempts: Optional[int] = typer.Option(
        None, "--max-attempts", help="most attempts a scene may get"
    ),
    size: Optional[str] = typer.Option(None, help="frame size WIDTHxHEIGHT, default 640x360"),
    run__fps: Optional[int] = typer.Option(None, "--fps", help="frames per second, default 24"),
    run__backend: Optional[str] = typer.Option(None, "--backend", help="video backend (previz, wan)"),
    policy__path: Optional[Path] = typer.Option(
        None, "--policy", help="the policy every film starts from (default ~/.cinerl/policy/<backend>.pt)"
    ),
    policy__mode: Optional[str] = typer.Option(
        None, "--policy-mode", help="learn, frozen, random or template"
    ),
    sets: Optional[list[str]] = set_option(),
    config: Optional[Path] = config_option(),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Make a film of every prompt in a file, one folder each; rerun to resume (finished films
    are not shot again). Every film starts from the same policy and learns into its own file
    (DIR/policies), so the shared policy file is left as it was."""
    setup_logging(verbose)
    try:
        check_scene_count(plan__scenes)
        width, height = parse_size(size)
        settings, source = settings_from(config, ctx.params, sets, run__width=width, run__height=height)
        from cinerl.generation.registry import preflight
        from cinerl.executor import preflight as check_executor
        from cinerl.runtime.batch import read_prompts, run_batch

        settings = preflight(settings, source)
        check_executor(settings.executor)
        total = len(read_prompts(prompts))  # a bad file: one line, before any folder is made
        with progress("films", total=total) as (bar, task):

            def on_film(row: dict) -> None:
                bar.advance(task)
                line = f"film {row['film']}/{total} {row['folder']}: {row['status']}"
                if row.get("reward") is not None:
                    line += f", reward {row['reward']:.3f}"
                if err.is_terminal:
                    bar.console.print(line, highlight=False)
                else:
                    err.print(line, highlight=False, soft_wrap=True)

            rows = run_batch(prompts, Path(out), settings, on_film=on_film)
    except (UserError, Unavailable) as e:
        fail(str(e))
    table = Table(title=escape(f"{out}/batch.json"), title_justify="left")
    for col in ("film", "folder", "status", "reward", "seconds"):
        table.add_column(col, overflow="fold")
    for r in rows:
        reward = "-" if r.get("reward") is None else f"{r['reward']:.3f}"
        seconds = "-" if r.get("seconds") is None else f"{r['seconds']:.1f}"
        status = r["status"] + (" (earlier)" if r.get("earlier") else "")
        table.add_row(str(r["film"]), escape(r["folder"]), status, reward, seconds)
    Console().print(table)
    failed = [r for r in rows if r["status"] != "done"]
    for r in failed:
        err.print(f"film {r['film']} failed: {escape(r.get('error', ''))}", highlight=False, soft_wrap=True)
    raise typer.Exit(1 if failed else 0)
