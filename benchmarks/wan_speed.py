"""Wan2.2 TI2V-5B at real size with random weights (no download): plain diffusers WanPipeline
against the CineRL backend, side by side, on one GPU.

Both runs get the same random prompt embeddings (a UMT5-XXL is not built: its time is not part
of either run, and the backend caches embeddings anyway), the same seed and step count. Prints
per-step time, share of bf16 peak, VAE decode time, peak memory and the largest difference
between the two runs' final latents; writes JSON.

    python benchmarks/wan_speed.py --steps 4 --out benchmarks/results/wan_speed_h100.json

`--kernel-check` times the attention kernels alone (cuDNN, FlashAttention-2, fa3-fwd);
`--also-attention cudnn` adds a backend run with another kernel; `--extras` instead measures
the decode levers and the lossy `--fast` mode (PSNR, SSIM, max latent difference against the
lossless clip); `--variant t2v-a14b` times the two-expert A14B against plain WanPipeline.
Results on an H200: docs/wan_speed.md.

`--gpus N --parallel ulysses,ring,cfg` times one clip on N GPUs per scheme against one GPU
(each run is its own torchrun; per-clip time, speed-up, frames' difference; docs/multi_gpu.md).

FLOPs per forward (counted here, matmuls only): per block 8·L·d² (self-attention projections)
+ 4·L²·d (scores and values) + 4·L·d² + 4·S·d² + 4·L·S·d (cross-attention, S text tokens)
+ 4·L·d·f (feed-forward); L tokens, d width, f FFN width. One CFG step is two forwards.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from cinerl.core.settings import WanSettings  # noqa: E402
from cinerl.generation.wan.backend import WanBackend, to_uint8  # noqa: E402
from cinerl.generation.wan.loading import WanComponents, make_scheduler  # noqa: E402
from cinerl.generation.wan.variants import VARIANTS  # noqa: E402
from cinerl.core.schema import ClipRequest  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from wan_configs import GiB, PEAK_BF16, TRANSFORMER_5B, TRANSFORMER_A14B  # noqa: E402

VAE_5B = dict(
    base_dim=160,
    decoder_base_dim=256,
    z_dim=48,
    dim_mult=[1, 2, 4, 4],
    num_res_blocks=2,
    temperal_downsample=[False, True, True],
    is_residual=True,
    in_channels=12,
    out_channels=12,
    patch_size=2,
    scale_factor_spatial=16,
    scale_factor_temporal=4,
    latents_mean=[0.0] * 48,
    latents_std=[1.0] * 48,
)


def flops_per_step(width: int, height: int, frames: int, text_len: int = 512) -> float:
    c = TRANSFORMER_5B
    d = c["num_attention_heads"] * c["attention_head_dim"]
    f = c["ffn_dim"]
    L = ((frames - 1) // 4 + 1) * (height // 32) * (width // 32)
    S = text_len
    block = 8 * L * d * d + 4 * L * L * d + 4 * L * d * d + 4 * S * d * d + 4 * L * S * d + 4 * L * d * f
    return 2 * c["num_layers"] * block  # cond + uncond


def build(seed: int) -> WanComponents:
    from diffusers import AutoencoderKLWan, WanTransformer3DModel

    torch.manual_seed(seed)
    with torch.device("cuda"):
        transformer = WanTransformer3DModel(**TRANSFORMER_5B).to(torch.bfloat16).eval()
        vae = AutoencoderKLWan(**VAE_5B).eval()
    # random weights are far from trained ones; scale them so activations stay finite in bf16
    with torch.no_grad():
        for p in transformer.parameters():
            if p.dim() >= 2:
                p.mul_(0.5)
    return WanComponents(
        tokenizer=None,
        text_encoder=None,
        vae=vae,
        transformer=transformer,
        transformer_2=None,
        scheduler=make_scheduler(VARIANTS["ti2v-5b"]),
    )


def bench_request(args) -> ClipRequest:
    """The one clip every timed run renders: the prompt embeddings are given ("p", "n")."""
    return ClipRequest(
        prompt="p",
        negative_prompt="n",
        width=args.width,
        height=args.height,
        num_frames=args.frames,
        seed=args.seed,
    )


def sync_time() -> float:
    torch.cuda.synchronize()
    return time.perf_counter()


def run_plain(comp, emb, neg, args, steps: int, decode: bool):
    """Plain diffusers: WanPipeline as the 5B folder configures it (per-token timesteps),
    default attention, no compilation."""
    from diffusers import WanPipeline

    pipe = WanPipeline(
        tokenizer=None,
        text_encoder=None,
        vae=comp.vae,
        scheduler=make_scheduler(VARIANTS["ti2v-5b"]),
        transformer=comp.transformer,
        expand_timesteps=True,
    )
    pipe.set_progress_bar_config(disable=True)
    ends, final = [], {}

    def on_step(_p, i, _t, kw):
        ends.append(sync_time())
        final["latents"] = kw["latents"]
        return kw

    torch.cuda.reset_peak_memory_stats()
    t0 = sync_time()
    out = pipe(
        prompt_embeds=emb,
        negative_prompt_embeds=neg,
        height=args.height,
        width=args.width,
        num_frames=args.frames,
        num_inference_steps=steps,
        guidance_scale=5.0,
        generator=torch.Generator("cpu").manual_seed(args.seed),
        output_type="np" if decode else "latent",
        callback_on_step_end=on_step,
    )
    t1 = sync_time()
    step_times = [b - a for a, b in zip([t0] + ends[:-1], ends)]
    final["frames"] = out.frames if decode else None
    return {
        "steps": step_times,
        "decode": t1 - ends[-1],
        "total": t1 - t0,
        "peak_gib": torch.cuda.max_memory_allocated() / GiB,
    }, final


def run_fp32_reference(comp, emb, neg, args):
    """The plain pipeline on an fp32 copy of the transformer (no TF32, exact attention kernel):
    the reference against which both bf16 runs' rounding is measured."""
    import copy

    ref = copy.deepcopy(comp.transformer).float()
    ref.set_attention_backend("_native_efficient")  # exact, supports fp32, fits 27k tokens
    tf32, torch.backends.cuda.matmul.allow_tf32 = torch.backends.cuda.matmul.allow_tf32, False
    saved, comp.transformer = comp.transformer, ref
    try:
        _, out = run_plain(comp, emb.float(), neg.float(), args, args.steps, decode=False)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32
        comp.transformer = saved
        del ref
        torch.cuda.empty_cache()
    return out["latents"].float()


