"""`cinerl train video-grpo`: online Flow-GRPO LoRA training of Wan2.2 with CineRL's rewards.

The flags are generated from `VideoGRPOConfig` by `config_command` (one flag per field, its help
the field's help; `--config FILE` reads a TOML of the same fields, flat or under [video_grpo])."""

from __future__ import annotations

import typer

from cinerl.apps.cli.train_video import config_command


def _run_video_grpo(cfg) -> None:
    from cinerl.training.video.grpo import train

    result = train(cfg)
    if not result.main:  # the other processes of a DDP/FSDP2 run print nothing
        return
    typer.echo(f"lora:   {result.lora_dir}")
    typer.echo(f"metrics: {result.out / 'metrics.jsonl'}")
    typer.echo(f"report: {result.out / 'training_report.html'}")
    last = [m for m in result.metrics[-10:] if m.get("reward_mean") is not None]
    if last:
        mean = sum(m["reward_mean"] for m in last) / len(last)
        typer.echo(f"steps:  {result.steps}, reward {mean:.4f} (mean of the last {len(last)} steps)")
    if result.curriculum:
        c = result.curriculum
        typer.echo(
            f"curriculum: {c['status']} at {c['stages'][c['index']]} frames {c.get('reason', '')}".rstrip()
        )
    if result.evaluations:
        ev = result.evaluations[-1]
        names = sorted(k[5:] for k in ev if k.startswith("eval/"))
        typer.echo(
            f"eval:   step {ev['step']}, LoRA / untrained: "
            + ", ".join(f"{k} {ev['eval/' + k]:.4f}/{ev.get('base/' + k, float('nan')):.4f}" for k in names)
        )


def _video_grpo_command():
    from cinerl.training.video.grpo_config import VideoGRPOConfig

    return config_command(
        VideoGRPOConfig,
        "video_grpo",
        _run_video_grpo,
        "Flow-GRPO online LoRA training of Wan2.2 with CineRL's reward components (resumes from "
        "--out's last checkpoint; a different config in the same --out is refused).",
    )


video_grpo = _video_grpo_command()
