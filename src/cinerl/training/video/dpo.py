"""Flow-DPO: preference-tune Wan2.2 with a LoRA on pairs of takes (`cinerl train video-dpo`).

Diffusion-DPO (Wallace et al. 2023, "Diffusion Model Alignment Using Direct Preference
Optimization") in its flow-matching form (as in VideoAlign's Flow-DPO, Liu et al. 2025): the
chosen take w and the rejected take l of a pair are noised with the same noise eps at the same
timestep t, the transformer predicts the velocity eps - x0 for both, and the loss asks the
trained model to lower its error on w more than on l, relative to the reference model (the same
transformer with the LoRA disabled):

    loss = -log sigmoid(-beta/2 * ((mse_theta(w) - mse_ref(w)) - (mse_theta(l) - mse_ref(l))))

with the MSE per sample in fp32. The logit inside is the implicit reward margin; the implicit
accuracy is the share of pairs where it is positive. At initialisation LoRA B is zero, so theta
is the reference, the margin 0 and the loss exactly log 2.

    train(VideoDPOConfig(model_dir=..., pairs=..., out=...))

Devices and processes through accelerate (one GPU, or DDP under `accelerate launch`/`torchrun`),
a progress bar, `metrics.jsonl`, a TensorBoard log where tensorboard imports, checkpoints every
`checkpoint_every` steps written atomically (LoRA, optimizer, scheduler, RNG, data position):
the same command after a kill resumes from the last one and reaches the same LoRA weights.
Speed (attention kernel, regional compile, fused AdamW, checkpointing when memory needs it) is
`speed.py`'s; `--eval-every` renders and scores clips with and without the LoRA (`evaluate.py`);
`--curriculum` runs the gated length curriculum (`curriculum.py`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import random
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cinerl.core.errors import UserError
from cinerl.core.inputs import check_out_dir
from cinerl.core.media import atomic_write_text
from cinerl.generation.wan.variants import get_variant
from cinerl.training.datasets.video_pairs import read_pairs
from cinerl.training.video import flow_matching as fm
from cinerl.training.video.config import VideoDPOConfig
from cinerl.training.video.data import PairData, Target, collate, prepare
from cinerl.training.video.dpo_loss import (  # noqa: F401 (re-exported: the trainer's maths)
    dpo_losses,
    flow_dpo_loss,
    pair_inputs,
    sample_noise_and_t,
)
from cinerl.training.video.model import (
    Experts,
    add_lora,
    check_model_dir,
    guess_variant,
    load_experts,
    lora_named_parameters,
    lora_targets,
)
from cinerl.training.video.strategy import (  # noqa: F401 (re-exported: the character trainer's)
    TrainState,
    accelerator,
    lora_state_dicts,
    resolve_strategy,
    shard,
)
from cinerl.training.video.strategy import full as _full

log = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
METRICS = "metrics.jsonl"
CONFIG_FILE = "config.json"


def config_hash(identity: dict) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


# ---- data order and sampling ------------------------------------------------------------------
def order(n: int, seed: int, epoch: int) -> list[int]:
    return np.random.default_rng([seed, epoch]).permutation(n).tolist()


def global_indices(n: int, seed: int, step: int, global_batch: int) -> list[int]:
    """The pairs of one step: a fresh permutation each epoch, read in order (the data position is
    step x global batch, so a resumed run reads exactly what an uninterrupted one would)."""
    out = []
    for g in range(step * global_batch, (step + 1) * global_batch):
        epoch, pos = divmod(g, n)
        out.append(order(n, seed, epoch)[pos])
    return out


def expert_ranges(variant, which: str) -> dict[str, tuple[float, float]]:
    """Timestep range of each trained expert (A14B: high noise at t >= boundary)."""
    if variant.boundary_ratio is None:
        return {"transformer": (0.0, 1.0)}
    b = variant.boundary_ratio
    ranges = {"transformer": (b, 1.0), "transformer_2": (0.0, b)}
    if which == "high":
        return {"transformer": ranges["transformer"]}
    if which == "low":
        return {"transformer_2": ranges["transformer_2"]}
    return ranges


def pick_expert(ranges: dict, seed: int, step: int) -> str:
    """One expert per step, the two drawn 50/50 (as if each were trained on its own for half the
    steps, the way Wan LoRA trainers train A14B's experts one at a time on their own ranges); the
    step's timesteps are then logit-normal truncated to that expert's range."""
    names = list(ranges)
    if len(names) == 1:
        return names[0]
    return names[random.Random(fm.sample_seed(seed, step, -1)).random() >= 0.5]


# ---- checkpoints ----------------------------------------------------------------------------
def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def save_checkpoint(out: Path, step: int, lora: dict, optimizer: dict, sched, keep: int, extra: dict) -> Path:
    """checkpoints/step_NNNNNN, written into a temporary folder and renamed into place."""
    from safetensors.torch import save_file

    root = out / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step:06d}"
    tmp = root / f".tmp-step_{step:06d}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file(lora, str(tmp / "lora.safetensors"))
    torch.save(optimizer, tmp / "optimizer.pt")
    torch.save(sched.state_dict(), tmp / "scheduler.pt")
    rng = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    torch.save(rng, tmp / "rng.pt")
    (tmp / "state.json").write_text(json.dumps({"step": step, **extra}, indent=2))
    for f in tmp.iterdir():
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    _fsync_dir(tmp)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    _fsync_dir(root)
    for old in sorted(checkpoints(out))[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def checkpoints(out: Path) -> list[Path]:
    root = out / CHECKPOINTS
    if not root.is_dir():
        return []
    return sorted(p for p in root.glob("step_*") if (p / "state.json").is_file())


def load_checkpoint(path: Path, state: TrainState, sched) -> dict:
    from safetensors.torch import load_file

    saved = load_file(str(path / "lora.safetensors"))
    missing = set(state.params) - set(saved)
    if missing:
        raise UserError(f"checkpoint {path} lacks {len(missing)} LoRA tensors (another LoRA layout)")
    state.load(saved, torch.load(path / "optimizer.pt", weights_only=False))
    sched.load_state_dict(torch.load(path / "scheduler.pt", weights_only=False))
    rng = torch.load(path / "rng.pt", weights_only=False)
    random.setstate(rng["python"])
    np.random.set_state(rng["numpy"])
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    return json.loads((path / "state.json").read_text())


def open_out(cfg: VideoDPOConfig, extra_identity: dict) -> tuple[Path, dict]:
    """--out checked writable; its config.json written, or compared: another config is refused."""
    out = check_out_dir(cfg.out)
    ident = {**cfg.identity(), **extra_identity}
    path = out / CONFIG_FILE
    if path.is_file():
        try:
            old = json.loads(path.read_text()).get("identity", {})
        except (json.JSONDecodeError, UnicodeDecodeError):
            old = None
        if old != ident:
            diff = sorted(k for k in set(old or {}) | set(ident) if (old or {}).get(k) != ident.get(k))
            raise UserError(
                f"--out {out} holds a training run of another config (differs in: "
                f"{', '.join(diff) or 'unreadable config.json'}); choose another --out"
            )
    elif checkpoints(out) or (out / METRICS).exists():
        raise UserError(f"--out {out} holds training files without a config.json; choose another --out")
    return out, ident


def read_metrics(out: Path) -> list[dict]:
    p = out / METRICS
    if not p.is_file():
        return []
    rows = []
    for line in p.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break  # a line cut by a kill: everything after it is redone
    return rows


# ---- the run --------------------------------------------------------------------------------
@dataclass
class TrainResult:
    out: Path
    steps: int
    lora_dir: Path
    metrics: list[dict]
    skipped: list[str]
    curriculum: dict | None = None
    main: bool = True  # the main process (the others of a DDP run print nothing)
    evaluations: list[dict] = dataclasses.field(default_factory=list)
    speed: dict = dataclasses.field(default_factory=dict)


def _accelerator(cfg: VideoDPOConfig, experts_trained: int):
    """The run's Accelerator (strategy.py; the config is not needed there)."""
    return accelerator(experts_trained)


def _dtype(cfg: VideoDPOConfig, device: torch.device) -> torch.dtype:
    if cfg.mixed_precision == "bf16" or (cfg.mixed_precision == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return torch.float32


def resolve_variant(cfg: VideoDPOConfig, model_dir: Path, rows) -> str:
    if cfg.variant:
        return get_variant(cfg.variant).name
    named = {r.variant for r in rows if r.variant}
    if len(named) > 1:
        raise UserError(f"the pairs mix variants ({', '.join(sorted(named))}); pass --variant")
    return named.pop() if named else guess_variant(model_dir)


class Trainer:
    """One Flow-DPO run: built from a config, trained by `run()` (see `train`)."""

    def __init__(self, cfg: VideoDPOConfig, components=None):
        cfg.check()
        self.cfg = cfg
        model_dir = check_model_dir(cfg.model_dir)
        self.rows = read_pairs(Path(cfg.pairs))
        self.variant = get_variant(resolve_variant(cfg, model_dir, self.rows))
        width, height = cfg.parsed_size()
        frames = cfg.frames or None
        stages = parse_curriculum(cfg.curriculum) if cfg.curriculum else []
        if width or height or frames:
            from cinerl.generation.wan.variants import fit_request

            fit = fit_request(self.variant, width or 512, height or 512, frames or 1, max_frames=10_000)
            width, height = (fit.width if width else None), (fit.height if height else None)
            frames = fit.num_frames if frames else None
        if stages:
            frames = max(stages)  # the data must reach the longest stage
        self.out, ident = open_out(cfg, {"pairs_sha256": _sha(Path(cfg.pairs))})
        self.identity = ident
        from cinerl.training.video.latents import LatentCache

        cache = None
        if any(
            not r.chosen.endswith(".safetensors") or not r.rejected.endswith(".safetensors")
            for r in self.rows
        ):
            from cinerl.generation.wan.loading import resolve_sources

            sources = resolve_sources(self.variant, model_dir, env={})
            cache = LatentCache(self.out / "latent_cache", self.variant, sources=sources)
        bar = _bar(cache is not None, 0, len(self.rows), "encoding clips")  # a bar when clips need encoding
        try:
            self.data: PairData = prepare(
                self.rows, self.variant, cache, width, height, frames, progress=lambda i, n: bar.update(1)
            )
        finally:
            bar.close()
        if cache is not None and cache.encoded:
            log.info("latent cache: %d clips encoded, %d found", cache.encoded, cache.hits)
        self.stages = stages
        self.model_dir = model_dir
        self.components = components

    def run(self, gate=None) -> TrainResult:
        cfg, variant = self.cfg, self.variant
        ranges = expert_ranges(variant, cfg.expert)
        accel = _accelerator(cfg, len(ranges))
        fsdp = resolve_strategy(cfg.strategy, accel.num_processes) == "fsdp"
        device = accel.device
        dtype = _dtype(cfg, device)
        experts = load_experts(self.model_dir, variant, list(ranges), dtype)
        targets = lora_targets(cfg.lora_targets)
        torch.manual_seed(cfg.seed)
        for m in experts.values():
            add_lora(m, cfg.lora_rank, cfg.lora_alpha, targets)
        # speed (training/video/speed.py): checkpointing when memory needs it, a training
        # attention kernel with a backward, regional compile, fused AdamW on a GPU
        from cinerl.training.video import speed

        tg = self.data.target
        tokens = speed.tokens_of(tg.frames, tg.height, tg.width)
        self.ckpt = speed.Checkpointing(cfg.gradient_checkpointing, device, tokens)
        for m in experts.values():
            m.to(device)
            m.train()
        self.ckpt.apply(experts.values())
        log.info(self.ckpt.why)
        self.speed = {"checkpointing": self.ckpt.why}
        self.speed["attention"] = speed.setup_attention(experts.values(), dtype)
        if speed.compile_wanted(cfg.compile, device):  # per block, before FSDP2 wraps the blocks
            self.speed["compiled_blocks"] = speed.compile_blocks(experts.values())
        if fsdp:
            shard(experts.values())
        unwrapped = Experts(experts)
        params = lora_named_parameters(unwrapped)
        opt = speed.adamw(list(params.values()), cfg.learning_rate, cfg.weight_decay, device)
        self.speed["fused_adamw"] = bool(opt.defaults.get("fused"))
        from diffusers.optimization import get_constant_schedule_with_warmup

        sched = get_constant_schedule_with_warmup(opt, cfg.warmup_steps)
        # DDP across processes (the module itself on one); FSDP2 shards the module in place
        model = unwrapped if fsdp else accel.prepare(unwrapped)
        train_state = TrainState(unwrapped, params, opt, fsdp)
        world, rank = accel.num_processes, accel.process_index
        global_batch = cfg.batch_size * world
        main = accel.is_main_process

        start, curriculum_state = 0, None
        found = checkpoints(self.out)
        if cfg.resume and not found:
            raise UserError(f"--resume: {self.out} holds no checkpoint")
        if found:
            state = load_checkpoint(found[-1], train_state, sched)
            if state.get("processes", world) != world:
                raise UserError(
                    f"{found[-1]} was written by a run of {state['processes']} processes; this one "
                    f"has {world} (the global batch would change): launch {state['processes']} or "
                    "choose another --out"
                )
            start, curriculum_state = state["step"], state.get("curriculum")
            log.info("resumed from %s (step %d)", found[-1], start)
        logged = [m for m in read_metrics(self.out) if m.get("step", 0) <= start]
        metrics = [m for m in logged if m.get("kind") != "eval"]  # training steps
        evaluations = [m for m in logged if m.get("kind") == "eval"]
        if main:
            atomic_write_text(
                self.out / CONFIG_FILE,
                json.dumps({"identity": self.identity, "config": dataclasses.asdict(cfg)}, indent=2),
            )
            atomic_write_text(self.out / METRICS, "".join(json.dumps(m) + "\n" for m in logged))
        accel.wait_for_everyone()
        writer = _tensorboard(self.out) if main else None
        from cinerl.training.video.curriculum import Curriculum

        curriculum = None
        if self.stages:
            per = cfg.stage_steps or max(1, cfg.steps // len(self.stages))
            curriculum = Curriculum.restore(
                curriculum_state, self.stages, per, cfg.gate_tolerance, cfg.gate_retries, start
            )
        autocast = (
            (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if dtype == torch.bfloat16 else _null
        )
        self._eval = (unwrapped, ranges, dtype, autocast)
        gate, gate_name = self._gate(gate)
        self.evaluator = None
        if cfg.eval_every or gate_name == "rewards":
            from cinerl.training.video.evaluate import Evaluator

            self.evaluator = Evaluator(self, unwrapped, dtype, autocast, device)
            if self.evaluator.unavailable:
                log.warning("evaluation unavailable: %s", self.evaluator.unavailable)
        self.global_step = start
        bar = _bar(main, start, cfg.steps)
        t_last, metrics_file = time.perf_counter(), open(self.out / METRICS, "a") if main else None
        step = start

        def checkpoint(at: int) -> None:
            """Every process gathers (FSDP2 collectives), the main one writes."""
            lora, optim = train_state.lora(), train_state.optimizer()
            if main:
                extra = {
                    "data_position": at * global_batch,
                    "processes": world,
                    "config": config_hash(self.identity),
                    "curriculum": curriculum.state() if curriculum else None,
                }
                save_checkpoint(self.out, at, lora, optim, sched, cfg.keep_checkpoints, extra)
            accel.wait_for_everyone()

        try:
            while step < cfg.steps:
                if curriculum is not None:
                    if curriculum.finished:
                        break
                    target = self.data.target.with_frames(curriculum.frames)
                else:
                    target = self.data.target
                row = self.step(
                    model,
                    unwrapped,
                    opt,
                    sched,
                    params,
                    ranges,
                    step,
                    target,
                    global_batch,
                    rank,
                    accel,
                    dtype,
                    autocast,
                )
                step += 1
                now = time.perf_counter()
                row.update(step=step, seconds=round(now - t_last, 4))
                t_last = now
                if curriculum is not None:
                    row["frames"] = target.pixels(variant)[2]
                    row["stage"] = curriculum.index
                if main:
                    metrics.append(row)
                    metrics_file.write(json.dumps(row) + "\n")
                    metrics_file.flush()
                    if writer is not None:
                        for k in ("loss", "accuracy", "margin", "lr", "grad_norm"):
                            writer.add_scalar(f"train/{k}", row[k], step)
                    bar.update(1)
                    bar.set_postfix(
                        loss=f"{row['loss']:.4f}",
                        acc=f"{row['accuracy']:.2f}",
                        steps_s=f"{1 / max(row['seconds'], 1e-9):.2f}",
                    )
                self.global_step = step
                if cfg.eval_every and (step % cfg.eval_every == 0 or step == cfg.steps):
                    ev = self._evaluate(step, main, fsdp)
                    if ev is not None and main:
                        evaluations.append(ev)
                        metrics_file.write(json.dumps(ev) + "\n")
                        metrics_file.flush()
                        if writer is not None:
                            for k, v in ev.items():
                                if k.startswith(("eval/", "base/")):
                                    writer.add_scalar(k, v, step)
                if curriculum is not None and curriculum.stage_done(step):
                    # the gate's forward passes are collectives under FSDP2: every process runs it
                    decision = curriculum.decide(step, gate, self) if main or fsdp else None
                    if decision is not None:
                        decision["gate"] = gate_name
                    curriculum.sync(accel, decision)
                    if main:
                        curriculum.write(self.out)
                        log.info("curriculum at step %d: %s", step, curriculum.history[-1]["decision"])
                if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                    checkpoint(step)
            if curriculum is not None and step >= cfg.steps:
                curriculum.budget_spent(step)
        finally:
            bar.close()
            if metrics_file is not None:
                metrics_file.close()
            if writer is not None:
                writer.close()
        lora_dir = self.out
        found = checkpoints(self.out)
        if step != start and (not found or found[-1].name != f"step_{step:06d}"):
            checkpoint(step)
        sds = lora_state_dicts(unwrapped)
        if main:
            save_lora(self.out, unwrapped, sds, variant, cfg, step, metrics)
            if curriculum is not None:
                curriculum.write(self.out)
            from cinerl.training.report import write_training_report

            write_training_report(
                self.out,
                "Flow-DPO video LoRA",
                metrics,
                dataclasses.asdict(cfg),
                curriculum=curriculum.state() if curriculum else None,
                evaluations=[report_row(e) for e in evaluations],
                clips=(evaluations[-1]["clips"] + evaluations[-1]["base_clips"]) if evaluations else None,
                notes=[*self.data.skipped, *self._notes(evaluations)],
            )
        accel.wait_for_everyone()
        return TrainResult(
            self.out,
            step,
            lora_dir,
            metrics,
            self.data.skipped,
            curriculum.state() if curriculum else None,
            main,
            evaluations,
            dict(self.speed),
        )

    def _gate(self, gate) -> tuple[object, str]:
        """The curriculum's gate and its name: one given to `train`, else --gate (auto: the
        reward gate when the folder has a VAE to decode clips, else the DPO gate, logged)."""
        from cinerl.training.video.curriculum import dpo_gate
        from cinerl.training.video.evaluate import reward_gate, vae_folder

        if gate is not None:
            return gate, getattr(gate, "__name__", "custom")
        if not self.stages:
            return None, ""
        has_vae = vae_folder(self.model_dir) is not None
        if self.cfg.gate == "rewards" and not has_vae:
            raise UserError(
                f"--gate rewards renders clips and {self.model_dir} has no vae/: add the Wan VAE or "
                "use --gate dpo"
            )
        if self.cfg.gate == "rewards" or (self.cfg.gate == "auto" and has_vae):
            return reward_gate, "rewards"
        if self.cfg.gate == "auto":
            log.info("curriculum gate: dpo (no vae/ in %s to render the reward gate's clips)", self.model_dir)
        return dpo_gate, "dpo"

    def _evaluate(self, step: int, main: bool, fsdp: bool) -> dict | None:
        """One evaluation (main process; every process under FSDP2, whose forwards are
        collectives); None where the evaluation cannot run (said once in the log)."""
        ev = self.evaluator
        if ev is None or ev.unavailable or not (main or fsdp):
            return None
        t0 = time.perf_counter()
        row = ev.evaluate(step)
        row["seconds"] = round(time.perf_counter() - t0, 3)
        log.info(
            "evaluation at step %d: %s",
            step,
            ", ".join(f"{k} {v:.3f}" for k, v in row.items() if k.startswith("eval/")),
        )
        return row

    def _notes(self, evaluations: list[dict]) -> list[str]:
        if self.evaluator is not None and self.evaluator.unavailable:
            return [f"evaluation unavailable: {self.evaluator.unavailable}"]
        if not evaluations:
            return []
        skipped = evaluations[-1].get("not_scored") or {}
        return [f"evaluation: {k} not scored ({v})" for k, v in sorted(skipped.items())]

    def evaluate(self, frames: int, n: int = 8) -> dict[str, float]:
        """Implicit accuracy and margin of the current LoRA on the first `n` pairs at `frames`,
        fixed noise and timesteps (the curriculum's DPO gate, `--gate dpo`)."""
        unwrapped, ranges, dtype, autocast = self._eval
        target = self.data.target.with_frames(frames)
        accs, margins = [], []
        was = unwrapped.training
        unwrapped.eval()
        with torch.no_grad():
            for i in range(min(n, len(self.data))):
                batch = collate([self.data.load(i, target)])
                for expert, (lo, hi) in ranges.items():
                    seed = fm.sample_seed(self.cfg.seed, -1, i)
                    noise, t = sample_noise_and_t(
                        tuple(batch["x_w"].shape[1:]),
                        [seed],
                        lo,
                        hi,
                        self.cfg.timestep_mean,
                        self.cfg.timestep_std,
                    )
                    out = dpo_losses(
                        unwrapped, unwrapped, expert, batch, noise, t, self.cfg.beta, dtype, autocast
                    )
                    accs.append(float(out["accuracy"].mean()))
                    margins.append(float(out["margin"].mean()))
        unwrapped.train(was)
        return {"accuracy": sum(accs) / len(accs), "margin": sum(margins) / len(margins)}

    def _forward_backward(self, model, unwrapped, expert, samples, groups, mine, step, lo, hi) -> dict:
        """The step's loss terms over this process's pairs (one forward per conditioning kind);
        `objective` is the mean loss to back-propagate."""
        cfg = self.cfg
        dtype, autocast = self._eval[2], self._eval[3]
        parts = []
        for kind, js in groups.items():
            batch = collate([samples[j] for j in js])
            seeds = [fm.sample_seed(cfg.seed, step, mine[j]) for j in js]
            noise, t = sample_noise_and_t(
                tuple(batch["x_w"].shape[1:]), seeds, lo, hi, cfg.timestep_mean, cfg.timestep_std
            )
            out = dpo_losses(model, unwrapped, expert, batch, noise, t, cfg.beta, dtype, autocast)
            out["t"] = t.to(out["loss"].device)
            parts.append(out)
        per = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
        per["objective"] = per["loss"].sum() / cfg.batch_size  # DDP averages the processes
        return per

    def step(
        self,
        model,
        unwrapped,
        opt,
        sched,
        params,
        ranges,
        step,
        target: Target,
        global_batch,
        rank,
        accel,
        dtype,
        autocast,
    ) -> dict:
        cfg = self.cfg
        idx = global_indices(len(self.data), cfg.seed, step, global_batch)
        b = cfg.batch_size
        mine = list(range(rank * b, (rank + 1) * b))
        expert = pick_expert(ranges, cfg.seed, step)
        lo, hi = ranges[expert]
        samples = [self.data.load(idx[i], target) for i in mine]
        groups: dict[str, list[int]] = {}
        for j, s in enumerate(samples):
            groups.setdefault(s["condition_kind"], []).append(j)
        opt.zero_grad(set_to_none=True)
        while True:
            try:
                per = self._forward_backward(model, unwrapped, expert, samples, groups, mine, step, lo, hi)
                accel.backward(per.pop("objective"))
                break
            except Exception as e:  # CUDA OOM without checkpointing (auto, one process): on, redo
                opt.zero_grad(set_to_none=True)
                from cinerl.training.video.speed import is_oom

                if not (
                    is_oom(e) and accel.num_processes == 1 and self.ckpt.after_oom(unwrapped.experts.values())
                ):
                    raise
                self.speed["checkpointing"] = self.ckpt.why
        grad_norm = _full(torch.nn.utils.clip_grad_norm_(list(params.values()), cfg.max_grad_norm))
        lr = sched.get_last_lr()[0]
        opt.step()
        sched.step()
        stats = torch.stack(
            [
                per[k].detach().float().mean()
                for k in ("loss", "accuracy", "margin", "mse_w", "mse_l", "ref_w", "ref_l", "t")
            ]
        )
        stats = accel.reduce(stats.to(accel.device), reduction="mean")
        names = ("loss", "accuracy", "margin", "mse_w", "mse_l", "ref_w", "ref_l", "t")
        row = {k: float(v) for k, v in zip(names, stats.tolist())}
        row.update(lr=lr, grad_norm=float(grad_norm), expert=expert)
        return row


def _null():
    import contextlib

    return contextlib.nullcontext()


def _sha(path: Path) -> str:
    from cinerl.core.store import sha256_file

    return sha256_file(path)


def _tensorboard(out: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional (the train extra)
        log.info("tensorboard is not installed: metrics.jsonl only")
        return None
    return SummaryWriter(str(out / "tensorboard"))


def _bar(main: bool, start: int, total: int, desc: str = "flow-dpo"):
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        initial=start,
        desc=desc,
        disable=not main or not sys.stderr.isatty(),
        dynamic_ncols=True,
    )


def parse_curriculum(text: str) -> list[int]:
    try:
        stages = [int(p) for p in text.replace(" ", "").split(",") if p]
    except ValueError:
        raise UserError(f"--curriculum takes frame counts like 33,49,65,97 (got {text!r})") from None
    bad = [f for f in stages if f < 1 or (f - 1) % 4]
    if not stages or bad:
        raise UserError(
            f"--curriculum frame counts must be 4k+1 (Wan's VAE), e.g. 33,49,65,97 (got {text!r})"
        )
    if stages != sorted(set(stages)):
        raise UserError(f"--curriculum lengths must rise (got {text!r})")
    return stages


# ---- the result ------------------------------------------------------------------------------
def save_lora(
    out: Path, experts: Experts, sds: dict, variant, cfg: VideoDPOConfig, step: int, metrics: list[dict]
) -> Path:
    """The diffusers-format LoRA folder (see generation/wan/lora.py) and its manifest."""
    from diffusers import WanPipeline

    from cinerl.generation.wan import lora as fmt

    names = []
    for name in experts.names:
        m = experts.experts[name]
        sd = sds[name]
        meta = m.peft_config["default"].to_dict()
        WanPipeline.save_lora_weights(
            str(out),
            transformer_lora_layers=sd,
            weight_name=fmt.EXPERT_FILES[name],
            transformer_lora_adapter_metadata=meta,
        )
        names.append(name)
    last = metrics[-10:]
    manifest = {
        "format": "diffusers-lora",
        "trainer": "flow-dpo",
        "variant": variant.name,
        "experts": names,
        "base": {k: experts.experts[names[0]].config.get(k) for k in fmt.SHAPE_KEYS},
        "model_dir": str(cfg.model_dir),
        "steps": step,
        "rank": cfg.lora_rank,
        "alpha": cfg.lora_alpha,
        "targets": lora_targets(cfg.lora_targets),
        "beta": cfg.beta,
        "final": {
            k: (sum(m[k] for m in last) / len(last) if last else None) for k in ("loss", "accuracy", "margin")
        },
    }
    atomic_write_text(out / fmt.MANIFEST, json.dumps(manifest, indent=2))
    return out


def report_row(ev: dict) -> dict:
    """An evaluation row as the report charts it: `name` (LoRA) and `base/name` (LoRA off)."""
    out = {"step": ev["step"]}
    for k, v in ev.items():
        if k.startswith("eval/"):
            out[k[5:]] = v
        elif k.startswith("base/"):
            out[k] = v
    return out


def train(config: VideoDPOConfig, gate=None, components=None) -> TrainResult:
    """Train (or resume) a Flow-DPO LoRA; see the module doc."""
    return Trainer(config, components).run(gate)


def finite(x: float) -> bool:
    return math.isfinite(x)
