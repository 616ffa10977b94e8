"""The Wan attention picker and the fa3-fwd processor, on the CPU with the modules faked at
import: fa3-fwd importable or not, a probe that fails, ROCm; training never gets fa3-fwd."""

from __future__ import annotations

import sys
import types

import pytest
import torch
import torch.nn.functional as F

from cinerl.core.errors import BackendUnavailable
from cinerl.generation.wan import attention, backend
from cinerl.generation.wan.attention import FA3, FA3_MODULE
from cinerl.generation.wan.backend import pick_attention
from tests.generation.wan_tiny import make_transformer


def sdpa_blhd(q, k, v, softmax_scale=None, **_):
    """What flash_attn_func computes, on (batch, tokens, heads, dim) tensors."""
    out = F.scaled_dot_product_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), scale=softmax_scale
    )
    return out.transpose(1, 2)


@pytest.fixture(autouse=True)
def clean(monkeypatch):
    monkeypatch.setattr(attention, "_PROBES", {})
    monkeypatch.setattr(attention, "_FA3_FUNC", None)
    monkeypatch.setattr(attention, "PROBE_DEVICE", "cpu")
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setitem(attention.FA3_STATS, "fa3_calls", 0)
    monkeypatch.setitem(attention.FA3_STATS, "sdpa_fallbacks", 0)
    yield


def fake_fa3(monkeypatch, func=sdpa_blhd) -> types.ModuleType:
    mod = types.ModuleType(FA3_MODULE)
    mod.calls = 0

    def flash_attn_func(q, k, v, **kw):
        mod.calls += 1
        return func(q, k, v, **kw)

    mod.flash_attn_func = flash_attn_func
    monkeypatch.setitem(sys.modules, FA3_MODULE, mod)
    return mod


def no_fa3(monkeypatch):
    monkeypatch.setitem(sys.modules, FA3_MODULE, None)  # import raises ImportError


def cudnn(monkeypatch, runs: bool):
    for mod in (backend, attention):
        monkeypatch.setattr(mod, "cudnn_attention_runs", lambda head_dim, dtype: runs)


def test_auto_picks_fa3_where_it_imports_and_its_probe_runs(monkeypatch):
    mod = fake_fa3(monkeypatch)
    cudnn(monkeypatch, True)
    assert pick_attention("auto", cuda=True, head_dim=128, dtype=torch.float32) == FA3
    assert pick_attention("auto", cuda=True, head_dim=128, dtype=torch.float32) == FA3
    assert mod.calls == 1  # probed once per head size and dtype
    ok, why = attention.fa3_runs(128, torch.float32)
    assert ok and "probe ran" in why


def test_auto_without_fa3_picks_cudnn_then_native(monkeypatch):
    no_fa3(monkeypatch)
    cudnn(monkeypatch, True)
    assert pick_attention("auto", cuda=True, head_dim=128, dtype=torch.bfloat16) == "_native_cudnn"
    attention._PROBES.clear()
    cudnn(monkeypatch, False)
    assert pick_attention("auto", cuda=True, head_dim=128, dtype=torch.bfloat16) is None
    ok, why = attention.fa3_runs(128, torch.bfloat16)
    assert not ok and "does not import" in why and "pip install" in why


@pytest.mark.parametrize(
    "func, reason",
    [
        (
            lambda q, k, v, **_: (_ for _ in ()).throw(RuntimeError("no kernel image for sm_80")),
            "probe failed",
        ),
        (lambda q, k, v, **_: torch.zeros_like(q), "relative error"),
        (lambda q, k, v, **_: torch.full_like(q, float("nan")), "relative error"),
    ],
    ids=["raises", "wrong values", "nan"],
)
def test_a_failing_probe_falls_back_to_cudnn(monkeypatch, func, reason):
    fake_fa3(monkeypatch, func)
    cudnn(monkeypatch, True)
    assert pick_attention("auto", cuda=True, head_dim=64, dtype=torch.float32) == "_native_cudnn"
    ok, why = attention.fa3_runs(64, torch.float32)
    assert not ok and reason in why