KERNEL_KINDS = [
    ("attention", ("fmha", "attn", "flash", "sdpa")),
    ("matmul", ("gemm", "nvjet", "xmma", "cutlass", "triton_mm", "mm_", "sm90")),
    ("elementwise and norms (fused by compile)", ("triton", "elementwise", "reduce", "norm")),
]


def kernel_kind(name: str) -> str:
    low = name.lower()
    return next((k for k, keys in KERNEL_KINDS if any(w in low for w in keys)), "other")


def profile_step(b: WanBackend, args) -> dict:
    """GPU time of one compiled CFG step (two forwards) by kernel kind, from torch.profiler
    (the VAE decode is skipped)."""
    from torch.profiler import ProfilerActivity, profile

    b.options.steps = 1
    b.decode = lambda pipe, latents: np.zeros((1, args.frames, args.height, args.width, 3), np.float32)
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        b.generate(bench_request(args))
        torch.cuda.synchronize()
    by_kind: dict[str, float] = {}
    for ev in prof.key_averages():
        us = getattr(ev, "device_time_total", 0.0) or getattr(ev, "cuda_time_total", 0.0)
        if us and ev.device_type == torch.autograd.DeviceType.CUDA:
            k = kernel_kind(ev.key)
            by_kind[k] = by_kind.get(k, 0.0) + us / 1e6
    return {k: round(v, 3) for k, v in sorted(by_kind.items(), key=lambda kv: -kv[1])}


def uncompile(comp) -> None:
    """Undo regional compilation, so the next backend compiles the blocks its own way."""
    from cinerl.generation.wan.attention import restore_processors

    torch._dynamo.reset()
    for blk in comp.transformer.blocks:
        blk._compiled_call_impl = None
    if getattr(comp.transformer, "is_cache_enabled", False):
        comp.transformer.disable_cache()
    restore_processors(comp.transformer)
    comp.transformer.set_attention_backend("native")
    comp.vae.to(torch.float32)  # --fast's bf16 decode


def make_backend(
    comp, emb, neg, args, compile_: str, mode: str | None = None, attention: str | None = None, **kw
) -> WanBackend:
    """The CineRL backend's default lossless settings (or another compile mode, attention
    kernel, or a lossy setting in kw), on the same modules."""
    opts = WanSettings(
        variant="ti2v-5b", compile=compile_, compile_mode=mode, attention=attention or args.attention, **kw
    )
    b = WanBackend(opts, components=comp)
    b.load()
    b._embeds["p"], b._embeds["n"] = emb, neg  # the embedding cache, filled as a run fills it
    return b


def run_backend(b: WanBackend, args, steps: int):
    b.options.steps = steps
    grabbed = {}
    decode = WanBackend.decode.__get__(b)

    def keep(pipe, latents):
        grabbed["latents"] = latents.float().clone()
        grabbed["frames"] = decode(pipe, latents)
        return grabbed["frames"]

    b.decode = keep
    torch.cuda.reset_peak_memory_stats()
    t0 = sync_time()
    clip = b.generate(bench_request(args))
    t1 = sync_time()
    timing = clip.metadata["report"]["timing"]
    return (
        b,
        {
            "steps": timing["steps"],
            "decode": timing["decode"],
            "total": t1 - t0,
            "peak_gib": torch.cuda.max_memory_allocated() / GiB,
            "plan": b.plan.as_dict(),
            "speed": {
                k: b.stats.get(k) for k in ("attention", "compiled", "step_cache", "decode", "fp8_attention")
            },
        },
        grabbed,
    )


def summary(name: str, r: dict, flops: float, peak: float) -> dict:
    per = statistics.median(r["steps"])
    return {
        "run": name,
        "s_per_step": round(per, 3),
        "share_of_peak": round(flops / per / peak, 3),
        "decode_s": round(r["decode"], 2),
        "total_s": round(r["total"], 2),
        "peak_gib": round(r["peak_gib"], 1),
        **{k: r[k] for k in ("plan", "speed") if k in r},
    }


def kernel_check(tokens: int = 27280, heads: int = 24, dim: int = 128) -> list[dict]:
    """The attention kernels alone at the 5B's shape (bf16): median ms (triton do_bench), TFLOP/s
    (4·L²·h·d per call) and relative error against cuDNN and against fp32 on 1,024 queries."""
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from triton.testing import do_bench

    from cinerl.generation.wan.attention import fa3_import

    g = torch.Generator("cuda").manual_seed(3)
    q, k, v = (
        torch.randn(1, tokens, heads, dim, device="cuda", dtype=torch.bfloat16, generator=g) for _ in range(3)
    )
    flops = 4 * tokens * tokens * heads * dim

    def sdpa(backend, q=q, k=k, v=v):
        with sdpa_kernel(backend):
            return F.scaled_dot_product_attention(
                q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
            ).transpose(1, 2)

    kernels = {
        "torch SDPA, cuDNN": lambda: sdpa(SDPBackend.CUDNN_ATTENTION),
        "torch SDPA, FlashAttention-2": lambda: sdpa(SDPBackend.FLASH_ATTENTION),
    }
    mod, why = fa3_import()
    if mod is not None:
        kernels["fa3-fwd flash_attn_func"] = lambda: mod.flash_attn_func(q, k, v)
    with sdpa_kernel(SDPBackend.EFFICIENT_ATTENTION):
        ref = F.scaled_dot_product_attention(
            q[:, :1024].transpose(1, 2).float(), k.transpose(1, 2).float(), v.transpose(1, 2).float()
        ).transpose(1, 2)
    base = None
    rows = []
    for name, fn in kernels.items():
        out = fn()
        out = (out[0] if isinstance(out, tuple) else out).float()
        base = out if base is None else base
        ms = do_bench(fn, warmup=100, rep=400, return_mode="median")
        rows.append(
            {
                "kernel": name,
                "ms": round(ms, 3),
                "tflops": round(flops / ms / 1e9, 1),
                "rel_error_vs_cudnn": round(((out - base).norm() / base.norm()).item(), 5),
                "rel_error_vs_fp32": round(((out[:, :1024] - ref).norm() / ref.norm()).item(), 5),
            }
        )
        print(rows[-1], flush=True)
    if mod is None:
        rows.append({"kernel": "fa3-fwd flash_attn_func", "unavailable": why})
    return rows


