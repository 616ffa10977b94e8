"""A character LoRA of a diffusers image pipeline (`--model-dir` a Stable-Diffusion-style folder:
model_index.json with a `unet`, a `vae`, a `text_encoder` and `tokenizer`), for reference stills.

The run is the Wan trainer's loop (trainer.py: LoRA injection, accelerate, checkpoints and
resume, metrics, caption dropout, buckets, samples); only the model and the objective change:
- latents: the VAE's latent mode, times its `scaling_factor` (minus `shift_factor` if any), as
  diffusers' training examples encode;
- captions: the tokenizer padded to its max length through the text encoder's last hidden state;
- objective, from the pipeline's scheduler: a FlowMatch scheduler trains rectified flow
  (x_t = (1 - t) x0 + t eps, target eps - x0, timestep 1000 t: Esser et al. 2024, SD3), any
  other (DDPM, DDIM, PNDM, Euler...) the DDPM objective (x_t = sqrt(a_t) x0 + sqrt(1 - a_t) eps,
  Ho et al. 2020) with target eps or, for `prediction_type="v_prediction"`, v (Salimans & Ho
  2022), timesteps uniform over the training steps;
- the LoRA is saved as diffusers' UNet LoRA (`save_lora_weights(unet_lora_layers=...)`) and
  loads back with `pipe.load_lora_weights(LORA_DIR)`.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from cinerl.core.errors import UserError
from cinerl.core.media import atomic_write_text
from cinerl.training.character.cast import CHARACTER_CARD
from cinerl.training.character.data import bucket_size, load_image
from cinerl.training.character.samples import sample_prompts
from cinerl.training.character.trainer import Trainer, dataset_sha256
from cinerl.training.video.dpo import _bar, open_out

WEIGHTS = "pytorch_lora_weights.safetensors"


def read_index(model_dir) -> dict | None:
    path = Path(str(model_dir)).expanduser() / "model_index.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UserError(f"{path} is not readable JSON: {e}") from None


def is_image_pipeline(model_dir) -> bool:
    """A diffusers pipeline folder that is not Wan's (Wan folders train the video LoRA)."""
    index = read_index(model_dir) if model_dir else None
    return bool(index) and not str(index.get("_class_name", "")).startswith("Wan")


def objective(scheduler) -> str:
    if "FlowMatch" in type(scheduler).__name__:
        return "flow"
    kind = scheduler.config.get("prediction_type", "epsilon")
    if kind not in ("epsilon", "v_prediction"):
        raise UserError(f"the pipeline's scheduler predicts {kind!r}; epsilon or v_prediction is trained")
    return "v" if kind == "v_prediction" else "epsilon"


