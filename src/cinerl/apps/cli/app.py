"""The `cinerl` command: one Typer app, one module per command group. Thin: each command parses
flags, builds Settings and calls the library; the library never imports this package."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cinerl.apps.cli.actors import actors
from cinerl.apps.cli.cast import cast
from cinerl.apps.cli.batch import batch
from cinerl.apps.cli.edit import approve, choose, estimate, retake
from cinerl.apps.cli.ui import ui
from cinerl.apps.cli.common import OneLineErrors, config_option, fail, set_option, settings_from
from cinerl.apps.cli.make import make
from cinerl.apps.cli.plan import plan
from cinerl.apps.cli.rapo import rapo_app, sspo
from cinerl.apps.cli.score import score
from cinerl.apps.cli.train import train_app
from cinerl.apps.cli.train_enhancer import enhance_cmd
from cinerl.core.errors import UserError
from cinerl.core.inputs import check_out_dir
from cinerl.core.settings import MAX_SEED

app = typer.Typer(
    cls=OneLineErrors,
    add_completion=False,
    no_args_is_help=True,
    help="CineRL: one prompt to a coherent multi-scene film.",
)
app.command()(make)
app.command()(batch)  # many films, one folder each: runtime/batch.py
app.command()(plan)
app.command()(actors)
app.command()(cast)  # a portrait -> actor set -> character LoRA -> `make --cast` (issue 15)
app.command()(score)
app.command()(approve)  # editing a film: runtime/edits.py
app.command()(retake)
app.command()(choose)
app.command()(estimate)
app.command()(ui)  # the workbench: apps/web
app.add_typer(rapo_app, name="rapo")  # RAPO++: `cinerl rapo PROMPT | build | export`
app.command("sspo")(sspo)
app.command("enhance")(enhance_cmd)  # `cinerl enhance PROMPT --enhancer DIR`
app.add_typer(train_app, name="train")  # `cinerl train video-dpo | pairs | enhancer-sft ...`


@app.command("config")
def show_config(
    sets: Optional[list[str]] = set_option(),
    config: Optional[Path] = config_option(),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Print every effective setting, group by group, with where it came from and the
    environment variables that set it; then what each reward component needs."""
    from cinerl.core.settings import settings_table
    from cinerl.rewards import component_needs

    try:
        settings, source = settings_from(config, sets=sets)
    except UserError as e:
        fail(str(e))
    rows = settings_table(settings, source)
    needs = component_needs(settings.rewards)
    if as_json:
        typer.echo(json.dumps({"settings": rows, "reward_components": needs}, indent=2))
        return
    out = Console()
    for group in dict.fromkeys(r["group"] for r in rows):
        table = Table(title=escape(f"[{group}]"), title_justify="left")
        for col in ("setting", "value", "source", "environment"):
            table.add_column(col, overflow="fold")
        for r in rows:
            if r["group"] == group:
                table.add_row(r["setting"].split(".", 1)[1], str(r["value"]), r["source"], " ".join(r["env"]))
        out.print(table)
    table = Table(title="reward components", title_justify="left")
    for col in ("component", "group", "needs", "status"):
        table.add_column(col, overflow="fold")
    for n in needs:
        table.add_row(
            n["name"],
            n["group"],
            " ".join(n["requires"]) or "-",
            "ready" if n["configured"] else "unavailable: set " + " ".join(n["missing"]),
        )
    out.print(table)


@app.command()
def smoke(
    out: Path = typer.Option(
        Path("smoke_report.json"), "--out", "-o", help="JSON report path (or a folder to write it in)"
    ),
    seed: int = typer.Option(0),
) -> None:
    """Check planner, policy update and run store quickly; exit 1 if any check fails."""
    from cinerl.runtime.smoke import run_smoke

    try:
        if not 0 <= seed <= MAX_SEED:
            raise UserError(f"--seed must be between 0 and {MAX_SEED} (got {seed})")
        if out.is_dir():  # a folder: the report goes inside it
            out = out / "smoke_report.json"
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
