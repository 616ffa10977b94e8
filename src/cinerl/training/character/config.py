"""The character-LoRA trainer's Config: every field with its one-line help (the CLI's flags are
generated from it, as for `cinerl train video-dpo`). Kept free of torch."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

from cinerl.core.errors import UserError


def _f(default, help: str, **kw):
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class CharacterConfig:
    """A character LoRA of Wan2.2 from one actor's images (`cinerl actors` output or any image
    folder), the images trained as one-frame videos with Wan's flow-matching loss. Fields marked
    neutral do not change the trained weights."""

    dataset: str = _f("", "a `cinerl actors` folder (result.json, images/, payloads/) or a folder of images")
    name: str = _f("", "the character's name (the trigger phrase is built from it)")
    model_dir: str = _f(
        "", "local Wan2.2 diffusers folder (the model the films use), or a diffusers image pipeline folder"
    )
    out: str = _f("", "output folder: the LoRA, character.json, checkpoints, metrics", neutral=True)
    trigger: str = _f("", "trigger phrase that replaces the actor descriptor; empty: '<name> person'")
    variant: str = _f("", "Wan2.2 variant; empty: guessed from the model folder")
    # 1500 steps, rank 32, lr 1e-4: the defaults (character LoRAs of Wan are commonly
    # trained r16-64 for 1-3k steps at 1e-4, e.g. musubi-tuner's and diffusers' Wan examples)
    steps: int = _f(1500, "optimiser steps", neutral=True)
    seed: int = _f(0, "seed of the image order, caption dropout, noise and timesteps")
    resume: bool = _f(False, "require a checkpoint in --out (resuming is the default anyway)", neutral=True)
    size: str = _f(
        "", "training area as WxH (each image is bucketed to its aspect at that area); empty: 512x512"
    )
    learning_rate: float = _f(1e-4, "AdamW learning rate (constant after the warm-up)")
    warmup_steps: int = _f(0, "linear learning-rate warm-up steps")
    weight_decay: float = _f(1e-4, "AdamW weight decay (diffusers' LoRA examples: 1e-4)")
    max_grad_norm: float = _f(1.0, "gradient clipping norm")
    lora_rank: int = _f(32, "LoRA rank")
    lora_alpha: float = _f(32.0, "LoRA alpha (scale alpha / rank)")
    lora_targets: str = _f("attn", "LoRA targets: attn (attn1/attn2 to_q,to_k,to_v,to_out.0), ffn, suffixes")
    # caption dropout 0.05: a share of steps trains the empty caption, so the identity is also
    # learned unconditionally (DreamBooth-style LoRA practice; the value)
    caption_dropout: float = _f(0.05, "share of steps trained on the empty caption")
    # logit-normal timesteps, m 0 s 1: SD3 (Esser et al. 2024)
    timestep_mean: float = _f(0.0, "logit-normal timestep mean")
    timestep_std: float = _f(1.0, "logit-normal timestep std")
    # A14B: the low-noise expert holds the fine detail a face is made of (Wan2.2's MoE report)
    expert: str = _f("low", "A14B: train the high-noise, low-noise or both experts (high|low|both)")
    gradient_checkpointing: str = _f("auto", "auto (on above 5k tokens), on, off")
    mixed_precision: str = _f("auto", "auto (bf16 weights on CUDA, fp32 on CPU), no, bf16")
    # short clips mixed in: practitioners report that stills-only Wan LoRAs freeze motion
    clips: str = _f("", "folder of short clips (.txt captions beside, else the trigger) mixed into training")
    clip_ratio: float = _f(0.25, "share of steps that train on a clip when --clips is given")
    clip_frames: int = _f(17, "frames of each clip trained (4k+1, Wan's VAE)")
    sample_every: int = _f(250, "sample images in --out/samples every N steps (0: none)", neutral=True)
    sample_count: int = _f(3, "fixed sample prompts (each at its own fixed seed)", neutral=True)
    sample_steps: int = _f(30, "denoising steps of a sample image", neutral=True)
    sample_guidance: float = _f(5.0, "classifier-free guidance of a sample image", neutral=True)
    checkpoint_every: int = _f(250, "checkpoint every N steps", neutral=True)
    keep_checkpoints: int = _f(2, "checkpoints kept (older ones removed)", neutral=True)

    def neutral_fields(self) -> set[str]:
        return {f.name for f in dataclasses.fields(self) if f.metadata.get("neutral")}

    def identity(self) -> dict:
        d = dataclasses.asdict(self)
        return {k: v for k, v in d.items() if k not in self.neutral_fields()}

    def trigger_phrase(self) -> str:
        return self.trigger.strip() or f"{self.name.strip().lower()} person"

    def area(self) -> tuple[int, int]:
        if not self.size:
            return 512, 512
        m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", self.size)
        if not m:
            raise UserError(f"--size must look like 512x512 (got {self.size!r})")
        return int(m.group(1)), int(m.group(2))

    def check(self) -> None:
        problems = []
        if not self.dataset:
            problems.append("DATASET_DIR is required")
        if not self.name.strip():
            problems.append("--name is required")
        if not str(self.out).strip():
            problems.append("--out is required")
        if self.steps < 1:
            problems.append("--steps must be at least 1")
        if self.lora_rank < 1:
            problems.append("--lora-rank must be at least 1")
        if self.learning_rate <= 0:
            problems.append("--learning-rate must be positive")
        if not 0 <= self.caption_dropout < 1:
            problems.append("--caption-dropout must be in [0, 1)")
        if self.expert not in ("high", "low", "both"):
            problems.append(f"--expert must be high, low or both (got {self.expert!r})")
        if self.gradient_checkpointing not in ("auto", "on", "off"):
            problems.append("--gradient-checkpointing must be auto, on or off")
        if self.mixed_precision not in ("auto", "no", "bf16"):
            problems.append("--mixed-precision must be auto, no or bf16")
        if not 0 <= self.clip_ratio <= 1:
            problems.append("--clip-ratio must be in [0, 1]")
        if self.clip_frames < 1 or (self.clip_frames - 1) % 4:
            problems.append(f"--clip-frames must be 4k+1 (1, 5, 9, 17, ...; got {self.clip_frames})")
        if self.sample_every < 0 or self.sample_count < 1 or self.sample_steps < 1:
            problems.append("--sample-every must be 0 or more, --sample-count and --sample-steps at least 1")
        if self.checkpoint_every < 1:
            problems.append("--checkpoint-every must be at least 1")
        if problems:
            raise UserError("; ".join(problems))
        self.area()
