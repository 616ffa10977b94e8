"""The Flow-DPO trainer's Config: every field with its one-line help, the default's source in a
comment. Kept free of torch so the CLI builds its flags from it without importing the trainer."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

from cinerl.core.errors import UserError


def _f(default, help: str, **kw):
    """A Config field with its one-line help (the CLI's flag help is this text)."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class VideoDPOConfig:
    """Flow-DPO LoRA training of Wan2.2. Fields marked neutral do not change the trained weights
    (a run may resume with other values of them)."""

    model_dir: str = _f("", "local Wan2.2 diffusers folder (transformer/, transformer_2/ for A14B)")
    pairs: str = _f("", "pairs JSONL from `cinerl train pairs` or an importer")
    out: str = _f("", "output folder: LoRA, checkpoints, metrics, report", neutral=True)
    variant: str = _f("", "Wan2.2 variant; empty: the pairs' variant, else guessed from the folder")
    steps: int = _f(1000, "optimiser steps (a finished run given more steps trains on)", neutral=True)
    seed: int = _f(0, "seed of the data order, noise and timesteps")
    resume: bool = _f(False, "require a checkpoint in --out (resuming is the default anyway)", neutral=True)
    size: str = _f("", "training size WxH, rounded as `make` rounds it; empty: the pairs' own")
    frames: int = _f(0, "training length in frames (4k+1); 0: the pairs' own")
    batch_size: int = _f(1, "pairs per process per step (global batch = this x processes)")
    # Flow-DPO's beta (VideoAlign, Liu et al. 2025, Flow-DPO: beta 100 in the velocity-MSE form).
    # The seed notes' 0.2 is the beta of a different parameterisation (DPO on log-likelihoods
    # scaled by the timestep count), not comparable.
    beta: float = _f(100.0, "Flow-DPO beta (velocity-MSE form; the seeds' 0.2 is another parameterisation)")
    # 1e-4 constant after 100 warm-up steps, grad clip 1.0: diffusers' LoRA training examples
    # (train_dreambooth_lora_*: learning_rate 1e-4, constant_with_warmup, max_grad_norm 1.0)
    learning_rate: float = _f(1e-4, "AdamW learning rate (constant after the warm-up)")
    warmup_steps: int = _f(100, "linear learning-rate warm-up steps")
    weight_decay: float = _f(1e-4, "AdamW weight decay (diffusers' LoRA examples: 1e-4)")
    max_grad_norm: float = _f(1.0, "gradient clipping norm")
    # rank 32, alpha 32 on the attention projections: the default (Wan LoRA trainers such
    # as diffusers' and musubi-tuner's train r16-64 with alpha = r on to_q/to_k/to_v/to_out.0)
    lora_rank: int = _f(32, "LoRA rank")
    lora_alpha: float = _f(32.0, "LoRA alpha (scale alpha / rank)")
    lora_targets: str = _f("attn", "LoRA targets: attn (attn1/attn2 to_q,to_k,to_v,to_out.0), ffn, suffixes")
    # logit-normal timesteps, m 0 s 1: SD3 (Esser et al. 2024)
    timestep_mean: float = _f(0.0, "logit-normal timestep mean")
    timestep_std: float = _f(1.0, "logit-normal timestep std")
    expert: str = _f("both", "A14B: train the high-noise, low-noise or both experts (high|low|both)")
    strategy: str = _f("auto", "single, ddp (several processes), fsdp; auto: ddp when launched on several")
    # auto: the "on above 5k tokens" on the CPU; on a GPU off until a step runs out of
    # memory (an H200's 139 GiB holds the 5B's activations: recomputing them only costs time)
    gradient_checkpointing: str = _f(
        "auto", "auto (CPU: on above 5k tokens; GPU: on after an out-of-memory), on, off"
    )
    mixed_precision: str = _f("auto", "auto (bf16 weights on CUDA, fp32 on CPU), no, bf16")
    compile: str = _f(
        "auto", "regional torch.compile of each transformer block: auto (on for CUDA), on, off", neutral=True
    )
    checkpoint_every: int = _f(100, "checkpoint every N steps", neutral=True)
    keep_checkpoints: int = _f(2, "checkpoints kept (older ones removed)", neutral=True)
    curriculum: str = _f("", "length curriculum, frames per stage: e.g. 33,49,65,97 (empty: off)")
    stage_steps: int = _f(0, "curriculum: steps per stage (0: steps / stages)")
    gate_tolerance: float = _f(0.05, "curriculum: how far a gate metric may fall at the next length")
    gate_retries: int = _f(2, "curriculum: extra rounds of a stage before the curriculum stops")
    gate: str = _f(
        "auto",
        "curriculum gate: rewards (clips at both lengths scored by the length-sensitive reward "
        "components; needs the folder's vae/), dpo (implicit accuracy on fixed pairs); auto: rewards "
        "when the folder has a VAE",
    )
    # evaluation: the LoRA against the untrained model (LoRA off), same prompts and seeds
    eval_every: int = _f(0, "evaluate every N steps (0: off; needs the folder's vae/)", neutral=True)
    eval_prompts: int = _f(
        2, "evaluation prompts: the first N pairs' chosen prompts and conditions", neutral=True
    )
    eval_steps: int = _f(20, "sampling steps of an evaluation clip (UniPC, no guidance)", neutral=True)
    eval_frames: int = _f(0, "frames of an evaluation clip (0: the training length)", neutral=True)

    # ---- derived ------------------------------------------------------------------------
    def neutral_fields(self) -> set[str]:
        return {f.name for f in dataclasses.fields(self) if f.metadata.get("neutral")}

    def identity(self) -> dict:
        """What makes two runs the same training (everything but the neutral fields)."""
        d = dataclasses.asdict(self)
        return {k: v for k, v in d.items() if k not in self.neutral_fields()}

    def parsed_size(self) -> tuple[int | None, int | None]:
        if not self.size:
            return None, None
        m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", self.size)
        if not m:
            raise UserError(f"--size must look like 832x480 (got {self.size!r})")
        return int(m.group(1)), int(m.group(2))

    def check(self) -> None:
        problems = []
        if self.steps < 1:
            problems.append("--steps must be at least 1")
        if self.batch_size < 1:
            problems.append("--batch-size must be at least 1")
        if self.lora_rank < 1:
            problems.append("--lora-rank must be at least 1")
        if self.beta <= 0 or self.learning_rate <= 0:
            problems.append("--beta and --learning-rate must be positive")
        if self.expert not in ("high", "low", "both"):
            problems.append(f"--expert must be high, low or both (got {self.expert!r})")
        if self.strategy not in ("auto", "single", "ddp", "fsdp"):
            problems.append(f"--strategy must be single, ddp or fsdp (got {self.strategy!r})")
        if self.gradient_checkpointing not in ("auto", "on", "off"):
            problems.append("--gradient-checkpointing must be auto, on or off")
        if self.mixed_precision not in ("auto", "no", "bf16"):
            problems.append("--mixed-precision must be auto, no or bf16")
        if self.compile not in ("auto", "on", "off"):
            problems.append("--compile must be auto, on or off")
        if self.gate not in ("auto", "rewards", "dpo"):
            problems.append(f"--gate must be auto, rewards or dpo (got {self.gate!r})")
        if self.eval_every < 0 or self.eval_prompts < 1 or self.eval_steps < 1:
            problems.append("--eval-every must be 0 or more, --eval-prompts and --eval-steps at least 1")
        if self.eval_frames and (self.eval_frames - 1) % 4:
            problems.append(f"--eval-frames must be 4k+1 (Wan's VAE), got {self.eval_frames}")
        if self.checkpoint_every < 1:
            problems.append("--checkpoint-every must be at least 1")
        if not self.pairs:
            problems.append("--pairs is required")
        if not str(self.out).strip():
            problems.append("--out is required")
        if problems:
            raise UserError("; ".join(problems))
        self.parsed_size()
