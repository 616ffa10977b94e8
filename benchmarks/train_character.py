"""Character-LoRA training steps at real size with random weights (no download), on one GPU.

The step is the trainer's own (training/character/trainer.py `character_loss`): the Wan2.2
TI2V-5B transformer with the trainer's LoRA (rank 32, alpha 32 on attn1/attn2 to_q, to_k, to_v,
to_out.0, fp32 parameters on bf16 weights), the training attention kernel, gradient
checkpointing by the trainer's rule (on above 5k tokens), bf16 autocast, AdamW at 1e-4, one
image (a one-frame video) per step under a 512-token caption embedding. Rows:

- 512, 768, 1024: square images of that side (the 5B's VAE: 16x spatial, so 32x32, 48x48 and
  64x64 latents, 256 / 576 / 1024 tokens after the 2x2 patch);
- 512-clip17: a 17-frame clip at 512 px (`--clips`, 5 latent frames), so the time of a run with
  clips mixed in at `--clip-ratio` 0.25 is projected too.

For each row: seconds and steps per second (median after the warm-up), peak GPU memory, and
the projected time of a 1500-step LoRA (the trainer's default), images only and with clips at
0.25 (0.75 x the image row's step + 0.25 x the clip row's). Sample images and checkpoints are not
counted.

    python benchmarks/train_character.py                  # 512,768,1024,512-clip17 on the 5B
    python benchmarks/train_character.py --tiny           # the tests' tiny Wan on the CPU, seconds

Prints a table and writes benchmarks/results/train_character_<device>.json. A row that runs out
of memory is recorded as OOM and the run goes on. The model configs, the random-weight builder
and the timing helpers are benchmarks/train_video.py's.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))


def _train_video():
    """benchmarks/train_video.py as a module (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location("train_video_benchmark", HERE / "train_video.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


tv = _train_video()
STEPS_TO_LORA = 1500  # CharacterConfig.steps' default
CLIP_RATIO = 0.25  # CharacterConfig.clip_ratio's default
TEXT_TOKENS = 512
# name: (train_video's row of the same transformer, VAE spatial stride, side in px, frames,
# caption tokens)
ROWS = {
    "512": ("5b-49", 16, 512, 1, TEXT_TOKENS),
    "768": ("5b-49", 16, 768, 1, TEXT_TOKENS),
    "1024": ("5b-49", 16, 1024, 1, TEXT_TOKENS),
    "512-clip17": ("5b-49", 16, 512, 17, TEXT_TOKENS),
    "tiny": ("tiny", 16, 64, 1, 8),
    "tiny-clip9": ("tiny", 16, 64, 9, 8),
}
DEFAULT_ROWS = "512,768,1024,512-clip17"


def config(row: str) -> dict:
    return tv.ROWS[ROWS[row][0]][0]


def latent_shape(row: str) -> tuple[int, int, int, int]:
    _, stride, side, frames, _ = ROWS[row]
    cfg = config(row)
    return (cfg["out_channels"], (frames - 1) // 4 + 1, side // stride, side // stride)


def tokens(row: str) -> int:
    _, f, h, w = latent_shape(row)
    return f * (h // 2) * (w // 2)


def bench_row(row: str, device, dtype, steps: int, warmup: int, seed: int, log) -> dict:
    from cinerl.generation.wan.attention import training_attention
    from cinerl.training.character.trainer import character_loss, checkpointing_on
    from cinerl.training.video.dpo_loss import sample_noise_and_t
    from cinerl.training.video.flow_matching import sample_seed
    from cinerl.training.video.model import ATTENTION_TARGETS, Experts, add_lora

    cfg = config(row)
    model = tv.build(ROWS[row][0], device, dtype, seed)  # random weights, scaled for bf16
    torch.manual_seed(seed + 1)
    params = add_lora(model, 32, 32.0, list(ATTENTION_TARGETS))
    ckpt = checkpointing_on("auto", tokens(row))
    if ckpt:
        model.enable_gradient_checkpointing()
    attn, _ = training_attention("auto", cfg["attention_head_dim"], dtype)
    if attn is not None:
        model.set_attention_backend(attn)
    experts = Experts({"transformer": model})
    opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.999), weight_decay=1e-4)
    autocast = tv._autocast(device, dtype)
    shape = latent_shape(row)
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(*shape, generator=g)
    emb = torch.randn(ROWS[row][4], cfg["text_dim"], generator=g)
    draws = [sample_noise_and_t(shape, [sample_seed(seed, s, 0)], 0.0, 1.0, 0.0, 1.0) for s in range(steps)]

    def step(noise, t):
        loss = character_loss(experts, cfg["patch_size"], "transformer", x0, emb, noise, t, dtype, autocast)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return float(loss.detach())

    res = tv.timed(step, draws, device, log, trainable=sum(p.numel() for p in params), warmup=warmup)
    res.update(checkpointing=ckpt, attention=attn or "native")
    return res


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default=DEFAULT_ROWS, help=f"comma-separated: {', '.join(ROWS)}")
    ap.add_argument("--tiny", action="store_true", help="the tiny random model on the CPU in fp32 (seconds)")
    ap.add_argument("--steps", type=int, default=8, help="steps per row, the warm-up included")
    ap.add_argument("--warmup", type=int, default=2, help="untimed first steps")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--out", default="", help="JSON path (default benchmarks/results/train_character_<device>.json)"
    )
    args = ap.parse_args(argv)
    rows = ["tiny", "tiny-clip9"] if args.tiny else [r for r in args.rows.split(",") if r]
    bad = [r for r in rows if r not in ROWS]
    if bad:
        ap.error(f"unknown rows {bad}; known: {', '.join(ROWS)}")
    if args.steps <= args.warmup:
        ap.error("--steps must be more than --warmup")
    if args.tiny:
        device, dtype, dev_name = torch.device("cpu"), torch.float32, "cpu"
    else:
        if not torch.cuda.is_available():
            sys.exit("train_character needs a CUDA GPU (or --tiny for the CPU)")
        device, dtype, dev_name = torch.device("cuda"), torch.bfloat16, torch.cuda.get_device_name()
    short = "cpu" if args.tiny else next((k.lower() for k in tv.PEAK_BF16 if k in dev_name), "gpu")

    def log(msg: str) -> None:
        print(msg, flush=True)

    results = []
    for row in rows:
        log(f"[{row}] latents {latent_shape(row)}, {tokens(row)} tokens")
        r = {"row": row, "latents": list(latent_shape(row)), "tokens": tokens(row)}
        res = tv.run_side(
            row, lambda: bench_row(row, device, dtype, args.steps, args.warmup, args.seed, log), log, device
        )
        if "s_per_pair_step" in res:  # train_video.timed's name: here one image (or clip) per step
            s = res.pop("s_per_pair_step")
            res["s_per_step"] = round(s, 4)
            res["steps_per_s"] = round(1.0 / s, 3)
            res["lora_1500_min"] = round(STEPS_TO_LORA * s / 60, 1)
        r.update(res)
        results.append(r)
    by = {r["row"]: r for r in results}
    clip_row = next((r for r in results if "clip" in r["row"] and "s_per_step" in r), None)
    if clip_row is not None:
        for r in results:
            if "clip" not in r["row"] and "s_per_step" in r:
                mixed = (1 - CLIP_RATIO) * r["s_per_step"] + CLIP_RATIO * clip_row["s_per_step"]
                r["lora_1500_with_clips_min"] = round(STEPS_TO_LORA * mixed / 60, 1)
    out = {
        "device": dev_name,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "model": "Wan2.2 TI2V-5B transformer" if not args.tiny else "the tests' tiny Wan transformer",
        "weights": "random (real-size config)" if not args.tiny else "random (tiny config)",
        "dtype": str(dtype),
        "steps": args.steps,
        "warmup": args.warmup,
        "lora": "rank 32, alpha 32, attn1/attn2 q,k,v,out; AdamW 1e-4",
        "steps_to_lora": STEPS_TO_LORA,
        "clip_ratio": CLIP_RATIO,
        "clip_row": clip_row["row"] if clip_row else None,
        "rows": results,
    }
    head = f"{'row':11} {'tokens':>6} {'s/step':>8} {'steps/s':>8} {'peak GiB':>9}"
    print(f"\n{head} {'1500 steps':>11} {'+clips':>8}")
    for row in rows:
        r = by[row]
        if r.get("oom"):
            print(f"{row:11} {r['tokens']:6d} {'OOM':>8}")
            continue
        gib = f"{r['peak_gib']:.1f}" if r["peak_gib"] is not None else "-"
        mixed = r.get("lora_1500_with_clips_min")
        print(
            f"{row:11} {r['tokens']:6d} {r['s_per_step']:8.3f} {r['steps_per_s']:8.2f} {gib:>9} "
            f"{r['lora_1500_min']:9.1f} m {(f'{mixed:6.1f} m' if mixed is not None else ''):>8}"
        )
    path = Path(args.out or HERE / "results" / f"train_character_{short}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2, default=str))
    print(f"wrote {path}")
    return out


if __name__ == "__main__":
    main()
