"""The maths of the update rules at initialisation: PPO (Schulman et al. 2017) and GRPO (Shao et
al. 2024), as `training/policy/algorithms/` writes them."""

import math

import numpy as np
import pytest
import torch

from cinerl.core.vocabulary import ACTION_FACTORS
from cinerl.training.policy.algorithms import grpo, ppo
from cinerl.training.policy.net import FACTORS, PromptPolicy, Transition
from cinerl.training.policy.state import STATE_DIM

STATES = np.stack(
    [
        np.linspace(-1, 1, STATE_DIM),
        np.linspace(1, -1, STATE_DIM),
        np.cos(np.arange(STATE_DIM)),
        np.sin(np.arange(STATE_DIM)),
    ]
).astype(np.float32)
REWARDS = [0.2, 0.9, 0.4, 0.65]
UNIFORM_ENTROPY = sum(math.log(len(v)) for v in ACTION_FACTORS.values())


def batch_for(policy: PromptPolicy) -> list[Transition]:
    return [Transition(s, policy.act(s, seed=k)[0], r) for k, (s, r) in enumerate(zip(STATES, REWARDS))]


def tensors(policy: PromptPolicy, batch: list[Transition]):
    """What PromptPolicy.update hands the loss on its first epoch: the net's outputs now, and the
    behaviour policy's log-probabilities, which are the same net's."""
    states = torch.as_tensor(np.stack([t.state for t in batch]))
    actions = {f: torch.tensor([ACTION_FACTORS[f].index(t.action[f]) for t in batch]) for f in FACTORS}
    with torch.no_grad():
        old_logits, _ = policy.net(states)
    logits, values = policy.net(states)
    rewards = torch.tensor([t.reward for t in batch])
    return logits, values, actions, ppo.chosen_log_probs(old_logits, actions), rewards


def record_epochs(monkeypatch, module) -> list[dict]:
    """The info of every epoch of the updates that follow."""
    infos, loss = [], module.loss

    def recording(*args, **kwargs):
        total, info = loss(*args, **kwargs)
        infos.append(info)
        return total, info

    monkeypatch.setattr(module, "loss", recording)
    return infos


@pytest.mark.parametrize("algorithm", ["ppo", "grpo"])
def test_first_epoch_ratio_is_one_so_no_kl_and_no_clipping(monkeypatch, algorithm):
    p = PromptPolicy(algorithm=algorithm, seed=0, prior_strength=0.0)
    logits, _, actions, old_lp, _ = tensors(p, batch_for(p))
    for f in FACTORS:
        lp = torch.log_softmax(logits[f], -1).gather(1, actions[f][:, None]).squeeze(1)
        assert torch.equal(torch.exp(lp - old_lp[f]), torch.ones(len(STATES)))

    infos = record_epochs(monkeypatch, ppo if algorithm == "ppo" else grpo)
    returned = p.update(batch_for(p))
    assert len(infos) == p.epochs == 4 and returned == infos[-1]
    assert infos[0]["approx_kl"] == 0.0 and infos[0]["clip_fraction"] == 0.0
    assert infos[0]["entropy"] == pytest.approx(UNIFORM_ENTROPY, rel=1e-6)  # zero logits: uniform
    # later epochs move away from the behaviour policy, and the estimator sees it
    assert all(i["approx_kl"] > 0.0 for i in infos[1:])
    expected = {
        "policy_loss",
        "entropy",
        "approx_kl",
        "clip_fraction",
        "epochs",
        *(f"entropy/{f}" for f in FACTORS),
    }
    # the factors' entropies add up to the policy's (they are independent given the state)
    assert sum(infos[0][f"entropy/{f}"] for f in FACTORS) == pytest.approx(infos[0]["entropy"], rel=1e-5)
    assert set(returned) == (expected | {"value_loss"} if algorithm == "ppo" else expected)


def test_ppo_loss_at_ratio_one_is_minus_mean_advantage_plus_value_and_entropy_terms():
    p = PromptPolicy(algorithm="ppo", seed=0, prior_strength=0.0)
    logits, values, actions, old_lp, rewards = tensors(p, batch_for(p))
    # advantages that are not centred, so that the policy term is not ~0
    adv = torch.tensor([0.5, -1.0, 2.0, 0.25])
    reward_mean, clip_eps, entropy_coef, value_coef = 0.3, 0.2, 0.01, 0.5
    loss, info = ppo.loss(
        logits, values, actions, old_lp, adv, rewards, reward_mean, clip_eps, entropy_coef, value_coef
    )
    # at ratio 1, min(r A, clip(r) A) = A for every factor; the surrogate sums the factors' terms
    policy_loss = -len(FACTORS) * float(adv.mean())
    value_loss = float(((reward_mean + values.detach() - rewards) ** 2).mean())
    assert info["policy_loss"] == pytest.approx(policy_loss, rel=1e-6)
    assert info["value_loss"] == pytest.approx(value_loss, rel=1e-6)
    assert info["entropy"] == pytest.approx(UNIFORM_ENTROPY, rel=1e-6)
    assert float(loss.detach()) == pytest.approx(
        policy_loss - entropy_coef * UNIFORM_ENTROPY + value_coef * value_loss, rel=1e-6
    )
    assert info["approx_kl"] == 0.0 and info["clip_fraction"] == 0.0

    g_loss, g_info = grpo.loss(logits, actions, old_lp, adv, clip_eps, entropy_coef)
    assert g_info["policy_loss"] == info["policy_loss"] and "value_loss" not in g_info
    assert float(g_loss.detach()) == pytest.approx(policy_loss - entropy_coef * UNIFORM_ENTROPY, rel=1e-6)


