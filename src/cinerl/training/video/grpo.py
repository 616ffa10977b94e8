"""Flow-GRPO: online RL of a Wan2.2 LoRA with CineRL's reward components (`cinerl train video-grpo`).

Flow-GRPO (Liu et al. 2025, "Flow-GRPO: Training Flow Matching Models via Online RL") in the shape
of TRL's GRPOTrainer: a `VideoGRPOConfig` dataclass and a `VideoGRPOTrainer`, `train(config)`.
Each step:

1. rollouts: for each of `prompts_per_step` prompts a group of `group_size` clips sampled in one
   batched forward per sampling step with the SDE sampler of `sde.py` (`train_steps` steps at
   `noise_level`; outside the `train_window` the step is the plain ODE step, MixGRPO style), the
   trajectory's states and the log-probability of each window step kept; a scene of
   `--from-runs` shot from an image starts from it (the 5B's first-frame latent, as diffusers'
   Wan image-to-video pipeline builds it); a group that runs out of CUDA memory is rolled out in
   halves with the same noise (`rollout_group`);
2. reward: each clip decoded by the folder's VAE and scored by CineRL's `Scorer` with the
   components of `--reward name=weight,...`, as jobs on the run's executor (`score_clip`:
   `--executor local`, this process on `score_workers` threads, or `ray`, actors that keep their
   scorer) beside the next group's rollout; a clip whose scoring fails, or a component of
   which is not `ok`, is dropped from its group (never scored zero);
3. advantages (`group_advantages`): each component z-scored within the group, weighted and
   summed, the sum normalised by the group's mean and std (DeepSeekMath's GRPO; Flow-GRPO's
   per-prompt stat tracker); a group with zero std or fewer than two clips gives no signal and
   is dropped; advantages clipped to +-`adv_clip` (Flow-GRPO: 5);
4. loss, `passes` optimisation passes over the batch (one optimiser step each): the PPO clipped
   objective on the per-step ratio exp(log p_theta - log p_old) (Schulman et al. 2017, clip
   range 1e-3 as Flow-GRPO's Wan config), plus `kl` times the Gaussian KL of each step to the
   reference model (the same transformer with the LoRA disabled). On the first pass the policy
   is the one that sampled, so the ratio is exactly 1; at initialisation (LoRA B = 0) the KL is 0.
   A pass that runs out of CUDA memory is redone with the clip batch of every training forward
   halved (kept halved for the run, in the checkpoints too), the parts' gradients accumulated
   (`_fitting_pass`, one process).

A14B (`--expert high|low|both`, the Flow-DPO trainer's flag and `dpo.expert_ranges`): rollouts
always run both experts, as inference does; only the chosen expert gets a LoRA and gradients,
and the training window is drawn inside the sampling steps that expert denoises (`expert_steps`;
why inside and not skipped: `_trained_experts`). The LoRA folder holds that expert only and its
manifest says so, which is what `cinerl make --lora` loads.

Diagnostics per step in `metrics.jsonl` (CleanRL's names): reward mean/std overall, per group and
per component, approx_kl (0.5 E[(log r)^2]), clip fraction, ratio mean/min/max, kl, entropy proxy
(the Gaussian steps' entropy per element), rollout/score/train seconds. Checkpoints, resume and
the LoRA folder are the Flow-DPO trainer's (`dpo.py`): the result loads with `cinerl make
--backend wan --lora DIR`; `training_report.html` (training/report.py) is written at the end and
on resume. Speed as the Flow-DPO trainer (speed.py): the training attention kernel (logged; never
the forward-only fa3), regional compile (`--compile/--no-compile`; no flag: on for CUDA).
Each step's prompts, noise and window come from seeds derived from (seed, step), so a killed run
resumed from its last checkpoint reaches the same LoRA.

Processes (`--strategy`, strategy.py, shared with the Flow-DPO trainer): one, or several under
torchrun with DDP or FSDP2; each process rolls out, scores and trains its own groups (global
slots rank x prompts_per_step), every process running the same forwards, and the gradients are
averaged, so N processes of P groups train as one process of N x P groups. `--curriculum` runs
the Flow-DPO trainer's gated length curriculum (curriculum.py) with `reward_gate`. See
docs/training_video_grpo.md for what the issue asks that it does not do yet.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import random
import time
import uuid
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cinerl.core.errors import UserError
from cinerl.core.media import atomic_write_text
from cinerl.executor import Job, worker_cache
from cinerl.training.video import flow_matching as fm
from cinerl.training.video import sde
from cinerl.training.video.grpo_config import VideoGRPOConfig, parse_reward  # noqa: F401 (re-exported)

log = logging.getLogger(__name__)

VAE_TEMPORAL = 4  # every Wan VAE: 4x temporal stride (frames = 4k + 1)


# ---- inputs --------------------------------------------------------------------------------
def settings_reward() -> dict[str, float]:
    """No --reward: every registered component of a group weighted in the settings, each at its
    group's weight shared among the group's components."""
    from cinerl.core.settings import env_settings
    from cinerl.rewards import registered_components

    weights = env_settings().rewards.weights
    specs = [s for s in registered_components().values() if weights.get(s.group, 0) > 0]
    per_group: dict[str, int] = {}
    for s in specs:
        per_group[s.group] = per_group.get(s.group, 0) + 1
    return {s.name: float(weights[s.group]) / per_group[s.group] for s in specs}


def read_prompts(path: str) -> list[str]:
    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(f"--prompts {p}: no such file")
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise UserError(f"--prompts {p} is not UTF-8 text") from None
    prompts = [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]
    if not prompts:
        raise UserError(f"--prompts {p} holds no prompt (one a line)")
    return prompts


@dataclass(frozen=True)
class PromptItem:
    """A training prompt and, for image to video, the first frame its scene started from."""

    text: str
    image: str | None = None


def prompts_from_runs(text: str) -> list[PromptItem]:
    """The chosen take's prompt of every scene of the runs (a folder of runs is searched one
    level down), with the scene's first frame where the take was shot from one (an i2v take:
    the keyframe or the previous scene's last frame, as the Flow-DPO pairs find it)."""
    from cinerl.core.store import read_report
    from cinerl.training.datasets.video_pairs import _condition_image, find_runs

    runs = find_runs([Path(p.strip()) for p in text.split(",") if p.strip()])
    out: list[PromptItem] = []
    for run in runs:
        try:
            report = read_report(run)
        except Exception as e:  # a report of another version: said, not guessed
            raise UserError(f"--from-runs {run}: report.json unreadable ({e})") from None
        for scene in report.scenes:
            a = scene.chosen_attempt or (scene.attempts[0] if scene.attempts else None)
            if a is None or not a.prompt.strip():
                continue
            image = _condition_image(Path(run), report, scene.scene, a)
            item = PromptItem(a.prompt, image if image and Path(image).is_file() else None)
            if item not in out:
                out.append(item)
    if not out:
        raise UserError(f"--from-runs {text}: the runs hold no scene prompt")
    return out


