"""Attention kernels for the Wan backend, and the picker behind `--attention auto`.

FlashAttention-3's forward kernel ships on PyPI as the `fa3-fwd` wheel (module
`fa3_fwd_interface`, Hopper only). diffusers' own `_flash_3` backend looks for a package named
`flash_attn_3` and refuses it, so the backend gets its own processor here: diffusers'
`WanAttnProcessor` with its two `dispatch_attention_fn` calls going to `fa3_attention`. Written
by hand because diffusers' attention dispatch keys its registry by a closed enum, so a new
backend cannot be registered there; everything else stays diffusers' code path.

The wheel has no backward kernel: `fa3_attention` is for inference only. Whenever autograd would
need a gradient through it, it runs torch's SDPA instead (counted in `FA3_STATS`), and training
asks `training_attention` for its kernel, which never returns fa3-fwd.

Picking (probed once per head size and dtype, like the cuDNN probe): ROCm (`torch.version.hip`)
gets native SDPA; on CUDA, fa3-fwd where it imports and a tiny call matches SDPA, else cuDNN SDPA
where its kernel takes the head size, else native SDPA.
"""

from __future__ import annotations

import importlib
import logging

log = logging.getLogger(__name__)

FA3_MODULE = "fa3_fwd_interface"
FA3 = "fa3_fwd"  # the name the backend reports when this module's processor runs
FA3_PIP = "pip install 'cinerl[wan-fast]'  # or: pip install fa3-fwd==0.0.3 (CUDA, Hopper)"
PROBE_DEVICE = "cuda"  # tests on the CPU point the probe at "cpu"
_PROBES: dict[tuple, tuple[bool, str]] = {}
FA3_STATS = {"fa3_calls": 0, "fp8_calls": 0, "sdpa_fallbacks": 0}
FP8 = "fa3_fwd_fp8"  # the name reported when `--fast` runs the self-attention in FP8 (lossy)
FP8_MAX = 448.0  # largest finite float8_e4m3fn


def is_rocm() -> bool:
    import torch

    return getattr(torch.version, "hip", None) is not None


def cudnn_attention_runs(head_dim: int, dtype) -> bool:
    """Whether cuDNN's SDPA kernel takes this head size and dtype on this GPU (it needs, among
    other things, a head size that is a multiple of 8): one tiny call under that backend only."""
    import torch
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    q = torch.zeros(1, 2, 16, int(head_dim), device="cuda", dtype=dtype)
    try:
        with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
            F.scaled_dot_product_attention(q, q, q)
        return True
    except RuntimeError:
        return False


def fa3_import() -> tuple[object | None, str]:
    """The fa3-fwd interface module, or None and why not."""
    try:
        return importlib.import_module(FA3_MODULE), "importable"
    except Exception as e:  # ImportError, or the extension failing to load against this torch
        return None, f"{FA3_MODULE} does not import ({type(e).__name__}: {str(e)[:160]}); {FA3_PIP}"


def _run_probe(mod, head_dim: int, dtype) -> tuple[bool, str]:
    import torch
    import torch.nn.functional as F

    g = torch.Generator(PROBE_DEVICE).manual_seed(0)
    q, k, v = (
        torch.randn(1, 256, 2, int(head_dim), device=PROBE_DEVICE, dtype=dtype, generator=g) for _ in range(3)
    )
    out = mod.flash_attn_func(q, k, v)
    out = out[0] if isinstance(out, tuple) else out
    ref = F.scaled_dot_product_attention(*(t.transpose(1, 2).float() for t in (q, k, v))).transpose(1, 2)
    err = ((out.float() - ref).norm() / ref.norm()).item()
    if not err < 2e-2:  # bf16 operands land near 3e-3; NaN fails too
        return False, f"fa3-fwd probe: relative error {err:.3g} against SDPA"
    return True, f"fa3-fwd probe ran (relative error {err:.2g} against fp32 SDPA)"


def fa3_fp8_runs(head_dim: int) -> tuple[bool, str]:
    """Whether fa3-fwd's FP8 kernel runs here: one tiny call on quantised operands within FP8's
    error of SDPA (probed once). `--fast` uses it for self-attention; where it does not run,
    `--fast` keeps bf16 attention and says why."""
    return _probed((int(head_dim), "fp8"), "FP8 probe", lambda mod: _run_fp8_probe(mod, head_dim))


