"""`cinerl train enhancer sft | grpo | dpo | eval`: the prompt enhancer's trainers, its evaluation,
and `enhance_cmd`, the command `cinerl enhance PROMPT --enhancer DIR` (for apps/cli/app.py to register).

`sft`, `grpo` and `dpo` get one flag per field of their Config (training/enhancer/), so
the CLI and the Config cannot drift; the trainers' shared flags are fields there: `--steps N`
(TRL's max_steps), `--out`, `--seed`, `--resume`, and `--config FILE` (a TOML of the fields,
flat or under [enhancer_sft] / [enhancer_grpo] / [enhancer_dpo]). `eval` prints the table of the
enhancer against its base model and `--json` writes it. Bad input (a missing model, an empty
data file, a row without `completion`) ends in one line and exit code 2.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from cinerl.apps.cli.common import OneLineErrors, fail, setup_logging
from cinerl.apps.cli.train_video import config_command, config_from
from cinerl.core.errors import Unavailable, UserError

enhancer_app = typer.Typer(
    cls=OneLineErrors,
    no_args_is_help=True,
    help="The prompt enhancer: an LLM that writes video prompts (SFT, then GRPO on scored clips).",
)


def _run_sft(cfg) -> None:
    from cinerl.training.enhancer.config import read_metrics
    from cinerl.training.enhancer.sft import train

    out = train(cfg)
    losses = [m["loss"] for m in read_metrics(out / "metrics.jsonl") if m.get("loss") is not None]
    typer.echo(f"enhancer: {out}")
    if losses:
        typer.echo(f"steps: {len(losses)}, loss {losses[0]:.4f} -> {losses[-1]:.4f}")


def _run_grpo(cfg) -> None:
    from cinerl.training.enhancer.config import read_metrics
    from cinerl.training.enhancer.grpo import train

    out = train(cfg)
    rewards = [m["reward"] for m in read_metrics(out / "metrics.jsonl") if m.get("reward") is not None]
    typer.echo(f"enhancer: {out}")
    if rewards:
        typer.echo(f"steps: {len(rewards)}, mean reward {rewards[0]:.4f} -> {rewards[-1]:.4f}")


def _sft_command():
    from cinerl.training.enhancer.sft import EnhancerSFTConfig

    return config_command(
        EnhancerSFTConfig,
        "enhancer_sft",
        _run_sft,
        "Fine-tune a LoRA prompt enhancer on {prompt, completion} pairs (default: the shipped starter "
        "set) with TRL's SFTTrainer.",
        skip=("system",),
    )


def _grpo_command():
    from cinerl.training.enhancer.grpo import EnhancerGRPOConfig

    return config_command(
        EnhancerGRPOConfig,
        "enhancer_grpo",
        _run_grpo,
        "Train the enhancer with TRL's GRPOTrainer: each completion is rendered (--backend) and scored "
        "by the reward suite against a bible planned from its simple prompt.",
        skip=("system",),
    )


def _run_dpo(cfg) -> None:
    from cinerl.training.enhancer.config import read_metrics
    from cinerl.training.enhancer.dpo import train

    out = train(cfg)
    losses = [m["loss"] for m in read_metrics(out / "metrics.jsonl") if m.get("loss") is not None]
    typer.echo(f"enhancer: {out}")
    if losses:
        typer.echo(f"steps: {len(losses)}, loss {losses[0]:.4f} -> {losses[-1]:.4f}")


def _dpo_command():
    from cinerl.training.enhancer.dpo import EnhancerDPOConfig

    return config_command(
        EnhancerDPOConfig,
        "enhancer_dpo",
        _run_dpo,
        "Train the enhancer on ranked pairs of takes ({prompt, chosen, rejected}) with TRL's DPOTrainer.",
    )


enhancer_app.command("sft")(_sft_command())
enhancer_app.command("grpo")(_grpo_command())
enhancer_app.command("dpo")(_dpo_command())


def eval_table(result: dict) -> Table:
    table = Table(title=f"enhancer eval: {result['enhancer_dir']}")
    for col in ("model", "mean reward", "clip", "format", "win rate"):
        table.add_column(col, justify="right" if col != "model" else "left")
    for key in ("base", "enhancer"):
        r = result[key]
        clip = "-" if r["mean_clip"] is None else f"{r['mean_clip']:.4f}"
        win = f"{result['win_rate']:.2f}" if key == "enhancer" else ""
        table.add_row(r["model"], f"{r['mean_reward']:.4f}", clip, f"{r['mean_format']:.4f}", win)
    return table


@enhancer_app.command("eval")
def eval_cmd(
    enhancer: Path = typer.Option(..., "--enhancer", help="the trained enhancer folder"),
    prompts: Path = typer.Option(..., "--prompts", help="simple prompts: JSONL with `prompt`, or one a line"),
    json_path: Optional[Path] = typer.Option(
        None, "--json", help="write the table as JSON (keys base, enhancer)"
    ),
    samples: Optional[int] = typer.Option(None, "--samples", help="completions per prompt and model"),
    max_new_tokens: Optional[int] = typer.Option(None, "--max-new-tokens", help="tokens per completion"),
    mode: Optional[str] = typer.Option(None, "--mode", help="t2v or i2v"),
    backend: Optional[str] = typer.Option(None, "--backend", help="video backend (previz on a CPU)"),
    seed: Optional[int] = typer.Option(None, "--seed", help="seed of sampling, rendering and planning"),
    config: Optional[Path] = typer.Option(
        None, "--config", help="TOML of the fields (flat or under [enhancer_eval])"
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Render and score the enhancer's prompts against its base model's on the same prompts and seeds."""
    from cinerl.training.enhancer.evaluate import EnhancerEvalConfig, evaluate

    setup_logging(verbose)
    flags = dict(
        enhancer=str(enhancer),
        prompts=str(prompts),
        samples=samples,
        max_new_tokens=max_new_tokens,
        mode=mode,
        backend=backend,
        seed=seed,
    )
    try:
        cfg = config_from(EnhancerEvalConfig, config, flags, "enhancer_eval")
        result = evaluate(cfg)
    except (UserError, Unavailable) as e:
        fail(str(e))
    Console().print(eval_table(result))
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(
            json.dumps({**result, "config": dataclasses.asdict(cfg)}, indent=2, default=str), encoding="utf-8"
        )
        typer.echo(f"json: {json_path}")