# ---- advantages -----------------------------------------------------------------------------
def group_advantages(
    rewards: list[dict[str, float] | None], weights: dict[str, float], clip: float = 5.0
) -> tuple[list[float | None], str]:
    """One group's advantages (None for a dropped clip) and, when the group is dropped, why.

    Each component is z-scored within the group (a component constant over the group adds
    nothing), weighted and summed; the sums are normalised by their mean and std (GRPO, Shao et
    al. 2024) and clipped to +-clip. A failed clip (None) is left out of the statistics."""
    kept = [i for i, r in enumerate(rewards) if r is not None]
    out: list[float | None] = [None] * len(rewards)
    if len(kept) < 2:
        return out, f"{len(kept)} clip(s) scored: no group to compare with"
    total = np.zeros(len(kept))
    for name, w in weights.items():
        vals = np.array([rewards[i][name] for i in kept], dtype=np.float64)
        sd = vals.std()
        if sd > 0:
            total += w * (vals - vals.mean()) / sd
    sd = total.std()
    if not sd > 1e-12:
        return out, "zero reward std in the group"
    adv = np.clip((total - total.mean()) / sd, -clip, clip)
    for i, a in zip(kept, adv):
        out[i] = float(a)
    return out, ""


def ppo_terms(logp, old_logp, adv, clip_range: float) -> dict[str, torch.Tensor]:
    """The PPO clipped objective per sample (Schulman et al. 2017; CleanRL's ppo.py names)."""
    log_ratio = logp - old_logp
    ratio = torch.exp(log_ratio)
    unclipped = -adv * ratio
    clipped = -adv * torch.clamp(ratio, 1.0 - clip_range, 1.0 + clip_range)
    return {
        "pg": torch.maximum(unclipped, clipped),
        "ratio": ratio.detach(),
        "approx_kl": 0.5 * log_ratio.detach() ** 2,
        "clipped": ((ratio.detach() - 1.0).abs() > clip_range).float(),
    }


def window_of(seed: int, step: int, steps: int, window: int, inside: range | None = None) -> range:
    """The sampling steps trained this step: a contiguous window at a seeded position (all when 0)
    inside `inside` (default every step; with --expert high|low, the steps that expert denoises)."""
    span = range(steps) if inside is None else inside
    if window <= 0 or window >= len(span):
        return span
    start = random.Random(fm.sample_seed(seed, step, -3)).randint(span.start, span.stop - window)
    return range(start, start + window)


def expert_at(sigma: float, boundary: float | None) -> str:
    """The transformer that denoises at flow sigma `sigma` (A14B: the high-noise expert at
    sigma >= boundary, as diffusers' Wan pipelines switch; the 5B has one)."""
    return "transformer" if boundary is None or sigma >= boundary else "transformer_2"


def expert_steps(sigmas: torch.Tensor, boundary: float | None, ranges: dict) -> range:
    """The sampling steps whose model is a trained expert (a contiguous run, since the sigmas
    fall)."""
    mine = [i for i in range(len(sigmas) - 1) if expert_at(float(sigmas[i]), boundary) in ranges]
    return range(mine[0], mine[-1] + 1) if mine else range(0)


# ---- scoring jobs (executor/) -----------------------------------------------------------------
class ClipScorer:
    """CineRL's `Scorer` over the trained components: one clip -> (component values, or None for
    a failed clip; why; seconds). The driver's and every Ray actor's own."""

    def __init__(self, components: list[str], fps: int):
        from cinerl.core.settings import env_settings
        from cinerl.rewards import Scorer

        self.components, self.fps = list(components), int(fps)
        self.scorer = Scorer(components=self.components, config=env_settings().rewards)

    def score(self, clip: np.ndarray, prompt: str) -> tuple[dict[str, float] | None, str, float]:
        from cinerl.core.schema import Clip
        from cinerl.rewards import ScoreContext

        t0 = time.perf_counter()
        try:
            br = self.scorer.score(
                Clip(frames=clip, fps=self.fps, metadata={"backend": "wan-grpo"}), ScoreContext(prompt=prompt)
            )
        except Exception as e:  # a scorer crash fails the clip, not the run
            return None, f"scoring failed: {type(e).__name__}: {e}", time.perf_counter() - t0
        vals, why = {}, ""
        for name in self.components:
            c = br.components.get(name)
            if c is None or c.status != "ok" or not math.isfinite(float(c.value)):
                why = f"{name}: {c.status + ' ' + (c.reason or '') if c is not None else 'not run'}".strip()
                return None, why, time.perf_counter() - t0
            vals[name] = float(c.value)
        return vals, why, time.perf_counter() - t0


SCORE_CLIP = "cinerl.training.video.grpo:score_clip"
# the trainers of this process, by token: a job the local executor runs scores with the
# driver's own trainer (its scorer, and whatever a test put in its place)
_IN_PROCESS: weakref.WeakValueDictionary[str, object] = weakref.WeakValueDictionary()


def score_clip(token: str, spec: dict, clip: np.ndarray, prompt: str):
    """The job of one decoded rollout clip: its reward components (ClipScorer.score). In the
    driver's process the trainer's own scorer; in a Ray actor one built from `spec` on the
    actor's first job and kept (executor.worker_cache: the reward models load once per actor)."""
    trainer = _IN_PROCESS.get(token)
    if trainer is not None:
        return trainer.score(clip, prompt)
    key = ("video-grpo-scorer", tuple(spec["components"]), spec["fps"])
    return worker_cache(key, lambda: ClipScorer(spec["components"], spec["fps"])).score(clip, prompt)


# ---- the trainer -----------------------------------------------------------------------------
@dataclass
class GRPOResult:
    out: Path
    steps: int
    lora_dir: Path
    metrics: list[dict]
    evaluations: list[dict] = dataclasses.field(default_factory=list)
    curriculum: dict | None = None
    main: bool = True  # the main process (the others of a DDP/FSDP2 run print nothing)
    speed: dict = dataclasses.field(default_factory=dict)  # attention kernel, compiled blocks


@dataclass
class Rollout:
    """One group's trajectory: the window steps' states and the sampler's log-probabilities."""

    prompt: int
    steps: list[int]
    x: list[torch.Tensor]  # state before each window step (G, C, T, H, W) fp32
    x_next: list[torch.Tensor]
    old_logp: list[torch.Tensor]  # (G,)
    latents: torch.Tensor  # final latents (G, ...)
    splits: int = 0  # times the group's batch was halved after an out-of-memory error

    @staticmethod
    def join(parts: list["Rollout"]) -> "Rollout":
        """Rollouts of parts of one group, in clip order, as one."""
        a = parts[0]
        return Rollout(
            a.prompt,
            a.steps,
            [torch.cat(t) for t in zip(*(p.x for p in parts))],
            [torch.cat(t) for t in zip(*(p.x_next for p in parts))],
            [torch.cat(t) for t in zip(*(p.old_logp for p in parts))],
            torch.cat([p.latents for p in parts]),
            sum(p.splits for p in parts) + 1,
        )


