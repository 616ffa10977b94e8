"""The `cinerl` command. Thin: it parses flags, builds Settings and calls the library."""

from __future__ import annotations

import json
import logging
import re
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cinerl.config import Settings, load_settings
from cinerl.generation.base import BackendUnavailable
from cinerl.inputs import UserError, check_out_dir, check_prompt, check_scene_count

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="CineRL: one prompt to a coherent multi-scene film.")
err = Console(stderr=True)


def fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(2)


def parse_size(size: str | None) -> tuple[int | None, int | None]:
    if size is None:
        return None, None
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", size)
    if not m:
        raise UserError(f"--size must look like 640x360 (got {size!r})")
    return int(m.group(1)), int(m.group(2))


def settings_from(config: Path | None, **flags) -> tuple[Settings, dict[str, str]]:
    return load_settings(config, {k: v for k, v in flags.items() if v is not None})


@app.command()
def make(
    prompt: str = typer.Argument(..., help="the seed prompt: who, where, what happens"),
    out: Path = typer.Option(..., "--out", "-o", help="run folder (film, report, state)"),
    seed: Optional[int] = typer.Option(None, help="seed for plan, render and policy sampling"),
    scenes: Optional[int] = typer.Option(None, help="force this many scenes"),
    attempts: Optional[int] = typer.Option(None, help="attempts per scene"),
    max_attempts: Optional[int] = typer.Option(None, help="most attempts a scene may get"),
    threshold: Optional[float] = typer.Option(
        None, help="consistency threshold: retry a scene while its best reward is under it"),
    size: Optional[str] = typer.Option(None, help="frame size WIDTHxHEIGHT, default 640x360"),
    fps: Optional[int] = typer.Option(None, help="frames per second, default 24"),
    backend: Optional[str] = typer.Option(None, help="video backend (previz)"),
    rl: Optional[str] = typer.Option(None, help="ppo or grpo"),
    policy: Optional[Path] = typer.Option(None, help="policy file (default ~/.cinerl/policy/<backend>.pt)"),
    policy_mode: Optional[str] = typer.Option(None, help="learn, frozen or random"),
    transition: Optional[str] = typer.Option(None, help="cut or crossfade"),
    weight_visual: Optional[float] = typer.Option(None, help="reward weight: visual quality"),
    weight_character: Optional[float] = typer.Option(None, help="reward weight: character consistency"),
    weight_location: Optional[float] = typer.Option(None, help="reward weight: location consistency"),
    weight_narrative: Optional[float] = typer.Option(None, help="reward weight: narrative coherence"),
    config: Optional[Path] = typer.Option(None, help="TOML settings file"),
    fresh: bool = typer.Option(False, "--fresh", help="start over, replacing a run in --out"),
    resume: bool = typer.Option(False, "--resume", help="resume a run in --out without asking"),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Plan, shoot, score, learn, stitch and report a film from one prompt."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        text = check_prompt(prompt)
        check_scene_count(scenes)
        out = check_out_dir(out)
        width, height = parse_size(size)
        settings, _ = settings_from(
            config, seed=seed, scenes=scenes, attempts=attempts, max_attempts=max_attempts,
            consistency_threshold=threshold, width=width, height=height, fps=fps, backend=backend,
            rl=rl, policy_path=str(policy) if policy else None, policy_mode=policy_mode,
            transition=transition, weight_visual=weight_visual, weight_character=weight_character,
            weight_location=weight_location, weight_narrative=weight_narrative)
        from cinerl.director import existing_run, make_film  # heavy imports after the checks

        if existing_run(out) and not fresh and not resume and sys.stdin.isatty():
            fresh = not typer.confirm(f"{out} has a run in progress. Resume it?", default=True)
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=err, disable=not err.is_terminal) as bar:
            task = bar.add_task("planning", total=None)

            def on_plan(bible):
                bar.update(task, description=f"shooting '{bible.title}'",
                           total=len(bible.scenes) * settings.attempts)

            def on_attempt(rec):
                bar.advance(task)
                if not err.is_terminal:
                    return
                bar.console.print(f"scene {rec.scene + 1} attempt {rec.attempt + 1}: "
                                  f"reward {rec.reward.total:.3f}", highlight=False)

            result = make_film(text, out, settings, fresh=fresh, on_attempt=on_attempt,
                               on_plan=on_plan)
    except (UserError, BackendUnavailable) as e:
        fail(str(e))
    rep = result.report
    totals = [s["attempts"][s["chosen"]]["reward"]["total"] for s in rep["scenes"]]
    typer.echo(f"film:   {result.film}")
    typer.echo(f"report: {result.report_html}")
    typer.echo(f"scenes: {len(totals)}, mean chosen reward {sum(totals) / len(totals):.3f}, "
               f"policy v{rep['policy']['version_start']} -> v{rep['policy']['version_end']}")


@app.command("config")
def show_config(
    config: Optional[Path] = typer.Option(None, help="TOML settings file"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Print the effective settings and where each one came from."""
    try:
        settings, source = load_settings(config)
    except UserError as e:
        fail(str(e))
    values = settings.model_dump(mode="json")
    if as_json:
        typer.echo(json.dumps({k: {"value": v, "source": source[k]} for k, v in values.items()},
                              indent=2))
        return
    table = Table(title="CineRL settings")
    for col in ("setting", "value", "source"):
        table.add_column(col)
    for k, v in values.items():
        table.add_row(k, str(v), source[k])
    Console().print(table)


@app.command()
def smoke(
    out: Path = typer.Option(Path("smoke_report.json"), "--out", "-o", help="JSON report path"),
    seed: int = typer.Option(0),
) -> None:
    """Check planner, policy update and run store quickly; exit 1 if any check fails."""
    from cinerl.smoke import run_smoke

    try:
        check_out_dir(out.parent if out.parent != Path("") else Path("."))
    except UserError as e:
        fail(str(e))
    report = run_smoke(out, seed=seed)
    for c in report["checks"]:
        typer.echo(f"{'ok  ' if c['ok'] else 'FAIL'} {c['check']:<14} {c['seconds']:.2f}s")
    typer.echo(f"report: {out}")
    raise typer.Exit(0 if report["ok"] else 1)


if __name__ == "__main__":  # pragma: no cover
    app()