def frame_difference(a: np.ndarray, b: np.ndarray) -> dict:
    """PSNR (dB) and SSIM of uint8 frames b against a (SSIM on every 8th frame, scikit-image)."""
    a8, b8 = to_uint8(a[0] if a.ndim == 5 else a), to_uint8(b[0] if b.ndim == 5 else b)
    mse = float(np.mean((a8.astype(np.float64) - b8.astype(np.float64)) ** 2))
    psnr = float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)
    out = {"psnr_db": round(psnr, 2), "pixel_max_abs_diff": int(np.abs(a8.astype(np.int16) - b8).max())}
    try:
        from skimage.metrics import structural_similarity

        out["ssim"] = round(
            float(
                np.mean(
                    [
                        structural_similarity(a8[i], b8[i], channel_axis=-1, data_range=255)
                        for i in range(0, len(a8), 8)
                    ]
                )
            ),
            4,
        )
    except ImportError:
        out["ssim"] = "unavailable: scikit-image is not installed"
    return out


def decode_levers(comp, args, save) -> list[dict]:
    """The VAE decode of one clip's latents (fp32, as the backend does it) and the levers that
    should not change its output beyond the conv-kernel noise floor: cuDNN autotune (on in the
    backend), channels-last 3D convolutions, a compiled decoder, against the
    conv-kernel noise floor (exact fp32 convolutions instead of TF32); a bf16 decode is lossy."""
    vae = comp.vae
    g = torch.Generator("cuda").manual_seed(5)
    lat = torch.randn(
        1, 48, (args.frames - 1) // 4 + 1, args.height // 16, args.width // 16, device="cuda", generator=g
    )
    rows: list[dict] = []

    def decode(dtype=torch.float32):
        with torch.no_grad():
            t = sync_time()
            v = vae.decode(lat.to(dtype), return_dict=False)[0]
            t1 = sync_time()
        return t1 - t, v.float().clamp(-1, 1).mul(0.5).add(0.5).permute(0, 2, 3, 4, 1).cpu().numpy()

    torch.backends.cudnn.benchmark = False
    decode()
    s_nb, f_nb = decode()
    torch.backends.cudnn.benchmark = True
    decode()  # autotune
    s_base, base = decode()
    rows.append(
        {
            "lever": "fp32, NCDHW, cuDNN autotune on (the decode before channels-last)",
            "s": round(s_base, 2),
            "lossy": False,
        }
    )
    rows.append(
        {
            "lever": "fp32, cuDNN autotune off",
            "s": round(s_nb, 2),
            "lossy": False,
            **frame_difference(base, f_nb),
        }
    )
    # the conv-kernel noise floor: the same decode with exact fp32 convolutions (cuDNN uses TF32
    # for fp32 convolutions by default, torch.backends.cudnn.allow_tf32)
    torch.backends.cudnn.allow_tf32 = False
    try:
        decode()
        s_exact, f_exact = decode()
    finally:
        torch.backends.cudnn.allow_tf32 = True
    rows.append(
        {
            "lever": "fp32, TF32 off (exact convolutions: the noise floor)",
            "s": round(s_exact, 2),
            "lossy": False,
            **frame_difference(base, f_exact),
        }
    )
    print(rows[-3:], flush=True)
    save(rows)

    try:
        for m in vae.modules():  # the 5D conv weights only (vae.to() would try every tensor)
            if isinstance(m, torch.nn.Conv3d):
                m.weight.data = m.weight.data.to(memory_format=torch.channels_last_3d)
        decode()
        s, f = decode()
        rows.append(
            {
                "lever": "fp32, channels-last 3D (the backend's decode)",
                "s": round(s, 2),
                "lossy": False,
                **frame_difference(base, f),
            }
        )
    except Exception as e:
        rows.append({"lever": "fp32, channels-last 3D", "failed": f"{type(e).__name__}: {str(e)[:300]}"})
    finally:
        for m in vae.modules():
            if isinstance(m, torch.nn.Conv3d):
                m.weight.data = m.weight.data.contiguous()
    print(rows[-1], flush=True)
    save(rows)

    vae.to(torch.bfloat16)
    decode(torch.bfloat16)
    s, f = decode(torch.bfloat16)
    vae.to(torch.float32)
    rows.append(
        {
            "lever": "bf16 decode (lossy, --fast only)",
            "s": round(s, 2),
            "lossy": True,
            **frame_difference(base, f),
        }
    )
    print(rows[-1], flush=True)
    save(rows)

    if not args.compile_decoder:
        rows.append(
            {
                "lever": "fp32, torch.compile(vae.decoder)",
                "not_run": "off without --compile-decoder: on an H200 (2026-12-01) it was still recompiling "
                "after 60 s (the causal conv cache's indices change per latent frame, 8+ recompiles of "
                "one frame) and ran past the call's limit",
            }
        )
        save(rows)
        return rows
    dec = vae.decoder
    try:
        torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
        vae.decoder = torch.compile(dec)
        t = time.perf_counter()
        decode()
        warm = time.perf_counter() - t
        s, f = decode()
        rows.append(
            {
                "lever": "fp32, torch.compile(vae.decoder)",
                "s": round(s, 2),
                "compile_warmup_s": round(warm, 1),
                "lossy": False,
                **frame_difference(base, f),
            }
        )
    except Exception as e:
        rows.append(
            {"lever": "fp32, torch.compile(vae.decoder)", "failed": f"{type(e).__name__}: {str(e)[:300]}"}
        )
    finally:
        vae.decoder = dec
    print(rows[-1], flush=True)
    save(rows)
    return rows