def _run_fp8_probe(mod, head_dim: int) -> tuple[bool, str]:
    import torch
    import torch.nn.functional as F

    g = torch.Generator(PROBE_DEVICE).manual_seed(0)
    q, k, v = (torch.randn(1, 256, 2, int(head_dim), device=PROBE_DEVICE, generator=g) for _ in range(3))
    (q8, qd), (k8, kd), (v8, vd) = fp8_quantize(q), fp8_quantize(k, smooth=True), fp8_quantize(v)
    out = mod.flash_attn_func(q8, k8, v8, q_descale=qd, k_descale=kd, v_descale=vd)
    out = out[0] if isinstance(out, tuple) else out
    ref = F.scaled_dot_product_attention(*(t.transpose(1, 2) for t in (q, k, v))).transpose(1, 2)
    err = ((out.float() - ref).norm() / ref.norm()).item()
    if not err < 0.1:  # e4m3 operands land near 3e-2; NaN fails too
        return False, f"fa3-fwd FP8 probe: relative error {err:.3g} against SDPA"
    return True, f"fa3-fwd FP8 probe ran (relative error {err:.2g} against fp32 SDPA)"


def fa3_runs(head_dim: int, dtype) -> tuple[bool, str]:
    """Whether fa3-fwd imports and one tiny call on this GPU matches SDPA (probed once)."""
    return _probed((int(head_dim), str(dtype)), "probe", lambda mod: _run_probe(mod, head_dim, dtype))


def _probed(key: tuple, what: str, run) -> tuple[bool, str]:
    """`run(module)` once per key: (False, why) where fa3-fwd does not import or the call fails
    (no Hopper GPU, an unsupported head size, a build without FP8, a broken build)."""
    if key not in _PROBES:
        mod, why = fa3_import()
        if mod is None:
            _PROBES[key] = (False, why)
        else:
            try:
                _PROBES[key] = run(mod)
            except Exception as e:
                _PROBES[key] = (False, f"fa3-fwd {what} failed ({type(e).__name__}: {str(e)[:160]})")
        log.info("attention: %s", _PROBES[key][1])
    return _PROBES[key]


def _sdpa(query, key, value, attn_mask=None, scale=None):
    import torch.nn.functional as F

    out = F.scaled_dot_product_attention(
        query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2), attn_mask=attn_mask, scale=scale
    )
    return out.transpose(1, 2)


def fa3_attention(query, key, value, attn_mask=None, scale=None, fp8: bool = False):
    """Attention over (batch, tokens, heads, head_dim) tensors, diffusers' dispatch layout,
    through fa3-fwd's `flash_attn_func`. Falls back to SDPA for a mask (Wan passes none) or
    whenever a gradient would have to flow through it (the wheel has no backward). `fp8`
    (lossy, `--fast` only) quantises the operands to float8 e4m3 first (fp8_quantize)."""
    import torch

    needs_grad = torch.is_grad_enabled() and (query.requires_grad or key.requires_grad or value.requires_grad)
    counting = not torch.compiler.is_compiling()  # a counter update would break the compiled graph
    if attn_mask is not None or needs_grad:
        if counting:
            FA3_STATS["sdpa_fallbacks"] += 1
        return _sdpa(query, key, value, attn_mask, scale)
    func = _FA3_FUNC or _load_fa3_func()
    if fp8:
        if counting:
            FA3_STATS["fp8_calls"] += 1
        (q8, qd), (k8, kd), (v8, vd) = (
            fp8_quantize(query),
            fp8_quantize(key, smooth=True),
            fp8_quantize(value),
        )
        out = func(q8, k8, v8, softmax_scale=scale, q_descale=qd, k_descale=kd, v_descale=vd)
        out = out[0] if isinstance(out, tuple) else out
        return out.to(query.dtype)
    if counting:
        FA3_STATS["fa3_calls"] += 1
    out = func(query, key, value, softmax_scale=scale)
    return out[0] if isinstance(out, tuple) else out


def fp8_quantize(x, smooth: bool = False):
    """(batch, tokens, heads, dim) to float8 e4m3 with one scale per (batch, head), the layout of
    FlashAttention-3's FP8 descale factors (Shah et al. 2024); returns (x8, descale) with
    x ~= x8 * descale. `smooth` subtracts the mean key over tokens first (SageAttention, Zhang et
    al. 2024): softmax(q.(k - m)) = softmax(q.k) because q.m is one constant per query row, so the
    shift is exact and leaves the quantiser only the keys' spread, not their shared offset."""
    import torch

    x = x.float()
    if smooth:
        x = x - x.mean(dim=1, keepdim=True)
    descale = x.abs().amax(dim=(1, 3)).clamp(min=1e-12) / FP8_MAX  # (batch, heads)
    x8 = (x / descale[:, None, :, None]).clamp(-FP8_MAX, FP8_MAX).to(torch.float8_e4m3fn)
    return x8, descale.contiguous()


_FA3_FUNC = None  # fa3_fwd_interface.flash_attn_func, resolved once, outside compiled code


def _load_fa3_func():
    global _FA3_FUNC
    mod, why = fa3_import()
    if mod is None:
        raise RuntimeError(why)
    _FA3_FUNC = mod.flash_attn_func
    return _FA3_FUNC