def test_approx_kl_and_clip_fraction_are_cleanrls_estimators():
    p = PromptPolicy(seed=0, prior_strength=0.0)
    logits, _, actions, old_lp, _ = tensors(p, batch_for(p))
    # move the behaviour policy by known log-ratios: log r = -shift
    shifts = {f: torch.tensor([0.0, 0.1, -0.3, 0.5]) * (i + 1) / len(FACTORS) for i, f in enumerate(FACTORS)}
    shifted = {f: old_lp[f] + shifts[f] for f in FACTORS}
    _, _, diag = ppo.clipped_surrogate(logits, actions, shifted, torch.ones(4), clip_eps=0.2)
    log_ratio = -torch.stack([shifts[f] for f in FACTORS])
    ratio = torch.exp(log_ratio)
    assert diag["approx_kl"] == pytest.approx(float(((ratio - 1) - log_ratio).sum(0).mean()), rel=1e-5)
    assert diag["approx_kl"] > 0.0
    assert diag["clip_fraction"] == pytest.approx(float(((ratio - 1).abs() > 0.2).float().mean()), abs=1e-7)
    assert 0.0 < diag["clip_fraction"] < 1.0


def test_clip_higher_lets_a_rare_good_value_rise_past_1_plus_eps_and_keeps_the_lower_clip():
    """DAPO's clip-higher (Yu et al. 2025): the ratio of a positive-advantage sample is clipped at
    1 + clip_eps_high, a negative one's still at 1 - clip_eps."""
    p = PromptPolicy(seed=0, prior_strength=0.0)
    logits, _, actions, old_lp, _ = tensors(p, batch_for(p))
    log_r = torch.tensor([math.log(1.5), math.log(1.5), math.log(0.5), math.log(0.5)])
    shifted = {f: old_lp[f] - log_r for f in FACTORS}  # ratio 1.5, 1.5, 0.5, 0.5 in every factor
    adv = torch.tensor([1.0, -1.0, 1.0, -1.0])
    k = len(FACTORS)
    sym, _, sym_diag = ppo.clipped_surrogate(logits, actions, shifted, adv, clip_eps=0.2)
    high, _, high_diag = ppo.clipped_surrogate(logits, actions, shifted, adv, clip_eps=0.2, clip_eps_high=1.0)
    # min(r A, clip(r) A) per factor, summed over the factors
    assert sym.tolist() == pytest.approx([1.2 * k, -1.5 * k, 0.5 * k, -0.8 * k], rel=1e-5)
    assert high.tolist() == pytest.approx([1.5 * k, -1.5 * k, 0.5 * k, -0.8 * k], rel=1e-5)
    assert sym_diag["clip_fraction"] == pytest.approx(1.0)  # 1.5 > 1.2 and 0.5 < 0.8
    assert high_diag["clip_fraction"] == pytest.approx(0.5)  # 1.5 < 2.0: only the 0.5s are out


def test_grpo_advantages_are_the_groups_z_scores():
    rewards = torch.tensor(REWARDS)
    adv = grpo.advantages(rewards)
    r = np.asarray(REWARDS, dtype=np.float32)
    np.testing.assert_allclose(adv.numpy(), (r - r.mean()) / (r.std() + grpo.ADV_EPS), rtol=1e-6)
    assert float(adv.sum()) == pytest.approx(0.0, abs=1e-5)
    assert float(adv.std(unbiased=False)) == pytest.approx(1.0, abs=1e-4)
    assert torch.equal(grpo.advantages(torch.tensor([0.7])), torch.zeros(1))
    assert torch.equal(grpo.advantages(torch.full((3,), 0.5)), torch.zeros(3))


def test_ppo_advantages_are_centred_residuals_over_the_running_std():
    rewards = torch.tensor(REWARDS)
    values = torch.tensor([0.1, -0.2, 0.0, 0.3])
    adv = ppo.advantages(rewards, values, reward_mean=0.5, reward_std=0.2)
    raw = rewards - (0.5 + values)
    torch.testing.assert_close(adv, (raw - raw.mean()) / 0.2)
    assert float(adv.sum()) == pytest.approx(0.0, abs=1e-5)
    # a tiny running std is floored, so two nearly equal takes do not get advantages of +-1
    tiny = ppo.advantages(rewards, values, reward_mean=0.5, reward_std=1e-4)
    torch.testing.assert_close(tiny, (raw - raw.mean()) / ppo.ADV_STD_FLOOR)
    assert torch.equal(ppo.advantages(rewards[:1], values[:1], 0.5, 0.2), torch.zeros(1))


@pytest.mark.parametrize("algorithm", ["ppo", "grpo"])
def test_save_load_round_trip_is_exact(tmp_path, algorithm):
    p = PromptPolicy(algorithm=algorithm, seed=0, prior_strength=0.0)
    p.update(batch_for(p))
    q = PromptPolicy(algorithm=algorithm, seed=99, prior_strength=0.0)
    assert q.load(p.save(tmp_path / "policy.pt"))
    states = torch.as_tensor(STATES)
    with torch.no_grad():
        (lp, vp), (lq, vq) = p.net(states), q.net(states)
    assert all(torch.equal(lp[f], lq[f]) for f in FACTORS) and torch.equal(vp, vq)
    assert (q.version, q.history) == (p.version, p.history)
    assert (q.stats.count, q.stats.mean, q.stats.m2) == (p.stats.count, p.stats.mean, p.stats.m2)
    # the optimiser state came too: the next update is the same on both
    batch = batch_for(p)
    assert p.update(batch) == q.update(batch)
    assert all(torch.equal(a, b) for a, b in zip(p.net.parameters(), q.net.parameters()))