LOSSY_LEVERS = [  # (label, WanSettings overrides): each lossy lever alone, then --fast (all)
    ("lossy: first-block step cache 0.05 alone", {"step_cache": 0.05}),
    ("lossy: FP8 self-attention alone", {"fp8_attention": "on"}),
    ("lossy: bf16 decode alone", {"decode_dtype": "bf16"}),
    ("--fast (step cache 0.05 + FP8 attention + bf16 decode)", {"fast": True}),
]


def fast_mode(comp, emb, neg, args, flops, peak, save) -> dict:
    """Each lossy lever alone and --fast against the lossless backend on the same seed and steps
    (--fast-steps; --fast-full N adds whole N-step clips): clip time against plain diffusers'
    (its per-step and decode times, measured here), frame difference (PSNR, SSIM), max latent
    difference. Every run but the first is marked lossy."""
    from diffusers import FirstBlockCacheConfig  # noqa: F401  (the installed diffusers has it)

    run_plain(comp, emb, neg, args, 1, decode=False)
    plain, _ = run_plain(comp, emb, neg, args, 2, decode=True)
    per_step = statistics.median(plain["steps"])
    out = {
        "steps": args.fast_steps,
        "plain_s_per_step": round(per_step, 3),
        "plain_decode_s": round(plain["decode"], 2),
        "runs": [],
        "note": "plain clip time = its measured s/step x steps + its decode; the others timed whole",
    }

    def clip(label, steps, kw, ref=None):
        uncompile(comp)
        b = make_backend(comp, emb, neg, args, "on", **kw)
        run_backend(b, args, 1)  # warm-up, includes compilation
        _, res, got = run_backend(b, args, steps)
        plain_clip = per_step * steps + plain["decode"]
        row = {
            "run": label,
            "steps": steps,
            "lossy": bool(kw),
            "clip_s": round(res["total"], 2),
            "decode_s": round(res["decode"], 2),
            "ratio_to_plain": round(res["total"] / plain_clip, 3),
            "speed": res["speed"],
        }
        if ref is not None:
            row["latent_max_abs_diff"] = (got["latents"] - ref["latents"]).abs().max().item()
            row.update(frame_difference(ref["frames"], got["frames"]))
        out["runs"].append(row)
        save(out)
        print(row, flush=True)
        return got

    n = args.fast_steps
    if n > 0:  # --fast-steps 0: only the whole clips of --fast-full
        lossless = clip("lossless", n, {})
        for label, kw in LOSSY_LEVERS:
            try:
                clip(label, n, kw, lossless)
            except Exception as e:
                fail = f"{type(e).__name__}: {str(e)[:300]}"
                out["runs"].append({"run": label, "lossy": True, "failed": fail})
                save(out)
    if args.fast_full:
        ref = clip("lossless, whole clip", args.fast_full, {})
        clip("--fast, whole clip", args.fast_full, {"fast": True}, ref)
    out["reward_difference"] = "not measured: the reward suite's models are not on the GPU machine"
    uncompile(comp)
    return out


def run_extras(comp, emb, neg, args, flops, peak, result: dict) -> None:
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    def saver(key):
        def save(v):
            result[key] = v
            out.write_text(json.dumps(result, indent=2, default=str))

        return save

    if not args.skip_decode_levers:
        try:
            decode_levers(comp, args, saver("decode_levers"))
        except Exception as e:
            saver("decode_levers_failed")(f"{type(e).__name__}: {str(e)[:400]}")
    if not args.skip_fast:
        fast_mode(comp, emb, neg, args, flops, peak, saver("fast"))
    print(f"wrote {out}")


# Wan2.2 T2V-A14B, each expert (Wan-Video/Wan2.2 wan/configs/wan_t2v_A14B.py: dim 5120, 40 heads,
# 40 layers, FFN 13824); its VAE is Wan2.1's (diffusers' AutoencoderKLWan defaults)


