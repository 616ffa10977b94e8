"""Flow-DPO pair steps at real size with random weights (no download): the obvious code against
CineRL's trainer step, side by side in one run, on one GPU.

The obvious code: diffusers' `WanTransformer3DModel`, a peft LoRA added through `add_adapter`
(r 32, alpha 32 on to_q, to_k, to_v, to_out.0 of attn1 and attn2: 47M trainable parameters on
the 5B), the LoRA cast to fp32 (`cast_training_params`), bf16 autocast, diffusers' default
attention, gradient checkpointing, torch's AdamW, and the same Flow-DPO loss: the reference
forward with the adapters disabled under no_grad, chosen and rejected in one batch of 2.

CineRL's step is the trainer's own (`training/video/dpo.dpo_losses`, `model.add_lora`,
`speed.py`): the same LoRA and loss, with the training attention kernel (cuDNN SDPA where it
runs), regional compilation of each transformer block, fused AdamW, and activation
checkpointing only when a step runs out of memory without it.

Both get the same weights (built from the same seed), the same pair latents, prompt embedding,
noise and timesteps, so their first losses are both log 2 and, in fp32 (`--tiny`), their
curves agree step for step.

    python benchmarks/train_video.py --rows 5b-49,5b-81,5b-121,a14b-81
    python benchmarks/train_video.py --tiny          # tiny random model on the CPU, seconds

Prints a table and writes benchmarks/results/train_video_<device>.json. A row (or one side of
a row) that runs out of memory is recorded as OOM and the run goes on.

FLOPs (matmuls only, counted as benchmarks/wan_speed.py counts them): one forward of one sample
is, per block, 8·L·d² (self-attention projections) + 4·L²·d (scores and values) + 4·L·d² +
4·S·d² + 4·L·S·d (cross-attention, S = 512 text tokens) + 4·L·d·f (feed-forward), L tokens,
d width, f FFN width. A pair step is a batch of 2 through the reference forward, the trained
forward and the backward, the backward counted as 2x the forward (the usual convention; with
frozen base weights only the input gradients are computed, so the real backward is nearer 1x):
4 forwards of 2 samples. Recomputation under checkpointing is not counted (it is overhead).
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

sys.path.insert(0, str(Path(__file__).resolve().parent))
from wan_configs import GiB, PEAK_BF16, TRANSFORMER_5B, TRANSFORMER_A14B  # noqa: E402

# the tests' tiny random Wan (tests/generation/wan_tiny.py)
TRANSFORMER_TINY = dict(
    patch_size=(1, 2, 2),
    num_attention_heads=2,
    attention_head_dim=12,
    in_channels=48,
    out_channels=48,
    text_dim=32,
    freq_dim=32,
    ffn_dim=32,
    num_layers=2,
    cross_attn_norm=True,
    qk_norm="rms_norm_across_heads",
    rope_max_seq_len=32,
)
# name: (config, VAE spatial stride, width, height, frames, text tokens)
ROWS = {
    "5b-49": (TRANSFORMER_5B, 16, 832, 480, 49, 512),
    "5b-81": (TRANSFORMER_5B, 16, 832, 480, 81, 512),
    "5b-121": (TRANSFORMER_5B, 16, 832, 480, 121, 512),
    "a14b-81": (TRANSFORMER_A14B, 8, 832, 480, 81, 512),
    "tiny": (TRANSFORMER_TINY, 16, 64, 32, 9, 8),
}
BETA = 100.0
OBVIOUS_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]  # attn1 and attn2 alike
LR = 1e-4
WD = 1e-4  # the trainer's default (diffusers' LoRA examples)


def latent_shape(row: str) -> tuple[int, int, int, int]:
    cfg, s, w, h, f, _ = ROWS[row]
    return (cfg["out_channels"], (f - 1) // 4 + 1, h // s, w // s)


def flops_per_pair_step(row: str) -> float:
    cfg, _, _, _, _, text = ROWS[row]
    _, t, h, w = latent_shape(row)
    p = cfg["patch_size"]
    L = (t // p[0]) * (h // p[1]) * (w // p[2])
    d = cfg["num_attention_heads"] * cfg["attention_head_dim"]
    f, S = cfg["ffn_dim"], text
    block = 8 * L * d * d + 4 * L * L * d + 4 * L * d * d + 4 * S * d * d + 4 * L * S * d + 4 * L * d * f
    forward_one = cfg["num_layers"] * block
    return 4 * 2 * forward_one  # (reference + trained forward + 2x backward) x 2 samples


def build(row: str, device: torch.device, dtype: torch.dtype, seed: int):
    from diffusers import WanTransformer3DModel

    cfg = ROWS[row][0]
    torch.manual_seed(seed)
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            m = WanTransformer3DModel(**cfg)
    finally:
        torch.set_default_dtype(torch.float32)
    # random weights are far from trained ones; scaled so activations stay finite in bf16
    with torch.no_grad():
        for p in m.parameters():
            if p.dim() >= 2:
                p.mul_(0.5)
    return m.train()


def data(row: str, steps: int, seed: int):
    """One pair, its prompt embedding, and each step's shared noise and timestep (CPU, fp32)."""
    from cinerl.training.video.dpo_loss import sample_noise_and_t
    from cinerl.training.video.flow_matching import sample_seed

    cfg, *_, text = ROWS[row]
    shape = latent_shape(row)
    g = torch.Generator().manual_seed(seed)
    pair = {
        "x_w": torch.randn(1, *shape, generator=g),
        "x_l": torch.randn(1, *shape, generator=g),
        "prompt_embeds": torch.randn(1, text, cfg["text_dim"], generator=g),
        "condition": None,
        "condition_kind": "none",
    }
    draws = [sample_noise_and_t(shape, [sample_seed(seed, s, 0)], 0.0, 1.0, 0.0, 1.0) for s in range(steps)]
    return pair, draws


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter()


