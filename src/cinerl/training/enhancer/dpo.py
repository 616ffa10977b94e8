"""The preference variant of stage two (VPO, Prompt-A-Video): TRL's `DPOTrainer` on ranked pairs of
a scene's takes (`{prompt, chosen, rejected}`, `cinerl train pairs --kind prompts`), on a peft
LoRA over the base or an SFT enhancer's adapter trained further. With a LoRA the reference model
is the base with the adapter switched off (TRL does this), so the loss at initialisation is
-log sigmoid(0) = ln 2 (Rafailov et al. 2023, "Direct Preference Optimization", eq. 7). Nothing
here is a hand-written trainer."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from cinerl.training.datasets.prompt_pairs import read_rows
from cinerl.training.enhancer.config import arg, metrics_callback
from cinerl.training.enhancer.model import SYSTEM, as_prompt, load_for_training, resolve_base, write_info


@dataclass
class EnhancerDPOConfig:
    base: str = arg("", "start from: a local transformers folder, a .gguf file or an SFT enhancer folder")
    data: str = arg("", "DPO JSONL of {prompt, chosen, rejected} rows (cinerl train pairs --kind prompts)")
    out: str = arg("enhancer-dpo", "output folder: the adapter, enhancer.json, metrics.jsonl, checkpoints")
    steps: int = arg(-1, "optimizer steps (TRL max_steps); -1 trains for `epochs`")
    epochs: float = arg(1.0, "passes over the pairs when steps is -1")
    lr: float = arg(5e-5, "AdamW learning rate of the LoRA weights")
    beta: float = arg(0.1, "DPO's beta: the strength of the pull towards the reference model")
    batch_size: int = arg(2, "pairs per device per step")
    lora_rank: int = arg(16, "LoRA rank r (a new adapter only)")
    lora_alpha: int = arg(32, "LoRA alpha (a new adapter only)")
    max_length: int = arg(768, "tokens per row (prompt + answer)")
    seed: int = arg(0, "seed of the data order and the LoRA initialisation")
    resume: bool = arg(False, "resume from the last checkpoint in `out`")
    save_steps: int = arg(100, "checkpoint every N steps (the last 2 are kept)")
    logging_steps: int = arg(1, "log (and write metrics.jsonl) every N steps")
    threads: int = arg(0, "torch CPU threads (0: torch's default)")


def pair_rows(rows: list[dict], tokenizer, system: str = SYSTEM) -> list[dict]:
    """Preference rows in TRL's format, conversational where the tokenizer has a chat template."""
    out = []
    for r in rows:
        prompt = as_prompt(r["prompt"], tokenizer, system) if isinstance(r["prompt"], str) else r["prompt"]
        if isinstance(prompt, list):
            out.append(
                {
                    "prompt": prompt,
                    "chosen": [{"role": "assistant", "content": r["chosen"]}],
                    "rejected": [{"role": "assistant", "content": r["rejected"]}],
                }
            )
        else:
            out.append({"prompt": prompt, "chosen": " " + r["chosen"], "rejected": " " + r["rejected"]})
    return out


def train(config: EnhancerDPOConfig) -> Path:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from trl import DPOConfig, DPOTrainer

    if config.threads:
        torch.set_num_threads(config.threads)
    base = resolve_base(config.base)
    rows = read_rows(Path(config.data), ("prompt", "chosen", "rejected"))
    model, tok = load_for_training(base)
    out = Path(config.out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    args = DPOConfig(
        output_dir=str(out),
        max_steps=config.steps,
        num_train_epochs=config.epochs,
        learning_rate=config.lr,
        beta=config.beta,
        per_device_train_batch_size=config.batch_size,
        max_length=config.max_length,
        logging_steps=config.logging_steps,
        save_steps=config.save_steps,
        save_total_limit=2,
        seed=config.seed,
        data_seed=config.seed,
        report_to=[],
        use_cpu=not torch.cuda.is_available(),
        bf16=False,
        fp16=False,
        gradient_checkpointing=False,
        dataloader_num_workers=0,
    )
    peft_config = None
    if base.adapter is None:
        peft_config = LoraConfig(
            r=config.lora_rank,
            lora_alpha=config.lora_alpha,
            target_modules="all-linear",
            task_type="CAUSAL_LM",
        )
    trainer = DPOTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(pair_rows(rows, tok)),
        processing_class=tok,
        peft_config=peft_config,
        callbacks=[metrics_callback(out / "metrics.jsonl")],
    )
    resume = config.resume and any(out.glob("checkpoint-*"))
    trainer.train(resume_from_checkpoint=True if resume else None)
    trainer.save_model(str(out))
    write_info(out, base, "dpo", dataclasses.asdict(config))
    return out
