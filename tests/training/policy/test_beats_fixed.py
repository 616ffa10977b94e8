"""The learned prompt policy against the best fixed recipe on its evaluation prompts (issue 20).

The policy learns on training films, then shoots the evaluation prompts frozen; the best fixed
recipe shoots the same prompts with the same seeds. The recipe is the one benchmarks/policy.py's
coordinate search found on the training prompts at these settings (its JSON,
`best_fixed_recipe`): the search itself is 54 films, too long for a test, and the benchmark
re-runs it. The prompts and seeds are the benchmark's, so the two measure the same thing.

The learner is the default policy (GRPO, one-factor exploration around the greedy take, also when
frozen, the plan prior and facts_per_factor): the benchmark's figures after 8 films are in
benchmarks/results/policy_cpu.json (measured here: 0.758 against the best fixed recipe's 0.663). PPO
(`policy.rl=ppo`) is not what this test holds: it stays below GRPO there.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from cinerl.core.settings import Settings
from cinerl.runtime.director import make_film

ROOT = Path(__file__).resolve().parents[3]
_spec = importlib.util.spec_from_file_location("policy_bench", ROOT / "benchmarks" / "policy.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)
RESULT = ROOT / "benchmarks" / "results" / "policy_cpu.json"
TRAIN_FILMS = 8


def settings(seed: int, **policy) -> Settings:
    return Settings.of(
        run__seed=seed,
        plan__scenes=3,
        run__attempts=3,
        run__max_attempts=3,
        run__width=96,
        run__height=64,
        run__fps=4,
        **{f"policy__{k}": v for k, v in policy.items()},
    )


def chosen_mean(tmp_path: Path, name: str, **policy) -> float:
    """Mean chosen-take reward over the evaluation prompts (the benchmark's seeds)."""
    out = []
    for i, prompt in enumerate(bench.EVAL_PROMPTS):
        report = make_film(prompt, tmp_path / f"{name}_{i}", settings(5000 + i, **policy)).report
        out.append(np.mean([s.chosen_attempt.reward.total for s in report.scenes]))
    return float(np.mean(out))


@pytest.mark.heavy  # 8 training films + 2 x 4 evaluation films at 96x64: 7 minutes on the loaded 2 cores
def test_learned_policy_is_not_below_the_best_fixed_recipe(tmp_path):
    recipe = json.loads(RESULT.read_text())["best_fixed_recipe"]
    policy_file = tmp_path / "policy.pt"
    for n in range(TRAIN_FILMS):
        make_film(
            bench.TRAIN_PROMPTS[n % len(bench.TRAIN_PROMPTS)],
            tmp_path / f"train_{n}",
            settings(1000 + n, mode="learn", path=str(policy_file)),
        )
    learned = chosen_mean(tmp_path, "learned", mode="frozen", path=str(policy_file))
    fixed = chosen_mean(tmp_path, "fixed", mode="template", recipe=recipe)
    print(
        f"\nlearned (default policy, {TRAIN_FILMS} films) {learned:.3f}  best fixed {fixed:.3f}  ({recipe})"
    )
    assert learned >= fixed, f"learned {learned:.3f} < best fixed {fixed:.3f}"