def _autocast(device, dtype):
    import contextlib

    if dtype == torch.bfloat16:
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext


# ---- the obvious code ---------------------------------------------------------------------------
def obvious(row: str, device, dtype, pair, draws, seed: int, log) -> dict:
    import torch.nn.functional as F
    from diffusers.training_utils import cast_training_params
    from peft import LoraConfig

    model = build(row, device, dtype, seed)
    model.requires_grad_(False)
    torch.manual_seed(seed + 1)
    model.add_adapter(
        LoraConfig(
            r=32, lora_alpha=32, init_lora_weights=True, target_modules=["to_q", "to_k", "to_v", "to_out.0"]
        )
    )
    cast_training_params(model, dtype=torch.float32)
    model.enable_gradient_checkpointing()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=LR, weight_decay=WD)
    autocast = _autocast(device, dtype)
    x0 = torch.cat([pair["x_w"], pair["x_l"]]).to(device)
    emb = torch.cat([pair["prompt_embeds"]] * 2).to(device, dtype)

    def step(noise, t):
        eps = torch.cat([noise, noise]).to(device)
        tt = torch.cat([t, t]).to(device)
        x_t = (1 - tt.view(-1, 1, 1, 1, 1)) * x0 + tt.view(-1, 1, 1, 1, 1) * eps
        target = eps - x0
        kw = dict(
            hidden_states=x_t.to(dtype), timestep=tt * 1000, encoder_hidden_states=emb, return_dict=False
        )
        with autocast():
            with torch.no_grad():
                model.disable_adapters()
                ref = model(**kw)[0]
                model.enable_adapters()
            pred = model(**kw)[0]
        mse = ((pred.float() - target) ** 2).mean(dim=(1, 2, 3, 4))
        ref_mse = ((ref.float() - target) ** 2).mean(dim=(1, 2, 3, 4))
        margin = -0.5 * BETA * ((mse[0] - ref_mse[0]) - (mse[1] - ref_mse[1]))
        loss = -F.logsigmoid(margin)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return float(loss.detach())

    return timed(step, draws, device, log, trainable=sum(p.numel() for p in params))


