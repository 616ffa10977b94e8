"""Flow-GRPO's maths without a model: the SDE step against closed forms, its marginals, the
ODE limit against diffusers' Euler sampler, group advantages and the PPO terms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cinerl.core.errors import UserError
from cinerl.training.video import sde
from cinerl.training.video.grpo import group_advantages, ppo_terms, window_of
from cinerl.training.video.grpo_config import VideoGRPOConfig, parse_reward


def _gauss_logpdf(x, mean, std):
    """The normal log-density, written here from its textbook form (not the module's)."""
    return -0.5 * ((x - mean) / std) ** 2 - np.log(std * np.sqrt(2 * np.pi))


def test_log_prob_is_the_closed_form_gaussian_of_flow_grpo_step():
    sig = sde.flow_sigmas(10, shift=5.0)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 4, 2, 2, 2, generator=g)
    v = torch.randn(3, 4, 2, 2, 2, generator=g)
    a = 0.7
    for i in (0, 3, 9):  # the first step (s = 1, Flow-GRPO's sigma_max), a middle one, the last
        x_next, lp = sde.sde_step(x, v, sig, i, a, torch.Generator().manual_seed(i))
        s, s1 = float(sig[i]), float(sig[i + 1])
        s_std = float(sig[1]) if s >= 1 else s
        sigma_t = a * math.sqrt(s_std / (1 - s_std))
        dt = s1 - s
        # Liu et al. 2025 (Flow-GRPO) eq. 9, in numpy
        mean = (
            x.numpy() * (1 + sigma_t**2 / (2 * s) * dt)
            + v.numpy() * (1 + sigma_t**2 * (1 - s) / (2 * s)) * dt
        )
        std = sigma_t * math.sqrt(-dt)
        want = _gauss_logpdf(x_next.numpy().astype(np.float64), mean, std).reshape(3, -1).mean(1)
        np.testing.assert_allclose(lp.numpy(), want, rtol=1e-5, atol=1e-5)
        # and x_next really is mean + std * N(0, 1) with the generator's noise
        eps = torch.randn(tuple(x.shape), generator=torch.Generator().manual_seed(i)).numpy()
        np.testing.assert_allclose(x_next.numpy(), mean + std * eps, rtol=1e-5, atol=1e-5)


def test_sde_keeps_the_flow_marginals():
    """With a point-mass data x0 the exact velocity is (x - x0) / s and x_s ~ N((1 - s) x0, s^2):
    the SDE sampler (noise 0.7) must land on the same marginals as the ODE."""
    x0 = 0.8
    sig = sde.flow_sigmas(40, shift=1.0)
    x = torch.randn(40_000, 1, generator=torch.Generator().manual_seed(1))
    gen = torch.Generator().manual_seed(2)
    for i in range(30):
        s = float(sig[i])
        x, _ = sde.sde_step(x, (x - x0) / s, sig, i, 0.7, gen)
    s = float(sig[30])
    assert float(x.mean()) == pytest.approx((1 - s) * x0, abs=0.02)
    assert float(x.std()) == pytest.approx(s, rel=0.05)


def test_noise_level_zero_is_diffusers_euler_ode_sampler():
    from diffusers import FlowMatchEulerDiscreteScheduler

    from tests.generation.wan_tiny import make_transformer

    torch.manual_seed(0)
    model = make_transformer("ti2v-5b")
    emb = torch.randn(1, 8, 32)
    x0 = torch.randn(1, 48, 2, 4, 4, generator=torch.Generator().manual_seed(3))

    def vel(x, s):
        with torch.no_grad():
            return model(hidden_states=x, timestep=torch.tensor([s * 1000.0]), encoder_hidden_states=emb)[0]

    sched = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=5.0)
    sched.set_timesteps(6)
    ref = x0.clone()
    for t in sched.timesteps:
        ref = sched.step(vel(ref, float(t) / 1000), t, ref, return_dict=False)[0]
    sig = sde.flow_sigmas(6, shift=5.0)
    x = x0.clone()
    for i in range(6):
        x, lp = sde.sde_step(x, vel(x, float(sig[i])), sig, i, 0.0)
        assert lp is None  # the ODE step has no log-probability
    torch.testing.assert_close(x, ref, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="no log-probability"):
        sde.log_prob(x, x, 0.0)


def test_kl_to_reference_is_the_equal_variance_gaussian_kl():
    m1, m2 = torch.tensor([[0.0, 1.0]]), torch.tensor([[0.5, 0.0]])
    # KL(N(m1, s^2) || N(m2, s^2)) = (m1 - m2)^2 / (2 s^2) per element, averaged
    assert float(sde.kl_to_reference(m1, m2, 0.5)[0]) == pytest.approx((0.25 + 1.0) / (2 * 0.25) / 2)
    assert float(sde.kl_to_reference(m1, m1, 0.5)[0]) == 0.0