def flops_per_step_a14b(width: int, height: int, frames: int, text_len: int = 512) -> float:
    c = TRANSFORMER_A14B
    d = c["num_attention_heads"] * c["attention_head_dim"]
    f = c["ffn_dim"]
    L = ((frames - 1) // 4 + 1) * (height // 16) * (width // 16)
    S = text_len
    block = 8 * L * d * d + 4 * L * L * d + 4 * L * d * d + 4 * S * d * d + 4 * L * S * d + 4 * L * d * f
    return 2 * c["num_layers"] * block


def run_a14b(args, name: str, peak: float) -> None:
    """T2V-A14B at real size with random weights: plain WanPipeline (both experts, boundary
    0.875) against the backend; per-step time per expert, share of peak, decode, peak memory."""
    from diffusers import AutoencoderKLWan, WanPipeline, WanTransformer3DModel

    v = VARIANTS["t2v-a14b"]
    flops = flops_per_step_a14b(args.width, args.height, args.frames)
    t = time.perf_counter()
    torch.manual_seed(args.seed)
    experts = []
    for _ in range(2):
        torch.set_default_dtype(torch.bfloat16)
        try:
            with torch.device("cuda"):
                m = WanTransformer3DModel(**TRANSFORMER_A14B).eval()
        finally:
            torch.set_default_dtype(torch.float32)
        with torch.no_grad():
            for p in m.parameters():
                if p.dim() >= 2:
                    p.mul_(0.5)
        experts.append(m)
    with torch.device("cuda"):
        vae = AutoencoderKLWan().eval()
    comp = WanComponents(None, None, vae, experts[0], experts[1], make_scheduler(v))
    build_s = time.perf_counter() - t
    g = torch.Generator("cuda").manual_seed(1)
    emb = torch.randn(1, 512, 4096, device="cuda", dtype=torch.bfloat16, generator=g)
    neg = torch.randn(1, 512, 4096, device="cuda", dtype=torch.bfloat16, generator=g)
    result = {
        "device": name,
        "torch": torch.__version__,
        "variant": v.name,
        "weights": "random (real-size configs)",
        "size": [args.width, args.height],
        "frames": args.frames,
        "timed_steps": args.steps,
        "flops_per_step": flops,
        "peak_flops": peak,
        "build_s": round(build_s, 1),
        "runs": [],
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    def expert_of(pipe):
        b = v.boundary_ratio * pipe.scheduler.config.num_train_timesteps
        return ["high" if float(t) >= b else "low" for t in pipe.scheduler.timesteps]

    def per_expert(label, steps, which, decode_s, total, peak_b, **kw):
        row = {"run": label}
        for e in ("high", "low"):
            ts = [s for s, w in zip(steps, which) if w == e]
            if ts:
                per = statistics.median(ts)
                row[f"{e}_noise_s_per_step"] = round(per, 3)
                row[f"{e}_noise_share_of_peak"] = round(flops / per / peak, 3)
        row.update(
            steps=[round(s, 3) for s in steps],
            experts=which,
            decode_s=round(decode_s, 2),
            total_s=round(total, 2),
            peak_gib=round(peak_b / GiB, 1),
            **kw,
        )
        result["runs"].append(row)
        print(row, flush=True)
        out.write_text(json.dumps(result, indent=2))

    pipe = WanPipeline(
        tokenizer=None,
        text_encoder=None,
        vae=vae,
        scheduler=make_scheduler(v),
        transformer=experts[0],
        transformer_2=experts[1],
        boundary_ratio=v.boundary_ratio,
    )
    pipe.set_progress_bar_config(disable=True)
    ends = []
    torch.cuda.reset_peak_memory_stats()
    t0 = sync_time()
    pipe(
        prompt_embeds=emb,
        negative_prompt_embeds=neg,
        height=args.height,
        width=args.width,
        num_frames=args.frames,
        num_inference_steps=args.steps,
        guidance_scale=v.guidance,
        guidance_scale_2=v.guidance_2,
        generator=torch.Generator("cpu").manual_seed(args.seed),
        output_type="latent",
        callback_on_step_end=lambda _p, i, _t, kw: (ends.append(sync_time()), kw)[1],
    )
    steps = [b - a for a, b in zip([t0] + ends[:-1], ends)]
    per_expert(
        "diffusers WanPipeline (plain), no decode",
        steps,
        expert_of(pipe),
        0.0,
        ends[-1] - t0,
        torch.cuda.max_memory_allocated(),
    )
    del pipe

    opts = WanSettings(variant=v.name, compile="on", attention=args.attention, offload="none")
    b = WanBackend(opts, components=comp)
    b.load()
    b._embeds["p"], b._embeds["n"] = emb, neg
    req = bench_request(args)
    t = time.perf_counter()
    b.options.steps = 1
    b.generate(req)  # warm-up: compiles the high-noise expert's block
    lat = torch.randn(
        1,
        16,
        (args.frames - 1) // 4 + 1,
        args.height // 8,
        args.width // 8,
        device="cuda",
        dtype=torch.bfloat16,
    )
    with torch.no_grad():  # and the low-noise expert's
        experts[1](lat, torch.tensor([500], device="cuda"), emb, return_dict=False)
    sync_time()
    result["backend_warmup_s"] = round(time.perf_counter() - t, 1)
    b.options.steps = args.steps
    torch.cuda.reset_peak_memory_stats()
    t0 = sync_time()
    clip = b.generate(req)
    total = sync_time() - t0
    timing = clip.metadata["report"]["timing"]
    per_expert(
        "CineRL wan backend (lossless defaults)",
        timing["steps"],
        expert_of(b.t2v),
        timing["decode"],
        total,
        torch.cuda.max_memory_allocated(),
        speed={k: b.stats[k] for k in ("attention", "compiled", "step_cache")},
    )
    p0, p1 = result["runs"]
    for e in ("high", "low"):
        k = f"{e}_noise_s_per_step"
        if k in p0 and k in p1:
            result[f"{e}_noise_backend_over_plain"] = round(p1[k] / p0[k], 3)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")


# --- several GPUs for one clip (issue 19) ------------------------------------------------------
PARALLEL_SCHEMES = ("ulysses", "ring", "cfg")
# --tiny: a small random 5B-shaped model, so the orchestration runs on the CPU (gloo) in tests
TINY_TRANSFORMER = dict(
    patch_size=(1, 2, 2),
    num_attention_heads=4,
    attention_head_dim=16,
    in_channels=48,
    out_channels=48,
    text_dim=32,
    freq_dim=32,
    ffn_dim=64,
    num_layers=2,
    cross_attn_norm=True,
    qk_norm="rms_norm_across_heads",
    rope_max_seq_len=32,
)
TINY_VAE = dict(VAE_5B, base_dim=4, decoder_base_dim=None, dim_mult=[1, 1, 1, 1], num_res_blocks=1)


def _parallel_build(args, device: str) -> tuple[WanComponents, object, object]:
    """The components every rank holds: the 5B at real size (random), or --tiny; rank 0's
    weights and embeddings are broadcast so that every rank computes with the same numbers."""
    import torch.distributed as dist
    from diffusers import AutoencoderKLWan, WanTransformer3DModel

    torch.manual_seed(args.seed)
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    with torch.device(device):
        transformer = WanTransformer3DModel(**(TINY_TRANSFORMER if args.tiny else TRANSFORMER_5B))
        transformer = transformer.to(dtype).eval()
        vae = AutoencoderKLWan(**(TINY_VAE if args.tiny else VAE_5B)).eval()
    text_dim = transformer.config.text_dim
    g = torch.Generator(device).manual_seed(1)
    emb = torch.randn(1, 512, text_dim, device=device, dtype=dtype, generator=g)
    neg = torch.randn(1, 512, text_dim, device=device, dtype=dtype, generator=g)
    with torch.no_grad():
        for p in transformer.parameters():
            if p.dim() >= 2:
                p.mul_(0.5)  # as build(): activations stay finite in bf16
        if dist.is_initialized():
            for t in [*transformer.parameters(), *transformer.buffers(), emb, neg]:
                dist.broadcast(t.data, src=0)
    comp = WanComponents(None, None, vae, transformer, None, make_scheduler(VARIANTS["ti2v-5b"]))
    return comp, emb, neg


def parallel_worker(args) -> None:
    """One torchrun process of one scheme (or of the one-GPU reference, scheme `one`): rank 0
    times a warm-up clip and a timed clip and writes SCHEME.json and SCHEME.npz (frames, latents)."""
    from cinerl.generation.wan import parallel

    scheme = args.parallel_worker
    world = parallel.world_from_env()
    if world is not None:
        parallel.init(world)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    t = time.perf_counter()
    comp, emb, neg = _parallel_build(args, device)
    build_s = time.perf_counter() - t
    gpus = world.size if world else 1
    opts = WanSettings(
        variant="ti2v-5b",
        compile=args.parallel_compile,
        attention=args.attention,
        gpus=gpus,
        parallel=scheme if gpus > 1 else "auto",
    )
    b = WanBackend(opts, components=comp)
    b.load()
    b._embeds["p"], b._embeds["n"] = emb, neg
    if world is not None and not world.leader:
        parallel.serve(b)
        parallel.finish()
        return
    grabbed = {}
    decode = WanBackend.decode.__get__(b)

    def keep(pipe, latents):
        grabbed["latents"] = latents.float().cpu().numpy()
        return decode(pipe, latents)

    b.decode = keep
    req = bench_request(args)
    try:
        t = time.perf_counter()
        b.options.steps = 2
        b.generate(req)  # warm-up: compilation, cuBLAS/cuDNN choices, NCCL's first exchanges
        warm_s = time.perf_counter() - t
        b.options.steps = args.steps
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        sync()
        t = time.perf_counter()
        clip = b.generate(req)
        sync()
        total = time.perf_counter() - t
    finally:
        parallel.finish()
    timing = clip.metadata["report"]["timing"]
    per = statistics.median(timing["steps"])
    row = {
        "scheme": scheme,
        "gpus": gpus,
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "size": [args.width, args.height],
        "frames": args.frames,
        "timed_steps": args.steps,
        "s_per_step": round(per, 4),
        "steps": timing["steps"],
        "decode_s": round(timing["decode"], 3),
        "total_s": round(total, 3),
        "clip_s_50_steps": round(per * 50 + timing["decode"], 2),
        "warmup_s": round(warm_s, 1),
        "build_s": round(build_s, 1),
        "rank0_peak_gib": round(torch.cuda.max_memory_allocated() / GiB, 1) if device == "cuda" else None,
        "speed": clip.metadata["report"]["speed"],
    }
    out = Path(args.worker_dir)
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / f"{scheme}.npz", frames=clip.frames, latents=grabbed["latents"])
    (out / f"{scheme}.json").write_text(json.dumps(row, indent=2, default=str))
    print(row, flush=True)


def _worker_command(args, scheme: str, n: int) -> list[str]:
    from cinerl.generation.wan.launch import torchrun_command

    argv = [str(Path(__file__).resolve()), "--parallel-worker", scheme, "--worker-dir", str(args.worker_dir)]
    argv += ["--width", str(args.width), "--height", str(args.height), "--frames", str(args.frames)]
    argv += ["--steps", str(args.steps), "--seed", str(args.seed), "--attention", args.attention]
    argv += ["--parallel-compile", args.parallel_compile] + (["--tiny"] if args.tiny else [])
    return torchrun_command(n, argv)


def run_parallel(args) -> dict:
    """One GPU, then each scheme on --gpus N, each in its own torchrun (a failed scheme is a
    row saying why, the others still run); the table compares every scheme with one GPU."""
    import subprocess

    from cinerl.core.errors import UserError
    from cinerl.generation.wan import launch, parallel

    try:
        launch.check_gpus(args.gpus)
        for s in args.parallel:
            parallel.check_plan(
                args.gpus,
                s,
                heads=(TINY_TRANSFORMER if args.tiny else TRANSFORMER_5B)["num_attention_heads"],
                guidance=VARIANTS["ti2v-5b"].guidance,
                cuda=torch.cuda.is_available(),
            )
    except UserError as e:
        sys.exit(f"error: {e}")
    work = Path(args.worker_dir)
    runs: dict[str, dict] = {}
    for scheme, n in [("one", 1)] + [(s, args.gpus) for s in args.parallel]:
        done = work / f"{scheme}.json"
        if args.reuse and done.is_file() and (work / f"{scheme}.npz").is_file():
            runs[scheme] = json.loads(done.read_text())
            print(f"{scheme}: reusing {done}", flush=True)
            continue
        done.unlink(missing_ok=True)
        t = time.perf_counter()
        res = subprocess.run(
            _worker_command(args, scheme, n), env=launch.torchrun_env(), capture_output=True, text=True
        )
        if res.returncode != 0 or not done.is_file():
            runs[scheme] = {"scheme": scheme, "gpus": n, "failed": (res.stderr or res.stdout)[-1500:]}
            print(
                f"{scheme}: failed after {time.perf_counter() - t:.0f} s\n{runs[scheme]['failed']}",
                flush=True,
            )
            continue
        runs[scheme] = json.loads(done.read_text())
    result = {"gpus": args.gpus, "size": [args.width, args.height], "frames": args.frames, "rows": []}
    base = runs["one"]
    ref = np.load(work / "one.npz") if "failed" not in base else None
    for scheme, row in runs.items():
        row = dict(row)
        if "failed" not in row and ref is not None and "failed" not in base:
            got = np.load(work / f"{scheme}.npz")
            pix = np.abs(got["frames"].astype(np.int16) - ref["frames"].astype(np.int16))
            lat = np.abs(got["latents"] - ref["latents"])
            row.update(
                speedup_per_step=round(base["s_per_step"] / row["s_per_step"], 3),
                speedup_per_clip_50_steps=round(base["clip_s_50_steps"] / row["clip_s_50_steps"], 3),
                pixel_max_abs_diff=int(pix.max()),
                pixel_mean_abs_diff=round(float(pix.mean()), 4),
                latent_max_abs_diff=float(lat.max()),
                latent_mean_abs_diff=float(lat.mean()),
                latent_max_abs=float(np.abs(ref["latents"]).max()),
            )
        row.pop("steps", None)
        result["rows"].append(row)
    ok = [r for r in result["rows"] if r["scheme"] != "one" and "speedup_per_clip_50_steps" in r]
    if ok:
        result["fastest_scheme"] = max(ok, key=lambda r: r["speedup_per_clip_50_steps"])["scheme"]
    print(
        f"{'scheme':8} {'GPUs':>4} {'s/step':>8} {'clip s (50 st)':>14} {'x step':>7} {'x clip':>7} "
        f"{'px max':>6} {'lat max':>9}"
    )
    for r in result["rows"]:
        if "failed" in r:
            print(f"{r['scheme']:8} {r['gpus']:4} failed (see JSON)")
            continue
        print(
            f"{r['scheme']:8} {r['gpus']:4} {r['s_per_step']:8.3f} {r['clip_s_50_steps']:14.1f} "
            f"{r.get('speedup_per_step', 1.0):7.3f} {r.get('speedup_per_clip_50_steps', 1.0):7.3f} "
            f"{r.get('pixel_max_abs_diff', 0):6} {r.get('latent_max_abs_diff', 0.0):9.3g}"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str))
    print(f"wrote {out}")
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=704)
    ap.add_argument("--frames", type=int, default=121)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--attention", default="auto", help="the defaults' kernel (auto, fa3, cudnn, native)")
    ap.add_argument(
        "--also-attention",
        default="",
        type=lambda v: [m for m in v.split(",") if m],
        help="more attention kernels to time the backend with, comma-separated (e.g. cudnn)",
    )
    ap.add_argument("--variant", default="ti2v-5b", choices=["ti2v-5b", "t2v-a14b"])
    ap.add_argument("--kernel-check", action="store_true", help="time the attention kernels alone first")
    ap.add_argument(
        "--extras",
        action="store_true",
        help="instead of the comparison: decode levers and the lossy fast mode (--fast-steps)",
    )
    ap.add_argument(
        "--compile-decoder", action="store_true", help="--extras: also try torch.compile(vae.decoder)"
    )
    ap.add_argument("--fast-steps", type=int, default=12, help="steps of the --extras lossy-lever clips")
    ap.add_argument(
        "--fast-full",
        type=int,
        default=0,
        help="--extras: also time whole --fast and lossless clips of this many steps (e.g. 50)",
    )
    ap.add_argument("--skip-decode-levers", action="store_true", help="--extras: only the lossy levers")
    ap.add_argument("--skip-fast", action="store_true", help="--extras: only the decode levers")
    ap.add_argument("--out", default="benchmarks/out/wan_speed.json")
    ap.add_argument("--profile", action="store_true", help="GPU time by kernel kind for one step")
    ap.add_argument(
        "--fp32-reference",
        action="store_true",
        help="also run the plain pipeline in fp32 and report both runs' distance to it",
    )
    ap.add_argument(
        "--compile-modes",
        default="",
        type=lambda v: [m for m in v.split(",") if m],
        help="extra torch.compile modes to time after the defaults, comma-separated",
    )
    ap.add_argument("--gpus", type=int, default=1, help="time one clip on this many GPUs too (torchrun)")
    ap.add_argument(
        "--parallel",
        default="ulysses,cfg,ring",
        type=lambda v: [m for m in v.split(",") if m],
        help="with --gpus N: the schemes to time, comma-separated (ulysses, ring, cfg)",
    )
    ap.add_argument(
        "--worker-dir", default="benchmarks/out/wan_parallel", help="--gpus: each run's JSON and frames"
    )
    ap.add_argument("--reuse", action="store_true", help="--gpus: keep the runs already in --worker-dir")
    ap.add_argument(
        "--parallel-compile", default="on", choices=["on", "off"], help="--gpus: regional compilation"
    )
    ap.add_argument(
        "--tiny", action="store_true", help="--gpus: a tiny random model (runs on the CPU, for tests)"
    )
    ap.add_argument("--parallel-worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.parallel_worker:
        parallel_worker(args)
        return
    if args.gpus > 1:
        run_parallel(args)
        return
    if not torch.cuda.is_available():
        sys.exit("wan_speed needs a CUDA GPU (run it through the device tool)")
    name = torch.cuda.get_device_name()
    peak = next((v for k, v in PEAK_BF16.items() if k in name), 989.4e12)
    if args.variant == "t2v-a14b":
        run_a14b(args, name, peak)
        return
    flops = flops_per_step(args.width, args.height, args.frames)
    t = time.perf_counter()
    comp = build(args.seed)
    build_s = time.perf_counter() - t
    g = torch.Generator("cuda").manual_seed(1)
    emb = torch.randn(1, 512, 4096, device="cuda", dtype=torch.bfloat16, generator=g)
    neg = torch.randn(1, 512, 4096, device="cuda", dtype=torch.bfloat16, generator=g)
    rows, notes = [], []
    extra = {}
    if args.kernel_check:
        extra["kernel_check"] = kernel_check()
    if args.extras:
        head = {
            "device": name,
            "torch": torch.__version__,
            "size": [args.width, args.height],
            "frames": args.frames,
        }
        run_extras(comp, emb, neg, args, flops, peak, {**head, **extra})
        return

    run_plain(comp, emb, neg, args, 2, decode=False)  # warm-up: cuBLAS/cuDNN choices
    plain, plain_out = run_plain(comp, emb, neg, args, args.steps, decode=True)
    plain_lat = plain_out["latents"].float()
    rows.append(summary("diffusers WanPipeline (plain)", plain, flops, peak))
    print(rows[-1], flush=True)

    # bf16 noise floor: the same plain pipeline with only the attention kernel swapped for
    # another exact one (torch's FlashAttention-2 instead of its default choice)
    comp.transformer.set_attention_backend("_native_flash")
    _, floor_out = run_plain(comp, emb, neg, args, args.steps, decode=False)
    floor = (floor_out["latents"].float() - plain_lat).abs()
    comp.transformer.set_attention_backend("native")

    results = []
    first = None
    runs = (
        [("CineRL wan backend (lossless defaults)", None, None, {})]
        + [(f"CineRL wan backend, attention {a}", a, None, {}) for a in args.also_attention]
        + [(f"CineRL wan backend, compile mode {m}", None, m, {}) for m in args.compile_modes]
    )
    for label, attn, mode, kw in runs:
        uncompile(comp)
        backend = make_backend(comp, emb, neg, args, "on", mode, attn, **kw)
        try:
            t = time.perf_counter()
            run_backend(backend, args, 2)  # warm-up, includes compilation
            notes.append(f"{label}: warm-up incl. compilation {time.perf_counter() - t:.1f} s")
        except Exception as e:  # a compile failure is reported, then measured without
            notes.append(
                f"{label}: compilation failed ({type(e).__name__}: {str(e)[:300]}); measured without"
            )
            print(notes[-1], flush=True)
            uncompile(comp)
            backend = make_backend(comp, emb, neg, args, "off")
            run_backend(backend, args, 2)
        _, res, grabbed = run_backend(backend, args, args.steps)
        if first is None:
            first = {"latents": grabbed["latents"], "backend": backend}
        rows.append(summary(label, res, flops, peak))
        print(rows[-1], flush=True)
        diff = (grabbed["latents"] - plain_lat).abs()
        pix = np.abs(
            to_uint8(grabbed["frames"]).astype(np.int16) - to_uint8(plain_out["frames"]).astype(np.int16)
        )
        results.append(
            {
                "latent_max_abs_diff": diff.max().item(),
                "latent_mean_abs_diff": diff.mean().item(),
                "pixel_max_abs_diff": int(pix.max()),
                "pixel_mean_abs_diff": float(pix.mean()),
            }
        )
    if args.profile:
        if first["backend"] is not backend:  # profile the defaults' kernel, compiled again
            uncompile(comp)
            backend = make_backend(comp, emb, neg, args, "on")
            run_backend(backend, args, 1)
        extra["profile_one_step_s"] = profile_step(backend, args)
        print("GPU time by kernel kind, one step:", extra["profile_one_step_s"], flush=True)
    grabbed = first
    if args.fp32_reference:
        uncompile(comp)
        ref = run_fp32_reference(comp, emb, neg, args)
        extra["fp32_reference"] = {
            "plain_bf16_max_abs_diff": (plain_lat - ref).abs().max().item(),
            "plain_bf16_mean_abs_diff": (plain_lat - ref).abs().mean().item(),
            "cinerl_bf16_max_abs_diff": (grabbed["latents"] - ref).abs().max().item(),
            "cinerl_bf16_mean_abs_diff": (grabbed["latents"] - ref).abs().mean().item(),
        }
        print("distance to the fp32 reference:", extra["fp32_reference"], flush=True)
    scale = plain_lat.abs().max().item()
    best = min(range(1, len(rows)), key=lambda i: rows[i]["s_per_step"])
    result = {
        "device": name,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "variant": "ti2v-5b",
        "weights": "random (real-size configs)",
        "size": [args.width, args.height],
        "frames": args.frames,
        "timed_steps": args.steps,
        "flops_per_step": flops,
        "peak_flops": peak,
        "build_s": round(build_s, 1),
        "runs": rows,
        "speedup_per_step": round(rows[0]["s_per_step"] / rows[1]["s_per_step"], 3),
        "clip_time_ratio_50_steps": round(
            (rows[1]["s_per_step"] * 50 + rows[1]["decode_s"])
            / (rows[0]["s_per_step"] * 50 + rows[0]["decode_s"]),
            3,
        ),
        "fastest_run": rows[best]["run"],
        **results[0],
        "latent_max_abs": scale,
        "per_run_differences": results,
        "noise_floor_max_abs_diff": floor.max().item(),
        "noise_floor_mean_abs_diff": floor.mean().item(),
        "notes": notes,
        **extra,
    }
    print(f"{'run':45} {'s/step':>7} {'peak%':>6} {'decode s':>9} {'peak GiB':>9}")
    for r in rows:
        print(
            f"{r['run']:45} {r['s_per_step']:7.3f} {100 * r['share_of_peak']:5.1f}% "
            f"{r['decode_s']:9.2f} {r['peak_gib']:9.1f}"
        )
    print(
        f"latents: max |diff| {result['latent_max_abs_diff']:.4g} "
        f"(mean {result['latent_mean_abs_diff']:.3g}) "
        f"of max |x| {scale:.4g}; noise floor, attention-kernel swap alone: max "
        f"{result['noise_floor_max_abs_diff']:.4g} (mean {result['noise_floor_mean_abs_diff']:.3g}); "
        f"decoded frames max |diff| {result['pixel_max_abs_diff']} / 255; "
        f"50-step clip time ratio {result['clip_time_ratio_50_steps']}"
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
