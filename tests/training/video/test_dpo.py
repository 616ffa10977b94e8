"""Flow-DPO on a tiny random WanTransformer3DModel (CPU, no hub): the maths at initialisation,
learning one pair, shared noise and timestep, exact resume, the LoRA's diffusers format."""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from cinerl.core.errors import UserError
from cinerl.training.video import flow_matching as fm
from cinerl.training.video.dpo import (
    VideoDPOConfig,
    flow_dpo_loss,
    global_indices,
    pair_inputs,
    train,
)
from tests.training.video.tiny import write_pairs, write_transformers


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return write_transformers("ti2v-5b", tmp_path_factory.mktemp("wan") / "model")


def config(model, pairs, out, **kw) -> VideoDPOConfig:
    base = dict(
        model_dir=str(model),
        pairs=str(pairs),
        out=str(out),
        steps=4,
        warmup_steps=0,
        learning_rate=1e-3,
        lora_rank=4,
        lora_alpha=4,
        checkpoint_every=2,
    )
    return VideoDPOConfig(**{**base, **kw})


def lora_weights(out) -> dict[str, torch.Tensor]:
    return load_file(str(out / "pytorch_lora_weights.safetensors"))


# the maths -------------------------------------------------------------------------------------
def test_flow_matching_line_target_and_logit_normal_timesteps():
    x0, eps = torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    t = torch.tensor([0.0, 1.0])
    xt = fm.noisy(x0, eps, t)
    assert torch.equal(xt[0], x0[0]) and torch.equal(xt[1], eps[1])
    assert torch.equal(fm.velocity_target(x0, eps), eps - x0)
    ts = fm.logit_normal(20000, torch.Generator().manual_seed(0))
    assert 0 < ts.min() and ts.max() < 1 and abs(float(ts.median()) - 0.5) < 0.02
    logit = torch.log(ts / (1 - ts))
    assert abs(float(logit.mean())) < 0.03 and abs(float(logit.std()) - 1) < 0.03
    hi = fm.logit_normal(5000, torch.Generator().manual_seed(1), lo=0.875, hi=1.0)
    assert hi.min() >= 0.875 and hi.max() <= 1.0
    # bf16 predictions, fp32 error
    mse = fm.per_sample_mse(torch.ones(2, 4, dtype=torch.bfloat16), torch.zeros(2, 4))
    assert mse.dtype == torch.float32 and torch.equal(mse, torch.ones(2))


def test_loss_is_log_2_when_theta_is_the_reference():
    m = torch.tensor([0.3, 1.7])
    out = flow_dpo_loss(m, m + 1, m, m + 1, beta=100.0)
    assert torch.allclose(out["loss"], torch.full((2,), math.log(2)))
    assert torch.equal(out["accuracy"], torch.zeros(2)) and torch.equal(out["margin"], torch.zeros(2))
    better = flow_dpo_loss(
        torch.tensor([0.9]), torch.tensor([1.0]), torch.tensor([1.0]), torch.tensor([1.0]), 100.0
    )
    assert better["accuracy"].item() == 1.0 and better["loss"].item() < math.log(2)


def test_pair_inputs_share_noise_and_timestep():
    x_w, x_l, noise, t = torch.randn(2, 4), torch.randn(2, 4), torch.randn(2, 4), torch.rand(2)
    x0, eps, tt = pair_inputs(x_w, x_l, noise, t)
    assert torch.equal(eps[:2], eps[2:]) and torch.equal(tt[:2], tt[2:])
    assert torch.equal(x0[:2], x_w) and torch.equal(x0[2:], x_l)


def test_data_order_is_a_permutation_per_epoch_and_rank_independent():
    seen = [i for s in range(3) for i in global_indices(6, 0, s, 2)]
    assert sorted(seen) == list(range(6))
    assert global_indices(6, 0, 1, 2) == global_indices(6, 0, 1, 2)


# training ----------------------------------------------------------------------------------------
def test_loss_is_log_2_at_initialisation(model, tmp_path):
    pairs = write_pairs(tmp_path / "data", n=2)
    res = train(config(model, pairs, tmp_path / "out", steps=1))
    first = res.metrics[0]
    assert first["loss"] == pytest.approx(math.log(2), abs=1e-7)
    assert first["margin"] == 0.0 and first["accuracy"] == 0.0
    assert first["mse_w"] == first["ref_w"] and first["mse_l"] == first["ref_l"]