def test_rocm_picks_native_even_with_fa3_importable(monkeypatch):
    mod = fake_fa3(monkeypatch)
    cudnn(monkeypatch, True)
    monkeypatch.setattr(torch.version, "hip", "6.4.0")
    assert pick_attention("auto", cuda=True, head_dim=128, dtype=torch.float32) is None
    assert mod.calls == 0
    with pytest.raises(BackendUnavailable, match="--attention fa3"):
        pick_attention("fa3", cuda=True, head_dim=128, dtype=torch.float32)


def test_cpu_picks_native_and_explicit_fa3_fails_with_the_reason(monkeypatch):
    no_fa3(monkeypatch)
    assert pick_attention("auto", cuda=False, head_dim=128, dtype=torch.float32) is None
    with pytest.raises(BackendUnavailable, match="no CUDA GPU"):
        pick_attention("fa3", cuda=False, head_dim=128, dtype=torch.float32)
    with pytest.raises(BackendUnavailable, match="does not import.*fa3-fwd"):
        pick_attention("fa3", cuda=True, head_dim=128, dtype=torch.float32)
    assert pick_attention("cudnn", cuda=True) == "_native_cudnn"


def tiny_forward(**install) -> tuple:
    """A tiny 5B-shaped transformer's output with diffusers' processor, then with the fa3-fwd
    processor installed (`install`: install_fa3's flags); (model, reference, output, installed)."""
    torch.manual_seed(0)
    model = make_transformer("ti2v-5b")
    x = torch.randn(1, model.config.in_channels, 2, 8, 8)
    text = torch.randn(1, 6, model.config.text_dim)
    t = torch.tensor([500])
    with torch.no_grad():
        ref = model(x, t, text, return_dict=False)[0]
        n = attention.install_fa3(model, **install)
        out = model(x, t, text, return_dict=False)[0]
    return model, ref, out, n


def test_fa3_processor_gives_diffusers_output_and_calls_the_kernel(monkeypatch):
    mod = fake_fa3(monkeypatch)
    model, ref, out, n = tiny_forward()
    assert n == 2 * model.config.num_layers  # self- and cross-attention of each block
    assert mod.calls == n
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_fa3_attention_never_runs_the_kernel_under_autograd(monkeypatch):
    mod = fake_fa3(monkeypatch, lambda q, k, v, **_: torch.zeros_like(q))  # a kernel with no backward
    q = torch.randn(1, 16, 2, 8, requires_grad=True)
    k, v = torch.randn(1, 16, 2, 8), torch.randn(1, 16, 2, 8)
    out = attention.fa3_attention(q, k, v)
    out.sum().backward()
    assert mod.calls == 0 and attention.FA3_STATS["sdpa_fallbacks"] == 1
    assert q.grad is not None and q.grad.abs().sum() > 0
    torch.testing.assert_close(out, sdpa_blhd(q, k, v))
    with torch.no_grad():
        attention.fa3_attention(q, k, v)
    assert mod.calls == 1


