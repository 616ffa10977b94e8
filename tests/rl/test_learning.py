"""The PPO prompt policy must beat uniform random prompt choices on previz scenes, clearly.

Both arms shoot the same films (same prompts, seeds, scenes); only the policy differs. PPO
learns across films through its saved policy file, as `cinerl make` does.
"""

import numpy as np

from cinerl.config import Settings
from cinerl.director import make_film

PROMPTS = [
    "A retired lighthouse keeper and her estranged son sail from the stormy coast to the old "
    "harbour town to save the drowning lantern festival.",
    "A young detective chases a thief through the city and into the subway tunnels.",
    "A knight and a wizard cross the desert to reach the mountain castle.",
]
FILMS = 12
EVAL_FILMS = 4


def shoot(tmp_path, mode: str) -> list[float]:
    """Mean attempt reward of each film, in order."""
    means = []
    for i in range(FILMS):
        settings = Settings(seed=1000 + i, scenes=3, attempts=3, max_attempts=3, width=96,
                            height=64, fps=4, policy_mode=mode, learning_rate=1e-2,
                            policy_path=str(tmp_path / f"{mode}.pt"))
        result = make_film(PROMPTS[i % len(PROMPTS)], tmp_path / f"{mode}_{i}", settings)
        totals = [a["reward"]["total"] for s in result.report["scenes"] for a in s["attempts"]]
        means.append(float(np.mean(totals)))
    return means


def test_ppo_beats_random_on_mean_reward(tmp_path):
    ppo = shoot(tmp_path, "learn")
    rnd = shoot(tmp_path, "random")
    print("\nfilm   ppo    random")
    for i, (a, b) in enumerate(zip(ppo, rnd)):
        print(f"{i:>4} {a:6.3f} {b:6.3f}")
    late_ppo, late_rnd = np.mean(ppo[-EVAL_FILMS:]), np.mean(rnd[-EVAL_FILMS:])
    print(f"last {EVAL_FILMS} films: ppo {late_ppo:.3f} vs random {late_rnd:.3f}")
    assert late_ppo > late_rnd + 0.05
    assert np.mean(ppo[-EVAL_FILMS:]) > np.mean(ppo[:EVAL_FILMS])  # it improved while learning