def test_one_fixed_pair_reaches_accuracy_1_within_a_few_steps(model, tmp_path):
    pairs = write_pairs(tmp_path / "data", n=1)
    res = train(config(model, pairs, tmp_path / "out", steps=8, checkpoint_every=100))
    acc = [m["accuracy"] for m in res.metrics]
    assert acc[-4:] == [1.0] * 4, acc
    assert res.metrics[-1]["loss"] < math.log(2)
    rows = [json.loads(line) for line in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 9))
    assert {"loss", "accuracy", "margin", "lr", "grad_norm"} <= set(rows[0])
    assert (tmp_path / "out" / "training_report.html").read_text().count("<svg") >= 3


def test_chosen_and_rejected_share_noise_and_timestep_in_the_forward(model, tmp_path, monkeypatch):
    """Every transformer call sees 2B samples: the same timesteps, and noisy inputs whose noise
    (recovered from x_t = (1 - t) x0 + t eps with the known x0) is the same for both."""
    from cinerl.generation.wan.take_latents import read_take_latents
    from cinerl.training.video.model import Experts

    pairs = write_pairs(tmp_path / "data", n=1)
    x_w = read_take_latents(tmp_path / "data" / "pair0_w.latents.safetensors").latents
    x_l = read_take_latents(tmp_path / "data" / "pair0_l.latents.safetensors").latents
    calls = []
    original = Experts.forward

    def spy(self, expert, **kw):
        calls.append((kw["hidden_states"].detach().clone(), kw["timestep"].detach().clone()))
        return original(self, expert, **kw)

    monkeypatch.setattr(Experts, "forward", spy)
    train(config(model, pairs, tmp_path / "out", steps=3))
    assert len(calls) == 6  # reference and trained pass per step
    for hidden, ts in calls:
        assert hidden.shape[0] == 2 and torch.equal(ts[0], ts[1])
        t = float(ts[0]) / 1000
        eps_w = (hidden[0] - (1 - t) * x_w) / t
        eps_l = (hidden[1] - (1 - t) * x_l) / t
        assert torch.allclose(eps_w, eps_l, atol=1e-4)


def test_first_frame_conditioning_masks_frame_0_and_its_timesteps(model, tmp_path):
    pairs = write_pairs(tmp_path / "data", n=1, cond=True)
    res = train(config(model, pairs, tmp_path / "out", steps=2))
    assert res.metrics[0]["loss"] == pytest.approx(math.log(2), abs=1e-7)
    x = torch.randn(1, 48, 3, 2, 4)
    cond = torch.randn(1, 48, 1, 2, 4)
    hidden, ts, weight = fm.model_inputs(x, torch.tensor([0.5]), "first_frame", cond)
    assert torch.equal(hidden[:, :, 0], cond[:, :, 0]) and torch.equal(hidden[:, :, 1:], x[:, :, 1:])
    assert ts.shape == (1, 3 * 1 * 2) and torch.equal(ts[0, :2], torch.zeros(2)) and (ts[0, 2:] == 500).all()
    assert weight[0, 0, 0].sum() == 0 and weight[0, 0, 1:].min() == 1


def test_stopping_and_running_again_reaches_the_same_lora_exactly(model, tmp_path):
    pairs = write_pairs(tmp_path / "data", n=3)
    whole = tmp_path / "whole"
    train(config(model, pairs, whole, steps=6, batch_size=2))
    parts = tmp_path / "parts"
    train(config(model, pairs, parts, steps=3, batch_size=2))  # step 3 is a checkpoint (the end)
    assert (parts / "checkpoints" / "step_000003").is_dir()
    res = train(config(model, pairs, parts, steps=6, batch_size=2))
    a, b = lora_weights(whole), lora_weights(parts)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [m["step"] for m in res.metrics] == list(range(1, 7))
    assert sorted(p.name for p in (parts / "checkpoints").iterdir()) == ["step_000004", "step_000006"]


def test_a_different_config_in_the_same_out_is_refused(model, tmp_path):
    pairs = write_pairs(tmp_path / "data", n=1)
    train(config(model, pairs, tmp_path / "out", steps=1))
    with pytest.raises(UserError, match="another config .*beta"):
        train(config(model, pairs, tmp_path / "out", steps=2, beta=50.0))


