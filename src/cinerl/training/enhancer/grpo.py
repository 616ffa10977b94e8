"""Stage two of the prompt enhancer: online RL on rendered-and-scored clips, TRL's `GRPOTrainer`.

For each simple prompt the model writes `num_generations` detailed prompts; each is rendered by the
chosen backend and scored (reward.py: `clip`, the reward suite's total in the context of the bible
planned from the simple prompt, and `fmt`, the audit's format rules); TRL turns the group's rewards
into advantages (group-relative, no critic; Shao et al. 2024, "DeepSeekMath", eq. 3) and takes its
default loss with `beta` 0 (no reference model, as DAPO, Yu et al. 2025). The policy is a peft LoRA
on the base, or an SFT enhancer's adapter trained further. Nothing here is a hand-written
trainer: this module builds the rows, the reward callables and the configs, and calls
`trainer.train()`.

    train(EnhancerGRPOConfig(base="enh-sft", prompts="prompts.jsonl", out="enh-grpo"))

Start from an SFT enhancer: on previz every prompt that names no bible entity renders alike, so
a base model whose samples rarely name one gives the clip reward no spread in a group and GRPO
learns the format reward only; an SFT enhancer's samples copy the brief's cast and place part of
the time, which the clip reward tells apart (tests/training/enhancer/test_learning.py).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

from cinerl.core.errors import UserError
from cinerl.training.datasets.prompt_pairs import read_rows
from cinerl.training.enhancer.config import arg, metrics_callback
from cinerl.training.enhancer.model import SYSTEM, as_prompt, load_for_training, resolve_base, write_info
from cinerl.training.enhancer.reward import CineRLRewards

log = logging.getLogger(__name__)


@dataclass
class EnhancerGRPOConfig:
    base: str = arg("", "start from: a local transformers folder, a .gguf file or an SFT enhancer folder")
    prompts: str = arg("", "simple prompts: JSONL rows with a `prompt`, or a text file of one per line")
    out: str = arg("enhancer-grpo", "output folder: the adapter, enhancer.json, metrics.jsonl, checkpoints")
    steps: int = arg(-1, "optimizer steps (TRL max_steps); -1 trains for `epochs`")
    epochs: float = arg(1.0, "passes over the prompts when steps is -1")
    lr: float = arg(1e-4, "AdamW learning rate of the LoRA weights")
    num_generations: int = arg(4, "completions per prompt (the group of group-relative advantages)")
    prompts_per_step: int = arg(1, "simple prompts per optimizer step")
    max_completion_length: int = arg(256, "tokens per completion")
    temperature: float = arg(1.0, "sampling temperature of the completions")
    beta: float = arg(0.0, "KL coefficient against the base model (0: no reference model)")
    clip_weight: float = arg(1.0, "weight of the rendered-clip reward")
    format_weight: float = arg(0.5, "weight of the format reward (word range, no invented cast)")
    backend: str = arg("previz", "video backend that renders each completion (previz on a CPU)")
    mode: str = arg("t2v", "shot mode of the prompts: t2v (60-200 words) or i2v (20-90 words)")
    brief_level: str = arg("full", "how much of the bible each brief gives: full or brief")
    system: str = arg(SYSTEM, "system instruction of the chat prompt")
    width: int = arg(160, "clip width in pixels")
    height: int = arg(90, "clip height in pixels")
    fps: int = arg(8, "clip frames per second")
    seconds: float = arg(2.0, "clip length in seconds")
    workers: int = arg(2, "threads rendering and scoring one step's completions in parallel")
    executor: str = arg("local", "where completions are rendered and scored: local (this process) or ray")
    ray_address: str = arg("", "ray: an existing cluster, auto or HOST:PORT (default: a local one)")
    ray_workers: int = arg(0, "ray: actors in the pool (0: the cluster's CPUs)")
    lora_rank: int = arg(16, "LoRA rank r (a new adapter only)")
    lora_alpha: int = arg(32, "LoRA alpha (a new adapter only)")
    seed: int = arg(0, "seed of sampling, rendering, planning and the LoRA initialisation")
    resume: bool = arg(False, "resume from the last checkpoint in `out`")
    save_steps: int = arg(50, "checkpoint every N steps (the last 2 are kept)")
    logging_steps: int = arg(1, "log (and write metrics.jsonl) every N steps")
    gradient_checkpointing: bool = arg(False, "recompute activations in backward (saves memory, costs time)")
    threads: int = arg(0, "torch CPU threads (0: torch's default)")


def read_prompts(path: str | Path, what: str = "--prompts") -> list[str]:
    """The simple prompts of a JSONL file (`prompt` of each row) or a text file (one a line)."""
    p = Path(path).expanduser()
    if p.suffix.lower() == ".jsonl":
        return [str(r["prompt"]).strip() for r in read_rows(p, ("prompt",), what)]
    if not p.is_file():
        raise UserError(f"{what} {p}: no such file")
    lines = [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines() if ln.strip()]
    if not lines:
        raise UserError(f"{what} {p}: the file has no prompts")
    return lines


def rewards_for(config: EnhancerGRPOConfig) -> CineRLRewards:
    if config.mode not in ("t2v", "i2v"):
        raise UserError(f"mode must be t2v or i2v (got {config.mode!r})")
    if config.executor not in ("local", "ray"):
        raise UserError(f"--executor must be local or ray (got {config.executor!r})")
    from cinerl.core.settings import ExecutorSettings
    from cinerl.executor import make_executor, preflight

    where = ExecutorSettings(
        kind=config.executor, address=config.ray_address or None, workers=config.ray_workers or None
    )
    preflight(where)  # a bad --ray-address or no Ray: one line, before the model loads
    return CineRLRewards.from_config(config, executor=make_executor(where))


def dataset_rows(seeds: list[str], rewards: CineRLRewards, tokenizer, system: str) -> list[dict]:
    """One row per simple prompt: the chat prompt of its brief, and the prompt itself, which
    TRL hands to the reward functions (`seed_prompt`)."""
    return [
        {"prompt": as_prompt(rewards.episode(s).brief, tokenizer, system), "seed_prompt": s} for s in seeds
    ]


def build_trainer(config: EnhancerGRPOConfig, rewards: CineRLRewards | None = None):
    """(trainer, rewards): TRL's GRPOTrainer with CineRL's reward callables, ready to train."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from trl import GRPOConfig, GRPOTrainer

    if config.threads:
        torch.set_num_threads(config.threads)
    if config.num_generations < 2:
        raise UserError("--num-generations must be at least 2 (advantages are relative to the group)")
    base = resolve_base(config.base)
    seeds = read_prompts(config.prompts)
    rewards = rewards or rewards_for(config)
    model, tok = load_for_training(base)
    out = Path(config.out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    data = Dataset.from_list(dataset_rows(seeds, rewards, tok, config.system))
    batch = config.num_generations * config.prompts_per_step
    args = GRPOConfig(
        output_dir=str(out),
        max_steps=config.steps,
        num_train_epochs=config.epochs,
        learning_rate=config.lr,
        per_device_train_batch_size=batch,
        num_generations=config.num_generations,
        max_completion_length=config.max_completion_length,
        temperature=config.temperature,
        beta=config.beta,
        reward_weights=[config.clip_weight, config.format_weight],
        logging_steps=config.logging_steps,
        save_steps=config.save_steps,
        save_total_limit=2,
        seed=config.seed,
        data_seed=config.seed,
        report_to=[],
        use_cpu=not torch.cuda.is_available(),
        bf16=False,
        fp16=False,
        gradient_checkpointing=config.gradient_checkpointing,
        dataloader_num_workers=0,
    )
    peft_config = None
    if base.adapter is None:
        peft_config = LoraConfig(
            r=config.lora_rank,
            lora_alpha=config.lora_alpha,
            lora_dropout=0.0,
            target_modules="all-linear",
            task_type="CAUSAL_LM",
        )
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[rewards.clip, rewards.fmt],
        args=args,
        train_dataset=data,
        processing_class=tok,
        peft_config=peft_config,
        callbacks=[metrics_callback(out / "metrics.jsonl")],
    )
    return trainer, rewards, base


def train(config: EnhancerGRPOConfig, rewards: CineRLRewards | None = None) -> Path:
    """GRPO on rendered-and-scored clips; returns the output folder (a loadable enhancer)."""
    own = rewards is None  # rewards made here: their executor (a Ray pool) is released here
    trainer, rewards, base = build_trainer(config, rewards)
    out = Path(config.out).expanduser()
    resume = config.resume and any(out.glob("checkpoint-*"))
    if config.resume and not resume:
        log.warning("--resume: no checkpoint in %s; training from the start", out)
    try:
        trainer.train(resume_from_checkpoint=True if resume else None)
    finally:
        if own:
            rewards.close()
    trainer.save_model(str(out))
    write_info(out, base, "grpo", dataclasses.asdict(config), system=config.system)
    return out