# ---- CineRL's trainer step ----------------------------------------------------------------------
def cinerl(row: str, device, dtype, pair, draws, seed: int, log, compile_: str) -> dict:
    from cinerl.training.video import speed
    from cinerl.training.video.dpo_loss import dpo_losses
    from cinerl.training.video.model import ATTENTION_TARGETS, Experts, add_lora

    model = build(row, device, dtype, seed)
    torch.manual_seed(seed + 1)
    params = add_lora(model, 32, 32.0, list(ATTENTION_TARGETS))
    _, t, h, w = latent_shape(row)
    ckpt = speed.Checkpointing("auto", device, speed.tokens_of(t, h, w))
    ckpt.apply([model])
    attention = speed.setup_attention([model], dtype)
    compiled = speed.compile_blocks([model]) if speed.compile_wanted(compile_, device) else 0
    experts = Experts({"transformer": model})
    opt = speed.adamw(params, LR, WD, device)
    autocast = _autocast(device, dtype)

    def step(noise, t):
        while True:
            try:
                out = dpo_losses(experts, experts, "transformer", pair, noise, t, BETA, dtype, autocast)
                out["loss"].sum().backward()
                break
            except Exception as e:  # a CUDA OOM without checkpointing: turn it on, redo the step
                opt.zero_grad(set_to_none=True)
                if not (speed.is_oom(e) and ckpt.after_oom([model])):
                    raise
                log(f"  {ckpt.why}")
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return float(out["loss"].detach().sum())

    res = timed(step, draws, device, log, trainable=sum(p.numel() for p in params))
    res.update(
        attention=attention,
        compiled_blocks=compiled,
        checkpointing=ckpt.on,
        checkpointing_why=ckpt.why,
        fused_adamw=bool(opt.defaults.get("fused")),
    )
    return res


# ---- timing -------------------------------------------------------------------------------------
def timed(step, draws, device, log, trainable: int, warmup: int | None = None) -> dict:
    warmup = WARMUP if warmup is None else warmup
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    losses, times = [], []
    for i, (noise, t) in enumerate(draws):
        t0 = _sync(device)
        losses.append(step(noise, t))
        dt = _sync(device) - t0
        times.append(dt)
        log(
            f"  step {i + 1}/{len(draws)}: {dt:.3f} s, loss {losses[-1]:.6f}"
            + (" (warm-up)" if i < warmup else "")
        )
    timed_ = times[warmup:] or times
    return {
        "s_per_pair_step": statistics.median(timed_),
        "warmup_s": round(sum(times[:warmup]), 2),
        "peak_gib": round(torch.cuda.max_memory_allocated() / GiB, 2) if device.type == "cuda" else None,
        "losses": losses,
        "trainable_params": trainable,
    }


