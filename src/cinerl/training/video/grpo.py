"""Flow-GRPO: online RL of a Wan2.2 LoRA with CineRL's reward components (`cinerl train video-grpo`).

Flow-GRPO (Liu et al. 2025, "Flow-GRPO: Training Flow Matching Models via Online RL") in the shape
of TRL's GRPOTrainer: a `VideoGRPOConfig` dataclass and a `VideoGRPOTrainer`, `train(config)`.
Each step:

1. rollouts: for each of `prompts_per_step` prompts a group of `group_size` clips sampled in one
   batched forward per sampling step with the SDE sampler of `sde.py` (`train_steps` steps at
   `noise_level`; outside the `train_window` the step is the plain ODE step, MixGRPO style), the
   trajectory's states and the log-probability of each window step kept;
2. reward: each clip decoded by the folder's VAE and scored by CineRL's `Scorer` with the
   components of `--reward name=weight,...` on a thread pool beside the next group's rollout;
   a clip whose decode or scoring fails, or a component of which is not `ok`, is dropped from
   its group (never scored zero);
3. advantages (`group_advantages`): each component z-scored within the group, weighted and
   summed, the sum normalised by the group's mean and std (DeepSeekMath's GRPO; Flow-GRPO's
   per-prompt stat tracker); a group with zero std or fewer than two clips gives no signal and
   is dropped; advantages clipped to +-`adv_clip` (Flow-GRPO: 5);
4. loss, `passes` optimisation passes over the batch (one optimiser step each): the PPO clipped
   objective on the per-step ratio exp(log p_theta - log p_old) (Schulman et al. 2017, clip
   range 1e-3 as Flow-GRPO's Wan config), plus `kl` times the Gaussian KL of each step to the
   reference model (the same transformer with the LoRA disabled). On the first pass the policy
   is the one that sampled, so the ratio is exactly 1; at initialisation (LoRA B = 0) the KL is 0.

Diagnostics per step in `metrics.jsonl` (CleanRL's names): reward mean/std overall, per group and
per component, approx_kl (0.5 E[(log r)^2]), clip fraction, ratio mean/min/max, kl, entropy proxy
(the Gaussian steps' entropy per element), rollout/score/train seconds. Checkpoints, resume and
the LoRA folder are the Flow-DPO trainer's (`dpo.py`): the result loads with `cinerl make
--backend wan --lora DIR`. Each step's prompts, noise and window come from seeds derived from
(seed, step), so a killed run resumed from its last checkpoint reaches the same LoRA.

This version runs on one process (one GPU or the CPU); see docs/training_video_grpo.md for what
the issue asks that it does not do yet.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cinerl.core.errors import UserError
from cinerl.core.media import atomic_write_text
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


def prompts_from_runs(text: str) -> list[str]:
    """The chosen take's prompt of every scene of the runs (a folder of runs is searched one level down)."""
    from cinerl.core.store import read_report
    from cinerl.training.datasets.video_pairs import find_runs

    runs = find_runs([Path(p.strip()) for p in text.split(",") if p.strip()])
    out: list[str] = []
    for run in runs:
        try:
            report = read_report(run)
        except Exception as e:  # a report of another version: said, not guessed
            raise UserError(f"--from-runs {run}: report.json unreadable ({e})") from None
        for scene in report.scenes:
            a = scene.chosen_attempt or (scene.attempts[0] if scene.attempts else None)
            if a is not None and a.prompt.strip() and a.prompt not in out:
                out.append(a.prompt)
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


def window_of(seed: int, step: int, steps: int, window: int) -> range:
    """The sampling steps trained this step: a contiguous window at a seeded position (all when 0)."""
    if window <= 0 or window >= steps:
        return range(steps)
    start = random.Random(fm.sample_seed(seed, step, -3)).randint(0, steps - window)
    return range(start, start + window)


# ---- the trainer -----------------------------------------------------------------------------
@dataclass
class GRPOResult:
    out: Path
    steps: int
    lora_dir: Path
    metrics: list[dict]
    evaluations: list[dict] = dataclasses.field(default_factory=list)


