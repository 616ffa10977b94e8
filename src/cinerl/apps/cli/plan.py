"""`cinerl plan`: the LLM-only planning pipeline, saved for `cinerl make --from-plan`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from cinerl.apps.cli.common import (
    config_option,
    err,
    fail,
    llm_base_url_option,
    llm_model_option,
    llm_option,
    progress,
    set_option,
    settings_from,
    setup_logging,
)
from cinerl.core.errors import UserError
from cinerl.core.inputs import check_out_dir, check_prompt, check_scene_count


def plan(
    ctx: typer.Context,
    prompt: str = typer.Argument(..., help="the seed prompt: who, where, what happens"),
    out: Path = typer.Option(..., "--out", "-o", help="plan folder (documents, report, state)"),
    llm__provider: Optional[str] = llm_option(),
    llm__model: Optional[str] = llm_model_option(),
    llm__base_url: Optional[str] = llm_base_url_option(),
    run__seed: Optional[int] = typer.Option(None, "--seed", help="seed for the planner and sampling"),
    plan__scenes: Optional[int] = typer.Option(None, "--scenes", help="force this many scenes"),
    run__shot_mode: Optional[str] = typer.Option(
        None,
        "--mode",
        help="the shot mode the prompts are written for: continuous or keyframes "
        "(keyframes: every scene image-to-video)",
    ),
    sets: Optional[list[str]] = set_option(),
    config: Optional[Path] = config_option(),
    fresh: bool = typer.Option(False, "--fresh", help="start over, replacing a plan in --out"),
    resume: bool = typer.Option(False, "--resume", help="resume a plan in --out without asking"),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Plan only: creative document, scene prompts, critique and revision, saved in --out."""
    setup_logging(verbose)
    try:
        text = check_prompt(prompt)
        check_scene_count(plan__scenes)
        settings, _ = settings_from(config, ctx.params, sets)
        out = check_out_dir(out)  # only now: bad settings leave no empty --out behind
        from cinerl.planning.plan_run import existing_plan, make_plan

        if existing_plan(out) and not fresh and not resume and sys.stdin.isatty():
            fresh = not typer.confirm(f"{out} has a plan in progress. Resume it?", default=True)
        with progress("creative document") as (bar, task):

            def on_step(name: str, done: int, total: int) -> None:
                bar.update(task, description=name, completed=done, total=total)

            report = make_plan(text, out, settings, fresh=fresh, on_step=on_step)
    except UserError as e:
        fail(str(e))
    typer.echo(f"plan:    {out / report['files']['creative_document']} ('{report['title']}')")
    typer.echo(f"prompts: {out / report['files']['scene_prompts']}")
    typer.echo(
        f"report:  {out / 'plan_report.json'} ({report['provider']} {report['model']}, "
        f"{report['calls']} calls, {report['cache_hits']} from cache, "
        f"{report['prompt_tokens'] + report['completion_tokens']} tokens)"
    )
    if report["warnings"]:  # each reason was logged once as it happened; here only the count
        err.print(
            f"[yellow]warning:[/] {len(report['warnings'])} LLM steps fell back to the offline "
            "planner (plan_report.json says why)",
            highlight=False,
        )