def _free(device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def run_side(name, fn, log, device) -> dict:
    """One side of a row; a CUDA out-of-memory is recorded as OOM (the run goes on)."""
    from cinerl.training.video.speed import is_oom

    try:
        return fn()
    except Exception as e:
        if not is_oom(e):
            raise
        log(f"  {name}: out of memory ({str(e).splitlines()[0][:120]})")
        return {"oom": True, "error": str(e).splitlines()[0][:300]}
    finally:
        _free(device)  # the side's model and optimizer are gone with its frame


WARMUP = 2
DEFAULT_ROWS = "5b-49,5b-81,5b-121,a14b-81"


def main(argv=None) -> dict:
    global WARMUP
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--rows", default="5b-49,5b-81,5b-121,a14b-81", help=f"comma-separated: {', '.join(ROWS)}"
    )
    ap.add_argument("--tiny", action="store_true", help="the tiny random model on the CPU in fp32 (seconds)")
    ap.add_argument("--steps", type=int, default=6, help="pair steps per side, the warm-up included")
    ap.add_argument("--warmup", type=int, default=2, help="untimed first steps (compilation happens here)")
    ap.add_argument(
        "--compile", default="auto", choices=["auto", "on", "off"], help="CineRL side's regional compile"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--out", default="", help="JSON path (default benchmarks/results/train_video_<device>.json)"
    )
    args = ap.parse_args(argv)
    WARMUP = args.warmup
    rows = ["tiny"] if args.tiny else [r for r in args.rows.split(",") if r]
    bad = [r for r in rows if r not in ROWS]
    if bad:
        ap.error(f"unknown rows {bad}; known: {', '.join(ROWS)}")
    if args.tiny:
        device, dtype, dev_name = torch.device("cpu"), torch.float32, "cpu"
    else:
        if not torch.cuda.is_available():
            sys.exit("train_video needs a CUDA GPU (or --tiny for the CPU)")
        device, dtype, dev_name = torch.device("cuda"), torch.bfloat16, torch.cuda.get_device_name()
    peak = next((v for k, v in PEAK_BF16.items() if k in dev_name), 989.4e12)
    short = "cpu" if args.tiny else next((k.lower() for k in PEAK_BF16 if k in dev_name), "gpu")

    def log(msg: str) -> None:
        print(msg, flush=True)

    results = []
    for row in rows:
        shape = latent_shape(row)
        flops = flops_per_pair_step(row)
        log(f"[{row}] latents {shape}, {flops / 1e12:.1f} TFLOP per pair step")
        pair, draws = data(row, args.steps, args.seed)
        r = {"row": row, "latents": list(shape), "flops_per_pair_step": flops}
        for side, fn in (
            ("obvious", lambda: obvious(row, device, dtype, pair, draws, args.seed, log)),
            ("cinerl", lambda: cinerl(row, device, dtype, pair, draws, args.seed, log, args.compile)),
        ):
            log(f" {side}:")
            res = run_side(side, fn, log, device)
            if "s_per_pair_step" in res:
                res["share_of_peak"] = round(flops / res["s_per_pair_step"] / peak, 3)
                res["s_per_pair_step"] = round(res["s_per_pair_step"], 4)
            r[side] = res
        o, c = r["obvious"], r["cinerl"]
        if "s_per_pair_step" in o and "s_per_pair_step" in c:
            r["time_ratio"] = round(c["s_per_pair_step"] / o["s_per_pair_step"], 3)
            n = min(len(o["losses"]), len(c["losses"]))
            r["max_loss_diff"] = max(abs(a - b) for a, b in zip(o["losses"][:n], c["losses"][:n]))
        results.append(r)
    out = {
        "device": dev_name,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "weights": "random (real-size configs)" if not args.tiny else "random (the tests' tiny config)",
        "size": "832x480" if not args.tiny else "64x32",
        "dtype": str(dtype),
        "steps": args.steps,
        "warmup": args.warmup,
        "peak_flops": peak,
        "flops": "4 forwards of the batch of 2 per pair step (backward counted as 2x forward)",
        "rows": results,
    }
    print(f"\n{'row':8} {'side':8} {'s/step':>8} {'peak GiB':>9} {'bf16 peak':>9} {'ratio':>6}  notes")
    for r in results:
        for side in ("obvious", "cinerl"):
            s = r[side]
            if s.get("oom"):
                print(f"{r['row']:8} {side:8} {'OOM':>8}")
                continue
            notes = ""
            if side == "cinerl":
                notes = f"ckpt {'on' if s['checkpointing'] else 'off'}, compiled {s['compiled_blocks']}"
            ratio = f"{r['time_ratio']:.3f}" if side == "cinerl" and "time_ratio" in r else ""
            gib = f"{s['peak_gib']:.1f}" if s["peak_gib"] is not None else "-"
            print(
                f"{r['row']:8} {side:8} {s['s_per_pair_step']:8.3f} {gib:>9} "
                f"{100 * s['share_of_peak']:8.1f}% {ratio:>6}  {notes}"
            )
    path = Path(args.out or f"benchmarks/results/train_video_{short}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2, default=str))
    print(f"wrote {path}")
    return out


if __name__ == "__main__":
    main()