class VideoGRPOTrainer:
    """One Flow-GRPO run: built from a config, trained by `train()`."""

    def __init__(self, cfg: VideoGRPOConfig):
        from cinerl.generation.wan.variants import fit_request, get_variant
        from cinerl.training.video.dpo import open_out, parse_curriculum
        from cinerl.training.video.evaluate import vae_folder
        from cinerl.training.video.model import check_model_dir, guess_variant

        from cinerl.training.video.strategy import resolve_strategy

        cfg.check()
        self.cfg = cfg
        # torchrun's WORLD_SIZE: a strategy that does not fit the launch is refused before a write
        resolve_strategy(cfg.strategy, int(os.environ.get("WORLD_SIZE", "1")))
        self.model_dir = check_model_dir(cfg.model_dir)
        self.variant = get_variant(cfg.variant or guess_variant(self.model_dir))
        if vae_folder(self.model_dir) is None:
            raise UserError(
                f"--model-dir {self.model_dir} has no vae/config.json: rollouts are decoded to be scored"
            )
        for piece in ("text_encoder", "tokenizer"):
            if not (self.model_dir / piece).is_dir():
                raise UserError(f"--model-dir {self.model_dir} has no {piece}/: prompts are encoded by it")
        from cinerl.core.settings import ExecutorSettings
        from cinerl.executor import preflight

        self.where = ExecutorSettings(
            kind=cfg.executor, address=cfg.ray_address or None, workers=cfg.ray_workers or None
        )
        preflight(self.where)  # a bad --ray-address or no Ray: one line, before anything is written
        self.weights = parse_reward(cfg.reward) if cfg.reward else settings_reward()
        self.items = read_prompts(cfg.prompts) if cfg.prompts else prompts_from_runs(cfg.from_runs)
        self.items = [it if isinstance(it, PromptItem) else PromptItem(it) for it in self.items]
        self.prompts = [it.text for it in self.items]
        if any(it.image for it in self.items) and self.variant.name != "ti2v-5b":
            if self.variant.transformer_in_channels != self.variant.latent_channels:
                raise UserError(
                    f"--from-runs: image-to-video rollouts of {self.variant.name} (its image latents "
                    "concatenated on channels) are not supported yet; the 5B's first-frame ones are"
                )
            log.info("%s is text to video: the runs' first frames are not used", self.variant.name)
            self.items = [PromptItem(it.text) for it in self.items]
        self.stages = parse_curriculum(cfg.curriculum) if cfg.curriculum else []
        w, h = cfg.parsed_size()
        fits = [fit_request(self.variant, w, h, f, max_frames=10_000) for f in self.stages or [cfg.frames]]
        self.width, self.height = fits[0].width, fits[0].height
        self.lengths = [f.num_frames for f in fits]
        self.set_frames(self.lengths[0])
        self.sigmas = sde.flow_sigmas(cfg.train_steps, self.variant.flow_shift)
        self.ranges, self.trainable = self._trained_experts()
        import hashlib

        named = (
            [[it.text, it.image] for it in self.items] if any(it.image for it in self.items) else self.prompts
        )
        digest = json.dumps(named).encode()
        self.out, self.identity = open_out(
            cfg, {"prompts_sha256": hashlib.sha256(digest).hexdigest(), "reward_weights": self.weights}
        )
        self.token = uuid.uuid4().hex
        self.oom_said = False
        # clips per training forward: the group, halved for the rest of the run after an
        # out-of-memory error in an optimisation pass (`_fitting_pass`)
        self.train_chunk, self.train_oom_said = cfg.group_size, False
        self.speed: dict = {}

    def _trained_experts(self) -> tuple[dict, range]:
        """--expert: the trained experts (dpo.expert_ranges) and the sampling steps they denoise.

        The window is drawn inside those steps, not over all of them with the others skipped:
        a rollout (sampling, decoding, scoring a whole group) costs far more than its training
        forwards, and a window drawn over every step would often fall on the other expert and
        train nothing. The other expert's steps stay ODE steps, so a group's spread comes from
        the trained expert's own noise."""
        from cinerl.training.video.dpo import expert_ranges

        cfg, v = self.cfg, self.variant
        if cfg.expert != "both" and v.boundary_ratio is None:
            raise UserError(
                f"--expert {cfg.expert}: {v.name} has one expert (A14B has a high- and a low-noise one)"
            )
        ranges = expert_ranges(v, cfg.expert)
        inside = expert_steps(self.sigmas, v.boundary_ratio, ranges)
        if not len(inside):
            raise UserError(
                f"--expert {cfg.expert}: none of the {cfg.train_steps} sampling steps is the "
                f"{cfg.expert}-noise expert's (boundary sigma {v.boundary_ratio}); raise --train-steps"
            )
        if cfg.expert != "both":
            log.info(
                "--expert %s: training sampling steps %d-%d of %d (%s only)",
                cfg.expert, inside.start, inside.stop - 1, cfg.train_steps, ", ".join(ranges),
            )  # fmt: skip
            if cfg.train_window > len(inside):
                log.info(
                    "--train-window %d: the expert denoises %d steps, all trained",
                    cfg.train_window,
                    len(inside),
                )
        return ranges, inside

    def set_frames(self, frames: int) -> None:
        """The rollout length (a curriculum stage's, or --frames) and its latent shape."""
        v = self.variant
        self.frames = frames
        self.shape = (
            v.latent_channels,
            (frames - 1) // VAE_TEMPORAL + 1,
            self.height // v.vae_spatial,
            self.width // v.vae_spatial,
        )

    # ---- models ---------------------------------------------------------------------------
    def _setup(self, accel, strategy: str):
        """Both experts of A14B loaded (rollouts run both), a LoRA on the trained one(s) only;
        the training attention kernel and regional compile (speed.py, as the Flow-DPO trainer)."""
        from cinerl.training.video import speed
        from cinerl.training.video.dpo import _dtype
        from cinerl.training.video.model import Experts, add_lora, load_experts, lora_targets
        from cinerl.training.video.strategy import shard

        cfg = self.cfg
        self.accel, self.strategy = accel, strategy
        self.device = accel.device
        self.dtype = _dtype(cfg, self.device)
        names = ["transformer"] if self.variant.boundary_ratio is None else ["transformer", "transformer_2"]
        experts = load_experts(self.model_dir, self.variant, names, self.dtype)
        torch.manual_seed(cfg.seed)
        targets = lora_targets(cfg.lora_targets)
        for name, m in experts.items():
            if name in self.ranges:
                add_lora(m, cfg.lora_rank, cfg.lora_alpha, targets)
                if cfg.gradient_checkpointing == "on":
                    m.enable_gradient_checkpointing()
            else:  # the expert not trained: the base model, frozen, in every rollout
                m.requires_grad_(False).eval()
            m.to(self.device)
        # the kernel has a backward (fa3-fwd, forward-only, is never picked for training)
        self.speed["attention"] = speed.setup_attention(experts.values(), self.dtype)
        # the rollouts', reference's and evaluation's forwards (no gradient): fa3-fwd where it runs
        self.forward_attention = speed.ForwardAttention(
            experts.values(), self.dtype, cfg.rollout_attention, self.device
        )
        self.speed["rollout_attention"] = self.forward_attention.kernel
        if speed.compile_wanted(cfg.compile_choice(), self.device):  # per block, before FSDP2 wraps them
            self.speed["compiled_blocks"] = speed.compile_blocks(experts.values())
        else:
            why = "--no-compile" if cfg.compile is False else f"no flag: off on {self.device.type}"
            self.speed["compiled_blocks"] = 0
            log.info("regional compile off (%s)", why)
        self.speed["compile"] = cfg.compile_choice()
        if strategy == "fsdp":
            shard(experts.values())
        self.frozen = {n: m for n, m in experts.items() if n not in self.ranges}
        self.experts = Experts({n: m for n, m in experts.items() if n in self.ranges})
        # DDP wraps the module for the trained forwards; FSDP2 shards it in place
        self.model = accel.prepare(self.experts) if strategy == "ddp" else self.experts
        self.embeds = self._encode([*self.prompts, ""])
        self.vae = self._load_vae()
        self.conditions = [self._encode_image(it.image) if it.image else None for it in self.items]

    def _encode(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """The text encoder's output per text (the Wan pipelines' own encode_prompt), then freed."""
        from diffusers import WanPipeline
        from transformers import AutoTokenizer, UMT5EncoderModel

        tok = AutoTokenizer.from_pretrained(str(self.model_dir / "tokenizer"))
        te = UMT5EncoderModel.from_pretrained(str(self.model_dir / "text_encoder")).to(self.device).eval()
        pipe = WanPipeline(tokenizer=tok, text_encoder=te, vae=None, transformer=None, scheduler=None)
        out = {}
        with torch.no_grad():
            for t in dict.fromkeys(texts):
                emb, _ = pipe.encode_prompt(
                    t,
                    do_classifier_free_guidance=False,
                    max_sequence_length=self.variant.max_seq_len,
                    device=self.device,
                )
                out[t] = emb[0].to(self.dtype)
        del pipe, te
        return out

    def _load_vae(self):
        from diffusers import AutoencoderKLWan

        from cinerl.generation.wan.loading import PIECES, _load_model

        vae = _load_model(AutoencoderKLWan, self.model_dir / "vae", torch.float32, "vae", PIECES["vae"].env)
        return vae.to(self.device).eval()

    @torch.no_grad()
    def _encode_image(self, path: str) -> torch.Tensor:
        """A scene's first frame as the 5B's first-frame latent (C, 1, h, w), normalised, as the
        Wan image-to-video pipeline builds it (resized to the rollout size, VAE mode)."""
        from diffusers.video_processor import VideoProcessor
        from PIL import Image

        from cinerl.core.media import load_png

        try:
            img = Image.fromarray(load_png(path))
        except (OSError, ValueError) as e:
            raise UserError(f"--from-runs: the first frame {path} is unreadable ({e})") from None
        vp = VideoProcessor(vae_scale_factor=self.variant.vae_spatial)
        x = vp.preprocess(img, height=self.height, width=self.width).unsqueeze(2)
        vae = self.vae
        lat = vae.encode(x.to(self.device, torch.float32)).latent_dist.mode()
        z = vae.config.z_dim
        mean = torch.tensor(vae.config.latents_mean).view(1, z, 1, 1, 1).to(lat)
        std = torch.tensor(vae.config.latents_std).view(1, z, 1, 1, 1).to(lat)
        return ((lat - mean) / std)[0]

    def _expert_of(self, s: float) -> str:
        return expert_at(s, self.variant.boundary_ratio)

    def velocity(
        self, x: torch.Tensor, s: float, prompt: int, lora: bool = True, trained: bool = False
    ) -> torch.Tensor:
        """The model's velocity at flow sigma s for a batch of prompt `prompt` (fp32): the
        scene's first frame held in latent frame 0 where it has one (the 5B's image to video);
        with --rollout-cfg, guided against the empty prompt. `trained`: the forward whose
        gradient is taken (through the DDP wrapper under --strategy ddp)."""
        from cinerl.training.video.model import reference

        name = self._expert_of(s)
        mod = self.frozen[name] if name in self.frozen else self.experts.experts[name]
        n = x.shape[0]
        text = self.prompts[prompt]
        cond = self.conditions[prompt]
        emb = self.embeds[text].unsqueeze(0).expand(n, -1, -1)
        guided = self.cfg.rollout_cfg
        if guided:
            neg = self.embeds[""].unsqueeze(0).expand(n, -1, -1)
            emb, x_in = torch.cat([emb, neg]), torch.cat([x, x])
        else:
            x_in = x
        t = torch.full((x_in.shape[0],), s, device=x.device)
        kind = "first_frame" if cond is not None else "none"
        c = cond.unsqueeze(0).expand(x_in.shape[0], -1, -1, -1, -1) if cond is not None else None
        hidden, timestep, _ = fm.model_inputs(x_in, t, kind, c, mod.config.patch_size)
        kw = dict(hidden_states=hidden.to(self.dtype), timestep=timestep, encoder_hidden_states=emb)
        autocast = (
            torch.autocast(self.device.type, dtype=torch.bfloat16)
            if self.dtype == torch.bfloat16
            else _null()
        )
        # no gradient taken (rollouts, the reference, evaluation): the forward-only kernel
        fast = self.forward_attention() if not torch.is_grad_enabled() else _null()
        with autocast, fast:
            if not lora and name not in self.frozen:
                with reference(mod):
                    v = mod(return_dict=False, **kw)[0]
            elif trained and self.strategy == "ddp":
                v = self.model(name, **kw)
            else:
                v = mod(return_dict=False, **kw)[0]
        v = v.float()
        if guided:
            g = (
                self.variant.guidance
                if name == "transformer"
                else (self.variant.guidance_2 or self.variant.guidance)
            )
            vc, vu = v.chunk(2)
            v = vu + g * (vc - vu)
        return v

    def _part(self, prompt: int, t: torch.Tensor) -> torch.Tensor:
        """What the policy's log-probability is over: every latent frame, or all but frame 0 when
        frame 0 is the conditioning image (the pipeline overwrites it: it is no action)."""
        return t[:, :, 1:] if self.conditions[prompt] is not None else t

    # ---- rollouts and rewards ----------------------------------------------------------------
    def rollout_group(self, prompt: int, step: int, window: range, slot: int) -> Rollout:
        """The group's rollout in one batch; on a CUDA out-of-memory error, in two halves (each
        half again on another one, down to one clip), with the same noise: the same clips."""
        return self._rollout_part(prompt, step, window, slot, list(range(self.cfg.group_size)))

    def _rollout_part(self, prompt: int, step: int, window: range, slot: int, clips: list[int]) -> Rollout:
        from cinerl.training.video.speed import is_oom

        try:
            return self.rollout(prompt, step, window, slot, clips)
        except Exception as e:
            # FSDP2: a split on one process would put its all-gathers out of step with the others'
            if not is_oom(e) or len(clips) < 2 or self.strategy == "fsdp":
                raise
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        half = len(clips) // 2
        if not self.oom_said:
            log.warning(
                "out of memory in a rollout of %d clips: rolling out in halves (said once; "
                "`rollout_oom_splits` in metrics.jsonl counts them)",
                len(clips),
            )
            self.oom_said = True
        parts = [self._rollout_part(prompt, step, window, slot, c) for c in (clips[:half], clips[half:])]
        return Rollout.join(parts)

    @torch.no_grad()
    def rollout(
        self, prompt: int, step: int, window: range, slot: int, clips: list[int] | None = None
    ) -> Rollout:
        """Clips `clips` (default all) of the group of global slot `slot`: the initial noise per
        (seed, step, clip of the step's global batch) and the SDE noise from one generator per
        group drawn for the whole group, so any part of a group gives the part of its clips."""
        cfg, G = self.cfg, self.cfg.group_size
        clips = list(range(G)) if clips is None else clips
        x = torch.stack(
            [fm.sample_noise(self.shape, fm.sample_seed(cfg.seed, step, slot * G + j)) for j in clips]
        ).to(self.device)
        gen = torch.Generator().manual_seed(fm.sample_seed(cfg.seed, step, 100_000 + slot))
        ro = Rollout(prompt, list(window), [], [], [], x)
        cond = self.conditions[prompt]
        for i in range(cfg.train_steps):
            v = self.velocity(x, float(self.sigmas[i]), prompt, lora=True)
            level = cfg.noise_level if i in window else 0.0
            noise = None
            if level > 0:
                noise = torch.randn((G, *self.shape), generator=gen, dtype=torch.float32)[clips]
            x_next, _ = sde.sde_step(x, v, self.sigmas, i, level, noise=noise)
            if cond is not None:  # the pipeline's way: frame 0 is the image at every step
                x_next[:, :, :1] = cond.to(x_next)
            if i in window:
                st = sde.sde_mean(x, v, self.sigmas, i, level)
                ro.x.append(x)
                ro.x_next.append(x_next)
                ro.old_logp.append(
                    sde.log_prob(self._part(prompt, x_next), self._part(prompt, st.mean), st.std)
                )
            x = x_next
        ro.latents = x
        return ro

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> list[np.ndarray]:
        """Latents (G, C, T, H, W) to uint8 clips (T, H, W, 3), as the Wan pipelines decode them."""
        from diffusers.video_processor import VideoProcessor

        vae = self.vae
        z = vae.config.z_dim
        mean = torch.tensor(vae.config.latents_mean).view(1, z, 1, 1, 1).to(latents)
        std = torch.tensor(vae.config.latents_std).view(1, z, 1, 1, 1).to(latents)
        video = vae.decode(latents.float() * std + mean, return_dict=False)[0]  # the group at once
        frames = VideoProcessor(vae_scale_factor=self.variant.vae_spatial).postprocess_video(
            video.float(), output_type="np"
        )
        return [(np.clip(f, 0, 1) * 255).round().astype(np.uint8) for f in frames]

    def _scorer(self):
        if getattr(self, "_scorer_obj", None) is None:
            self._scorer_obj = ClipScorer(list(self.weights), self.variant.fps)
        return self._scorer_obj

    def score(self, clip: np.ndarray, prompt: str) -> tuple[dict[str, float] | None, str, float]:
        """(component values, or None for a failed clip; why; seconds)."""
        return self._scorer().score(clip, prompt)

    def submit_score(self, clip: np.ndarray, prompt: str):
        """A scoring job on the run's executor, submitted from the scoring threads (the local
        executor runs a job on the thread that submits it; Ray's returns at once and its actors
        are the parallelism): a future of the executor's future."""
        job = Job(
            SCORE_CLIP,
            kwargs=dict(
                token=self.token,
                spec={"components": list(self.weights), "fps": self.variant.fps},
                clip=clip,
                prompt=prompt,
            ),
            key=f"score_{self._jobs:06d}",
        )
        self._jobs += 1
        return self.pool.submit(self.executor.submit, job)

    # ---- one step ----------------------------------------------------------------------------
    def step(self, step: int, opt, sched, params) -> dict:
        """One GRPO step on this process's groups (global slots rank*P .. rank*P+P-1 of the
        step's P*world groups); the row (main process) from every process's figures."""
        from cinerl.training.video.dpo import global_indices
        from cinerl.training.video.strategy import full

        cfg, accel = self.cfg, self.accel
        world, rank = accel.num_processes, accel.process_index
        P = cfg.prompts_per_step
        window = window_of(cfg.seed, step, cfg.train_steps, cfg.train_window, self.trainable)
        idx = global_indices(len(self.prompts), cfg.seed, step, P * world)
        slots = list(range(rank * P, (rank + 1) * P))
        t0 = time.perf_counter()
        rollouts, futures, decode_s = [], [], 0.0
        self.experts.eval()
        for slot in slots:
            p = idx[slot]
            ro = self.rollout_group(p, step, window, slot)
            t_dec = time.perf_counter()
            clips = self.decode(ro.latents)
            decode_s += time.perf_counter() - t_dec
            rollouts.append(ro)
            # scoring runs on the executor while the next group is sampled
            futures.append([self.submit_score(c, self.prompts[p]) for c in clips])
        gen_s = time.perf_counter() - t0
        groups, reasons, workers, score_s = [], {}, set(), 0.0
        for fs in futures:
            res = []
            for f in fs:
                jr = f.result().result()
                workers.add(jr.worker)
                res.append(jr.value)
            score_s += sum(r[2] for r in res)
            for r in res:
                if r[0] is None:
                    reasons[r[1]] = reasons.get(r[1], 0) + 1
            groups.append([r[0] for r in res])
        rollout_s = time.perf_counter() - t0
        advs, dropped = [], {}
        for g in groups:
            a, why = group_advantages(g, self.weights, cfg.adv_clip)
            advs.append(a)
            if why:
                dropped[why] = dropped.get(why, 0) + 1
        # ---- optimisation passes ----
        t1 = time.perf_counter()
        self.experts.train()
        # several processes: every one runs the same forwards (FSDP2's all-gathers and DDP's
        # all-reduces are collectives), a group without signal with a zero mask
        lockstep = world > 1
        trained = [(ro, a) for ro, a in zip(rollouts, advs) if lockstep or any(x is not None for x in a)]
        n_mine = sum(len(ro.steps) for ro, a in zip(rollouts, advs) if any(x is not None for x in a))
        n_terms = int(accel.reduce(torch.tensor(float(n_mine), device=self.device), reduction="sum"))
        stats: dict[str, list] = {k: [] for k in ("ratio", "approx_kl", "clipped", "kl", "pg")}
        extremes: dict[str, list] = {k: [] for k in ("ratios", "first_ratio", "first_kl")}
        grad_norm, lr = 0.0, sched.get_last_lr()[0]
        train_splits = 0
        for pas in range(cfg.passes):
            if not n_terms:
                break
            st_pass, ext_pass, halved = self._fitting_pass(opt, trained, n_terms, world, pas == 0)
            train_splits += halved
            for key in stats:
                stats[key] += st_pass[key]
            for key in extremes:
                extremes[key] += ext_pass[key]
            grad_norm = float(full(torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)))
            opt.step()
        sched.step()
        train_s = time.perf_counter() - t1
        mine = {
            "groups": groups,
            "reasons": reasons,
            "dropped": dropped,
            "trained": sum(any(x is not None for x in a) for a in advs),
            "stats": stats,
            "extremes": extremes,
            "splits": sum(ro.splits for ro in rollouts),
            "train_splits": train_splits,
            "workers": sorted(workers),
            "t": (rollout_s, gen_s - decode_s, decode_s, score_s, train_s),
        }
        if world > 1:
            from accelerate.utils import gather_object

            every = gather_object([mine])
        else:
            every = [mine]
        return self._row(every, window, lr, grad_norm)

    def _fitting_pass(self, opt, trained, n_terms: int, world: int, first: bool):
        """One optimisation pass; on a CUDA out-of-memory error (one process) the clip batch of
        every training forward is halved for the rest of the run and the pass redone from zero
        gradients, down to one clip: the same loss, accumulated over the parts. Returns the
        pass's figures and how many times the batch was halved. Under several processes the
        error is raised (one process redoing a pass would put DDP's all-reduces and FSDP2's
        all-gathers out of step), as the Flow-DPO trainer's fallback does."""
        from cinerl.training.video.speed import is_oom

        halved = 0
        while True:
            try:
                return (*self._train_pass(opt, trained, n_terms, world, first), halved)
            except Exception as e:
                if not is_oom(e) or world > 1 or self.train_chunk < 2:
                    raise
            # out of the except block: the failed pass's graph and activations are freed here
            opt.zero_grad(set_to_none=True)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            if not self.train_oom_said:
                log.warning(
                    "out of memory in an optimisation pass at %d clips a forward: %d from now on "
                    "(said once; `train_oom_splits` in metrics.jsonl counts the halvings)",
                    self.train_chunk,
                    (self.train_chunk + 1) // 2,
                )
                self.train_oom_said = True
            self.train_chunk = (self.train_chunk + 1) // 2
            halved += 1

    def _train_pass(self, opt, trained, n_terms: int, world: int, first: bool):
        """Gradients of one pass over every window step of every trained group, each step's
        clips in forwards of `train_chunk` clips (the whole group unless memory ran out)."""
        cfg, accel = self.cfg, self.accel
        stats: dict[str, list] = {k: [] for k in ("ratio", "approx_kl", "clipped", "kl", "pg")}
        extremes: dict[str, list] = {k: [] for k in ("ratios", "first_ratio", "first_kl")}
        opt.zero_grad(set_to_none=True)
        terms_left = sum(len(ro.steps) for ro, _ in trained)
        for ro, a in trained:
            mask = torch.tensor([x is not None for x in a], device=self.device, dtype=torch.float32)
            adv = torch.tensor([x if x is not None else 0.0 for x in a], device=self.device)
            has = bool(mask.sum() > 0)
            n = len(a)
            parts = [slice(c, min(c + self.train_chunk, n)) for c in range(0, n, self.train_chunk)]
            for k, i in enumerate(ro.steps):
                terms_left -= 1
                s = float(self.sigmas[i])
                per: dict[str, list] = {k2: [] for k2 in ("ratio", "approx_kl", "clipped", "pg", "kl")}
                for j, part in enumerate(parts):
                    x, x_next, old = ro.x[k][part], ro.x_next[k][part], ro.old_logp[k][part]
                    v = self.velocity(x, s, ro.prompt, lora=True, trained=True)
                    st = sde.sde_mean(x, v, self.sigmas, i, cfg.noise_level)
                    mean = self._part(ro.prompt, st.mean)
                    logp = sde.log_prob(self._part(ro.prompt, x_next), mean, st.std)
                    terms = ppo_terms(logp, old, adv[part], cfg.clip_range)
                    loss_per = terms["pg"]
                    if cfg.kl > 0:
                        with torch.no_grad():
                            v_ref = self.velocity(x, s, ro.prompt, lora=False)
                            ref_mean = sde.sde_mean(x, v_ref, self.sigmas, i, cfg.noise_level).mean
                        kl = sde.kl_to_reference(mean, self._part(ro.prompt, ref_mean), st.std)
                        loss_per = loss_per + cfg.kl * kl
                        per["kl"].append(kl.detach())
                    # DDP and FSDP2 average the processes' gradients: x world makes the sum of
                    # every process's terms over the global count, as one process would have it;
                    # a part's loss is over the whole group's count, so the parts add up to it
                    loss = (loss_per * mask[part]).sum() / mask.sum().clamp_min(1) / n_terms * world
                    sync = self.strategy != "ddp" or (terms_left == 0 and j == len(parts) - 1)
                    with _null() if sync else accel.no_sync(self.model):
                        loss.backward()
                    for key in ("ratio", "approx_kl", "clipped"):
                        per[key].append(terms[key])
                    per["pg"].append(terms["pg"].detach())
                if not has:
                    continue
                terms = {key: torch.cat(parts_of) for key, parts_of in per.items() if parts_of}
                for key in ("ratio", "approx_kl", "clipped", "pg"):
                    stats[key].append(_masked(terms[key], mask))
                r = terms["ratio"][mask > 0]
                extremes["ratios"] += [float(r.min()), float(r.max())]
                if cfg.kl > 0:
                    stats["kl"].append(_masked(terms["kl"], mask))
                if first:
                    extremes["first_ratio"] += [float(r.min()), float(r.max())]
                    if cfg.kl > 0:
                        extremes["first_kl"].append(float(terms["kl"][mask > 0].max()))
        return stats, extremes

    def _row(self, every: list[dict], window: range, lr: float, grad_norm: float) -> dict:
        """The step's metrics row from every process's figures (in rank order)."""
        cfg = self.cfg
        groups = [g for m in every for g in m["groups"]]
        reasons: dict[str, int] = {}
        dropped: dict[str, int] = {}
        for m in every:
            for src, dst in ((m["reasons"], reasons), (m["dropped"], dropped)):
                for k, v in src.items():
                    dst[k] = dst.get(k, 0) + v
        stats = {k: [v for m in every for v in m["stats"][k]] for k in every[0]["stats"]}
        ext = {k: [v for m in every for v in m["extremes"][k]] for k in every[0]["extremes"]}
        t = [m["t"] for m in every]
        flat = [r for g in groups for r in g if r is not None]
        total = [sum(self.weights[n] * r[n] for n in self.weights) for r in flat]
        row: dict = {
            "reward_mean": float(np.mean(total)) if total else None,
            "reward_std": float(np.std(total)) if total else None,
            "clips": sum(len(g) for g in groups),
            "clips_dropped": sum(r is None for g in groups for r in g),
            "groups_trained": sum(m["trained"] for m in every),
            "groups_dropped": dropped,
            "dropped_why": reasons,
            "window": [window.start, window.stop],
            "frames": self.frames,
            "lr": lr,
            "grad_norm": grad_norm,
            "rollout_s": round(max(x[0] for x in t), 4),
            "generate_s": round(max(x[1] for x in t), 4),
            "decode_s": round(max(x[2] for x in t), 4),
            "score_s": round(sum(x[3] for x in t), 4),
            "train_s": round(max(x[4] for x in t), 4),
            "score_processes": len({w for m in every for w in m["workers"]}),
            "rollout_oom_splits": sum(m["splits"] for m in every),
            "train_oom_splits": sum(m["train_splits"] for m in every),
            "train_chunk": self.train_chunk,
            "processes": len(every),
        }
        for name in self.weights:
            vals = [r[name] for r in flat]
            row[f"reward/{name}"] = float(np.mean(vals)) if vals else None
            row[f"reward/{name}_std"] = float(np.std(vals)) if vals else None
        sums = [
            [sum(self.weights[n] * r[n] for n in self.weights) for r in g if r is not None] for g in groups
        ]
        row["group_reward_mean"] = [float(np.mean(g)) if g else None for g in sums]
        row["group_reward_std"] = [float(np.std(g)) if g else None for g in sums]
        for key in ("approx_kl", "clipped", "kl", "pg"):
            vals = stats[key]
            row[{"clipped": "clip_fraction", "pg": "policy_loss"}.get(key, key)] = (
                float(np.mean(vals)) if vals else None
            )
        ratios = stats["ratio"]
        row["ratio_mean"] = float(np.mean(ratios)) if ratios else None
        if ext["first_ratio"]:
            row["first_pass_ratio_min"] = min(ext["first_ratio"])
            row["first_pass_ratio_max"] = max(ext["first_ratio"])
        if ext["first_kl"]:
            row["first_pass_kl_max"] = max(ext["first_kl"])
        if ext["ratios"]:
            row["ratio_min"] = min(ext["ratios"])
            row["ratio_max"] = max(ext["ratios"])
        stds = [sde.step_std(self.sigmas, i, cfg.noise_level)[1] for i in window]
        # entropy of a Gaussian step per element, 0.5 log(2 pi e std^2): the sampler's entropy
        # proxy (fixed by the noise schedule; it moves only with --noise-level or the window)
        row["entropy"] = float(np.mean([0.5 * math.log(2 * math.pi * math.e * s * s) for s in stds if s > 0]))
        return row

    # ---- evaluation and the curriculum's gate ---------------------------------------------
    @torch.no_grad()
    def sample_ode(self, prompt: int, seed: int, steps: int, lora: bool) -> torch.Tensor:
        """A clip's latents from the Euler ODE sampler (noise level 0) at `steps` steps, at the
        current rollout length."""
        sig = sde.flow_sigmas(steps, self.variant.flow_shift)
        x = fm.sample_noise(self.shape, seed).unsqueeze(0).to(self.device)
        cond = self.conditions[prompt]
        for i in range(steps):
            v = self.velocity(x, float(sig[i]), prompt, lora=lora)
            x, _ = sde.sde_step(x, v, sig, i, 0.0)
            if cond is not None:
                x[:, :, :1] = cond.to(x)
        return x

    def evaluate(
        self,
        prompts: list[int],
        seeds: list[int],
        steps: int,
        lora: bool,
        scorer=None,
        frames: int | None = None,
    ) -> dict[str, float]:
        """Mean of each reward component over ODE clips of (prompt, seed) pairs (at `frames`,
        default the current length); a clip or component that does not score is left out."""
        was, was_frames = self.experts.training, self.frames
        self.experts.eval()
        if frames:
            self.set_frames(frames)
        rows = []
        try:
            for p, s in zip(prompts, seeds):
                clip = self.decode(self.sample_ode(p, s, steps, lora))[0]
                if scorer is None:
                    vals, _, _ = self.score(clip, self.prompts[p])
                else:
                    vals = scorer(clip, self.prompts[p])
                if vals is not None:
                    rows.append(vals)
        finally:
            self.experts.train(was)
            self.set_frames(was_frames)
        names = sorted({k for r in rows for k in r})
        return {n: float(np.mean([r[n] for r in rows if n in r])) for n in names}

    def _eval_set(self) -> tuple[list[int], list[int]]:
        n = min(self.cfg.eval_prompts, len(self.prompts))
        return list(range(n)), [fm.sample_seed(self.cfg.seed, -2, i) for i in range(n)]

    def _eval_row(self, step: int) -> dict:
        prompts, seeds = self._eval_set()
        row = {"kind": "eval", "step": step, "frames": self.frames}
        t0 = time.perf_counter()
        for k, v in self.evaluate(prompts, seeds, self.cfg.eval_steps, lora=True).items():
            row[f"eval/{k}"] = v
        base = self._base.get(self.frames)
        if base is None:
            base = self._base[self.frames] = self.evaluate(prompts, seeds, self.cfg.eval_steps, lora=False)
        for k, v in base.items():
            row[f"base/{k}"] = v
        row["seconds"] = round(time.perf_counter() - t0, 3)
        return row

    def gate_scores(self, clip: np.ndarray, prompt: str) -> dict[str, float]:
        """The gate's figures of a clip: the trained components and the length-sensitive
        monitoring components (evaluate.LENGTH_SENSITIVE), those that scored `ok`."""
        if getattr(self, "_gate_scorer", None) is None:
            from cinerl.core.settings import env_settings
            from cinerl.rewards import Scorer, registered_components
            from cinerl.training.video.evaluate import LENGTH_SENSITIVE

            names = list(
                dict.fromkeys([*self.weights, *(c for c in LENGTH_SENSITIVE if c in registered_components())])
            )
            self._gate_scorer = Scorer(components=names, config=env_settings().rewards)
        from cinerl.core.schema import Clip
        from cinerl.rewards import ScoreContext

        br = self._gate_scorer.score(
            Clip(frames=clip, fps=self.variant.fps, metadata={"backend": "wan-grpo-gate"}),
            ScoreContext(prompt=prompt),
        )
        return {
            n: float(c.value)
            for n, c in br.components.items()
            if c.status == "ok" and c.value is not None and math.isfinite(float(c.value))
        }

    # ---- the loop ----------------------------------------------------------------------------
    def train(self, gate=None) -> GRPOResult:
        """The run: resume, the steps (and the curriculum's stages), checkpoints, the LoRA."""
        from diffusers.optimization import get_constant_schedule_with_warmup

        from cinerl.executor import make_executor
        from cinerl.training.video import speed
        from cinerl.training.video.curriculum import Curriculum
        from cinerl.training.video.dpo import (
            CONFIG_FILE,
            METRICS,
            _bar,
            _tensorboard,
            checkpoints,
            config_hash,
            load_checkpoint,
            read_metrics,
            save_checkpoint,
        )
        from cinerl.training.video.model import lora_named_parameters
        from cinerl.training.video.strategy import TrainState, accelerator, resolve_strategy

        cfg = self.cfg
        accel = accelerator(len(self.ranges))  # DDP: unused parameters when two experts train
        world, main = accel.num_processes, accel.is_main_process
        strategy = resolve_strategy(cfg.strategy, world)
        fsdp = strategy == "fsdp"
        self._setup(accel, strategy)
        params_d = lora_named_parameters(self.experts)
        params = list(params_d.values())
        opt = speed.adamw(params, cfg.learning_rate, cfg.weight_decay, self.device)
        sched = get_constant_schedule_with_warmup(opt, cfg.warmup_steps)
        state = TrainState(self.experts, params_d, opt, fsdp)
        start, curriculum_state = 0, None
        found = checkpoints(self.out)
        if cfg.resume and not found:
            raise UserError(f"--resume: {self.out} holds no checkpoint")
        if found:
            saved = load_checkpoint(found[-1], state, sched)
            if saved.get("processes", 1) != world:
                raise UserError(
                    f"{found[-1]} was written by a run of {saved['processes']} processes; this one has "
                    f"{world} (the step's groups would change): launch {saved['processes']} or choose "
                    "another --out"
                )
            start, curriculum_state = saved["step"], saved.get("curriculum")
            # a batch halved after an out-of-memory error stays halved: the same sums as before
            self.train_chunk = int(saved.get("train_chunk", cfg.group_size))
            log.info("resumed from %s (step %d)", found[-1], start)
        logged = [m for m in read_metrics(self.out) if m.get("step", 0) <= start]
        metrics = [m for m in logged if m.get("kind") != "eval"]
        evaluations = [m for m in logged if m.get("kind") == "eval"]
        if main:
            atomic_write_text(
                self.out / CONFIG_FILE,
                json.dumps({"identity": self.identity, "config": dataclasses.asdict(cfg)}, indent=2),
            )
            atomic_write_text(self.out / METRICS, "".join(json.dumps(m) + "\n" for m in logged))
            if start:  # the interrupted run's report, before this one adds to it
                self.write_report(metrics, evaluations, curriculum_state)
        accel.wait_for_everyone()
        curriculum = None
        if self.stages:
            per = cfg.stage_steps or max(1, cfg.steps // len(self.stages))
            curriculum = Curriculum.restore(
                curriculum_state, self.lengths, per, cfg.gate_tolerance, cfg.gate_retries, start
            )
        gate = gate or reward_gate
        writer = _tensorboard(self.out) if main else None
        self._base: dict[int, dict] = {}
        bar = _bar(main, start, cfg.steps, "flow-grpo")
        step = start

        def checkpoint(at: int) -> None:
            """Every process gathers (FSDP2 collectives), the main one writes."""
            lora, optim = state.lora(), state.optimizer()
            if main:
                extra = {
                    "processes": world,
                    "config": config_hash(self.identity),
                    "curriculum": curriculum.state() if curriculum else None,
                    "train_chunk": self.train_chunk,
                }
                save_checkpoint(self.out, at, lora, optim, sched, cfg.keep_checkpoints, extra)
            accel.wait_for_everyone()

        self.pool = ThreadPoolExecutor(max_workers=cfg.score_workers, thread_name_prefix="grpo-score")
        self.executor = make_executor(self.where)
        self._jobs = 0
        _IN_PROCESS[self.token] = self
        mf = open(self.out / METRICS, "a") if main else None
        try:
            while step < cfg.steps:
                if curriculum is not None:
                    if curriculum.finished:
                        break
                    self.set_frames(curriculum.frames)
                t = time.perf_counter()
                row = self.step(step, opt, sched, params)
                step += 1
                row = {"step": step, **row, "seconds": round(time.perf_counter() - t, 4)}
                if curriculum is not None:
                    row["stage"] = curriculum.index
                metrics.append(row)
                if main:
                    mf.write(json.dumps(row) + "\n")
                    mf.flush()
                    if writer is not None:
                        for k, v in row.items():
                            if isinstance(v, (int, float)) and v is not None and k != "step":
                                writer.add_scalar(f"train/{k}", v, step)
                    bar.update(1)
                    bar.set_postfix(
                        reward=f"{row['reward_mean']:.4f}" if row["reward_mean"] is not None else "-",
                        kl=f"{row['kl']:.2e}" if row.get("kl") is not None else "-",
                        clip=f"{row['clip_fraction']:.2f}" if row.get("clip_fraction") is not None else "-",
                    )
                if cfg.eval_every and (step % cfg.eval_every == 0 or step == cfg.steps) and (main or fsdp):
                    # the evaluation's forwards are collectives under FSDP2: every process runs it
                    ev = self._eval_row(step)
                    if main:
                        evaluations.append(ev)
                        mf.write(json.dumps(ev) + "\n")
                        mf.flush()
                if curriculum is not None and curriculum.stage_done(step):
                    decision = curriculum.decide(step, gate, self) if main or fsdp else None
                    if decision is not None:
                        decision["gate"] = getattr(gate, "__name__", "custom")
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
            if mf is not None:
                mf.close()
            self.pool.shutdown(wait=True)
            self.executor.shutdown()
            _IN_PROCESS.pop(self.token, None)
            if writer is not None:
                writer.close()
        found = checkpoints(self.out)
        if step != start and (not found or found[-1].name != f"step_{step:06d}"):
            checkpoint(step)
        from cinerl.training.video.strategy import lora_state_dicts

        sds = lora_state_dicts(self.experts)  # collectives under FSDP2: every process
        if main:
            save_grpo_lora(self.out, self.experts, sds, self.variant, cfg, step, metrics)
            if curriculum is not None:
                curriculum.write(self.out)
            self.write_report(metrics, evaluations, curriculum.state() if curriculum else None)
        accel.wait_for_everyone()
        return GRPOResult(
            self.out,
            step,
            self.out,
            metrics,
            evaluations,
            curriculum.state() if curriculum else None,
            main,
            dict(self.speed),
        )

    def report_series(self) -> tuple[str, ...]:
        """The report's curves: the reward and each component, then CleanRL's PPO diagnostics
        and the step's time split."""
        return (
            "reward_mean",
            "reward_std",
            *(f"reward/{n}" for n in self.weights),
            "approx_kl",
            "clip_fraction",
            "kl",
            "ratio_mean",
            "policy_loss",
            "grad_norm",
            "clips_dropped",
            "rollout_s",
            "score_s",
            "train_s",
            "seconds",
        )

    def write_report(self, metrics: list[dict], evaluations: list[dict], curriculum: dict | None) -> Path:
        """training_report.html (training/report.py, as the Flow-DPO trainer writes it): the
        curves from the metrics rows, the evaluation rows (LoRA against the untrained model)."""
        from cinerl.training.report import write_training_report
        from cinerl.training.video.dpo import report_row

        notes = [f"{k}: {v}" for k, v in self.speed.items()]
        dropped: dict[str, int] = {}
        for m in metrics:
            for k, v in (m.get("dropped_why") or {}).items():
                dropped[k] = dropped.get(k, 0) + v
        notes += [f"clips dropped ({n}): {why}" for why, n in sorted(dropped.items())]
        for key, what in (("rollout_oom_splits", "rollout"), ("train_oom_splits", "optimisation pass")):
            n = sum(m.get(key) or 0 for m in metrics)
            if n:
                notes.append(f"out of memory: {what} batches halved {n} time(s)")
        if self.cfg.expert != "both":
            notes.append(f"--expert {self.cfg.expert}: LoRA of {', '.join(self.ranges)} only")
        return write_training_report(
            self.out,
            "Flow-GRPO video LoRA",
            metrics,
            dataclasses.asdict(self.cfg),
            series=self.report_series(),
            curriculum=curriculum,
            evaluations=[report_row(e) for e in evaluations],
            notes=notes,
        )


def reward_gate(frames_now: int, frames_next: int, trainer: VideoGRPOTrainer) -> tuple[dict, dict]:
    """The GRPO curriculum's gate (curriculum.py's contract): ODE clips of the evaluation prompts
    and seeds with the current LoRA at both lengths, scored by the trained components and the
    length-sensitive ones; each metric must not fall by more than the tolerance at the next."""
    prompts, seeds = trainer._eval_set()
    steps = trainer.cfg.eval_steps
    return (
        trainer.evaluate(prompts, seeds, steps, True, trainer.gate_scores, frames_now),
        trainer.evaluate(prompts, seeds, steps, True, trainer.gate_scores, frames_next),
    )


def _masked(x: torch.Tensor, mask: torch.Tensor) -> float:
    return float((x.float() * mask).sum() / mask.sum().clamp_min(1))


def _null():
    import contextlib

    return contextlib.nullcontext()


def save_grpo_lora(
    out: Path, experts, sds: dict, variant, cfg: VideoGRPOConfig, step: int, metrics: list[dict]
) -> Path:
    """The diffusers-format LoRA folder `cinerl make --lora DIR` loads (generation/wan/lora.py)."""
    from diffusers import WanPipeline

    from cinerl.generation.wan import lora as fmt
    from cinerl.training.video.model import lora_targets

    for name in experts.names:
        m = experts.experts[name]
        WanPipeline.save_lora_weights(
            str(out),
            transformer_lora_layers=sds[name],
            weight_name=fmt.EXPERT_FILES[name],
            transformer_lora_adapter_metadata=m.peft_config["default"].to_dict(),
        )
    last = [m for m in metrics[-10:] if m.get("reward_mean") is not None]
    manifest = {
        "format": "diffusers-lora",
        "trainer": "flow-grpo",
        "variant": variant.name,
        "experts": list(experts.names),
        "base": {k: experts.experts[experts.names[0]].config.get(k) for k in fmt.SHAPE_KEYS},
        "model_dir": str(cfg.model_dir),
        "steps": step,
        "rank": cfg.lora_rank,
        "alpha": cfg.lora_alpha,
        "targets": lora_targets(cfg.lora_targets),
        "reward": parse_reward(cfg.reward) if cfg.reward else "settings",
        "expert": cfg.expert,
        "final": {"reward_mean": sum(m["reward_mean"] for m in last) / len(last) if last else None},
    }
    atomic_write_text(out / fmt.MANIFEST, json.dumps(manifest, indent=2))
    return out


def train(config: VideoGRPOConfig, gate=None) -> GRPOResult:
    """Train (or resume) a Flow-GRPO LoRA; see the module doc. `gate`: the curriculum's gate
    (default `reward_gate`), a callable as curriculum.py describes."""
    return VideoGRPOTrainer(config).train(gate)