@dataclass
class Rollout:
    """One group's trajectory: the window steps' states and the sampler's log-probabilities."""

    prompt: int
    steps: list[int]
    x: list[torch.Tensor]  # state before each window step (G, C, T, H, W) fp32
    x_next: list[torch.Tensor]
    old_logp: list[torch.Tensor]  # (G,)
    latents: torch.Tensor  # final latents (G, ...)


class VideoGRPOTrainer:
    """One Flow-GRPO run: built from a config, trained by `train()`."""

    def __init__(self, cfg: VideoGRPOConfig):
        from cinerl.generation.wan.variants import fit_request, get_variant
        from cinerl.training.video.dpo import open_out
        from cinerl.training.video.evaluate import vae_folder
        from cinerl.training.video.model import check_model_dir, guess_variant

        cfg.check()
        self.cfg = cfg
        self.model_dir = check_model_dir(cfg.model_dir)
        self.variant = get_variant(cfg.variant or guess_variant(self.model_dir))
        if vae_folder(self.model_dir) is None:
            raise UserError(
                f"--model-dir {self.model_dir} has no vae/config.json: rollouts are decoded to be scored"
            )
        for piece in ("text_encoder", "tokenizer"):
            if not (self.model_dir / piece).is_dir():
                raise UserError(f"--model-dir {self.model_dir} has no {piece}/: prompts are encoded by it")
        self.weights = parse_reward(cfg.reward) if cfg.reward else settings_reward()
        self.prompts = read_prompts(cfg.prompts) if cfg.prompts else prompts_from_runs(cfg.from_runs)
        w, h = cfg.parsed_size()
        fit = fit_request(self.variant, w, h, cfg.frames, max_frames=10_000)
        self.width, self.height, self.frames = fit.width, fit.height, fit.num_frames
        v = self.variant
        self.shape = (
            v.latent_channels,
            (self.frames - 1) // VAE_TEMPORAL + 1,
            self.height // v.vae_spatial,
            self.width // v.vae_spatial,
        )
        digest = json.dumps(self.prompts).encode()
        import hashlib

        self.out, self.identity = open_out(
            cfg, {"prompts_sha256": hashlib.sha256(digest).hexdigest(), "reward_weights": self.weights}
        )
        self.sigmas = sde.flow_sigmas(cfg.train_steps, v.flow_shift)

    # ---- models ---------------------------------------------------------------------------
    def _setup(self):
        from cinerl.training.video.dpo import _dtype
        from cinerl.training.video.model import Experts, add_lora, load_experts, lora_targets

        cfg = self.cfg
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.dtype = _dtype(cfg, self.device)
        names = ["transformer"] if self.variant.boundary_ratio is None else ["transformer", "transformer_2"]
        experts = load_experts(self.model_dir, self.variant, names, self.dtype)
        torch.manual_seed(cfg.seed)
        targets = lora_targets(cfg.lora_targets)
        for m in experts.values():
            add_lora(m, cfg.lora_rank, cfg.lora_alpha, targets)
            m.to(self.device)
            if cfg.gradient_checkpointing == "on":
                m.enable_gradient_checkpointing()
        self.experts = Experts(experts)
        self.embeds = self._encode([*self.prompts, ""])
        self.vae = self._load_vae()

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

    def _expert_of(self, s: float) -> str:
        b = self.variant.boundary_ratio
        return "transformer" if b is None or s >= b else "transformer_2"

    def velocity(self, x: torch.Tensor, s: float, prompt: str, lora: bool = True) -> torch.Tensor:
        """The model's velocity at flow sigma s for a batch of one prompt (fp32); with
        --rollout-cfg, classifier-free guided against the empty prompt."""
        from cinerl.training.video.model import reference

        name = self._expert_of(s)
        mod = self.experts.experts[name]
        n = x.shape[0]
        emb = self.embeds[prompt].unsqueeze(0).expand(n, -1, -1)
        guided = self.cfg.rollout_cfg
        if guided:
            neg = self.embeds[""].unsqueeze(0).expand(n, -1, -1)
            emb, x_in = torch.cat([emb, neg]), torch.cat([x, x])
        else:
            x_in = x
        t = torch.full((x_in.shape[0],), s, device=x.device)
        hidden, timestep, _ = fm.model_inputs(x_in, t, "none", None, mod.config.patch_size)
        kw = dict(hidden_states=hidden.to(self.dtype), timestep=timestep, encoder_hidden_states=emb)
        autocast = (
            torch.autocast(self.device.type, dtype=torch.bfloat16)
            if self.dtype == torch.bfloat16
            else _null()
        )
        with autocast:
            if lora:
                v = mod(return_dict=False, **kw)[0]
            else:
                with reference(mod):
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

    # ---- rollouts and rewards ----------------------------------------------------------------
    @torch.no_grad()
    def rollout(self, prompt: int, step: int, window: range) -> Rollout:
        cfg, G = self.cfg, self.cfg.group_size
        # seeds per (run seed, step, clip of the step's batch): the same on a resumed run
        x = torch.stack(
            [
                fm.sample_noise(self.shape, fm.sample_seed(cfg.seed, step, self._slot * G + j))
                for j in range(G)
            ]
        ).to(self.device)
        gen = torch.Generator().manual_seed(fm.sample_seed(cfg.seed, step, 100_000 + self._slot))
        ro = Rollout(prompt, list(window), [], [], [], x)
        text = self.prompts[prompt]
        for i in range(cfg.train_steps):
            v = self.velocity(x, float(self.sigmas[i]), text, lora=True)
            level = cfg.noise_level if i in window else 0.0
            x_next, lp = sde.sde_step(x, v, self.sigmas, i, level, gen)
            if i in window:
                ro.x.append(x)
                ro.x_next.append(x_next)
                ro.old_logp.append(lp)
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
            from cinerl.core.settings import env_settings
            from cinerl.rewards import Scorer

            self._scorer_obj = Scorer(components=list(self.weights), config=env_settings().rewards)
        return self._scorer_obj

    def score(self, clip: np.ndarray, prompt: str) -> tuple[dict[str, float] | None, str, float]:
        """(component values, or None for a failed clip; why; seconds)."""
        from cinerl.core.schema import Clip
        from cinerl.rewards import ScoreContext

        t0 = time.perf_counter()
        try:
            br = self._scorer().score(
                Clip(frames=clip, fps=self.variant.fps, metadata={"backend": "wan-grpo"}),
                ScoreContext(prompt=prompt),
            )
        except Exception as e:  # a scorer crash fails the clip, not the run
            return None, f"scoring failed: {type(e).__name__}: {e}", time.perf_counter() - t0
        vals, why = {}, ""
        for name in self.weights:
            c = br.components.get(name)
            if c is None or c.status != "ok" or not math.isfinite(float(c.value)):
                why = f"{name}: {c.status + ' ' + (c.reason or '') if c is not None else 'not run'}".strip()
                return None, why, time.perf_counter() - t0
            vals[name] = float(c.value)
        return vals, why, time.perf_counter() - t0

    # ---- one step ----------------------------------------------------------------------------
    def step(self, step: int, opt, sched, params) -> dict:
        from cinerl.training.video.dpo import global_indices

        cfg = self.cfg
        window = window_of(cfg.seed, step, cfg.train_steps, cfg.train_window)
        idx = global_indices(len(self.prompts), cfg.seed, step, cfg.prompts_per_step)
        t0 = time.perf_counter()
        rollouts, futures, decode_s = [], [], 0.0
        self.experts.eval()
        for slot, p in enumerate(idx):
            self._slot = slot
            ro = self.rollout(p, step, window)
            t_dec = time.perf_counter()
            clips = self.decode(ro.latents)
            decode_s += time.perf_counter() - t_dec
            rollouts.append(ro)
            # scoring runs on the pool while the next group is sampled
            futures.append([self.pool.submit(self.score, c, self.prompts[p]) for c in clips])
        gen_s = time.perf_counter() - t0
        groups, reasons, score_s = [], {}, 0.0
        for ro, fs in zip(rollouts, futures):
            res = [f.result() for f in fs]
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
        trained = [(ro, a) for ro, a in zip(rollouts, advs) if any(x is not None for x in a)]
        n_terms = sum(len(ro.steps) for ro, _ in trained)
        stats: dict[str, list] = {
            k: [] for k in ("ratio", "ratios", "approx_kl", "clipped", "kl", "pg", "first_ratio", "first_kl")
        }
        grad_norm, lr = 0.0, sched.get_last_lr()[0]
        for pas in range(cfg.passes):
            if not trained:
                break
            opt.zero_grad(set_to_none=True)
            for ro, a in trained:
                mask = torch.tensor([x is not None for x in a], device=self.device, dtype=torch.float32)
                adv = torch.tensor([x if x is not None else 0.0 for x in a], device=self.device)
                text = self.prompts[ro.prompt]
                for k, i in enumerate(ro.steps):
                    x, x_next, old = ro.x[k], ro.x_next[k], ro.old_logp[k]
                    v = self.velocity(x, float(self.sigmas[i]), text, lora=True)
                    st = sde.sde_mean(x, v, self.sigmas, i, cfg.noise_level)
                    logp = sde.log_prob(x_next, st.mean, st.std)
                    terms = ppo_terms(logp, old, adv, cfg.clip_range)
                    loss_per = terms["pg"]
                    if cfg.kl > 0:
                        with torch.no_grad():
                            v_ref = self.velocity(x, float(self.sigmas[i]), text, lora=False)
                            ref_mean = sde.sde_mean(x, v_ref, self.sigmas, i, cfg.noise_level).mean
                        kl = sde.kl_to_reference(st.mean, ref_mean, st.std)
                        loss_per = loss_per + cfg.kl * kl
                        stats["kl"].append(_masked(kl.detach(), mask))
                    loss = (loss_per * mask).sum() / mask.sum().clamp_min(1) / n_terms
                    loss.backward()
                    for key in ("ratio", "approx_kl", "clipped"):
                        stats[key].append(_masked(terms[key], mask))
                    stats["ratios"].append(terms["ratio"][mask > 0])
                    stats["pg"].append(_masked(terms["pg"].detach(), mask))
                    if pas == 0:
                        stats["first_ratio"].append(terms["ratio"][mask > 0])
                        if cfg.kl > 0:
                            stats["first_kl"].append(kl.detach()[mask > 0])
            grad_norm = float(torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm))
            opt.step()
        sched.step()
        train_s = time.perf_counter() - t1
        # ---- the row ----
        flat = [r for g in groups for r in g if r is not None]
        total = [sum(self.weights[n] * r[n] for n in self.weights) for r in flat]
        row: dict = {
            "reward_mean": float(np.mean(total)) if total else None,
            "reward_std": float(np.std(total)) if total else None,
            "clips": sum(len(g) for g in groups),
            "clips_dropped": sum(r is None for g in groups for r in g),
            "groups_trained": len(trained),
            "groups_dropped": dropped,
            "dropped_why": reasons,
            "window": [window.start, window.stop],
            "lr": lr,
            "grad_norm": grad_norm,
            "rollout_s": round(rollout_s, 4),
            "generate_s": round(gen_s - decode_s, 4),
            "decode_s": round(decode_s, 4),
            "score_s": round(score_s, 4),
            "train_s": round(train_s, 4),
        }
        for name in self.weights:
            vals = [r[name] for r in flat]
            row[f"reward/{name}"] = float(np.mean(vals)) if vals else None
            row[f"reward/{name}_std"] = float(np.std(vals)) if vals else None
        row["group_reward_mean"] = [
            float(np.mean([sum(self.weights[n] * r[n] for n in self.weights) for r in g if r is not None]))
            if any(r is not None for r in g)
            else None
            for g in groups
        ]
        row["group_reward_std"] = [
            float(np.std([sum(self.weights[n] * r[n] for n in self.weights) for r in g if r is not None]))
            if any(r is not None for r in g)
            else None
            for g in groups
        ]
        for key in ("approx_kl", "clipped", "kl", "pg"):
            vals = stats[key]
            row[{"clipped": "clip_fraction", "pg": "policy_loss"}.get(key, key)] = (
                float(np.mean(vals)) if vals else None
            )
        ratios = stats["ratio"]
        row["ratio_mean"] = float(np.mean(ratios)) if ratios else None
        if stats["first_ratio"]:
            fr = torch.cat(stats["first_ratio"])
            row["first_pass_ratio_min"] = float(fr.min())
            row["first_pass_ratio_max"] = float(fr.max())
        if stats["first_kl"]:
            row["first_pass_kl_max"] = float(torch.cat(stats["first_kl"]).max())
        if stats["ratios"]:
            row["ratio_min"] = float(torch.cat(stats["ratios"]).min())
            row["ratio_max"] = float(torch.cat(stats["ratios"]).max())
        stds = [sde.step_std(self.sigmas, i, cfg.noise_level)[1] for i in window]
        # entropy of a Gaussian step per element, 0.5 log(2 pi e std^2): the sampler's entropy
        # proxy (fixed by the noise schedule; it moves only with --noise-level or the window)
        row["entropy"] = float(np.mean([0.5 * math.log(2 * math.pi * math.e * s * s) for s in stds if s > 0]))
        return row

    # ---- evaluation ------------------------------------------------------------------------
    @torch.no_grad()
    def sample_ode(self, prompt: int, seed: int, steps: int, lora: bool) -> torch.Tensor:
        """A clip's latents from the Euler ODE sampler (noise level 0) at `steps` steps."""
        sig = sde.flow_sigmas(steps, self.variant.flow_shift)
        x = fm.sample_noise(self.shape, seed).unsqueeze(0).to(self.device)
        for i in range(steps):
            v = self.velocity(x, float(sig[i]), self.prompts[prompt], lora=lora)
            x, _ = sde.sde_step(x, v, sig, i, 0.0)
        return x

    def evaluate(self, prompts: list[int], seeds: list[int], steps: int, lora: bool) -> dict[str, float]:
        """Mean of each reward component over ODE clips of (prompt, seed) pairs; failed clips left out."""
        was = self.experts.training
        self.experts.eval()
        rows = []
        try:
            for p, s in zip(prompts, seeds):
                clip = self.decode(self.sample_ode(p, s, steps, lora))[0]
                vals, _, _ = self.score(clip, self.prompts[p])
                if vals is not None:
                    rows.append(vals)
        finally:
            self.experts.train(was)
        return {n: float(np.mean([r[n] for r in rows])) for n in self.weights} if rows else {}

    def _eval_row(self, step: int) -> dict:
        n = min(self.cfg.eval_prompts, len(self.prompts))
        seeds = [fm.sample_seed(self.cfg.seed, -2, i) for i in range(n)]
        row = {"kind": "eval", "step": step}
        t0 = time.perf_counter()
        for k, v in self.evaluate(list(range(n)), seeds, self.cfg.eval_steps, lora=True).items():
            row[f"eval/{k}"] = v
        if self._base is None:
            self._base = self.evaluate(list(range(n)), seeds, self.cfg.eval_steps, lora=False)
        for k, v in self._base.items():
            row[f"base/{k}"] = v
        row["seconds"] = round(time.perf_counter() - t0, 3)
        return row

    # ---- the loop ----------------------------------------------------------------------------
    def train(self) -> GRPOResult:
        from diffusers.optimization import get_constant_schedule_with_warmup

        from cinerl.training.video import speed
        from cinerl.training.video.dpo import (
            CONFIG_FILE,
            METRICS,
            TrainState,
            _bar,
            _tensorboard,
            checkpoints,
            config_hash,
            load_checkpoint,
            read_metrics,
            save_checkpoint,
        )
        from cinerl.training.video.model import lora_named_parameters

        cfg = self.cfg
        import os

        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise UserError("video-grpo runs on one process in this version: launch it without torchrun")
        self._setup()
        params_d = lora_named_parameters(self.experts)
        params = list(params_d.values())
        opt = speed.adamw(params, cfg.learning_rate, cfg.weight_decay, self.device)
        sched = get_constant_schedule_with_warmup(opt, cfg.warmup_steps)
        state = TrainState(self.experts, params_d, opt, False)
        start = 0
        found = checkpoints(self.out)
        if cfg.resume and not found:
            raise UserError(f"--resume: {self.out} holds no checkpoint")
        if found:
            start = load_checkpoint(found[-1], state, sched)["step"]
            log.info("resumed from %s (step %d)", found[-1], start)
        logged = [m for m in read_metrics(self.out) if m.get("step", 0) <= start]
        metrics = [m for m in logged if m.get("kind") != "eval"]
        evaluations = [m for m in logged if m.get("kind") == "eval"]
        atomic_write_text(
            self.out / CONFIG_FILE,
            json.dumps({"identity": self.identity, "config": dataclasses.asdict(cfg)}, indent=2),
        )
        atomic_write_text(self.out / METRICS, "".join(json.dumps(m) + "\n" for m in logged))
        writer = _tensorboard(self.out)
        self._base = None
        bar = _bar(True, start, cfg.steps, "flow-grpo")
        step = start

        def checkpoint(at: int) -> None:
            extra = {"processes": 1, "config": config_hash(self.identity)}
            save_checkpoint(self.out, at, state.lora(), state.optimizer(), sched, cfg.keep_checkpoints, extra)

        self.pool = ThreadPoolExecutor(max_workers=cfg.score_workers)
        mf = open(self.out / METRICS, "a")
        try:
            while step < cfg.steps:
                t = time.perf_counter()
                row = self.step(step, opt, sched, params)
                step += 1
                row = {"step": step, **row, "seconds": round(time.perf_counter() - t, 4)}
                metrics.append(row)
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
                if cfg.eval_every and (step % cfg.eval_every == 0 or step == cfg.steps):
                    ev = self._eval_row(step)
                    evaluations.append(ev)
                    mf.write(json.dumps(ev) + "\n")
                    mf.flush()
                if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                    checkpoint(step)
        finally:
            bar.close()
            mf.close()
            self.pool.shutdown(wait=True)
            if writer is not None:
                writer.close()
        found = checkpoints(self.out)
        if step != start and (not found or found[-1].name != f"step_{step:06d}"):
            checkpoint(step)
        save_grpo_lora(self.out, self.experts, self.variant, cfg, step, metrics)
        return GRPOResult(self.out, step, self.out, metrics, evaluations)


def _masked(x: torch.Tensor, mask: torch.Tensor) -> float:
    return float((x.float() * mask).sum() / mask.sum().clamp_min(1))


def _null():
    import contextlib

    return contextlib.nullcontext()


def save_grpo_lora(out: Path, experts, variant, cfg: VideoGRPOConfig, step: int, metrics: list[dict]) -> Path:
    """The diffusers-format LoRA folder `cinerl make --lora DIR` loads (generation/wan/lora.py)."""
    from diffusers import WanPipeline

    from cinerl.generation.wan import lora as fmt
    from cinerl.training.video.dpo import lora_state_dicts
    from cinerl.training.video.model import lora_targets

    sds = lora_state_dicts(experts)
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
        "final": {"reward_mean": sum(m["reward_mean"] for m in last) / len(last) if last else None},
    }
    atomic_write_text(out / fmt.MANIFEST, json.dumps(manifest, indent=2))
    return out


def train(config: VideoGRPOConfig) -> GRPOResult:
    """Train (or resume) a Flow-GRPO LoRA; see the module doc."""
    return VideoGRPOTrainer(config).train()
