"""Stage one of the prompt enhancer: supervised fine-tuning on (simple, detailed) prompt pairs.

TRL's `SFTTrainer` on a peft LoRA (rank 16, alpha 32, every attention and MLP projection: peft's
"all-linear"), lr 2e-4, 3 epochs by default; the loss is on the completion only (TRL's
prompt-completion format, conversational where the base model has a chat template, with the
system instruction of `model.SYSTEM`). Nothing here is a hand-written trainer: this module builds
the rows, the configs and the callback, and calls `trainer.train()`.

    config = EnhancerSFTConfig(base="SmolLM2-135M-Instruct.Q4_1.gguf", out="enh-sft")
    train(config)  # -> enh-sft/ (adapter, enhancer.json, metrics.jsonl, checkpoint-N/)
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass
from pathlib import Path

from cinerl.core.errors import UserError
from cinerl.training.datasets.prompt_pairs import STARTER_SFT, read_rows
from cinerl.training.enhancer.config import arg, metrics_callback
from cinerl.training.enhancer.model import SYSTEM, as_prompt, load_for_training, resolve_base, write_info

log = logging.getLogger(__name__)


@dataclass
class EnhancerSFTConfig:
    base: str = arg("", "base model: a local transformers folder or a .gguf file (never a hub name)")
    data: str = arg("", "SFT JSONL of {prompt, completion} rows (default: the shipped starter set)")
    out: str = arg("enhancer-sft", "output folder: the adapter, enhancer.json, metrics.jsonl, checkpoints")
    steps: int = arg(-1, "optimizer steps (TRL max_steps); -1 trains for `epochs`")
    epochs: float = arg(3.0, "passes over the data when steps is -1")
    lr: float = arg(2e-4, "AdamW learning rate of the LoRA weights")
    batch_size: int = arg(4, "rows per device per step")
    grad_accum: int = arg(1, "gradient accumulation steps")
    lora_rank: int = arg(16, "LoRA rank r")
    lora_alpha: int = arg(32, "LoRA alpha (scale alpha/r)")
    lora_dropout: float = arg(0.05, "dropout on the LoRA input")
    target_modules: str = arg("all-linear", "LoRA targets: all-linear is every attention and MLP projection")
    max_length: int = arg(768, "tokens per row (prompt + completion), longer rows are truncated")
    system: str = arg(SYSTEM, "system instruction of the chat prompt (GRPO from this enhancer keeps it)")
    seed: int = arg(0, "seed of the data order and the LoRA initialisation")
    resume: bool = arg(False, "resume from the last checkpoint in `out`")
    save_steps: int = arg(100, "checkpoint every N steps (the last 2 are kept)")
    logging_steps: int = arg(1, "log (and write metrics.jsonl) every N steps")
    gradient_checkpointing: bool = arg(False, "recompute activations in backward (saves memory, costs time)")
    threads: int = arg(0, "torch CPU threads (0: torch's default)")


def rows_for(rows: list[dict], tokenizer, system: str = SYSTEM) -> list[dict]:
    """Prompt-completion rows in TRL's format: conversational where the tokenizer has a chat
    template, plain text otherwise. Only `prompt` and `completion` are kept."""
    out = []
    for r in rows:
        prompt = r["prompt"] if isinstance(r["prompt"], list) else as_prompt(r["prompt"], tokenizer, system)
        completion = r["completion"]
        if isinstance(prompt, list) and isinstance(completion, str):
            completion = [{"role": "assistant", "content": completion}]
        elif isinstance(prompt, str) and not isinstance(completion, str):
            raise UserError("a conversational completion needs a base model with a chat template")
        elif isinstance(prompt, str):
            completion = " " + completion.strip() + (tokenizer.eos_token or "")
        out.append({"prompt": prompt, "completion": completion})
    return out


def lora_config(config: EnhancerSFTConfig):
    from peft import LoraConfig

    return LoraConfig(
        r=config.lora_rank,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=config.target_modules
        if config.target_modules == "all-linear"
        else config.target_modules.split(","),
        task_type="CAUSAL_LM",
    )


def completion_loss(model, tokenizer, rows: list[dict], system: str = SYSTEM, max_length: int = 768) -> float:
    """Mean token cross-entropy of the completions given their prompts (the SFT objective, for
    tests and the benchmark): the same chat formatting as training."""
    import torch

    total, count = 0.0, 0
    model.eval()
    for r in rows_for(rows, tokenizer, system):
        if isinstance(r["prompt"], list):
            p_ids = tokenizer.apply_chat_template(r["prompt"], add_generation_prompt=True)
            full = tokenizer.apply_chat_template(r["prompt"] + r["completion"])
            p_ids = list(p_ids["input_ids"] if hasattr(p_ids, "keys") else p_ids)
            full = list(full["input_ids"] if hasattr(full, "keys") else full)
        else:
            p_ids = tokenizer.encode(r["prompt"])
            full = p_ids + tokenizer.encode(r["completion"], add_special_tokens=False)
        full = full[:max_length]
        ids = torch.tensor([full])
        labels = ids.clone()
        labels[0, : len(p_ids)] = -100
        with torch.no_grad():
            out = model(input_ids=ids, labels=labels)
        n = int((labels[0, 1:] != -100).sum())
        total += float(out.loss) * n
        count += n
    return total / max(count, 1)


def train(config: EnhancerSFTConfig) -> Path:
    """Fine-tune a LoRA on the pairs; returns the output folder (a loadable enhancer)."""
    import torch
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    if config.threads:
        torch.set_num_threads(config.threads)
    base = resolve_base(config.base)
    rows = read_rows(Path(config.data) if config.data else STARTER_SFT, ("prompt", "completion"))
    model, tok = load_for_training(base)
    out = Path(config.out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    data = Dataset.from_list(rows_for(rows, tok, config.system))
    args = SFTConfig(
        output_dir=str(out),
        max_steps=config.steps,
        num_train_epochs=config.epochs,
        learning_rate=config.lr,
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        max_length=config.max_length,
        completion_only_loss=True,
        logging_steps=config.logging_steps,
        save_steps=config.save_steps,
        save_total_limit=2,
        seed=config.seed,
        data_seed=config.seed,
        report_to=[],
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
        bf16=False,
        fp16=False,
        gradient_checkpointing=config.gradient_checkpointing,
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=data,
        processing_class=tok,
        peft_config=None if base.adapter is not None else lora_config(config),
        callbacks=[metrics_callback(out / "metrics.jsonl")],
    )
    resume = config.resume and any(out.glob("checkpoint-*"))
    if config.resume and not resume:
        log.warning("--resume: no checkpoint in %s; training from the start", out)
    result = trainer.train(resume_from_checkpoint=True if resume else None)
    trainer.save_model(str(out))
    write_info(out, base, "sft", dataclasses.asdict(config), system=config.system)
    loss = result.training_loss
    log.info(
        "SFT done: %d steps, training loss %.4f",
        result.global_step,
        loss if math.isfinite(loss) else float("nan"),
    )
    return out