class ImageTrainer(Trainer):
    """The character trainer on a UNet image pipeline (see the module doc)."""

    title = "character lora (image)"

    def setup(self, components) -> None:
        from diffusers import DiffusionPipeline

        cfg = self.cfg
        index = read_index(self.model_dir)
        if "unet" not in index:
            raise UserError(
                f"--model-dir {self.model_dir} is a {index.get('_class_name')} pipeline without a "
                "UNet; image character LoRAs train UNet pipelines (Stable Diffusion style) or Wan2.2"
            )
        if cfg.clips:
            raise UserError("--clips needs a video model: an image pipeline trains on images only")
        try:
            self.pipe = components or DiffusionPipeline.from_pretrained(
                str(self.model_dir), local_files_only=True, safety_checker=None
            )
        except (OSError, ValueError) as e:
            raise UserError(f"cannot load the diffusers pipeline {self.model_dir}: {e}") from None
        self.variant = None
        self.objective = objective(self.pipe.scheduler)
        self.clips = []
        self.out, self.identity = open_out(
            cfg, {"dataset_sha256": dataset_sha256(self.examples), "pipeline": index.get("_class_name")}
        )
        vae, unet = self.pipe.vae, self.pipe.unet
        scale = 2 ** (len(vae.config.block_out_channels) - 1)
        self.multiple = scale * 2 ** (len(unet.config.block_out_channels) - 1)
        self.sample_texts = sample_prompts(self.trigger, cfg.sample_count) if cfg.sample_every else []
        self.empty = self.embed("")
        self.samples = self.encode()
        self.videos = []
        self.sample_embeds = [self.embed(t) for t in self.sample_texts]
        self.sampler = ImageSampler(self) if cfg.sample_every else None

    # ---- encoding ----------------------------------------------------------------------------
    def embed(self, text: str) -> torch.Tensor:
        tok, enc = self.pipe.tokenizer, self.pipe.text_encoder
        ids = tok(
            text, padding="max_length", max_length=tok.model_max_length, truncation=True, return_tensors="pt"
        )
        with torch.no_grad():
            return enc(ids.input_ids)[0][0].float()

    def encode(self) -> list[dict]:
        vae = self.pipe.vae
        shift = vae.config.get("shift_factor") or 0.0
        embeds, out = {}, []
        bar = _bar(True, 0, len(self.examples), "encoding images")
        from cinerl.training.video.latents import cover_crop

        try:
            for ex in self.examples:
                rgb = load_image(ex.image)
                w, h = bucket_size(rgb.shape[1], rgb.shape[0], self.cfg.area(), self.multiple)
                img = cover_crop(rgb, w, h)
                x = torch.from_numpy(img).float().div(127.5).sub(1.0).permute(2, 0, 1)[None]
                with torch.no_grad():
                    lat = vae.encode(x.to(vae.dtype)).latent_dist.mode().float()
                if ex.caption not in embeds:
                    embeds[ex.caption] = self.embed(ex.caption)
                x0 = (lat - shift) * vae.config.scaling_factor
                out.append(
                    {"x0": x0[0].contiguous(), "emb": embeds[ex.caption], "caption": ex.caption}
                    | {"image": ex.image.name, "size": [w, h]}
                )
                bar.update(1)
        finally:
            bar.close()
        return out

    # ---- the model and the objective ---------------------------------------------------------
    def ranges(self) -> dict[str, tuple[float, float]]:
        return {"unet": (0.0, 1.0)}

    def load_models(self, names, dtype) -> dict:
        return {"unet": self.pipe.unet.to(dtype)}

    def prepare_model(self, m, device, dtype) -> None:
        return None

    def loss(self, model, mod, expert, sample, emb, noise, t, dtype, autocast):
        dev = next(model.parameters()).device
        x0 = sample["x0"][None].to(dev)
        noise, t = noise.to(dev).reshape(x0.shape), t.to(dev).float()
        sched = self.pipe.scheduler
        steps = sched.config.num_train_timesteps
        if self.objective == "flow":
            tt = t.view(-1, 1, 1, 1)
            x_t = (1 - tt) * x0 + tt * noise
            target = noise - x0
            timestep = t * steps
        else:
            # t is logit-normal; its CDF makes it uniform, the DDPM objective's timestep draw
            m, s = self.cfg.timestep_mean, self.cfg.timestep_std
            u = torch.special.ndtr((torch.logit(t.clamp(1e-6, 1 - 1e-6)) - m) / s)
            timestep = (u * steps).long().clamp(0, steps - 1)
            a = self._alphas(dev)[timestep].view(-1, 1, 1, 1)
            x_t = a.sqrt() * x0 + (1 - a).sqrt() * noise
            target = noise if self.objective == "epsilon" else a.sqrt() * noise - (1 - a).sqrt() * x0
        with autocast():
            pred = model(
                expert,
                sample=x_t.to(dtype),
                timestep=timestep,
                encoder_hidden_states=emb[None].to(dev, dtype),
            )
        return torch.nn.functional.mse_loss(pred.float(), target.float())

    def _alphas(self, dev) -> torch.Tensor:
        """The DDPM cumulative alphas of the pipeline's scheduler config (its beta schedule)."""
        if not hasattr(self, "_alphas_cumprod"):
            from diffusers import DDPMScheduler

            ddpm = DDPMScheduler.from_config(self.pipe.scheduler.config)
            self._alphas_cumprod = ddpm.alphas_cumprod.float()
        return self._alphas_cumprod.to(dev)

    def save(self, unwrapped, step: int, eval_end: float) -> None:
        from cinerl.training.video.dpo import lora_state_dicts

        unet = unwrapped.experts["unet"]
        type(self.pipe).save_lora_weights(
            str(self.out),
            unet_lora_layers=lora_state_dicts(unwrapped)["unet"],
            weight_name=WEIGHTS,
            unet_lora_adapter_metadata=unet.peft_config["default"].to_dict(),
        )
        card = {
            "name": self.cfg.name,
            "trigger": self.trigger,
            "pipeline": type(self.pipe).__name__,
            "objective": self.objective,
            "model_dir": str(self.cfg.model_dir),
            "steps": step,
            "images": len(self.samples),
            "clips": 0,
            "dataset": str(self.cfg.dataset),
            "captions": sorted({s["caption"] for s in self.samples}),
            "eval_loss": eval_end,
        }
        atomic_write_text(self.out / CHARACTER_CARD, json.dumps(card, indent=2))


