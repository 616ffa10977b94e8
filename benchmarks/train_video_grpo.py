"""Flow-GRPO on Wan2.2 at real size with random weights (no download): one group of G clips
rolled out with the SDE sampler, scored, and trained on a window of sampling steps; the obvious
code against CineRL's parts, side by side in one run, on one GPU.

The obvious code: diffusers' `WanTransformer3DModel`, a peft LoRA through `add_adapter`
(r 32, alpha 64 on to_q, to_k, to_v, to_out.0 of attn1 and attn2), bf16 autocast, diffusers'
default attention, torch's AdamW, one clip at a time: 20 sampling steps with the Flow-GRPO SDE
step written plainly in this file, then per clip and window step a trained forward, a reference
forward (adapters disabled) and the backward, the clips scored one after the other.

CineRL's side uses the trainer's parts (`training/video/sde.py`, `grpo.ppo_terms`,
`model.add_lora`, `speed.py`): the whole group in one batched forward per sampling step, the
training attention kernel where a gradient is taken and the forward-only fa3-fwd in the
rollouts and the reference forward (`speed.ForwardAttention`), regional compilation of each
block, fused AdamW, and scoring on a thread pool while the next work runs.

Each side runs one untimed warm-up group first (compilation, cuDNN autotuning, allocator
growth), then the timed group. Both get the same weights, prompt embedding and noise, so in
fp32 (`--tiny`) their log-probs agree and the first pass's ratio is exactly 1 on both.

    python benchmarks/train_video_grpo.py --rows 5b-49          # on the GPU machine
    python benchmarks/train_video_grpo.py --tiny                # the tests' tiny Wan, CPU, seconds

Rows: rollout seconds per clip (20 SDE steps, no CFG), seconds of the optimisation per
clip-step of the window, seconds of one whole group (rollout + score + train), peak memory,
scoring seconds per clip against its generation seconds (the reward is `--reward`, scored on
random frames of the clip's size: the VAE decode is not part of this benchmark), and the share
of the GPU's bf16 peak of the training step (FLOPs counted as benchmarks/train_video.py counts
them: a training clip-step is a reference forward, a trained forward and a backward of 2x).
Writes benchmarks/results/train_video_grpo_<device>.json and prints a table. NOT run by the
author (CPU only here): the GPU figures are the lead engineer's to take.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))

import train_video as tv  # noqa: E402  (the DPO benchmark: model configs, builder, FLOPs)

GROUP, STEPS, WINDOW, NOISE, CLIP, KL = 4, 20, 4, 0.7, 1e-3, 0.004
RANK, ALPHA, LR = 32, 64.0, 1e-4
SHIFT = 5.0  # TI2V-5B's flow shift


def forward_flops(row: str) -> float:
    return tv.flops_per_pair_step(row) / 8  # one forward of one sample


def setup(row, device, dtype, seed):
    cfg, *_, text = tv.ROWS[row]
    g = torch.Generator().manual_seed(seed)
    shape = tv.latent_shape(row)
    emb = torch.randn(1, text, cfg["text_dim"], generator=g)
    noise0 = torch.randn(GROUP, *shape, generator=g)
    # the SDE noise of every step of every clip, drawn once so both sides use the same
    eps = torch.randn(STEPS, GROUP, *shape, generator=g)
    return emb, noise0, eps


def _vel(model, x, s, emb, dtype, device):
    ac = tv._autocast(device, dtype)
    with ac():
        v = model(
            hidden_states=x.to(dtype),
            timestep=torch.full((x.shape[0],), s * 1000.0, device=device),
            encoder_hidden_states=emb.expand(x.shape[0], -1, -1).to(device, dtype),
            return_dict=False,
        )[0]
    return v.float()


def _score_fn(reward: str, frames_shape):
    from cinerl.core.schema import Clip
    from cinerl.rewards import ScoreContext, Scorer

    scorer = Scorer(components=[reward])
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=frames_shape, dtype=np.uint8)

    def score() -> tuple[float, float]:
        """(wall, this thread's CPU) seconds: beside the training loop a scoring thread waits
        for the GIL, so its wall time counts time the training loop's Python thread held it."""
        t0, c0 = time.perf_counter(), time.thread_time()
        scorer.score(Clip(frames=frames, fps=24, metadata={}), ScoreContext(prompt="x"))
        return time.perf_counter() - t0, time.thread_time() - c0

    return score


# ---- the obvious code ----------------------------------------------------------------------------
def obvious(row, device, dtype, seed, score, log) -> dict:
    from peft import LoraConfig

    from cinerl.training.video.sde import flow_sigmas

    model = tv.build(row, device, dtype, seed).to(device)
    model.requires_grad_(False)
    model.add_adapter(LoraConfig(r=RANK, lora_alpha=ALPHA, target_modules=tv.OBVIOUS_TARGETS))
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        p.data = p.data.float()
    opt = torch.optim.AdamW(params, lr=LR)
    emb, noise0, eps = setup(row, device, dtype, seed)
    sig = flow_sigmas(STEPS, SHIFT).tolist()

    def step_plain(x, v, i, e):  # Flow-GRPO's SDE step, written out (Liu et al. 2025, eq. 9)
        s, s1 = sig[i], sig[i + 1]
        sm = sig[1] if s >= 1 else s
        st = NOISE * math.sqrt(sm / (1 - sm))
        dt = s1 - s
        mean = x * (1 + st**2 / (2 * s) * dt) + v * (1 + st**2 * (1 - s) / (2 * s)) * dt
        std = st * math.sqrt(-dt)
        return mean, std, mean + std * e

    def logp(x1, mean, std):
        return (-((x1 - mean) ** 2) / (2 * std**2) - math.log(std) - 0.5 * math.log(2 * math.pi)).mean()

    def one_group():
        t0 = tv._sync(device)
        traj, old = [], []
        model.eval()
        with torch.no_grad():
            for c in range(GROUP):
                x = noise0[c : c + 1].to(device)
                for i in range(STEPS):
                    mean, std, x1 = step_plain(
                        x, _vel(model, x, sig[i], emb, dtype, device), i, eps[i, c : c + 1].to(device)
                    )
                    if i < WINDOW:
                        traj.append((c, i, x, x1))
                        old.append(logp(x1, mean, std))
                    x = x1
        t_roll = tv._sync(device)
        score_s = [score() for _ in range(GROUP)]  # one after the other
        t_score = tv._sync(device)
        adv = torch.tensor([1.0, -1.0] * (GROUP // 2) + [0.0] * (GROUP % 2))
        model.train()
        opt.zero_grad()
        ratios = []
        for (c, i, x, x1), lp_old in zip(traj, old):
            mean, std, _ = step_plain(x, _vel(model, x, sig[i], emb, dtype, device), i, 0)
            lp = logp(x1, mean, std)
            if KL > 0:  # the reference forward (adapters off), as the trainer's --kl
                model.disable_adapters()
                with torch.no_grad():
                    ref_mean, _, _ = step_plain(x, _vel(model, x, sig[i], emb, dtype, device), i, 0)
                model.enable_adapters()
            r = torch.exp(lp - lp_old)
            ratios.append(float(r.detach()))
            a = adv[c].to(device)
            pg = torch.maximum(-a * r, -a * torch.clamp(r, 1 - CLIP, 1 + CLIP))
            kl = ((mean - ref_mean) ** 2).mean() / (2 * std**2) if KL > 0 else 0.0
            ((pg + KL * kl) / len(traj)).backward()
        opt.step()
        t_train = tv._sync(device)
        return _row(
            row,
            device,
            "obvious",
            t0,
            t_roll,
            t_score,
            t_train,
            score_s,
            ratios,
            [float(v) for v in old],
            params,
        )

    one_group()  # warm-up, untimed: compilation, cuDNN autotuning and allocator growth
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    return one_group()


# ---- CineRL's parts ----------------------------------------------------------------------------
def cinerl(row, device, dtype, seed, score, log, compile_) -> dict:
    from cinerl.training.video import sde, speed
    from cinerl.training.video.grpo import ppo_terms
    from cinerl.training.video.model import add_lora

    model = tv.build(row, device, dtype, seed).to(device)
    params = add_lora(model, RANK, ALPHA, tv.OBVIOUS_TARGETS)
    attention = speed.setup_attention([model], dtype)
    forward_only = speed.ForwardAttention([model], dtype)  # rollouts and the reference: fa3-fwd
    compiled = speed.compile_blocks([model]) if speed.compile_wanted(compile_, device) else 0
    opt = speed.adamw(params, LR, 1e-4, device)
    emb, noise0, eps = setup(row, device, dtype, seed)
    sig = sde.flow_sigmas(STEPS, SHIFT)
    pool = ThreadPoolExecutor(max_workers=2)

    def step(x, v, i, e):
        st = sde.sde_mean(x, v, sig, i, NOISE)
        x1 = st.mean + st.std * e
        return x1, sde.log_prob(x1, st.mean, st.std)

    def one_group():
        t0 = tv._sync(device)
        traj = []
        model.eval()
        x = noise0.to(device)
        with torch.no_grad(), forward_only():
            for i in range(STEPS):  # the group in one batch
                x1, lp = step(x, _vel(model, x, float(sig[i]), emb, dtype, device), i, eps[i].to(device))
                if i < WINDOW:
                    traj.append((i, x, x1, lp))
                x = x1
        t_roll = tv._sync(device)
        futures = [pool.submit(score) for _ in range(GROUP)]  # beside the training below
        adv = torch.tensor([1.0, -1.0] * (GROUP // 2) + [0.0] * (GROUP % 2), device=device)
        model.train()
        opt.zero_grad()
        ratios, old = [], []
        for i, x, x1, lp_old in traj:
            st = sde.sde_mean(x, _vel(model, x, float(sig[i]), emb, dtype, device), sig, i, NOISE)
            lp = sde.log_prob(x1, st.mean, st.std)
            terms = ppo_terms(lp, lp_old, adv, CLIP)
            loss = terms["pg"]
            if KL > 0:
                with torch.no_grad(), forward_only():
                    model.disable_adapters()
                    v_ref = _vel(model, x, float(sig[i]), emb, dtype, device)
                    ref = sde.sde_mean(x, v_ref, sig, i, NOISE).mean
                    model.enable_adapters()
                loss = loss + KL * sde.kl_to_reference(st.mean, ref, st.std)
            (loss.mean() / len(traj)).backward()
            ratios += terms["ratio"].tolist()
            old += lp_old.tolist()
        opt.step()
        score_s = [f.result() for f in futures]
        t_train = tv._sync(device)
        out = _row(row, device, "cinerl", t0, t_roll, t_roll, t_train, score_s, ratios, old, params)
        out.update(attention=attention, rollout_attention=forward_only.kernel, compiled_blocks=compiled)
        return out

    one_group()  # warm-up, untimed: compilation, cuDNN autotuning and allocator growth
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    out = one_group()
    pool.shutdown()
    return out


def _row(row, device, side, t0, t_roll, t_score, t_train, score_s, ratios, old, params) -> dict:
    gen_per_clip = (t_roll - t0) / GROUP
    train_clip_steps = GROUP * WINDOW
    train_s = t_train - t_score
    score_wall, score_cpu = (float(np.mean(v)) for v in zip(*score_s))  # per clip
    flops_train = 4 * forward_flops(row) * train_clip_steps
    peak = next(
        (v for k, v in tv.PEAK_BF16.items() if device.type == "cuda" and k in torch.cuda.get_device_name()),
        None,
    )
    return {
        "side": side,
        "rollout_s_per_clip": gen_per_clip,
        "train_s_per_clip_step": train_s / train_clip_steps,
        "group_s": t_train - t0,
        "score_s_per_clip": score_wall,
        "score_cpu_s_per_clip": score_cpu,
        "score_share_of_generation": score_wall / gen_per_clip,
        "score_cpu_share_of_generation": score_cpu / gen_per_clip,
        "peak_memory_gib": torch.cuda.max_memory_allocated() / tv.GiB if device.type == "cuda" else None,
        "train_bf16_peak_share": (flops_train / train_s / peak) if peak else None,
        "first_pass_ratios": ratios,
        "old_logp": old,
        "trainable_params": sum(p.numel() for p in params),
    }


def main(argv=None) -> dict:
    global GROUP, STEPS, WINDOW, KL
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default="5b-49", help="comma-separated rows of benchmarks/train_video.py")
    ap.add_argument("--tiny", action="store_true", help="the tiny random model on the CPU in fp32 (seconds)")
    ap.add_argument("--reward", default="temporal_flicker", help="the reward component scored")
    ap.add_argument("--compile", default="auto", help="CineRL side: regional compile auto|on|off")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--kl", type=float, default=KL, help="KL weight; 0 skips the reference forward")
    ap.add_argument(
        "--out", default="", help="JSON path (default benchmarks/results/train_video_grpo_<device>.json)"
    )
    a = ap.parse_args(argv)
    KL = a.kl
    device = torch.device("cuda" if torch.cuda.is_available() and not a.tiny else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    rows = ["tiny"] if a.tiny else [r.strip() for r in a.rows.split(",") if r.strip()]
    if a.tiny:
        GROUP, STEPS, WINDOW = 2, 3, 2
    results = []
    for row in rows:
        _, s, w, h, f, _ = tv.ROWS[row]
        score = _score_fn(a.reward, (f, h, w, 3))
        sides = {}
        for name, fn in (("obvious", obvious), ("cinerl", cinerl)):
            if device.type == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
            try:
                extra = (a.compile,) if name == "cinerl" else ()
                sides[name] = fn(row, device, dtype, a.seed, score, print, *extra)
            except torch.OutOfMemoryError:
                sides[name] = {"side": name, "oom": True}
            tv._free(device)
        o, c = sides["obvious"], sides["cinerl"]
        r = {"row": row, "group": GROUP, "sde_steps": STEPS, "window": WINDOW, "obvious": o, "cinerl": c}
        if "group_s" in o and "group_s" in c:
            r["time_ratio"] = c["group_s"] / o["group_s"]
            r["max_old_logp_diff"] = max(
                abs(x - y) for x, y in zip(sorted(o["old_logp"]), sorted(c["old_logp"]))
            )
        results.append(r)
    name = "cpu" if device.type == "cpu" else torch.cuda.get_device_name().split()[-1].lower()
    out = Path(a.out) if a.out else HERE / "results" / f"train_video_grpo_{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"device": str(device), "dtype": str(dtype), "reward": a.reward, "kl": KL, "rows": results}
    out.write_text(json.dumps(doc, indent=2))
    print(
        f"{'row':8} {'side':8} {'roll s/clip':>11} {'train s/clip-step':>17} {'group s':>8} "
        f"{'score %':>8} {'GiB':>6}"
    )
    for r in results:
        for side in ("obvious", "cinerl"):
            d = r[side]
            if d.get("oom"):
                print(f"{r['row']:8} {side:8} OOM")
                continue
            gib = f"{d['peak_memory_gib']:.1f}" if d["peak_memory_gib"] is not None else "-"
            print(
                f"{r['row']:8} {side:8} {d['rollout_s_per_clip']:11.3f} {d['train_s_per_clip_step']:17.3f} "
                f"{d['group_s']:8.2f} {100 * d['score_share_of_generation']:7.2f}% {gib:>6}"
            )
        if "time_ratio" in r:
            print(f"{r['row']:8} cinerl / obvious: {r['time_ratio']:.2f}x")
    print(f"wrote {out}")
    return doc


if __name__ == "__main__":
    main()
