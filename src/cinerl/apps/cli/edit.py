"""`cinerl approve`, `retake`, `choose` and `estimate`: editing a film after `cinerl make`
(runtime/edits.py does the work; scenes and takes are counted from 1)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from cinerl.apps.cli.common import err, fail, progress, setup_logging
from cinerl.core.errors import Unavailable, UserError


def _hooks(bar, task):
    from cinerl.runtime.edits import Hooks

    def on_attempt(rec):
        bar.advance(task)
        line = f"scene {rec.scene + 1} take {rec.attempt + 1}: reward {rec.reward.total:.3f}"
        if err.is_terminal:
            bar.console.print(line, highlight=False)
        else:
            print(line, file=sys.stderr, flush=True)

    return Hooks(on_attempt=on_attempt, on_event=None if err.is_terminal else _log)


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _done(result, summary: dict | None = None) -> None:
    typer.echo(f"film:   {result.film}")
    typer.echo(f"report: {result.report_html}")
    stale = (summary or {}).get("continuity_stale") or []
    if stale:
        typer.echo(
            "continuity stale: scene "
            + ", ".join(map(str, stale))
            + " (the join is a cut; --cascade reshoots)"
        )


def _run_dir(run_dir: Path) -> Path:
    if not (Path(run_dir) / "state.db").is_file():
        fail(f"{run_dir} holds no CineRL run (no state.db)")
    return Path(run_dir)


def approve(
    run_dir: Path = typer.Argument(..., help="a run folder made with `cinerl make --plan-only`"),
    self_contained: bool = typer.Option(False, "--self-contained", help="report.html embeds everything"),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Shoot a plan made with --plan-only; hand edits of story/bible.json are checked and used."""
    setup_logging(verbose)
    run_dir = _run_dir(run_dir)
    from cinerl.runtime.edits import approve as approve_run

    try:
        with progress("shooting") as (bar, task):
            hooks = _hooks(bar, task)
            hooks.on_estimate = lambda lines: [typer.echo(line) for line in lines]
            result = approve_run(run_dir, self_contained=self_contained, hooks=hooks)
    except (UserError, Unavailable) as e:
        fail(str(e))
    _done(result)


def retake(
    run_dir: Path = typer.Argument(..., help="a finished run folder"),
    scene: int = typer.Option(..., "--scene", help="the scene to shoot again, counted from 1"),
    attempts: Optional[int] = typer.Option(
        None, "--attempts", help="how many more takes (default: the run's)"
    ),
    prompt: Optional[str] = typer.Option(None, "--prompt", help="the new takes' base prompt"),
    cascade: bool = typer.Option(False, "--cascade", help="reshoot later scenes whose first frame changed"),
    self_contained: bool = typer.Option(False, "--self-contained", help="report.html embeds everything"),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """More takes of one scene (earlier takes kept), the best chosen, the film re-cut."""
    setup_logging(verbose)
    run_dir = _run_dir(run_dir)
    from cinerl.runtime.edits import retake as retake_run

    try:
        with progress(f"retaking scene {scene}", total=attempts) as (bar, task):
            result, summary = retake_run(
                run_dir,
                scene,
                attempts,
                prompt,
                cascade,
                self_contained=self_contained,
                hooks=_hooks(bar, task),
            )
    except (UserError, Unavailable) as e:
        fail(str(e))
    for number, takes in summary["shot"].items():
        typer.echo(f"scene {number}: takes {', '.join(map(str, takes))}")
    _done(result, summary)


def choose(
    run_dir: Path = typer.Argument(..., help="a finished run folder"),
    scene: int = typer.Option(..., "--scene", help="the scene, counted from 1"),
    attempt: int = typer.Option(..., "--attempt", help="the take to use, counted from 1"),
    self_contained: bool = typer.Option(False, "--self-contained", help="report.html embeds everything"),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Put another take of a scene in the film; the film and the report are re-cut."""
    setup_logging(verbose)
    run_dir = _run_dir(run_dir)
    from cinerl.runtime.edits import choose as choose_run

    try:
        result, summary = choose_run(run_dir, scene, attempt, self_contained=self_contained)
    except (UserError, Unavailable) as e:
        fail(str(e))
    typer.echo(f"scene {scene}: take {summary['previous']} -> {attempt}")
    _done(result, summary)


def estimate(
    ctx: typer.Context,
    prompt: str = typer.Argument(..., help="the seed prompt"),
    plan__scenes: Optional[int] = typer.Option(None, "--scenes", help="force this many scenes"),
    run__attempts: Optional[int] = typer.Option(None, "--attempts", help="attempts per scene"),
    run__max_attempts: Optional[int] = typer.Option(
        None, "--max-attempts", help="most attempts a scene may get"
    ),
    run__consistency_threshold: Optional[float] = typer.Option(None, "--threshold", help="retry threshold"),
    size: Optional[str] = typer.Option(None, help="frame size WIDTHxHEIGHT"),
    run__fps: Optional[int] = typer.Option(None, "--fps", help="frames per second"),
    run__backend: Optional[str] = typer.Option(None, "--backend", help="video backend (previz, wan)"),
    run__seed: Optional[int] = typer.Option(None, "--seed", help="seed for the plan"),
    wan__variant: Optional[str] = typer.Option(None, "--variant", help="wan: ti2v-5b, t2v-a14b, i2v-a14b"),
    wan__steps: Optional[int] = typer.Option(None, "--steps", help="wan: denoising steps"),
    budget: Optional[float] = typer.Option(None, "--budget", help="seconds the takes may spend"),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """What `cinerl make` with these flags would shoot: clips, frames, steps and seconds."""
    from cinerl.apps.cli.common import parse_size, settings_from
    from cinerl.core.inputs import check_prompt, check_scene_count

    setup_logging(verbose)
    try:
        text = check_prompt(prompt)
        check_scene_count(plan__scenes)
        width, height = parse_size(size)
        settings, _ = settings_from(None, ctx.params, None, run__width=width, run__height=height)
        from cinerl.runtime.estimate import estimate_prompt, lines

        est = estimate_prompt(text, settings, budget)
    except (UserError, Unavailable) as e:
        fail(str(e))
    for line in lines(est):
        typer.echo(line)