class ImageSampler:
    """Sample stills with the pipeline's own scheduler and the training UNet (LoRA active),
    classifier-free guided: the denoising loop of diffusers' pipelines, written out so that a
    FlowMatch scheduler (which the Stable Diffusion pipeline class does not drive) samples too."""

    def __init__(self, trainer: ImageTrainer):
        self.t = trainer

    def __call__(self, experts: dict, step: int, out: Path) -> list[Path]:
        import numpy as np

        from cinerl.core.media import save_png
        from cinerl.training.character.samples import SAMPLES

        t, cfg = self.t, self.t.cfg
        unet, vae = experts["unet"], t.pipe.vae
        was = unet.training
        unet.eval()
        w, h = bucket_size(1, 1, cfg.area(), t.multiple)
        scale = 2 ** (len(vae.config.block_out_channels) - 1)
        dev, dtype = next(unet.parameters()).device, unet.dtype
        vae.to(dev)
        paths = []
        try:
            for k, emb in enumerate(t.sample_embeds):
                sched = type(t.pipe.scheduler).from_config(t.pipe.scheduler.config)
                sched.set_timesteps(cfg.sample_steps, device=dev)
                gen = torch.Generator("cpu").manual_seed(cfg.seed * 1000 + k)  # the same noise each time
                shape = (1, unet.config.in_channels, h // scale, w // scale)
                lat = torch.randn(shape, generator=gen).to(dev) * getattr(sched, "init_noise_sigma", 1.0)
                cond = torch.stack([t.empty, emb]).to(dev, dtype)
                with torch.no_grad():
                    for ts in sched.timesteps:
                        x = torch.cat([lat, lat])
                        if hasattr(sched, "scale_model_input"):
                            x = sched.scale_model_input(x, ts)
                        pred = unet(x.to(dtype), ts, encoder_hidden_states=cond, return_dict=False)[0]
                        uncond, text = pred.float().chunk(2)
                        guided = uncond + cfg.sample_guidance * (text - uncond)
                        lat = sched.step(guided, ts, lat, return_dict=False)[0]
                    shift = vae.config.get("shift_factor") or 0.0
                    img = vae.decode(
                        (lat / vae.config.scaling_factor + shift).to(vae.dtype), return_dict=False
                    )[0]
                rgb = ((img[0].float().clamp(-1, 1) + 1) * 127.5 + 0.5).permute(1, 2, 0).cpu().numpy()
                path = Path(out) / SAMPLES / f"step_{step:06d}_{k}.png"
                save_png(np.clip(rgb, 0, 255).astype(np.uint8), path)
                paths.append(path)
        finally:
            vae.to("cpu")
            unet.train(was)
        return paths
