"""Online GRPO's forward-only attention (speed.ForwardAttention): the rollouts, the reference and
the evaluation run fa3-fwd where it runs, the trained forward keeps the training kernel, and the
training processors come back untouched. On the CPU with fa3-fwd faked as in
tests/generation/test_wan_attention.py (a module whose flash_attn_func is SDPA, counting calls)."""

from __future__ import annotations

import pytest
import torch

from cinerl.generation.wan import attention
from cinerl.training.video import speed
from cinerl.training.video.grpo import VideoGRPOTrainer

# clean (autouse, so every test here runs it): the probe pointed at the CPU, its cache emptied
from tests.generation.test_wan_attention import clean, fake_fa3  # noqa: F401
from tests.training.video.test_grpo import config


@pytest.fixture
def fa3_here(monkeypatch):
    """fa3-fwd 'importable and probed' on this CPU: the probe runs the fake kernel."""
    monkeypatch.setattr(speed, "_nvidia", lambda device: True)
    return fake_fa3(monkeypatch)


def _setup(model, prompts, out, **kw):
    from cinerl.training.video.strategy import accelerator

    tr = VideoGRPOTrainer(config(model, prompts, out, **kw))
    tr._setup(accelerator(1), "single")
    return tr


def _processors(tr):
    return [mod.processor for mod in attention.wan_attentions(tr.experts.experts["transformer"])]


def test_no_grad_forwards_run_fa3_and_the_trained_forward_does_not(model, prompts, tmp_path, fa3_here):
    tr = _setup(model, prompts, tmp_path / "run")
    assert tr.speed["rollout_attention"] == "fa3_fwd"
    before = _processors(tr)
    probed = fa3_here.calls  # the probe's one call at set-up
    x = torch.randn(2, *tr.shape)
    s = float(tr.sigmas[1])
    with torch.no_grad():
        v_fast = tr.velocity(x, s, 0, lora=True)
    fast_calls = fa3_here.calls - probed
    assert fast_calls == 4  # every attention of the forward: self and cross, 2 blocks
    assert [id(p) for p in _processors(tr)] == [id(p) for p in before]  # the same objects back
    with torch.no_grad():
        tr.velocity(x, s, 0, lora=False)  # the reference forward
    assert fa3_here.calls - probed == 2 * fast_calls
    v_trained = tr.velocity(x, s, 0, lora=True, trained=True)  # gradient on: the training kernel
    assert fa3_here.calls - probed == 2 * fast_calls and v_trained.requires_grad
    # the same function: the fake kernel is SDPA, so the velocities agree to fp32 rounding
    torch.testing.assert_close(v_fast, v_trained.detach(), rtol=1e-5, atol=1e-5)


def test_a_rollout_uses_fa3_and_its_log_probs_match_the_training_pass(
    model, prompts, tmp_path, fa3_here, monkeypatch
):
    tr = _setup(model, prompts, tmp_path / "run", group_size=2, train_steps=3, train_window=2)
    ro = tr.rollout(0, 0, range(0, 2), 0)
    assert fa3_here.calls > 0
    with monkeypatch.context() as m:  # the swap off, as --rollout-attention training has it
        m.setattr(tr.forward_attention, "fast", None)
        ro_plain = tr.rollout(0, 0, range(0, 2), 0)
    for a, b in zip(ro.old_logp, ro_plain.old_logp):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


def test_the_choice_and_the_reasons(model, prompts, tmp_path, monkeypatch, fa3_here):
    tr = _setup(model, prompts, tmp_path / "training", rollout_attention="training")
    assert tr.speed["rollout_attention"] == "training" and tr.forward_attention.fast is None
    assert "--rollout-attention training" in tr.forward_attention.why
    monkeypatch.undo()
    fa = speed.ForwardAttention([tr.experts.experts["transformer"]], torch.float32)
    assert fa.kernel == "training" and "needs NVIDIA CUDA" in fa.why
    with pytest.raises(ValueError, match="auto or training"):
        speed.ForwardAttention([tr.experts.experts["transformer"]], torch.float32, "fa3")
