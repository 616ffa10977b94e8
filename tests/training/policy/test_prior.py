"""The prior (issue 20): a fresh policy starts at the recipe, its first take is the recipe, and a
KL penalty keeps it near the recipe unless the reward pays for leaving it. The plan prior adds
the lighting the scene plan's light conventionally takes."""

import math

import numpy as np
import pytest
import torch

from cinerl.core.errors import UserError
from cinerl.core.settings import Settings
from cinerl.core.vocabulary import ACTION_FACTORS, DEFAULT_RECIPE, parse_recipe
from cinerl.training.policy.net import PromptPolicy, Transition
from cinerl.rewards.components.scene_light import expected_light
from cinerl.training.policy.prior import PLAN_LIGHTING, kl_to_prior, prior_logits
from cinerl.training.policy.state import CONTEXT_DIM, LIGHTS, STATE_DIM
from tests.rewards.scene_plan_clips import bible as scene_bible
from tests.rewards.test_scene_light import CASES as LIGHT_CASES

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


def _light_state(light: str) -> np.ndarray:
    s = np.zeros(STATE_DIM, np.float32)
    s[-CONTEXT_DIM + LIGHTS.index(light)] = 1.0  # the context block's expected-light one-hot
    return s


@pytest.mark.parametrize("scene, right", [(scene, right) for scene, right, *_ in LIGHT_CASES])
def test_plan_lighting_is_the_light_the_scene_light_reward_calls_right(scene, right):
    """The plan prior's conventional lighting for each expected light is the one the scene light
    reward's calibration scores right (tests/rewards/test_scene_light.py), so the prior's first
    guess is the reward's answer, not a second opinion that could drift from it."""
    b = scene_bible(**scene)
    assert PLAN_LIGHTING[expected_light(b.scenes[0], b)[0]] == right
    assert set(PLAN_LIGHTING) == set(LIGHTS)


def test_plan_prior_below_the_recipe_keeps_the_first_take_and_explores_the_planned_light_first():
    """plan_prior 2 < prior_strength 2.5: a fresh policy's greedy take is still the recipe in every
    expected light, but when an exploring take changes the lighting of a night scene it picks low
    key with pi's odds without the greedy value, e^2 / (e^2 + 4) = 0.65 (1/5 without the prior)."""
    planned = PromptPolicy(seed=0, explore="one_factor", plan_prior=2.0)
    plain = PromptPolicy(seed=0, explore="one_factor")
    for light in LIGHTS:
        assert planned.greedy(_light_state(light)) == DEFAULT_RECIPE

    def low_key_share(p: PromptPolicy) -> float:
        lit = [a for a, _ in (p.act(_light_state("night"), seed=k) for k in range(700))]
        lit = [a["lighting"] for a in lit if a["lighting"] != DEFAULT_RECIPE["lighting"]]
        assert len(lit) > 50  # one exploring take in 7 changes the lighting
        return lit.count("low key") / len(lit)

    assert low_key_share(planned) == pytest.approx(math.exp(2) / (math.exp(2) + 4), abs=0.12)
    assert low_key_share(plain) == pytest.approx(0.2, abs=0.1)


def test_plan_prior_above_the_recipe_lights_each_scene_as_its_plan_implies():
    p = PromptPolicy.from_settings(Settings.of(policy__plan_prior=3.5).policy)
    assert {light: p.greedy(_light_state(light))["lighting"] for light in LIGHTS} == PLAN_LIGHTING
    assert p.greedy(_light_state("night"))["motion"] == DEFAULT_RECIPE["motion"]  # lighting only
    with pytest.raises(UserError, match="plan_prior"):
        Settings.of(policy__plan_prior=-1)
