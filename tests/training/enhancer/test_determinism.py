"""GRPO on previz is reproducible: the same configuration and seed train the same adapter, byte for
byte, whatever ran before in the process. It was not: the reward suite's first clip loaded its
image backbones, whose construction draws from torch's global generator, which TRL samples the
completions with; so the second of two runs here sampled other completions from step 2 on
(without the fix this test fails: step 2's completions, rewards and the adapter differ), and the
learning test gave GRPO 0.594 alone and 0.643 after other trainers. reward.policy_rng_kept
restores the random state after every reward call. Run on torch's default thread count, where
the reward jobs' thread count also had to be pinned (reward.scoring_threads). 15 to 65 s on 2
shared cores."""

from __future__ import annotations

import json

import cinerl.models.cache
from cinerl.training.enhancer.config import read_metrics
from cinerl.training.enhancer.grpo import EnhancerGRPOConfig, train
from tests.training.enhancer.conftest import TINY_CLIPS

PROMPTS = ["A fox explores a snowy forest at dawn", "Two friends share tea in a red kitchen"]


def _numbers(row: dict) -> dict:
    """A metrics row without its clocks."""
    return {k: v for k, v in row.items() if not any(t in k for t in ("time", "runtime", "per_second"))}


def test_two_grpo_runs_of_one_config_train_the_same_adapter(tiny_lm, tmp_path, monkeypatch):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in PROMPTS))
    # the first run loads the reward backbones as a fresh process would, whatever ran before in
    # this one; the second finds them loaded
    monkeypatch.setattr(cinerl.models.cache, "_CACHE", {})
    runs = []
    for name in ("a", "b"):
        cfg = EnhancerGRPOConfig(
            base=str(tiny_lm),
            prompts=str(prompts),
            out=str(tmp_path / name),
            steps=3,
            lr=1e-3,
            max_completion_length=12,
            save_steps=1000,
            **TINY_CLIPS,
        )
        out = train(cfg)
        rows = [_numbers(m) for m in read_metrics(out / "metrics.jsonl") if m.get("reward") is not None]
        runs.append((rows, (out / "adapter_model.safetensors").read_bytes()))
    (rows_a, weights_a), (rows_b, weights_b) = runs
    assert len(rows_a) == 3
    # the rewards vary (the comparison is not of constants) and are equal run for run
    assert len({r["rewards/clip/mean"] for r in rows_a}) > 1, rows_a
    diff = [
        (i, k, a[k], b.get(k)) for i, (a, b) in enumerate(zip(rows_a, rows_b)) for k in a if a[k] != b.get(k)
    ]
    assert not diff, diff
    assert weights_a == weights_b
