"""The learned prompt policy must beat uniform random prompt choices on previz scenes, clearly.

Every arm shoots the same films (same prompts, seeds, scenes); only the policy differs. The
learning arms carry their policy across films through the saved policy file, as `cinerl make`
does. Run with -s to see the reward curves.
"""

import numpy as np
import pytest

from cinerl.core.settings import Settings
from cinerl.runtime.director import make_film

PROMPTS = [
    "A retired lighthouse keeper and her estranged son sail from the stormy coast to the old "
    "harbour town to save the drowning lantern festival.",
    "A young detective chases a thief through the city and into the subway tunnels.",
    "A knight and a wizard cross the desert to reach the mountain castle.",
]
FILMS = 12
EVAL_FILMS = 4
MARGIN = 0.08


def shoot(tmp_path, mode: str, rl: str = "ppo") -> list[float]:
    """Mean attempt reward of each film, in order."""
    means = []
    for i in range(FILMS):
        settings = Settings.of(
            run__seed=1000 + i,
            plan__scenes=3,
            run__attempts=3,
            run__max_attempts=3,
            run__width=96,
            run__height=64,
            run__fps=4,
            policy__mode=mode,
            policy__rl=rl,
            policy__path=str(tmp_path / f"{mode}_{rl}.pt"),
        )
        result = make_film(PROMPTS[i % len(PROMPTS)], tmp_path / f"{mode}_{rl}_{i}", settings)
        totals = [a.reward.total for s in result.report.scenes for a in s.attempts]
        means.append(float(np.mean(totals)))
    return means


@pytest.fixture(scope="module")
def random_curve(tmp_path_factory):
    return shoot(tmp_path_factory.mktemp("random"), "random")


@pytest.mark.parametrize("rl", ["ppo", "grpo"])
def test_learned_policy_beats_random_on_mean_reward(tmp_path, random_curve, rl):
    curve = shoot(tmp_path, "learn", rl)
    print(f"\nfilm  {rl:>6} random")
    for i, (a, b) in enumerate(zip(curve, random_curve)):
        print(f"{i:>4} {a:6.3f} {b:6.3f}")
    late, late_rnd = np.mean(curve[-EVAL_FILMS:]), np.mean(random_curve[-EVAL_FILMS:])
    print(f"last {EVAL_FILMS} films: {rl} {late:.3f} vs random {late_rnd:.3f}")
    assert late > late_rnd + MARGIN
    assert late > np.mean(curve[:EVAL_FILMS]) + MARGIN / 2  # it improved while learning
