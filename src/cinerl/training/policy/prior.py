"""The policy's prior: a recipe (the composer's default action, or the user's) as a distribution.

A fresh policy that starts uniform opens every film with candlelight, frantic motion and brief
locks, and pays for exploring again what a template already knows (issue 20). So a fresh policy
starts from the recipe instead: each factor's head gets the logit `strength` on the recipe's
choice and 0 elsewhere, so with greedy first takes the first take of a new user's first scene *is*
the template. The same distribution can anchor learning: `kl_to_prior` is the KL penalty of
KL-regularised policy optimisation (as in RLHF's PPO, Ziegler et al. 2019, arXiv:1909.08593, and
GRPO's reference-policy term, Shao et al. 2024), so the policy moves away from the recipe only
where the reward pays for it.
"""

from __future__ import annotations

import torch

from cinerl.core.vocabulary import ACTION_FACTORS
from cinerl.training.policy.state import CONTEXT_DIM, LIGHTS

# the lighting a cinematographer sets for the light the plan implies (state.LIGHTS, the scene
# light reward's profiles): the conventional answer, which the plan prior makes the first guess
PLAN_LIGHTING = {
    "day": "soft daylight",
    "interior day": "soft daylight",
    "overcast": "overcast",
    "golden": "golden hour",
    "night": "low key",
    "neon": "neon",
    "flame": "candlelight",
}


def prior_logits(recipe: dict[str, str], strength: float) -> dict[str, torch.Tensor]:
    """Per factor, logits with `strength` on the recipe's value and 0 on the others.

    With n values, the recipe's value has probability e^s / (e^s + n - 1): 0.80 for s = 2.5 and
    n = 4, 0.71 for n = 6. strength 0 is the uniform start."""
    out = {}
    for factor, values in ACTION_FACTORS.items():
        lg = torch.zeros(len(values))
        lg[values.index(recipe[factor])] = float(strength)
        out[factor] = lg
    return out


def kl_to_prior(logits: dict[str, torch.Tensor], prior: dict[str, torch.Tensor]) -> torch.Tensor:
    """KL(pi(.|s) || prior) per sample, summed over the factors (they are independent given s,
    so the joint KL is the sum of the factors' KLs)."""
    total = None
    for factor, lg in logits.items():
        log_p = torch.log_softmax(lg, -1)
        log_q = torch.log_softmax(prior[factor], -1)[None, :]
        kl = (log_p.exp() * (log_p - log_q)).sum(-1)
        total = kl if total is None else total + kl
    return total


def plan_prior_weights(strength: float) -> dict[str, torch.Tensor]:
    """The context heads' starting weights (factor -> (values, CONTEXT_DIM)): `strength` from the
    plan's expected light to its conventional lighting (PLAN_LIGHTING), 0 everywhere else."""
    out = {f: torch.zeros(len(values), CONTEXT_DIM) for f, values in ACTION_FACTORS.items()}
    for i, light in enumerate(LIGHTS):
        out["lighting"][ACTION_FACTORS["lighting"].index(PLAN_LIGHTING[light]), i] = float(strength)
    return out