def fa3_processor(fp8: bool = False):
    """diffusers' WanAttnProcessor with the attention call going to fa3_attention; `fp8` (lossy)
    runs the self-attention (the long one) in FP8, the 512-token text cross-attention stays bf16.
    The kernel is imported here, before any forward: an import inside a compiled block would
    break its graph."""
    from diffusers.models.transformers import transformer_wan as tw

    _load_fa3_func()

    class FA3WanAttnProcessor(tw.WanAttnProcessor):
        """WanAttnProcessor.__call__ as in diffusers 0.42 (transformer_wan.py), with the two
        `dispatch_attention_fn` calls replaced by `fa3_attention`."""

        kernel = FP8 if fp8 else FA3

        def __call__(
            self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, rotary_emb=None
        ):
            low_precision = fp8 and encoder_hidden_states is None  # self-attention only
            encoder_hidden_states_img = None
            if attn.add_k_proj is not None:
                image_context_length = encoder_hidden_states.shape[1] - 512
                encoder_hidden_states_img = encoder_hidden_states[:, :image_context_length]
                encoder_hidden_states = encoder_hidden_states[:, image_context_length:]
            query, key, value = tw._get_qkv_projections(attn, hidden_states, encoder_hidden_states)
            query = attn.norm_q(query)
            key = attn.norm_k(key)
            query = query.unflatten(2, (attn.heads, -1))
            key = key.unflatten(2, (attn.heads, -1))
            value = value.unflatten(2, (attn.heads, -1))
            if rotary_emb is not None:
                query = _rotary(query, *rotary_emb)
                key = _rotary(key, *rotary_emb)
            hidden_states_img = None
            if encoder_hidden_states_img is not None:
                key_img, value_img = tw._get_added_kv_projections(attn, encoder_hidden_states_img)
                key_img = attn.norm_added_k(key_img)
                key_img = key_img.unflatten(2, (attn.heads, -1))
                value_img = value_img.unflatten(2, (attn.heads, -1))
                hidden_states_img = fa3_attention(query, key_img, value_img).flatten(2, 3).type_as(query)
            hidden_states = fa3_attention(query, key, value, attention_mask, fp8=low_precision)
            hidden_states = hidden_states.flatten(2, 3).type_as(query)
            if hidden_states_img is not None:
                hidden_states = hidden_states + hidden_states_img
            hidden_states = attn.to_out[0](hidden_states)
            hidden_states = attn.to_out[1](hidden_states)
            return hidden_states

    return FA3WanAttnProcessor()


def _rotary(hidden_states, freqs_cos, freqs_sin):
    """diffusers' Wan rotary embedding (the closure inside WanAttnProcessor.__call__)."""
    import torch

    x1, x2 = hidden_states.unflatten(-1, (-1, 2)).unbind(-1)
    cos = freqs_cos[..., 0::2]
    sin = freqs_sin[..., 1::2]
    out = torch.empty_like(hidden_states)
    out[..., 0::2] = x1 * cos - x2 * sin
    out[..., 1::2] = x1 * sin + x2 * cos
    return out.type_as(hidden_states)


def wan_attentions(model) -> list:
    """Every WanAttention of a Wan transformer: the modules that hold an attention processor."""
    from diffusers.models.transformers.transformer_wan import WanAttention

    return [mod for mod in model.modules() if isinstance(mod, WanAttention)]


def install_fa3(model, fp8: bool = False) -> int:
    """Give every WanAttention of a Wan transformer the fa3-fwd processor (`fp8`: lossy FP8
    self-attention); how many."""
    proc = fa3_processor(fp8)
    mods = wan_attentions(model)
    for mod in mods:
        mod.set_processor(proc)
    return len(mods)


def training_attention(
    choice: str = "auto", head_dim: int | None = None, dtype=None
) -> tuple[str | None, str]:
    """The kernel a trainer gets: one with a backward. fa3-fwd is forward-only, so where it
    would be picked for inference, training gets cuDNN SDPA (CUDA, when its kernel runs) or
    native SDPA instead; returns (diffusers backend name or None for native, the log line)."""
    import torch

    cuda = torch.cuda.is_available()
    if choice in ("fa3", FA3):
        choice = "auto"
    if choice == "auto":
        if not cuda or is_rocm():
            return None, "attention for training: native SDPA (has a backward)"
        if head_dim is None or cudnn_attention_runs(head_dim, dtype):
            return "_native_cudnn", (
                "attention for training: cuDNN SDPA (fa3-fwd is forward-only, never used for training)"
            )
        return None, "attention for training: native SDPA (fa3-fwd is forward-only, never used for training)"
    return choice, f"attention for training: {choice}"


def restore_processors(model) -> None:
    """Back to diffusers' own WanAttnProcessor on every WanAttention (undoes install_fa3)."""
    from diffusers.models.transformers.transformer_wan import WanAttnProcessor

    for mod in wan_attentions(model):
        mod.set_processor(WanAttnProcessor())