def test_group_advantages_normalise_drop_and_clip():
    w = {"a": 1.0}
    adv, why = group_advantages([{"a": 1.0}, {"a": 2.0}, {"a": 3.0}], w)
    assert why == "" and adv == pytest.approx([-math.sqrt(1.5), 0.0, math.sqrt(1.5)])
    # a failed clip is removed from its group: the others are normalised among themselves
    adv, _ = group_advantages([{"a": 1.0}, None, {"a": 3.0}], w)
    assert adv[1] is None and adv[0] == pytest.approx(-1.0) and adv[2] == pytest.approx(1.0)
    # a group with zero std is dropped, as is one with fewer than two scored clips
    adv, why = group_advantages([{"a": 0.5}] * 4, w)
    assert adv == [None] * 4 and "zero reward std" in why
    adv, why = group_advantages([{"a": 0.5}, None, None], w)
    assert adv == [None] * 3 and "1 clip" in why
    # clipping at +-c
    adv, _ = group_advantages([{"a": 0.0}] * 9 + [{"a": 1.0}], w, clip=2.0)
    assert max(adv) == 2.0 and min(adv) == pytest.approx(-1 / 3)
    # components z-scored in the group before weighting: scale of a component does not matter
    two = {"a": 1.0, "b": 1.0}
    adv, _ = group_advantages([{"a": 0.0, "b": 0.0}, {"a": 1.0, "b": 1000.0}], two)
    adv1, _ = group_advantages([{"a": 0.0, "b": 0.0}, {"a": 1.0, "b": 1.0}], two)
    assert adv == pytest.approx(adv1)
    assert adv1 == pytest.approx([-1.0, 1.0])


def test_ppo_terms_clip_the_ratio():
    logp = torch.tensor([0.0, 0.01, -0.01])
    old = torch.zeros(3)
    adv = torch.tensor([1.0, 1.0, -1.0])
    t = ppo_terms(logp, old, adv, 1e-3)
    assert t["ratio"].tolist() == pytest.approx([1.0, math.exp(0.01), math.exp(-0.01)])
    assert t["clipped"].tolist() == [0.0, 1.0, 1.0]
    # the pessimistic bound: max(-A r, -A clip(r))
    assert t["pg"].tolist() == pytest.approx([-1.0, -(1 + 1e-3), 1 - 1e-3])
    assert float(t["approx_kl"][1]) == pytest.approx(0.5 * 0.01**2)


def test_window_is_contiguous_seeded_and_inside():
    w = window_of(0, 5, 20, 4)
    assert len(w) == 4 and 0 <= w.start <= 16 and w == window_of(0, 5, 20, 4)
    assert window_of(0, 5, 20, 0) == range(20)
    assert len({window_of(0, s, 20, 4).start for s in range(30)}) > 3


def test_config_and_reward_flags_are_checked():
    assert parse_reward("temporal_flicker=2, flow_smoothness") == {
        "temporal_flicker": 2.0,
        "flow_smoothness": 1.0,
    }
    with pytest.raises(UserError, match="unknown component 'nope'"):
        parse_reward("nope=1")
    with pytest.raises(UserError, match="must be a number"):
        parse_reward("temporal_flicker=x")
    with pytest.raises(UserError, match="noise-level must be above 0"):
        VideoGRPOConfig(model_dir="m", prompts="p", out="o", noise_level=0).check()
    with pytest.raises(UserError, match="one of them"):
        VideoGRPOConfig(model_dir="m", out="o").check()


def test_from_runs_takes_each_scenes_chosen_prompt_once_with_its_first_frame(tmp_path, monkeypatch):
    from types import SimpleNamespace as NS

    import cinerl.core.store as store
    from cinerl.training.video.grpo import PromptItem, prompts_from_runs

    for name in ("a", "b"):
        (tmp_path / name / "keyframes").mkdir(parents=True)
        (tmp_path / name / "report.json").write_text("{}")
    (tmp_path / "not_a_run").mkdir()
    # run b's scene 1 was shot image to video from its keyframe (as the DPO pairs find it)
    (tmp_path / "b" / "keyframes" / "boundary_01.png").write_bytes(b"png")

    def take(prompt, mode="t2v"):
        return NS(prompt=prompt, backend_info={"mode": mode}, last_frame_path="last.png")

    def report(run):
        mode = "i2v" if run.name == "b" else "t2v"
        scene = NS(
            scene=1,
            chosen_attempt=take(f"chosen of {run.name}", mode),
            attempts=[take("other"), take(f"chosen of {run.name}", mode)],
        )
        return NS(scenes=[scene, NS(scene=2, chosen_attempt=take("shared"), attempts=[])])

    monkeypatch.setattr(store, "read_report", report)
    key = str(tmp_path / "b" / "keyframes" / "boundary_01.png")
    assert prompts_from_runs(str(tmp_path)) == [
        PromptItem("chosen of a"),
        PromptItem("shared"),
        PromptItem("chosen of b", key),
    ]
    with pytest.raises(UserError, match="no finished run"):
        prompts_from_runs(str(tmp_path / "not_a_run"))