def test_training_never_gets_the_forward_only_kernel(monkeypatch):
    fake_fa3(monkeypatch)
    cudnn(monkeypatch, True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for choice in ("auto", "fa3", FA3):
        name, why = attention.training_attention(choice, 128, torch.bfloat16)
        assert name == "_native_cudnn" and "fa3-fwd is forward-only" in why
    cudnn(monkeypatch, False)
    assert attention.training_attention("auto", 128, torch.bfloat16)[0] is None
    monkeypatch.setattr(torch.version, "hip", "6.4.0")
    name, why = attention.training_attention("auto", 128, torch.bfloat16)
    assert name is None and "native" in why


def _real_fa3() -> bool:
    import importlib.util

    return torch.cuda.is_available() and importlib.util.find_spec(FA3_MODULE) is not None


@pytest.mark.skipif(not _real_fa3(), reason="needs a CUDA GPU with the fa3-fwd wheel installed")
def test_real_fa3_on_cuda_matches_diffusers_within_the_kernel_floor(monkeypatch):
    """On the GPU machine: a small Wan transformer (head size 64, bf16) through the real
    fa3-fwd kernel against diffusers' default attention and against its FlashAttention-2."""
    from diffusers import WanTransformer3DModel

    monkeypatch.setattr(attention, "PROBE_DEVICE", "cuda")
    assert attention.fa3_runs(64, torch.bfloat16)[0]
    torch.manual_seed(0)
    model = WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=4,
        attention_head_dim=64,
        in_channels=48,
        out_channels=48,
        text_dim=64,
        freq_dim=32,
        ffn_dim=512,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=64,
    ).to("cuda", torch.bfloat16)
    x = torch.randn(1, 48, 5, 32, 32, device="cuda", dtype=torch.bfloat16)
    text = torch.randn(1, 16, 64, device="cuda", dtype=torch.bfloat16)
    t = torch.tensor([500], device="cuda")
    with torch.no_grad():
        ref = model(x, t, text, return_dict=False)[0].float()
        model.set_attention_backend("_native_flash")
        floor = (model(x, t, text, return_dict=False)[0].float() - ref).abs().max().item()
        model.set_attention_backend("native")
        attention.install_fa3(model)
        before = attention.FA3_STATS["fa3_calls"]
        out = model(x, t, text, return_dict=False)[0].float()
    assert attention.FA3_STATS["fa3_calls"] - before == 4
    diff = (out - ref).abs().max().item()
    assert diff <= max(2 * floor, 1e-2), (diff, floor)


def test_fast_mode_is_off_by_default_and_marked_lossy_when_on(tmp_path):
    """--fast turns on diffusers' first-block step cache (0.05 unless --step-cache says) and the
    clip's report says lossy; the default run reports lossless with no step cache."""
    from cinerl.core.schema import ClipRequest
    from cinerl.core.settings import WanSettings
    from cinerl.generation.wan.backend import FAST_STEP_CACHE, WanBackend
    from tests.generation.wan_tiny import write_tiny_model

    folder = write_tiny_model("ti2v-5b", tmp_path / "wan")
    req = ClipRequest(
        prompt="a red boat", negative_prompt="blurry", width=64, height=32, num_frames=5, seed=3
    )
    speeds = {}
    for fast in (False, True):
        b = WanBackend(WanSettings(variant="ti2v-5b", model_dir=str(folder), steps=3, fast=fast))
        speeds[fast] = b.generate(req).metadata["report"]["speed"]
    assert speeds[False]["lossless"] is True and speeds[False]["step_cache"] is None
    assert speeds[True]["lossless"] is False
    assert speeds[True]["step_cache"] == {
        "kind": "first_block",
        "threshold": FAST_STEP_CACHE,
        "lossy": True,
        "fast": True,
    }
    # the bf16 decode of --fast is for CUDA only
    assert speeds[True]["decode"] == ("bf16 (lossy)" if torch.cuda.is_available() else "fp32")


def dequantizing_fa3(q, k, v, softmax_scale=None, q_descale=None, k_descale=None, v_descale=None, **_):
    """What FlashAttention-3's FP8 path computes: attention of the descaled float8 operands."""
    if q_descale is None:
        return sdpa_blhd(q, k, v, softmax_scale)
    assert q.dtype == k.dtype == v.dtype == torch.float8_e4m3fn
    deq = [x.float() * d[:, None, :, None] for x, d in ((q, q_descale), (k, k_descale), (v, v_descale))]
    return sdpa_blhd(*deq, softmax_scale).to(torch.bfloat16)