def enhance_cmd(
    prompt: str = typer.Argument(..., help="the simple prompt"),
    enhancer: Path = typer.Option(..., "--enhancer", help="the trained enhancer folder"),
    mode: str = typer.Option("t2v", "--mode", help="t2v (60-200 words) or i2v (20-90 words)"),
    seed: int = typer.Option(0, "--seed", help="seed of planning and sampling"),
    max_new_tokens: int = typer.Option(256, "--max-new-tokens", help="tokens of the answer"),
    temperature: float = typer.Option(0.0, "--temperature", help="0: greedy"),
    show_brief: bool = typer.Option(False, "--brief", help="also print the brief the enhancer was given"),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Print the detailed video prompt a trained enhancer writes for a simple prompt (cached)."""
    from cinerl.core.inputs import check_prompt
    from cinerl.training.enhancer.enhance import enhance

    setup_logging(verbose)
    try:
        if mode not in ("t2v", "i2v"):
            raise UserError(f"--mode must be t2v or i2v (got {mode!r})")
        result = enhance(check_prompt(prompt), enhancer, mode, seed, max_new_tokens, temperature)  # type: ignore[arg-type]
    except (UserError, Unavailable) as e:
        fail(str(e))
    if show_brief:
        typer.echo(f"brief: {result['brief']}")
    typer.echo(result["prompt"])
