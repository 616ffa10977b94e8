"""What every `cinerl` command shares: the error exit, logging, the progress bar, `--size`,
the LLM option bundle and the step from flags to Settings.

A command names each settings flag's parameter after the setting it sets, with `__` for the dot
(`wan__steps` is `wan.steps`), so there is no table from flags to fields: `flag_overrides` reads
them off the parameters. `--set group.field=value` reaches every other setting.
"""

from __future__ import annotations

import logging
import re
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Optional

import typer
from typer.core import TyperGroup
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from cinerl.core.errors import UserError
from cinerl.core.settings import Settings, load_settings
from cinerl.core.urls import RedactingFilter

err = Console(stderr=True)


def fail(message: str) -> None:
    """One message on stderr and exit code 2: what a user's mistake ends in."""
    # escaped: a message quoting the user's input ("[/]" in a prompt or an id) is text, not markup
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


class OneLineErrors(TyperGroup):
    """The top-level group: click's usage errors (an unknown option, `--seed abc`, a prompt that
    starts with '-') end like every other user error, one line and exit code 2, instead of a
    boxed usage panel; Ctrl-C still ends quietly."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.Abort:
            err.print("Aborted!", highlight=False)
            sys.exit(1)
        except typer.TyperException as e:  # click's usage errors, vendored by typer
            name = " ".join((args or sys.argv[1:])[:1]) or "cinerl"
            err.print(
                f"[bold red]error:[/] {escape(e.format_message())} (see `cinerl {name} --help`)",
                highlight=False,
                soft_wrap=True,
            )
            sys.exit(e.exit_code)
        sys.exit(code if isinstance(code, int) else 0)


def setup_logging(verbose: bool) -> None:
    """Every command's -v: INFO from our modules, else warnings only."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    for handler in logging.getLogger().handlers:  # no password in a URL reaches a log
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


def parse_size(size: str | None) -> tuple[int | None, int | None]:
    if size is None:
        return None, None
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", size)
    if not m:
        raise UserError(f"--size must look like 640x360 (got {size!r})")
    return int(m.group(1)), int(m.group(2))


def parse_sets(pairs: list[str] | None) -> dict[str, str]:
    """`--set wan.steps=4 --set rewards.weights.text_alignment=0.2` -> {dotted: text}."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        key, eq, value = pair.partition("=")
        if not eq or not key.strip():
            raise UserError(f"--set takes group.setting=value (got {pair!r})")
        out[key.strip()] = value.strip()
    return out


def flag_overrides(params: dict[str, Any]) -> dict[str, Any]:
    """The settings a command's flags set: every parameter named group__field that was given."""
    out = {}
    for name, value in params.items():
        if "__" in name and value is not None:
            out[name.replace("__", ".")] = str(value) if isinstance(value, Path) else value
    return out


def settings_from(
    config: Path | None, params: dict[str, Any] | None = None, sets: list[str] | None = None, **dotted: Any
) -> tuple[Settings, dict[str, str]]:
    """Defaults < --config file < environment < --set < flags."""
    overrides = {
        **parse_sets(sets),
        **flag_overrides(params or {}),
        **{k.replace("__", "."): v for k, v in dotted.items() if v is not None},
    }
    return load_settings(config, overrides)


@contextmanager
def progress(description: str, total: int | None = None):
    """A progress bar on a terminal (nothing when stderr is a file or a pipe)."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=not err.is_terminal,
    ) as bar:
        yield bar, bar.add_task(description, total=total)


# the --llm/--model/--llm-base-url bundle, shared by make, plan and rapo
LLM_HELP = "offline, openai (any OpenAI-compatible server), transformers (local folder or .gguf), auto"


def llm_option(default: Optional[str] = None):
    return typer.Option(default, "--llm", help=f"LLM: {LLM_HELP}")


def llm_model_option():
    return typer.Option(None, "--model", help="LLM: model name (openai) or local folder/.gguf (transformers)")


def llm_base_url_option():
    return typer.Option(None, "--llm-base-url", help="LLM: OpenAI-compatible server URL")


def set_option():
    return typer.Option(
        None,
        "--set",
        metavar="GROUP.SETTING=VALUE",
        help="any setting (cinerl config lists them); repeatable",
    )


def config_option():
    return typer.Option(None, "--config", help="TOML settings file ([run], [wan], [rewards]...)")


# where the work runs (executor/), shared by make and batch
def executor_option():
    return typer.Option(None, "--executor", help="local (this process, default) or ray (a pool of actors)")


def ray_address_option():
    return typer.Option(
        None, "--ray-address", help="ray: an existing cluster, auto or HOST:PORT (default: a local one)"
    )


def workers_option():
    return typer.Option(None, "--workers", help="ray: actors in the pool (default: GPUs, else CPUs)")