def test_fp8_quantize_round_trips_per_head_and_key_smoothing_is_exact():
    torch.manual_seed(0)
    x = torch.randn(2, 64, 3, 16) * torch.tensor([0.1, 1.0, 30.0])[None, None, :, None]
    x8, descale = attention.fp8_quantize(x)
    assert x8.dtype == torch.float8_e4m3fn and descale.shape == (2, 3)
    back = x8.float() * descale[:, None, :, None]
    # e4m3 keeps 3 mantissa bits: each value within 1/16 of itself, or of the head's scale near 0
    err = (back - x).abs() / (x.abs() + descale[:, None, :, None])
    assert err.max() < 1 / 16
    # subtracting the mean key changes every score of a query row by one constant: softmax and
    # the attention output do not move (SageAttention's smoothing), while the keys shrink
    q, k, v = torch.randn(3, 1, 32, 2, 8).unbind(0)
    k = k + 5.0  # a shared offset, the case smoothing is for
    shifted = k - k.mean(dim=1, keepdim=True)
    torch.testing.assert_close(sdpa_blhd(q, shifted, v), sdpa_blhd(q, k, v), rtol=1e-5, atol=1e-5)
    assert shifted.abs().amax() < k.abs().amax() / 2


def test_fp8_attention_gives_the_kernel_float8_operands_and_stays_near_sdpa(monkeypatch):
    mod = fake_fa3(monkeypatch, dequantizing_fa3)
    monkeypatch.setitem(attention.FA3_STATS, "fp8_calls", 0)
    torch.manual_seed(1)
    q, k, v = (torch.randn(1, 128, 2, 64, dtype=torch.bfloat16) for _ in range(3))
    with torch.no_grad():
        out = attention.fa3_attention(q, k + 3.0, v, fp8=True)
        ref = sdpa_blhd(q.float(), k.float() + 3.0, v.float())
    assert mod.calls == 1 and attention.FA3_STATS["fp8_calls"] == 1 and out.dtype == torch.bfloat16
    rel = ((out.float() - ref).norm() / ref.norm()).item()
    assert 0 < rel < 0.06, rel  # lossy, by e4m3's error and no more


def test_fp8_probe_says_why_when_the_kernel_has_no_fp8(monkeypatch):
    def bf16_only(q, k, v, q_descale=None, **kw):
        if q.dtype == torch.float8_e4m3fn:
            raise RuntimeError("FlashAttention was built without FP8 support")
        return sdpa_blhd(q, k, v, **kw)

    fake_fa3(monkeypatch, bf16_only)
    ok, why = attention.fa3_fp8_runs(64)
    assert not ok and "FP8 probe failed" in why and "without FP8" in why
    monkeypatch.setattr(attention, "_PROBES", {})
    fake_fa3(monkeypatch, dequantizing_fa3)
    ok, why = attention.fa3_fp8_runs(64)
    assert ok and "FP8 probe ran" in why


def test_fp8_processor_runs_self_attention_in_fp8_and_text_attention_in_bf16(monkeypatch):
    mod = fake_fa3(monkeypatch, dequantizing_fa3)
    monkeypatch.setitem(attention.FA3_STATS, "fp8_calls", 0)
    model, ref, out, _ = tiny_forward(fp8=True)
    layers = model.config.num_layers
    assert mod.calls == 2 * layers and attention.FA3_STATS["fp8_calls"] == layers
    rel = ((out.float() - ref).norm() / ref.norm()).item()
    assert 0 < rel < 0.05, rel


@pytest.mark.skipif(not _real_fa3(), reason="needs a CUDA GPU with the fa3-fwd wheel installed")
def test_real_fa3_fp8_on_cuda_stays_within_fp8_error(monkeypatch):
    """On the GPU machine: fa3-fwd's FP8 kernel at the 5B's head size against fp32 SDPA."""
    monkeypatch.setattr(attention, "PROBE_DEVICE", "cuda")
    ok, why = attention.fa3_fp8_runs(128)
    assert ok, why
    g = torch.Generator("cuda").manual_seed(0)
    q, k, v = (
        torch.randn(1, 4096, 4, 128, device="cuda", generator=g, dtype=torch.bfloat16) for _ in range(3)
    )
    with torch.no_grad():
        out = attention.fa3_attention(q, k + 2.0, v, fp8=True).float()
        exact = attention.fa3_attention(q, k + 2.0, v).float()
    ref = sdpa_blhd(q.float(), k.float() + 2.0, v.float())
    rel = ((out - ref).norm() / ref.norm()).item()
    rel_bf16 = ((exact - ref).norm() / ref.norm()).item()
    assert rel_bf16 < rel < 0.06, (rel, rel_bf16)
