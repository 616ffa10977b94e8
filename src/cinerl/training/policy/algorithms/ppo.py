"""PPO for the prompt policy: the clipped surrogate with a learned value baseline.

Schulman, Wolski, Dhariwal, Radford and Klimov 2017, "Proximal Policy Optimization Algorithms",
arXiv:1707.06347. Laid out like CleanRL's ppo.py: the advantages, then the loss of one epoch.

Each attempt at a scene is a one-step episode: the state is the scene, the action is one choice
per prompt factor, the return is the clip's reward. So the advantage needs no GAE, and the critic
predicts the reward itself (as an offset from the running mean of rewards).
"""

from __future__ import annotations

import torch

ADV_STD_FLOOR = 0.05  # two nearly equal takes must not get advantages of +-1


def chosen_log_probs(
    logits: dict[str, torch.Tensor], actions: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """log pi(a_f | s) of each factor f's chosen index, per sample."""
    return {
        f: torch.log_softmax(lg, -1).gather(1, actions[f][:, None]).squeeze(1) for f, lg in logits.items()
    }


def advantages(
    rewards: torch.Tensor, values: torch.Tensor, reward_mean: float, reward_std: float
) -> torch.Tensor:
    """A_t = r_t - V(s_t), with V(s_t) = running reward mean + the critic's residual.

    Then PPO's advantage normalisation, with the running reward std as the scale: centred over
    the batch (which also removes a scene's overall difficulty) and divided by
    max(std, ADV_STD_FLOOR). A batch of one attempt has nothing to compare with: A = 0.
    """
    if len(rewards) < 2:
        return torch.zeros_like(rewards)
    adv = rewards - (reward_mean + values)
    return (adv - adv.mean()) / max(reward_std, ADV_STD_FLOOR)


def clipped_surrogate(
    logits: dict[str, torch.Tensor],
    actions: dict[str, torch.Tensor],
    old_log_probs: dict[str, torch.Tensor],
    adv: torch.Tensor,
    clip_eps: float,
    clip_eps_high: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
    """Per sample: L^CLIP = sum over factors f of min(r_f A, clip(r_f, 1 - eps, 1 + eps) A),
        r_f = pi(a_f | s) / pi_old(a_f | s) (Schulman et al. 2017, eq. 7), and the entropy of the
        policy, summed over factors. clip_eps_high, when given, replaces the upper bound 1 + eps
        (DAPO's clip-higher, Yu et al. 2025, arXiv:2503.14476: a rare good value may rise faster).
        Also the diagnostics, CleanRL's: approx_kl, the estimator (r - 1) - log r of
        KL(pi_old || pi) (summed over factors: the factors are independent given the state, so the
        policy's KL is the sum of theirs; mean over samples), and clip_fraction,
        the share of (sample, factor) ratios outside the clip range, and each factor's entropy
    ("entropy/<factor>"), which shows which choices the policy has settled."""
    high = clip_eps if clip_eps_high is None else clip_eps_high
    n = len(adv)
    surrogate = torch.zeros(n)
    entropy = torch.zeros(n)
    log_ratios = []
    factor_entropy: dict[str, float] = {}
    for f, lg in logits.items():
        # clip each factor's own ratio: a joint ratio over seven factors would let each factor
        # move only ~(1.2)^(1/7) per update
        logp_all = torch.log_softmax(lg, -1)
        lp = logp_all.gather(1, actions[f][:, None]).squeeze(1)
        log_ratio = lp - old_log_probs[f]
        ratio = torch.exp(log_ratio)
        surrogate = surrogate + torch.min(ratio * adv, ratio.clamp(1 - clip_eps, 1 + high) * adv)
        h = -(logp_all.exp() * logp_all).sum(-1)
        entropy = entropy + h
        factor_entropy[f"entropy/{f}"] = float(h.detach().mean())
        log_ratios.append(log_ratio.detach())
    with torch.no_grad():
        log_ratio = torch.stack(log_ratios)  # (factors, samples)
        ratio = torch.exp(log_ratio)
        approx_kl = ((ratio - 1) - log_ratio).sum(0).mean()
        clip_fraction = ((ratio < 1 - clip_eps) | (ratio > 1 + high)).float().mean()
    diagnostics = {"approx_kl": float(approx_kl), "clip_fraction": float(clip_fraction), **factor_entropy}
    return surrogate, entropy, diagnostics


def loss(
    logits: dict[str, torch.Tensor],
    values: torch.Tensor,
    actions: dict[str, torch.Tensor],
    old_log_probs: dict[str, torch.Tensor],
    adv: torch.Tensor,
    rewards: torch.Tensor,
    reward_mean: float,
    clip_eps: float,
    entropy_coef: float,
    value_coef: float,
    clip_eps_high: float | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss to minimise, -(L^CLIP - c1 L^VF + c2 S) (Schulman et al. 2017, eq. 9):

        loss = -mean(L^CLIP) - entropy_coef * mean(S) + value_coef * L^VF,
        L^VF = mean((reward_mean + V_residual(s) - r)^2)

    Returns it with the info of the update: value_loss, policy_loss, entropy, approx_kl and
    clip_fraction."""
    surrogate, entropy, diagnostics = clipped_surrogate(
        logits, actions, old_log_probs, adv, clip_eps, clip_eps_high
    )
    policy_loss = -surrogate.mean()
    total = policy_loss - entropy_coef * entropy.mean()
    # the critic predicts the reward's offset from the running mean
    value_loss = ((reward_mean + values - rewards) ** 2).mean()
    total = total + value_coef * value_loss
    info = {
        "value_loss": float(value_loss.detach()),
        "policy_loss": float(policy_loss.detach()),
        "entropy": float(entropy.mean().detach()),
        **diagnostics,
    }
    return total, info
