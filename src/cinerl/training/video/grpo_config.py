"""The Flow-GRPO trainer's Config (`VideoGRPOConfig`): every field with its one-line help, the
default's source in a comment. Kept free of torch so the CLI builds its flags from it without
importing the trainer (as config.py is for Flow-DPO)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Optional

from cinerl.core.errors import UserError
from cinerl.training.video.config import _f


# ---- the Config ------------------------------------------------------------------------------
@dataclass
class VideoGRPOConfig:
    """Flow-GRPO LoRA training of Wan2.2. Fields marked neutral do not change the trained weights."""

    model_dir: str = _f("", "local Wan2.2 diffusers folder (transformer/, vae/, text_encoder/, tokenizer/)")
    prompts: str = _f("", "prompts: a text file, one prompt a line (# comments and blank lines skipped)")
    from_runs: str = _f(
        "", "or: CineRL run folders (comma-separated; or a folder of runs): their scene prompts"
    )
    out: str = _f("", "output folder: LoRA, checkpoints, metrics", neutral=True)
    variant: str = _f("", "Wan2.2 variant; empty: guessed from the folder")
    steps: int = _f(200, "GRPO steps (rollout batch + optimisation passes each)", neutral=True)
    seed: int = _f(0, "seed of the prompt order, rollout noise and training windows")
    resume: bool = _f(False, "require a checkpoint in --out (resuming is the default anyway)", neutral=True)
    size: str = _f("", "rollout size WxH, rounded as `make` rounds it; empty: 832x480")
    frames: int = _f(49, "rollout length in frames (4k+1)")
    # group 4, 20 training sampling steps, noise level 0.7, clip range 1e-3, KL 0.004, lr 1e-4:
    # Flow-GRPO's Wan2.1 config (flow_grpo config/grpo.py `general_ocr_wan2_1`)
    group_size: int = _f(4, "clips per prompt (the group of GRPO's group-relative advantage)")
    prompts_per_step: int = _f(1, "prompts (groups) per step")
    train_steps: int = _f(20, "SDE sampling steps of a rollout")
    noise_level: float = _f(0.7, "Flow-GRPO SDE noise level a (> 0 to train; 0 is the ODE sampler)")
    train_window: int = _f(
        0, "train on a window of this many sampling steps, SDE inside, ODE outside (0: all)"
    )
    rollout_cfg: bool = _f(False, "classifier-free guidance in rollouts (Flow-GRPO trains without)")
    reward: str = _f("", "reward components name=weight,... (any registered component); empty: the settings'")
    adv_clip: float = _f(5.0, "advantages clipped to +- this (Flow-GRPO: 5)")
    clip_range: float = _f(1e-3, "PPO clip range of the per-step ratio")
    kl: float = _f(0.004, "KL weight to the LoRA-disabled reference (0: no reference forward)")
    passes: int = _f(1, "optimisation passes over each rollout batch (Flow-GRPO: 1)")
    learning_rate: float = _f(1e-4, "AdamW learning rate (constant after the warm-up)")
    warmup_steps: int = _f(0, "linear learning-rate warm-up steps")
    weight_decay: float = _f(1e-4, "AdamW weight decay")
    max_grad_norm: float = _f(1.0, "gradient clipping norm")
    # rank 32 alpha 64, attention projections: flow_grpo's Wan script (scripts/train_wan2_1.py)
    lora_rank: int = _f(32, "LoRA rank")
    lora_alpha: float = _f(64.0, "LoRA alpha (scale alpha / rank)")
    lora_targets: str = _f("attn", "LoRA targets: attn (attn1/attn2 to_q,to_k,to_v,to_out.0), ffn, suffixes")
    # A14B: the Flow-DPO trainer's --expert (config.py); rollouts always run both experts
    expert: str = _f(
        "both", "A14B: train the high-noise, low-noise or both experts (high|low|both; rollouts use both)"
    )
    gradient_checkpointing: str = _f("off", "gradient checkpointing of the transformer blocks: on, off")
    mixed_precision: str = _f("auto", "auto (bf16 weights on CUDA, fp32 on CPU), no, bf16")
    # None (no flag): on for CUDA, off on the CPU, as the Flow-DPO trainer's `--compile auto`.
    # Optional[bool], not bool | None: the CLI generator (train_video._type_of) unwraps
    # typing.Union, so this gives --compile/--no-compile
    compile: Optional[bool] = _f(
        None,
        "regional torch.compile of each transformer block (no flag: on for CUDA, off on the CPU)",
        neutral=True,
    )
    rollout_attention: str = _f(
        "auto",
        "attention of the forwards without a gradient (rollouts, reference, evaluation): auto "
        "(fa3-fwd where it runs, else the training kernel) or training",
        neutral=True,
    )
    score_workers: int = _f(2, "threads submitting scoring jobs beside the rollouts", neutral=True)
    executor: str = _f(
        "local", "where clips are scored: local (this process, threads) or ray (actors)", neutral=True
    )
    ray_address: str = _f(
        "", "ray: an existing cluster, auto or HOST:PORT (default: a local one)", neutral=True
    )
    ray_workers: int = _f(0, "ray: scoring actors in the pool (0: the cluster's CPUs)", neutral=True)
    strategy: str = _f(
        "auto", "single, ddp (several processes), fsdp; auto: ddp when launched on several", neutral=True
    )
    # the Flow-DPO trainer's gated length curriculum (curriculum.py), the same flags
    curriculum: str = _f(
        "", "length curriculum, frames per stage: e.g. 33,49,65,97 (empty: off; replaces --frames)"
    )
    stage_steps: int = _f(0, "curriculum: steps per stage (0: steps / stages)")
    gate_tolerance: float = _f(0.05, "curriculum: how far a gate metric may fall at the next length")
    gate_retries: int = _f(2, "curriculum: extra rounds of a stage before the curriculum stops")
    checkpoint_every: int = _f(50, "checkpoint every N steps", neutral=True)
    keep_checkpoints: int = _f(2, "checkpoints kept (older ones removed)", neutral=True)
    eval_every: int = _f(
        0, "evaluate every N steps: ODE clips with and without the LoRA, same seeds (0: off)", neutral=True
    )
    eval_prompts: int = _f(2, "evaluation prompts (the first N)", neutral=True)
    eval_steps: int = _f(
        50, "sampling steps of an evaluation clip (Euler ODE, as Flow-GRPO evaluates)", neutral=True
    )

    def neutral_fields(self) -> set[str]:
        return {f.name for f in dataclasses.fields(self) if f.metadata.get("neutral")}

    def identity(self) -> dict:
        d = dataclasses.asdict(self)
        return {k: v for k, v in d.items() if k not in self.neutral_fields()}

    def compile_choice(self) -> str:
        """--compile as speed.compile_wanted takes it: on, off, or auto (no flag)."""
        return "auto" if self.compile is None else ("on" if self.compile else "off")

    def parsed_size(self) -> tuple[int, int]:
        import re

        if not self.size:
            return 832, 480
        m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", self.size)
        if not m:
            raise UserError(f"--size must look like 832x480 (got {self.size!r})")
        return int(m.group(1)), int(m.group(2))

    def check(self) -> None:
        p = []
        if self.steps < 1:
            p.append("--steps must be at least 1")
        if self.group_size < 2:
            p.append("--group-size must be at least 2 (advantages are relative to the group)")
        if self.prompts_per_step < 1:
            p.append("--prompts-per-step must be at least 1")
        if self.train_steps < 1:
            p.append("--train-steps must be at least 1")
        if not self.noise_level > 0 or not math.isfinite(self.noise_level):
            p.append(
                "--noise-level must be above 0 to train (0 is the ODE sampler, which has no log-probability)"
            )
        if self.train_window < 0 or self.train_window > self.train_steps:
            p.append(f"--train-window must be 0 (all) to --train-steps ({self.train_steps})")
        if self.clip_range <= 0 or self.adv_clip <= 0:
            p.append("--clip-range and --adv-clip must be positive")
        if self.kl < 0:
            p.append("--kl must not be negative")
        if self.passes < 1:
            p.append("--passes must be at least 1")
        if self.learning_rate <= 0 or self.lora_rank < 1:
            p.append("--learning-rate must be positive and --lora-rank at least 1")
        if self.frames < 1 or (self.frames - 1) % 4:
            p.append(f"--frames must be 4k+1 (Wan's VAE), got {self.frames}")
        if self.expert not in ("high", "low", "both"):
            p.append(f"--expert must be high, low or both (got {self.expert!r})")
        if self.gradient_checkpointing not in ("on", "off"):
            p.append("--gradient-checkpointing must be on or off")
        if self.mixed_precision not in ("auto", "no", "bf16"):
            p.append("--mixed-precision must be auto, no or bf16")
        if self.rollout_attention not in ("auto", "training"):
            p.append(f"--rollout-attention must be auto or training (got {self.rollout_attention!r})")
        if self.executor not in ("local", "ray"):
            p.append(f"--executor must be local or ray (got {self.executor!r})")
        if self.ray_workers < 0 or self.stage_steps < 0 or self.gate_retries < 0:
            p.append("--ray-workers, --stage-steps and --gate-retries must not be negative")
        if self.strategy not in ("auto", "single", "ddp", "fsdp"):
            p.append(f"--strategy must be single, ddp or fsdp (got {self.strategy!r})")
        if self.checkpoint_every < 1 or self.score_workers < 1:
            p.append("--checkpoint-every and --score-workers must be at least 1")
        if self.eval_every < 0 or self.eval_prompts < 1 or self.eval_steps < 1:
            p.append("--eval-every must be 0 or more, --eval-prompts and --eval-steps at least 1")
        if bool(self.prompts) == bool(self.from_runs):
            p.append("give --prompts FILE or --from-runs RUNS (one of them)")
        if not str(self.out).strip():
            p.append("--out is required")
        if p:
            raise UserError("; ".join(p))
        self.parsed_size()
        parse_reward(self.reward) if self.reward else None


def parse_reward(text: str) -> dict[str, float]:
    """`name=weight,...` over the registered reward components (a bare name weighs 1)."""
    from cinerl.rewards import registered_components

    known = registered_components()
    out: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, _, w = part.partition("=")
        name = name.strip()
        if name not in known:
            raise UserError(f"--reward: unknown component {name!r}; registered: {', '.join(sorted(known))}")
        try:
            weight = float(w) if w.strip() else 1.0
        except ValueError:
            raise UserError(f"--reward: weight of {name} must be a number (got {w!r})") from None
        if not math.isfinite(weight) or weight < 0:
            raise UserError(f"--reward: weight of {name} must be a finite number >= 0 (got {w!r})")
        out[name] = weight
    if not out or sum(out.values()) <= 0:
        raise UserError(f"--reward needs at least one component with a positive weight (got {text!r})")
    return out
