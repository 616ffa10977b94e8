"""`cinerl train enhancer eval`: the enhancer's prompts against its base model's, on the same
simple prompts and sampling seeds, each rendered and scored by the same rewards as GRPO (the clip
reward and the format reward, weighted as in training). Written by hand: an evaluation loop, not
a trainer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cinerl.training.enhancer.config import arg
from cinerl.core.errors import UserError
from cinerl.training.enhancer.model import Enhancer, resolve_base
from cinerl.training.enhancer.reward import CineRLRewards, format_score


@dataclass
class EnhancerEvalConfig:
    enhancer: str = arg("", "the trained enhancer folder (its base model is read from enhancer.json)")
    prompts: str = arg("", "simple prompts: JSONL rows with a `prompt`, or a text file of one per line")
    samples: int = arg(2, "completions per prompt and model (sampling seeds seed, seed+1, ...)")
    temperature: float = arg(0.7, "sampling temperature (0: greedy, one sample)")
    max_new_tokens: int = arg(256, "tokens per completion")
    clip_weight: float = arg(1.0, "weight of the rendered-clip reward")
    format_weight: float = arg(0.5, "weight of the format reward")
    backend: str = arg("previz", "video backend")
    mode: str = arg("t2v", "shot mode of the prompts: t2v or i2v")
    brief_level: str = arg("full", "how much of the bible each brief gives: full or brief")
    width: int = arg(160, "clip width in pixels")
    height: int = arg(90, "clip height in pixels")
    fps: int = arg(8, "clip frames per second")
    seconds: float = arg(2.0, "clip length in seconds")
    workers: int = arg(2, "threads rendering and scoring in parallel")
    seed: int = arg(0, "seed of sampling, rendering and planning")
    threads: int = arg(0, "torch CPU threads (0: torch's default)")


def score_prompts(
    model: Enhancer, seeds: list[str], rewards: CineRLRewards, config: EnhancerEvalConfig
) -> dict:
    """Write, render and score: per prompt the mean reward over its samples, and the means."""
    samples = 1 if config.temperature <= 0 else max(1, config.samples)
    rows = []
    for i, seed_prompt in enumerate(seeds):
        ep = rewards.episode(seed_prompt)
        texts = [
            model.write(
                [ep.brief], config.max_new_tokens, config.temperature, seed=config.seed + 1000 * i + k
            )[0]
            for k in range(samples)
        ]
        found, _, _ = rewards.breakdowns(texts, [seed_prompt] * len(texts))
        clips = [b.total for b in found if b is not None]
        fmts = [format_score(t, ep) for t in texts]
        # a clip that fails to render counts 0 here (training skips it instead)
        totals = [
            config.clip_weight * (b.total if b else 0.0) + config.format_weight * f
            for b, f in zip(found, fmts)
        ]
        rows.append(
            {
                "prompt": seed_prompt,
                "reward": sum(totals) / len(totals),
                "clip": sum(clips) / len(clips) if clips else None,
                "format": sum(fmts) / len(fmts),
                "texts": texts,
            }
        )

    def mean(key: str) -> float | None:
        values = [r[key] for r in rows if r[key] is not None]
        return sum(values) / len(values) if values else None

    return {
        "model": model.name,
        "mean_reward": mean("reward"),
        "mean_clip": mean("clip"),
        "mean_format": mean("format"),
        "prompts": rows,
    }


def evaluate(
    config: EnhancerEvalConfig, seeds: list[str] | None = None, rewards: CineRLRewards | None = None
) -> dict:
    """{"base": {...mean_reward}, "enhancer": {...mean_reward}, "win_rate": share of prompts where
    the enhancer's mean reward is above the base's}."""
    import torch

    from cinerl.training.enhancer.grpo import read_prompts

    if config.threads:
        torch.set_num_threads(config.threads)
    if resolve_base(config.enhancer, "--enhancer").adapter is None:  # before any model loads
        raise UserError(f"--enhancer {config.enhancer}: not a trained enhancer folder (no enhancer.json)")
    seeds = seeds if seeds is not None else read_prompts(config.prompts)
    trained = Enhancer(config.enhancer, adapter=True)
    base = Enhancer(config.enhancer, adapter=False)
    rewards = rewards or CineRLRewards.from_config(config)
    result = {
        "base": score_prompts(base, seeds, rewards, config),
        "enhancer": score_prompts(trained, seeds, rewards, config),
    }
    pairs = zip(result["base"]["prompts"], result["enhancer"]["prompts"])
    wins = [e["reward"] > b["reward"] for b, e in pairs]
    result["win_rate"] = sum(wins) / len(wins)
    result["enhancer_dir"] = str(Path(config.enhancer))
    return result
