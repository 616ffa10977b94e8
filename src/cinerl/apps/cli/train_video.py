"""`cinerl train pairs` and `cinerl train video-dpo`: the video preference data and its trainer.

`video-dpo`'s flags are generated from `VideoDPOConfig` (one flag per field, its help the field's
help), so the CLI and the Config cannot drift; `--config FILE` reads a TOML of the same fields
(flat, or under a [video_dpo] table) and flags override it. `config_command` does this for any
trainer Config dataclass.
"""

from __future__ import annotations

import dataclasses
import inspect
import tomllib
import typing
from pathlib import Path
from typing import Optional

import typer

from cinerl.apps.cli.common import fail, setup_logging
from cinerl.core.errors import Unavailable, UserError


# ---- a command from a Config dataclass --------------------------------------------------------
def _type_of(f: dataclasses.Field, hints: dict) -> type:
    t = hints[f.name]
    if typing.get_origin(t) is typing.Union:
        t = next(a for a in typing.get_args(t) if a is not type(None))
    return t


def config_from(cls, file: Path | None, flags: dict, table: str) -> object:
    """defaults < --config FILE (TOML: flat keys or a [table]) < flags given."""
    values: dict = {}
    names = {f.name for f in dataclasses.fields(cls)}
    if file is not None:
        try:
            data = tomllib.loads(Path(file).expanduser().read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserError(f"config file {file} does not exist") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise UserError(f"config file {file} is not valid TOML: {e}") from None
        inner = data.pop(table, {})
        if not isinstance(inner, dict):
            raise UserError(f"config file {file}: [{table}] must be a table")
        data = {**data, **inner}
        unknown = sorted(k for k in data if k.replace("-", "_") not in names)
        if unknown:
            raise UserError(f"config file {file} has unknown keys: {', '.join(unknown)}")
        values.update({k.replace("-", "_"): v for k, v in data.items()})
    values.update({k: v for k, v in flags.items() if v is not None})
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in values:
            t = _type_of(f, hints)
            try:
                v = values[f.name]
                values[f.name] = str(v) if t is str else (t(v) if t in (int, float) else v)
            except (TypeError, ValueError):
                raise UserError(f"{f.name}: expected {t.__name__}, got {values[f.name]!r}") from None
    return cls(**values)


def config_command(cls, table: str, run, doc: str, skip: tuple[str, ...] = ()):
    """A typer command with one option per field of `cls`, plus --config and --verbose; it
    builds the Config and calls `run(config)` (UserError and Unavailable: one line, exit 2)."""
    hints = typing.get_type_hints(cls)
    params = []
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        t = _type_of(f, hints)
        flag = "--" + f.name.replace("_", "-")
        decl = f"{flag}/--no-{flag[2:]}" if t is bool else flag
        default = f.default if f.default is not dataclasses.MISSING else None
        shown = f" (default {default})" if default not in ("", None) and t is not bool else ""
        opt = typer.Option(None, decl, help=f.metadata.get("help", "") + shown, show_default=False)
        params.append(
            inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=opt, annotation=Optional[t])
        )
    params.append(
        inspect.Parameter(
            "config",
            inspect.Parameter.KEYWORD_ONLY,
            default=typer.Option(None, "--config", help=f"TOML of the fields (flat or under [{table}])"),
            annotation=Optional[Path],
        )
    )
    params.append(
        inspect.Parameter(
            "verbose",
            inspect.Parameter.KEYWORD_ONLY,
            default=typer.Option(False, "--verbose", "-v"),
            annotation=bool,
        )
    )

    def command(**kw):
        setup_logging(kw.pop("verbose"))
        file = kw.pop("config")
        try:
            run(config_from(cls, file, kw, table))
        except (UserError, Unavailable) as e:
            fail(str(e))

    command.__signature__ = inspect.Signature(params)
    command.__doc__ = doc
    command.__name__ = table
    return command


