"""The prior (issue 20): a fresh policy starts at the recipe, its first take is the recipe, and a
KL penalty keeps it near the recipe unless the reward pays for leaving it."""

import math

import numpy as np
import pytest
import torch

from cinerl.core.errors import UserError
from cinerl.core.settings import Settings
from cinerl.core.vocabulary import ACTION_FACTORS, DEFAULT_RECIPE, parse_recipe
from cinerl.training.policy.net import PromptPolicy, Transition
from cinerl.training.policy.prior import kl_to_prior, prior_logits
from cinerl.training.policy.state import STATE_DIM

STATES = [np.random.default_rng(i).normal(size=STATE_DIM).astype(np.float32) for i in range(5)]


def probs(policy: PromptPolicy, state: np.ndarray, factor: str) -> torch.Tensor:
    with torch.no_grad():
        logits, _ = policy.net(torch.as_tensor(state)[None])
    return torch.softmax(logits[factor][0], -1)


def test_a_fresh_policy_greedily_takes_the_recipe_in_any_state():
    p = PromptPolicy(seed=0)
    for i, s in enumerate(STATES):
        action, log_prob = p.act(s, seed=i, greedy=True)
        assert action == DEFAULT_RECIPE
        # log pi(recipe) = sum over factors of log(e^s / (e^s + n - 1)), s = 2.5
        expected = sum(
            math.log(math.exp(2.5) / (math.exp(2.5) + len(v) - 1)) for v in ACTION_FACTORS.values()
        )
        assert log_prob == pytest.approx(expected, abs=1e-5)
    # exploring takes still explore: sampled actions differ from the recipe and from each other
    sampled = {tuple(p.act(STATES[0], seed=k)[0].values()) for k in range(30)}
    assert len(sampled) > 10 and tuple(DEFAULT_RECIPE.values()) in sampled


def test_a_user_recipe_moves_the_prior_and_template_mode_always_takes_it():
    s = Settings.of(policy__recipe="lighting=neon, camera-move=handheld", policy__mode="template")
    p = PromptPolicy.from_settings(s.policy)
    want = {**DEFAULT_RECIPE, "lighting": "neon", "camera_move": "handheld"}
    assert all(p.act(st, seed=k) == (want, 0.0) for k, st in enumerate(STATES))
    learner = PromptPolicy.from_settings(Settings.of(policy__recipe="lighting=neon").policy)
    assert learner.act(STATES[1], seed=3, greedy=True)[0]["lighting"] == "neon"
    with pytest.raises(UserError, match=r"lighting='disco': choose one of soft daylight"):
        Settings.of(policy__recipe="lighting=disco")
    with pytest.raises(ValueError, match="use factor=value"):
        parse_recipe("neon")


def test_temperature_flattens_exploration_but_not_the_greedy_take():
    cold = PromptPolicy(seed=0, temperature=0.25)
    hot = PromptPolicy(seed=0, temperature=4.0)
    n = 40

    def share_of_recipe(p):
        acts = [p.act(STATES[0], seed=k)[0] for k in range(n)]
        return np.mean([a["lighting"] == DEFAULT_RECIPE["lighting"] for a in acts])

    assert share_of_recipe(cold) > 0.9 > 0.5 > share_of_recipe(hot)
    assert cold.act(STATES[0], 0, greedy=True) == hot.act(STATES[0], 0, greedy=True)


def test_kl_to_prior_is_zero_at_start_and_holds_the_policy_near_the_recipe():
    prior = prior_logits(DEFAULT_RECIPE, 2.5)
    fresh = PromptPolicy(seed=0)
    logits, _ = fresh.net(torch.as_tensor(np.stack(STATES)))
    assert torch.allclose(kl_to_prior(logits, prior), torch.zeros(len(STATES)), atol=1e-6)

    def trained(prior_kl: float) -> float:
        # the reward pays a little for candlelight; the recipe says soft daylight
        p = PromptPolicy(algorithm="grpo", seed=0, prior_kl=prior_kl)
        info = {}
        for step in range(25):
            batch = []
            for k in range(4):
                a, _ = p.act(STATES[0], seed=step * 10 + k)
                batch.append(Transition(STATES[0], a, 0.6 if a["lighting"] == "candlelight" else 0.5))
            info = p.update(batch)
        assert set(info) >= {"approx_kl", "clip_fraction", *(f"entropy/{f}" for f in ACTION_FACTORS)}
        assert ("kl_to_prior" in info) == (prior_kl > 0)
        return float(probs(p, STATES[0], "lighting")[ACTION_FACTORS["lighting"].index("candlelight")])

    free, anchored = trained(0.0), trained(2.0)
    assert free > 0.5  # the reward moved the free policy off the recipe
    assert anchored < free - 0.2  # the KL penalty kept the anchored one nearer the recipe
