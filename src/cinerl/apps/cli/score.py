"""`cinerl score`: one video through the reward suite, every component's value and status."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from cinerl.apps.cli.common import config_option, fail, set_option, settings_from
from cinerl.core.errors import UserError


def score(
    video: Path = typer.Argument(..., help="an MP4 (or any video PyAV can read)"),
    prompt: Optional[str] = typer.Option(None, help="the prompt the video was made from"),
    bible: Optional[Path] = typer.Option(None, help="story bible JSON (DIR/story/bible.json)"),
    scene: Optional[int] = typer.Option(None, help="scene index in the bible (default 0)"),
    sets: Optional[list[str]] = set_option(),
    config: Optional[Path] = config_option(),
    as_json: bool = typer.Option(False, "--json", help="print the breakdown as JSON"),
) -> None:
    """Score one video with the reward suite: every component, its value and status."""
    from cinerl.rewards.score_video import detail, score_video

    try:
        settings, _ = settings_from(config, sets=sets)
        breakdown, used = score_video(video, prompt, bible, scene, config=settings.rewards)
    except UserError as e:
        fail(str(e))
    if as_json:
        typer.echo(breakdown.model_dump_json(indent=2))
        return
    out = Console()
    table = Table(title=f"{video.name}: reward {breakdown.total:.3f}", caption="; ".join(used))
    for col in ("component", "group", "status", "value", "detail"):
        table.add_column(col, overflow="fold")
    colours = {"ok": "green", "unavailable": "yellow", "not_applicable": "dim"}
    for c in breakdown.components.values():
        table.add_row(
            c.name,
            c.group,
            f"[{colours.get(c.status, 'white')}]{c.status}[/]",
            "" if c.value is None else f"{c.value:.3f}",
            detail(c),
        )
    out.print(table)
    groups = Table(title="groups")
    for col in ("group", "score", "weight"):
        groups.add_column(col)
    for g, v in breakdown.groups.items():
        w = breakdown.weights.get(g)
        groups.add_row(g, "-" if v is None else f"{v:.3f}", "dropped" if w is None else f"{w:.3f}")
    out.print(groups)
    out.print(f"total {breakdown.total:.3f} in {breakdown.seconds:.2f} s", highlight=False)
