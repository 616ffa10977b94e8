"""The character LoRA: Wan2.2 learns one person from their images (`cinerl train character`).

Each image is a one-frame video: the Wan VAE encodes it to a latent x0 with one latent frame,
and the transformer is trained with the flow-matching loss Wan was trained with (the shared
maths of training/video/flow_matching.py): x_t = (1 - t) x0 + t eps, t logit-normal, loss
= MSE(v_theta(x_t, t, caption), eps - x0) in fp32, the caption's UMT5 embedding computed once
per caption (and once for the empty caption a `caption_dropout` share of steps uses). Images go
to aspect-ratio buckets at the training area. A14B trains its low-noise expert by default.
`--clips DIR` mixes short clips in (a `clip_ratio` share of steps trains a clip's first
`clip_frames` frames), so the LoRA does not freeze motion; `--sample-every N` writes sample
images to `LORA_DIR/samples/` (samples.py). A diffusers image pipeline as `--model-dir` runs
the same loop in its own objective (image_pipeline.py, through the hooks `ranges`,
`load_models`, `prepare_model`, `loss` and `save`).

Everything around the loss is the Flow-DPO trainer's, imported from training/video/ (the LoRA
injection, accelerate, checkpoints with resume, the metrics JSONL and the progress bar):

    train(CharacterConfig(dataset=..., name=..., model_dir=..., out=...))   # run.py: either model

The result is a diffusers-format LoRA folder (generation/wan/lora.py: `make --lora` and
`make --cast NAME=PORTRAIT,LORA_DIR` load it) plus `character.json` (name, trigger, variant).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from cinerl.core.errors import UserError
from cinerl.core.media import atomic_write_text
from cinerl.generation.wan.variants import get_variant
from cinerl.training.character.cast import CHARACTER_CARD
from cinerl.training.character.config import CharacterConfig
from cinerl.training.character.data import bucket_size, load_image, read_clips, read_examples
from cinerl.training.character.samples import Sampler, sample_prompts
from cinerl.training.video import flow_matching as fm
from cinerl.training.video.dpo import (
    CONFIG_FILE,
    METRICS,
    TrainState,
    _accelerator,
    _bar,
    _dtype,
    checkpoints,
    expert_ranges,
    global_indices,
    load_checkpoint,
    lora_state_dicts,
    open_out,
    pick_expert,
    read_metrics,
    save_checkpoint,
)
from cinerl.training.video.dpo_loss import sample_noise_and_t
from cinerl.training.video.model import (
    Experts,
    add_lora,
    check_model_dir,
    guess_variant,
    load_experts,
    lora_named_parameters,
    lora_targets,
)

log = logging.getLogger(__name__)


@dataclass
class CharacterResult:
    out: Path
    steps: int
    trigger: str
    metrics: list[dict]
    eval_loss: dict  # fixed-noise loss over every image: {"start": ..., "end": ...}
    main: bool = True


def _encode_images(
    examples, variant, model_dir: Path, area, components=None, clips=(), clip_frames=17, texts=()
) -> tuple[list[dict], torch.Tensor, list[dict], list[torch.Tensor], object]:
    """Every image's latent (C, 1, h, w) at its bucket, every clip's (C, F, h, w) (its first
    `clip_frames` frames at its bucket) and every caption's embedding, once; also the embeddings
    of `texts` (the sample prompts). The VAE and text encoder are loaded by the loader inference
    uses; the text encoder is freed, the VAE returned (the sampler decodes with it)."""
    from diffusers.pipelines.wan.pipeline_wan_i2v import retrieve_latents

    from cinerl.generation.wan.loading import resolve_sources
    from cinerl.training.video.latents import LatentCache, cover_crop

    sources = None if components is not None else resolve_sources(variant, model_dir, env={})
    cache = LatentCache(Path("."), variant, sources=sources, components=components)
    empty = cache.embed("")  # loads the tokenizer, text encoder and VAE
    vae = cache.comp.vae
    mean = torch.tensor(vae.config.latents_mean).view(1, -1, 1, 1, 1)
    inv_std = 1.0 / torch.tensor(vae.config.latents_std).view(1, -1, 1, 1, 1)
    embeds: dict[str, torch.Tensor] = {}
    samples = []
    bar = _bar(True, 0, len(examples), "encoding images")
    try:
        for ex in examples:
            rgb = load_image(ex.image)
            w, h = bucket_size(rgb.shape[1], rgb.shape[0], area, variant.size_multiple)
            img = cover_crop(rgb, w, h)
            x = torch.from_numpy(img).float().div(127.5).sub(1.0).permute(2, 0, 1)[None, :, None]
            with torch.no_grad():
                lat = retrieve_latents(vae.encode(x.to(vae.dtype)), sample_mode="argmax").float()
            if ex.caption not in embeds:
                embeds[ex.caption] = cache.embed(ex.caption).float()
            samples.append(
                {
                    "x0": ((lat - mean) * inv_std)[0].contiguous(),
                    "emb": embeds[ex.caption],
                    "caption": ex.caption,
                    "image": ex.image.name,
                    "size": [w, h],
                }
            )
            bar.update(1)
    finally:
        bar.close()
    from cinerl.training.character.data import clip_size

    videos = []
    bar = _bar(True, 0, len(clips), "encoding clips") if clips else None
    try:
        for ex in clips:
            w, h = bucket_size(*clip_size(ex.image), area, variant.size_multiple)
            lat = cache.encode(ex.image, ex.caption, w, h, clip_frames)
            videos.append(
                {
                    "x0": lat.latents.float().contiguous(),
                    "emb": lat.prompt_embeds.float(),
                    "caption": ex.caption,
                    "image": ex.image.name,
                    "size": [w, h],
                    "clip": True,
                }
            )
            bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    prompts = [cache.embed(t).float() for t in texts]
    return samples, empty.float(), videos, prompts, vae


def dataset_sha256(examples) -> str:
    h = hashlib.sha256()
    for ex in examples:
        h.update(ex.image.read_bytes())
        h.update(ex.caption.encode())
    return h.hexdigest()


def character_loss(model, patch_size, expert: str, x0, emb, noise, t, dtype, autocast) -> torch.Tensor:
    """The flow-matching loss of one latent x0 (C, F, h, w) under its caption embedding (L, D):
    x_t = (1 - t) x0 + t eps, MSE(v_theta(x_t, t), eps - x0) in fp32. `model(expert, **kw)` is
    an `Experts` (or its DDP wrapper); benchmarks/train_character.py times this same step."""
    dev = next(model.parameters()).device
    x0 = x0[None].to(dev)
    noise, t = noise.to(dev), t.to(dev)
    x_t = fm.noisy(x0, noise, t)
    target = fm.velocity_target(x0, noise)
    hidden, timestep, _ = fm.model_inputs(x_t, t, "none", None, patch_size)
    with autocast():
        pred = model(
            expert,
            hidden_states=hidden.to(dtype),
            timestep=timestep,
            encoder_hidden_states=emb[None].to(dev, dtype),
        )
    return fm.per_sample_mse(pred, target).mean()


def checkpointing_on(choice: str, tokens: int) -> bool:
    """Gradient checkpointing: on, off, or auto (on above 5k latent tokens per sample)."""
    return choice == "on" or (choice == "auto" and tokens > 5000)


class Trainer:
    """One character-LoRA run: built from a config, trained by `run()` (see `train`)."""

    title = "character lora"

    def __init__(self, cfg: CharacterConfig, components=None):
        cfg.check()
        self.cfg = cfg
        self.model_dir = check_model_dir(cfg.model_dir)
        self.trigger = cfg.trigger_phrase()
        self.examples = read_examples(cfg.dataset, self.trigger)
        self.setup(components)

    def setup(self, components) -> None:
        """The Wan variant checked, --out opened, the images and clips encoded, the sampler built."""
        cfg = self.cfg
        self.variant = get_variant(cfg.variant or guess_variant(self.model_dir))
        if self.variant.transformer_in_channels != self.variant.latent_channels:
            raise UserError(
                f"{self.variant.name} generates from an image condition; train the character LoRA on "
                "ti2v-5b or t2v-a14b (the text-to-video transformers the films use)"
            )
        self.clips = read_clips(cfg.clips, self.trigger) if cfg.clips else []
        data = {"dataset_sha256": dataset_sha256(self.examples)}
        if self.clips:
            data["clips_sha256"] = dataset_sha256(self.clips)
        self.out, self.identity = open_out(cfg, data)
        self.sample_texts = sample_prompts(self.trigger, cfg.sample_count) if cfg.sample_every else []
        self.samples, self.empty, self.videos, prompts, vae = _encode_images(
            self.examples,
            self.variant,
            self.model_dir,
            cfg.area(),
            components,
            self.clips,
            cfg.clip_frames,
            self.sample_texts,
        )
        self.sampler = None
        if cfg.sample_every:
            # samples at the square bucket of the training area
            size = bucket_size(1, 1, cfg.area(), self.variant.size_multiple)
            self.sampler = Sampler(vae, prompts, self.empty, self.variant, size, cfg)

    # ---- the loss ----------------------------------------------------------------------------
    def loss(self, model, mod, expert: str, sample: dict, emb: torch.Tensor, noise, t, dtype, autocast):
        patch = mod.experts[expert].config.patch_size
        return character_loss(model, patch, expert, sample["x0"], emb, noise, t, dtype, autocast)

    def pick(self, step: int, world: int, rank: int) -> dict:
        """The step's example: a clip in a `clip_ratio` share of steps (drawn from the step's
        seed, so a resumed run draws the same), else an image; each pool read in seeded epochs."""
        use_clip = bool(self.videos) and (
            random.Random(fm.sample_seed(self.cfg.seed, step, -3)).random() < self.cfg.clip_ratio
        )
        pool = self.videos if use_clip else self.samples
        return pool[global_indices(len(pool), self.cfg.seed, step, world)[rank]]

    def evaluate(self) -> float:
        """The loss over every image and clip at fixed noise and timesteps (seeded apart from
        training)."""
        unwrapped, ranges, dtype, autocast = self._eval
        was = unwrapped.training
        unwrapped.eval()
        total = []
        with torch.no_grad():
            for i, s in enumerate(self.samples + self.videos):
                for expert, (lo, hi) in ranges.items():
                    seed = fm.sample_seed(self.cfg.seed, -1, i)
                    noise, t = sample_noise_and_t(tuple(s["x0"].shape), [seed], lo, hi, 0.0, 1.0)
                    total.append(
                        float(self.loss(unwrapped, unwrapped, expert, s, s["emb"], noise, t, dtype, autocast))
                    )
        unwrapped.train(was)
        return sum(total) / len(total)

    # ---- the model (the hooks an image-pipeline run overrides, image_pipeline.py) -----------
    def ranges(self) -> dict[str, tuple[float, float]]:
        return expert_ranges(self.variant, self.cfg.expert)

    def load_models(self, names: list[str], dtype) -> dict:
        return load_experts(self.model_dir, self.variant, names, dtype)

    def prepare_model(self, m, device, dtype) -> None:
        from cinerl.generation.wan.attention import training_attention

        attn, _ = training_attention("auto", m.config.attention_head_dim, dtype)
        if attn is not None:
            m.set_attention_backend(attn)

    def save(self, unwrapped, step: int, eval_end: float) -> None:
        save_character_lora(
            self.out, unwrapped, lora_state_dicts(unwrapped), self.variant, self.cfg, self, step, eval_end
        )

    # ---- the run -----------------------------------------------------------------------------
    def run(self) -> CharacterResult:
        cfg = self.cfg
        ranges = self.ranges()
        accel = _accelerator(cfg, len(ranges))
        device, main = accel.device, accel.is_main_process
        dtype = _dtype(cfg, device)
        experts = self.load_models(list(ranges), dtype)
        torch.manual_seed(cfg.seed)
        for m in experts.values():
            add_lora(m, cfg.lora_rank, cfg.lora_alpha, lora_targets(cfg.lora_targets))
        tokens = max(s["x0"][0].numel() for s in self.samples + self.videos) // 4
        ckpt_on = checkpointing_on(cfg.gradient_checkpointing, tokens)
        for m in experts.values():
            m.to(device)
            if ckpt_on:
                m.enable_gradient_checkpointing()
            m.train()
            self.prepare_model(m, device, dtype)
        unwrapped = Experts(experts)
        params = lora_named_parameters(unwrapped)
        opt = torch.optim.AdamW(
            list(params.values()), lr=cfg.learning_rate, betas=(0.9, 0.999), weight_decay=cfg.weight_decay
        )
        from diffusers.optimization import get_constant_schedule_with_warmup

        sched = get_constant_schedule_with_warmup(opt, cfg.warmup_steps)
        model = accel.prepare(unwrapped)
        state = TrainState(unwrapped, params, opt, False)
        autocast = (
            (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if dtype == torch.bfloat16 else _null
        )
        self._eval = (unwrapped, ranges, dtype, autocast)
        world = accel.num_processes
        start = 0
        found = checkpoints(self.out)
        if cfg.resume and not found:
            raise UserError(f"--resume: {self.out} holds no checkpoint")
        if found:
            start = load_checkpoint(found[-1], state, sched)["step"]
            log.info("resumed from %s (step %d)", found[-1], start)
        metrics = [m for m in read_metrics(self.out) if m.get("step", 0) <= start]
        eval_start = next((m["eval_loss"] for m in metrics if "eval_loss" in m), None)
        if eval_start is None:
            eval_start = self.evaluate()
        if main:
            atomic_write_text(
                self.out / CONFIG_FILE,
                json.dumps({"identity": self.identity, "config": dataclasses.asdict(cfg)}, indent=2),
            )
            atomic_write_text(self.out / METRICS, "".join(json.dumps(m) + "\n" for m in metrics))
        bar = _bar(main, start, cfg.steps, self.title)
        metrics_file = open(self.out / METRICS, "a") if main else None
        step, t_last = start, time.perf_counter()

        def checkpoint(at: int) -> None:
            lora, optim = state.lora(), state.optimizer()
            if main:
                extra = {"data_position": at * world, "processes": world}
                save_checkpoint(self.out, at, lora, optim, sched, cfg.keep_checkpoints, extra)
            accel.wait_for_everyone()

        try:
            while step < cfg.steps:
                sample = self.pick(step, world, accel.process_index)
                expert = pick_expert(ranges, cfg.seed, step)
                lo, hi = ranges[expert]
                dropped = random.Random(fm.sample_seed(cfg.seed, step, -2)).random() < cfg.caption_dropout
                emb = self.empty if dropped else sample["emb"]
                seed = fm.sample_seed(cfg.seed, step, accel.process_index)
                noise, t = sample_noise_and_t(
                    tuple(sample["x0"].shape), [seed], lo, hi, cfg.timestep_mean, cfg.timestep_std
                )
                opt.zero_grad(set_to_none=True)
                loss = self.loss(model, unwrapped, expert, sample, emb, noise, t, dtype, autocast)
                accel.backward(loss)
                grad_norm = torch.nn.utils.clip_grad_norm_(list(params.values()), cfg.max_grad_norm)
                lr = sched.get_last_lr()[0]
                opt.step()
                sched.step()
                step += 1
                now = time.perf_counter()
                row = {
                    "step": step,
                    "loss": float(accel.reduce(loss.detach()[None], reduction="mean")),
                    "t": float(t[0]),
                    "lr": lr,
                    "grad_norm": float(grad_norm),
                    "expert": expert,
                    "image": sample["image"],
                    "clip": bool(sample.get("clip")),
                    "caption_dropped": dropped,
                    "seconds": round(now - t_last, 4),
                }
                t_last = now
                if step == 1 and start == 0:
                    row["eval_loss"] = eval_start
                if main:
                    metrics.append(row)
                    metrics_file.write(json.dumps(row) + "\n")
                    metrics_file.flush()
                    bar.update(1)
                    bar.set_postfix(loss=f"{row['loss']:.4f}")
                if self.sampler is not None and step % cfg.sample_every == 0:
                    if main:
                        self.sampler(dict(unwrapped.experts.items()), step, self.out)
                    accel.wait_for_everyone()
                if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                    checkpoint(step)
        finally:
            bar.close()
            if metrics_file is not None:
                metrics_file.close()
        eval_end = self.evaluate()
        if main:
            self.save(unwrapped, step, eval_end)
            from cinerl.training.report import write_training_report

            from cinerl.training.character.samples import SAMPLES

            samples = sorted(p.relative_to(self.out).as_posix() for p in (self.out / SAMPLES).glob("*.png"))
            write_training_report(
                self.out, f"Character LoRA: {cfg.name}", metrics, dataclasses.asdict(cfg), images=samples
            )
        accel.wait_for_everyone()
        return CharacterResult(
            self.out, step, self.trigger, metrics, {"start": eval_start, "end": eval_end}, main
        )


def _null():
    import contextlib

    return contextlib.nullcontext()


def save_character_lora(
    out: Path, experts: Experts, sds: dict, variant, cfg, trainer, step: int, eval_end: float
) -> Path:
    """The diffusers-format LoRA folder with the manifest `make --lora` checks (the Flow-DPO
    trainer's format, generation/wan/lora.py), and `character.json` for `make --cast`."""
    from diffusers import WanPipeline

    from cinerl.generation.wan import lora as fmt

    for name in experts.names:
        WanPipeline.save_lora_weights(
            str(out),
            transformer_lora_layers=sds[name],
            weight_name=fmt.EXPERT_FILES[name],
            transformer_lora_adapter_metadata=experts.experts[name].peft_config["default"].to_dict(),
        )
    manifest = {
        "format": "diffusers-lora",
        "trainer": "character",
        "variant": variant.name,
        "experts": list(experts.names),
        "base": {k: experts.experts[experts.names[0]].config.get(k) for k in fmt.SHAPE_KEYS},
        "model_dir": str(cfg.model_dir),
        "steps": step,
        "rank": cfg.lora_rank,
        "alpha": cfg.lora_alpha,
        "targets": lora_targets(cfg.lora_targets),
    }
    atomic_write_text(out / fmt.MANIFEST, json.dumps(manifest, indent=2))
    card = {
        "name": cfg.name,
        "trigger": trainer.trigger,
        "variant": variant.name,
        "steps": step,
        "images": len(trainer.samples),
        "clips": len(trainer.videos),
        "dataset": str(cfg.dataset),
        "captions": sorted({s["caption"] for s in trainer.samples + trainer.videos}),
        "eval_loss": eval_end,
    }
    atomic_write_text(out / CHARACTER_CARD, json.dumps(card, indent=2))
    return out


def train(config: CharacterConfig, components=None) -> CharacterResult:
    """Train (or resume) a character LoRA of Wan2.2; see the module doc. (`run.train` also
    takes a diffusers image pipeline folder: what `cinerl train character` calls.)"""
    return Trainer(config, components).run()