def test_the_lora_is_in_diffusers_format_and_loads_back_exactly(model, tmp_path):
    from diffusers import WanTransformer3DModel

    from cinerl.generation.wan.lora import MANIFEST

    pairs = write_pairs(tmp_path / "data", n=1)
    out = tmp_path / "out"
    train(config(model, pairs, out, steps=3))
    sd = lora_weights(out)
    assert all(k.startswith("transformer.blocks.") and ".lora_" in k for k in sd)
    assert any(".attn1.to_q.lora_B" in k for k in sd) and any(".attn2.to_out.0.lora_A" in k for k in sd)
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["variant"] == "ti2v-5b" and manifest["experts"] == ["transformer"]
    # the checkpoint's trained transformer against a fresh one with the saved LoRA loaded
    from cinerl.training.video.model import add_lora, lora_targets

    trained = WanTransformer3DModel.from_pretrained(str(model / "transformer"))
    add_lora(trained, 4, 4, lora_targets("attn"))
    ckpt = load_file(str(out / "checkpoints" / "step_000003" / "lora.safetensors"))
    with torch.no_grad():
        for n, p in trained.named_parameters():
            if p.requires_grad:
                p.copy_(ckpt["experts.transformer." + n])
    loaded = WanTransformer3DModel.from_pretrained(str(model / "transformer"))
    from diffusers import WanPipeline

    state, meta = WanPipeline.lora_state_dict(str(out), return_lora_metadata=True)
    loaded.load_lora_adapter(state, prefix="transformer", metadata=meta.get("transformer") if meta else None)
    g = torch.Generator().manual_seed(0)
    kw = dict(
        hidden_states=torch.randn(1, 48, 3, 2, 4, generator=g),
        timestep=torch.tensor([500.0]),
        encoder_hidden_states=torch.randn(1, 8, 32, generator=g),
        return_dict=False,
    )
    with torch.no_grad():
        assert torch.equal(trained.eval()(**kw)[0], loaded.eval()(**kw)[0])


# A14B: two experts, each on its own timesteps -----------------------------------------------------
@pytest.mark.parametrize("variant", ["t2v-a14b", "i2v-a14b"])
def test_a14b_trains_both_experts_on_their_timestep_ranges_and_loads_into_both(variant, tmp_path):
    from cinerl.core.settings import WanSettings
    from cinerl.generation.wan.backend import WanBackend
    from tests.generation.wan_tiny import write_tiny_model

    model = write_tiny_model(variant, tmp_path / "model")
    pairs = write_pairs(tmp_path / "data", variant=variant, n=2)
    out = tmp_path / "out"
    res = train(config(model, pairs, out, steps=8, batch_size=2))
    assert res.metrics[0]["loss"] == pytest.approx(math.log(2), abs=1e-7)
    boundary = {"t2v-a14b": 0.875, "i2v-a14b": 0.9}[variant]
    for m in res.metrics:  # the high-noise expert above the boundary, the low-noise one below
        assert (m["t"] >= boundary) == (m["expert"] == "transformer")
    assert {m["expert"] for m in res.metrics} == {"transformer", "transformer_2"}
    manifest = json.loads((out / "cinerl_lora.json").read_text())
    assert manifest["experts"] == ["transformer", "transformer_2"]
    assert (out / "pytorch_lora_weights_transformer_2.safetensors").is_file()
    backend = WanBackend(WanSettings(variant=variant, model_dir=str(model), lora=str(out), compile="off"))
    backend.load()
    assert backend.stats["lora"]["experts"] == ["transformer", "transformer_2"]
    ckpt = load_file(str(out / "checkpoints" / "step_000008" / "lora.safetensors"))
    for name in ("transformer", "transformer_2"):
        loaded = dict(getattr(backend.comp, name).named_parameters())
        trained = {
            k.removeprefix(f"experts.{name}."): v for k, v in ckpt.items() if k.startswith(f"experts.{name}.")
        }
        assert trained and all(
            torch.equal(loaded[k.replace(".default.", ".cinerl.")], v) for k, v in trained.items()
        )
    high = train(config(model, pairs, tmp_path / "high", steps=3, expert="high"))
    assert {m["expert"] for m in high.metrics} == {"transformer"} and min(
        m["t"] for m in high.metrics
    ) >= boundary


def test_truncated_logit_normal_is_the_law_restricted_to_the_range():
    lo, hi = 0.3, 0.6
    t = fm.logit_normal(40000, torch.Generator().manual_seed(2), lo=lo, hi=hi)
    assert t.min() >= lo and t.max() <= hi
    full = fm.logit_normal(400000, torch.Generator().manual_seed(3))
    inside = full[(full >= lo) & (full <= hi)]
    assert abs(float(t.mean()) - float(inside.mean())) < 2e-3
    assert fm.logit_normal_mass(0, 1) == 1.0 and abs(fm.logit_normal_mass(0.5, 1) - 0.5) < 1e-12
