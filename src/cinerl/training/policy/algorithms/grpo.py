"""GRPO for the prompt policy: PPO's clipped surrogate with group-relative advantages.

Shao et al. 2024, "DeepSeekMath: Pushing the Limits of Mathematical Reasoning in Open Language
Models", arXiv:2402.03300, section 4.1. The group is a scene's attempts: each attempt's advantage
is its reward's z-score within the group, so no critic is learned. The objective is PPO's
clipped surrogate (Schulman et al. 2017) over those advantages; the paper's KL penalty to a
reference policy is `PromptPolicy`'s `prior_kl` term toward the recipe prior (prior.py), off by
default.
Laid out like CleanRL's ppo.py: the advantages, then the loss of one epoch.
"""

from __future__ import annotations

import torch

from cinerl.training.policy.algorithms.ppo import clipped_surrogate

ADV_EPS = 1e-6


def advantages(rewards: torch.Tensor) -> torch.Tensor:
    """A_i = (r_i - mean(r)) / (std(r) + eps) over the group (Shao et al. 2024, outcome
    supervision), with the population std. A group of one has nothing to compare with: A = 0."""
    if len(rewards) < 2:
        return torch.zeros_like(rewards)
    return (rewards - rewards.mean()) / (rewards.std(unbiased=False) + ADV_EPS)


def loss(
    logits: dict[str, torch.Tensor],
    actions: dict[str, torch.Tensor],
    old_log_probs: dict[str, torch.Tensor],
    adv: torch.Tensor,
    clip_eps: float,
    entropy_coef: float,
    clip_eps_high: float | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss to minimise: -mean(L^CLIP) - entropy_coef * mean(S), L^CLIP summed over the prompt
    factors (see ppo.clipped_surrogate). Returns it with the info of the update: policy_loss,
    entropy, approx_kl and clip_fraction."""
    surrogate, entropy, diagnostics = clipped_surrogate(
        logits, actions, old_log_probs, adv, clip_eps, clip_eps_high
    )
    policy_loss = -surrogate.mean()
    total = policy_loss - entropy_coef * entropy.mean()
    info = {
        "policy_loss": float(policy_loss.detach()),
        "entropy": float(entropy.mean().detach()),
        **diagnostics,
    }
    return total, info
