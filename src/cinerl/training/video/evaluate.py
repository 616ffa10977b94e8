"""Evaluation clips of a video LoRA, scored with CineRL's reward components, against the untrained
model on the same prompts and seeds; also the curriculum's reward gate.

The prompt set is fixed: the first `eval_prompts` pairs with distinct prompts, each with its
chosen take's prompt embedding and image conditioning (so no text or image encoder is needed),
and one seed each. A clip is sampled from that seed's noise by diffusers' UniPC flow scheduler
(the Wan pipelines' own, at the variant's flow shift) over `eval_steps` steps, the transformer's
inputs built by `flow_matching.model_inputs` as in training (TI2V-5B: the first latent frame
held at the conditioning image; A14B: the high-noise expert above the boundary), without
classifier-free guidance (the pairs carry no negative-prompt embedding; both arms sample alike,
so the comparison is fair, but the clips are not release quality). The folder's VAE decodes it.

Each clip is scored with the monitoring components the recommendations list, where they apply:
warp consistency, temporal flicker, flow smoothness, seam continuity (against the pair's
conditioning image), identity lock, loop break, subject consistency, and CLIP alignment and
FVD-lite where their weights are configured (`rewards` settings). A component that is
`unavailable` or `not_applicable` for a clip is left out of the mean, and its reason kept.

The untrained model is the same transformer with its LoRA disabled; its clips and scores are
computed once per length and reused.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from cinerl.training.video import flow_matching as fm

log = logging.getLogger(__name__)

MONITORING = (
    "warp_consistency",
    "temporal_flicker",
    "flow_smoothness",
    "seam_continuity",
    "identity_lock",
    "loop_break",
    "subject_consistency",
    "clip_alignment",
    "fvd_lite",
)
# the length-sensitive components for the curriculum gate (warp consistency standing in
# for t-LPIPS, which CineRL does not ship)
LENGTH_SENSITIVE = (
    "warp_consistency",
    "flow_smoothness",
    "identity_lock",
    "loop_break",
    "seam_continuity",
    "subject_consistency",
)
EVAL_DIR = "eval"


def vae_folder(model_dir: Path) -> Path | None:
    p = Path(model_dir) / "vae"
    return p if (p / "config.json").is_file() else None


class Evaluator:
    """Clips and scores of the LoRA (on/off) at a length; see the module doc."""

    def __init__(self, trainer, experts, dtype, autocast, device):
        from cinerl.generation.wan.loading import make_scheduler

        cfg = trainer.cfg
        self.cfg, self.variant, self.data = cfg, trainer.variant, trainer.data
        self.model_dir, self.out = Path(trainer.model_dir), Path(trainer.out)
        self.experts, self.dtype, self.autocast, self.device = experts, dtype, autocast, device
        vae = vae_folder(self.model_dir)
        self.unavailable = (
            None if vae else f"{self.model_dir} has no vae/config.json: evaluation clips need the Wan VAE"
        )
        self._vae_path = vae
        self._vae = None
        self._extra: dict = {}  # A14B: an expert not trained, loaded for sampling only
        seen, self.items = set(), []
        for i, it in enumerate(self.data.items):
            if it.row.prompt not in seen:
                seen.add(it.row.prompt)
                self.items.append(i)
            if len(self.items) == cfg.eval_prompts:
                break
        self.seeds = [fm.sample_seed(cfg.seed, -2, i) for i in range(len(self.items))]
        sched_dir = self.model_dir / "scheduler"
        self._scheduler = lambda: make_scheduler(
            self.variant, sched_dir if (sched_dir / "scheduler_config.json").is_file() else None
        )
        self._base: dict[int, tuple[list[dict], list[str]]] = {}
        self._scorer = None

    # ---- sampling ------------------------------------------------------------------------
    def _expert(self, name: str):
        if name in self.experts.experts:
            return self.experts.experts[name]
        if name not in self._extra:  # A14B --expert high|low: the other expert, untrained
            from cinerl.training.video.model import load_experts

            m = load_experts(self.model_dir, self.variant, [name], self.dtype)[name]
            self._extra[name] = m.to(self.device).eval().requires_grad_(False)
        return self._extra[name]

    def _vae_model(self):
        if self._vae is None:
            from diffusers import AutoencoderKLWan

            from cinerl.generation.wan.loading import PIECES, _load_model

            self._vae = _load_model(
                AutoencoderKLWan, self._vae_path, torch.float32, "vae", PIECES["vae"].env
            ).to(self.device)
            self._vae.eval()
        return self._vae

    def sample(self, i: int, frames: int, lora: bool) -> np.ndarray:
        """One evaluation clip: uint8 (T, H, W, 3)."""
        return self.decode(self.latents(i, frames, lora))

    @torch.no_grad()
    def latents(self, i: int, frames: int, lora: bool) -> torch.Tensor:
        """Prompt i's denoised latents (1, C, T, H, W) at `frames`, with the LoRA or without."""
        from cinerl.training.video.model import reference

        item = self.data.load(self.items[i], self.data.target.with_frames(frames))
        shape = tuple(item["x_w"].shape)
        x = fm.sample_noise(shape, self.seeds[i]).unsqueeze(0).to(self.device)
        emb = item["prompt_embeds"].unsqueeze(0).to(self.device, self.dtype)
        kind = item["condition_kind"]
        cond = item["condition"].unsqueeze(0).to(self.device) if item["condition"] is not None else None
        sched = self._scheduler()
        sched.set_timesteps(self.cfg.eval_steps, device=self.device)
        boundary = self.variant.boundary_ratio
        for t in sched.timesteps:
            name = (
                "transformer"
                if boundary is None or t >= boundary * fm.NUM_TRAIN_TIMESTEPS
                else "transformer_2"
            )
            mod = self._expert(name)
            tt = (t.float() / fm.NUM_TRAIN_TIMESTEPS).view(1).to(self.device)
            hidden, timestep, _ = fm.model_inputs(x, tt, kind, cond, mod.config.patch_size)
            kw = dict(hidden_states=hidden.to(self.dtype), timestep=timestep, encoder_hidden_states=emb)
            with self.autocast():
                if lora or not hasattr(mod, "peft_config"):
                    v = mod(return_dict=False, **kw)[0]
                else:
                    with reference(mod):
                        v = mod(return_dict=False, **kw)[0]
            x = sched.step(v.float(), t, x, return_dict=False)[0]
        if kind == "first_frame":  # the pipeline's last step: frame 0 is the conditioning image
            x[:, :, :1] = cond.to(x.dtype)
        return x

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> np.ndarray:
        """Latents to uint8 frames as the Wan pipelines decode them (un-normalised, VAE,
        diffusers' VideoProcessor)."""
        from diffusers.video_processor import VideoProcessor

        vae = self._vae_model()
        z = vae.config.z_dim
        mean = torch.tensor(vae.config.latents_mean).view(1, z, 1, 1, 1).to(latents)
        std = torch.tensor(vae.config.latents_std).view(1, z, 1, 1, 1).to(latents)
        video = vae.decode(latents.float() * std + mean, return_dict=False)[0]
        frames = VideoProcessor(vae_scale_factor=self.variant.vae_spatial).postprocess_video(
            video.float(), output_type="np"
        )[0]
        return (np.clip(frames, 0, 1) * 255).round().astype(np.uint8)

    # ---- scoring -------------------------------------------------------------------------
    def scorer(self):
        if self._scorer is None:
            from cinerl.core.settings import env_settings
            from cinerl.rewards import Scorer, registered_components

            names = [c for c in MONITORING if c in registered_components()]
            self._scorer = Scorer(components=names, config=env_settings().rewards)
        return self._scorer

    def score(self, i: int, frames: np.ndarray) -> tuple[dict[str, float], dict[str, str]]:
        """The components that scored `ok` (name -> value) and why the others did not."""
        from cinerl.core.schema import Clip
        from cinerl.rewards import ScoreContext

        row = self.data.items[self.items[i]].row
        prev = None
        if row.condition_image and Path(row.condition_image).is_file():
            from cinerl.core.media import load_png

            try:
                prev = load_png(row.condition_image)
            except Exception:  # not a PNG: seam continuity is then not applicable
                prev = None
        clip = Clip(frames=frames, fps=self.variant.fps, metadata={"backend": "wan-eval"})
        br = self.scorer().score(clip, ScoreContext(prompt=row.prompt, previous_last_frame=prev))
        ok = {n: float(c.value) for n, c in br.components.items() if c.status == "ok"}
        why = {n: c.reason for n, c in br.components.items() if c.status != "ok"}
        return ok, why

    def measure(self, frames: int, lora: bool, tag: str) -> tuple[list[dict], list[str], dict]:
        """Scores of every evaluation prompt at `frames`, the clips written, the reasons."""
        from cinerl.core.media import write_mp4

        folder = self.out / EVAL_DIR
        folder.mkdir(parents=True, exist_ok=True)
        scores, clips, reasons = [], [], {}
        for i in range(len(self.items)):
            video = self.sample(i, frames, lora)
            path = folder / f"{tag}_p{i}.mp4"
            write_mp4(video, self.variant.fps, path)
            clips.append(f"{EVAL_DIR}/{path.name}")
            ok, why = self.score(i, video)
            scores.append(ok)
            reasons.update(why)
        return scores, clips, reasons

    def base(self, frames: int) -> tuple[list[dict], list[str]]:
        if frames not in self._base:
            s, c, _ = self.measure(frames, lora=False, tag=f"base_f{frames}")
            self._base[frames] = (s, c)
        return self._base[frames]

    def evaluate(self, step: int, frames: int | None = None) -> dict:
        """One evaluation row for metrics.jsonl: `eval/<component>` (LoRA) and `base/<component>`
        (LoRA off) means over the prompts, the clips, and the components that did not apply."""
        frames = frames or self.cfg.eval_frames or self.data.target.pixels(self.variant)[2]
        was = self.experts.training
        self.experts.eval()
        try:
            lora, clips, reasons = self.measure(frames, lora=True, tag=f"step_{step:06d}")
            base, base_clips = self.base(frames)
        finally:
            self.experts.train(was)
        row = {"kind": "eval", "step": step, "frames": frames}
        for name, value in mean_scores(lora).items():
            row[f"eval/{name}"] = value
        for name, value in mean_scores(base).items():
            row[f"base/{name}"] = value
        row["clips"] = clips
        row["base_clips"] = base_clips
        row["not_scored"] = {k: v for k, v in reasons.items() if f"eval/{k}" not in row}
        return row

    def gate(self, frames_now: int, frames_next: int, step: int) -> tuple[dict, dict]:
        """The reward gate: the LoRA's clips at both lengths, length-sensitive components only."""
        was = self.experts.training
        self.experts.eval()
        try:
            now, _, _ = self.measure(frames_now, lora=True, tag=f"gate_{step:06d}_f{frames_now}")
            nxt, _, _ = self.measure(frames_next, lora=True, tag=f"gate_{step:06d}_f{frames_next}")
        finally:
            self.experts.train(was)
        keep = set(LENGTH_SENSITIVE)
        return (
            {k: v for k, v in mean_scores(now).items() if k in keep},
            {k: v for k, v in mean_scores(nxt).items() if k in keep},
        )


def mean_scores(rows: list[dict[str, float]]) -> dict[str, float]:
    """Per component, the mean over the prompts where it scored."""
    names = sorted({k for r in rows for k in r})
    return {n: sum(r[n] for r in rows if n in r) / sum(1 for r in rows if n in r) for n in names}


def reward_gate(frames_now: int, frames_next: int, trainer) -> tuple[dict, dict]:
    """The curriculum gate of `--gate rewards` (see curriculum.py's doc)."""
    return trainer.evaluator.gate(frames_now, frames_next, trainer.global_step)