# ---- cinerl train video-dpo ---------------------------------------------------------------------
def _run_video_dpo(cfg) -> None:
    from cinerl.training.video.dpo import train

    result = train(cfg)
    if not result.main:
        return
    last = result.metrics[-1] if result.metrics else {}
    typer.echo(f"lora:   {result.lora_dir}")
    typer.echo(f"report: {result.out / 'training_report.html'}")
    if last:
        typer.echo(
            f"steps:  {result.steps}, loss {last['loss']:.4f}, accuracy {last['accuracy']:.2f}, "
            f"margin {last['margin']:.4f}"
        )
    if result.evaluations:
        ev = result.evaluations[-1]
        scored = sorted(k[5:] for k in ev if k.startswith("eval/"))
        typer.echo(
            f"eval:   step {ev['step']}, LoRA / untrained: "
            + ", ".join(f"{k} {ev['eval/' + k]:.3f}/{ev.get('base/' + k, float('nan')):.3f}" for k in scored)
        )
    if result.curriculum:
        c = result.curriculum
        typer.echo(
            f"curriculum: {c['status']} at {c['stages'][c['index']]} frames {c.get('reason', '')}".rstrip()
        )
    if result.skipped:
        typer.echo(f"pairs left out: {len(result.skipped)} (see the report)")


def _video_dpo_command():
    from cinerl.training.video.config import VideoDPOConfig

    return config_command(
        VideoDPOConfig,
        "video_dpo",
        _run_video_dpo,
        "Flow-DPO LoRA training of Wan2.2 on preference pairs of takes (resumes from --out's last "
        "checkpoint; a different config in the same --out is refused).",
    )


video_dpo = _video_dpo_command()


# ---- cinerl train pairs ---------------------------------------------------------------------------
def pairs(
    runs: list[Path] = typer.Option(
        ...,
        "--from",
        help="run folders (or folders of runs), a VideoDPO folder (pair.json) or a {prompt, chosen, "
        "rejected} JSONL; more may follow the first",
    ),
    more: Optional[list[Path]] = typer.Argument(None, help="more sources after --from", show_default=False),
    out: Path = typer.Option(..., "--out", "-o", help="pairs JSONL to write"),
    min_margin: float = typer.Option(0.05, "--min-margin", help="least reward difference of a pair"),
    kind: str = typer.Option("video", "--kind", help="video (Flow-DPO pairs) or prompts (enhancer pairs)"),
    mode: str = typer.Option("best-worst", "--pairs-mode", help="best-worst per scene, or all ordered pairs"),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Preference pairs from CineRL runs (best vs worst take of each scene) or imported sets."""
    setup_logging(verbose)
    sources = [*runs, *(more or [])]
    try:
        if not str(out).strip():
            raise UserError("--out is empty: name the pairs file")
        if min_margin < 0:
            raise UserError(f"--min-margin must not be negative (got {min_margin})")
        if kind == "prompts":
            try:
                from cinerl.training.datasets.prompt_pairs import write_enhancer_pairs
            except ImportError:
                raise UserError(
                    "--kind prompts is not available yet: the prompt-enhancer pairs are not in this version"
                ) from None
            counts = write_enhancer_pairs(sources, out, min_margin)
        elif kind == "video":
            counts = video_pairs(sources, out, min_margin, mode)
        else:
            raise UserError(f"--kind must be video or prompts (got {kind!r})")
    except (UserError, Unavailable) as e:
        fail(str(e))
    typer.echo(f"pairs: {out}")
    typer.echo(", ".join(f"{k} {v}" for k, v in counts.items()))


def video_pairs(sources: list[Path], out: Path, min_margin: float, mode: str) -> dict[str, int]:
    from cinerl.core.inputs import check_out_dir
    from cinerl.training.datasets import video_pairs as vp

    if out.is_dir():
        raise UserError(f"--out {out} is a folder; name the pairs file (e.g. {out / 'pairs.jsonl'})")
    check_out_dir(out.parent if str(out.parent) else Path("."))
    runs, rows = [], []
    for s in sources:
        s = Path(s).expanduser()
        if s.is_dir() and (s / "pair.json").is_file():
            rows.extend(vp.import_videodpo(s))
        elif s.is_file() and s.suffix == ".jsonl":
            rows.extend(vp.import_plain(s))
        else:
            runs.append(s)
    counts = {"imported": len(rows)} if rows else {}
    if runs:
        folders = vp.find_runs(runs)
        for r in folders:
            rows.extend(vp.pairs_from_run(r, min_margin, mode))
        counts["runs"] = len(folders)
    if not rows:
        raise UserError(
            f"no pair with a margin of at least {min_margin}: shoot more takes per scene (--attempts) "
            "or lower --min-margin"
        )
    vp.write_pairs(rows, out)
    counts["pairs"] = len(rows)
    counts["with_latents"] = sum(
        r.chosen.endswith(vp.LATENTS_SUFFIX) and r.rejected.endswith(vp.LATENTS_SUFFIX) for r in rows
    )
    return counts
