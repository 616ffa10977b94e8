"""The update rules of the prompt policy, one module each, readable top to bottom.

`ppo`: the clipped surrogate with a learned value baseline (Schulman et al. 2017). `grpo`: the
same clipped surrogate with group-relative advantages and no critic (Shao et al. 2024). Each
module is an `advantages` function and a `loss`; `PromptPolicy.update` runs the epochs.
"""

from cinerl.training.policy.algorithms import grpo, ppo

ALGORITHMS = ("ppo", "grpo")

__all__ = ["ALGORITHMS", "grpo", "ppo"]
