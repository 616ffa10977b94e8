"""Wan2.2 TI2V-5B at real size with random weights (no download): plain diffusers WanPipeline
against the CineRL backend, side by side, on one GPU.

Both runs get the same random prompt embeddings (a UMT5-XXL is not built: its time is not part
of either run, and the backend caches embeddings anyway), the same seed and step count. Prints
per-step time, share of bf16 peak, VAE decode time, peak memory and the largest difference
between the two runs' final latents; writes JSON.

    python benchmarks/wan_speed.py --steps 4 --out benchmarks/results/wan_speed_h100.json

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

PEAK_BF16 = {"H100": 989.4e12, "H200": 989.4e12}  # dense bf16 tensor-core peak, SXM
GiB = 1024**3
# Wan2.2 TI2V-5B (Wan-Video/Wan2.2 wan/configs/wan_ti2v_5B.py; diffusers folder configs)
TRANSFORMER_5B = dict(
    patch_size=(1, 2, 2),
    num_attention_heads=24,
    attention_head_dim=128,
    in_channels=48,
    out_channels=48,
    text_dim=4096,
    freq_dim=256,
    ffn_dim=14336,
    num_layers=30,
    cross_attn_norm=True,
    qk_norm="rms_norm_across_heads",
    eps=1e-6,
    rope_max_seq_len=1024,
)
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
        b.generate(
            ClipRequest(
                prompt="p",
                negative_prompt="n",
                width=args.width,
                height=args.height,
                num_frames=args.frames,
                seed=args.seed,
            )
        )
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
    torch._dynamo.reset()
    for blk in comp.transformer.blocks:
        blk._compiled_call_impl = None


def make_backend(comp, emb, neg, args, compile_: str, mode: str | None = None) -> WanBackend:
    """The CineRL backend's default lossless settings (or another compile mode), on the same modules."""
    opts = WanSettings(variant="ti2v-5b", compile=compile_, compile_mode=mode, attention=args.attention)
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
    clip = b.generate(
        ClipRequest(
            prompt="p",
            negative_prompt="n",
            width=args.width,
            height=args.height,
            num_frames=args.frames,
            seed=args.seed,
        )
    )
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
            "speed": {k: b.stats[k] for k in ("attention", "compiled", "step_cache")},
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=704)
    ap.add_argument("--frames", type=int, default=121)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--attention", default="auto")
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
    args = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("wan_speed needs a CUDA GPU (run it through the device tool)")
    name = torch.cuda.get_device_name()
    peak = next((v for k, v in PEAK_BF16.items() if k in name), 989.4e12)
    flops = flops_per_step(args.width, args.height, args.frames)
    t = time.perf_counter()
    comp = build(args.seed)
    build_s = time.perf_counter() - t
    g = torch.Generator("cuda").manual_seed(1)
    emb = torch.randn(1, 512, 4096, device="cuda", dtype=torch.bfloat16, generator=g)
    neg = torch.randn(1, 512, 4096, device="cuda", dtype=torch.bfloat16, generator=g)
    rows, notes = [], []

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
    for mode in [None, *args.compile_modes]:
        label = (
            "CineRL wan backend (lossless defaults)"
            if mode is None
            else f"CineRL wan backend, compile mode {mode}"
        )
        uncompile(comp)
        backend = make_backend(comp, emb, neg, args, "on", mode)
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
    extra = {}
    if args.profile:
        extra["profile_one_step_s"] = profile_step(backend, args)
        print("GPU time by kernel kind, one step:", extra["profile_one_step_s"], flush=True)
    if args.fp32_reference:
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
