"""Settings in groups, each owned by the stage that reads it, fed in rising priority by defaults, a
TOML file, environment variables and command-line flags. Each value remembers where it came from,
so `cinerl config` can say why.

    [run]   seed, backend, size, attempts          CINERL_RUN__SEED
    [plan]  scene counts and lengths, RAPO          CINERL_PLAN__SCENES
    [llm]   provider, model, server, retries        CINERL_LLM__MODEL
    [wan]   variant, weights, memory, speed         CINERL_WAN__STEPS
    [rewards] weights (a mapping), models, device   CINERL_REWARDS__WEIGHTS__TEXT_ALIGNMENT
    [policy] algorithm, learning rate, file         CINERL_POLICY__RL
    [assembly] transition, crossfade                CINERL_ASSEMBLY__TRANSITION
    [executor] local or ray, workers, retries       CINERL_EXECUTOR__KIND

Every environment variable CineRL reads is a field here (`env=` names the outside ones, such as
OPENAI_API_KEY or WAN_MODEL_ROOT), so nothing is read behind `cinerl config`'s back. The flat
names of CineRL 0.1 (`wan_steps`, `weight_text`, `CINERL_ATTEMPTS`) still work, with a
deprecation warning, and a run's fingerprint is still computed over those flat names, so runs
started before the change resume. Trainer configs live beside their trainers, not here.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tomllib
import warnings
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cinerl.core.errors import UserError
from cinerl.core.urls import check_url, redact_url
from cinerl.core.vocabulary import parse_recipe

log = logging.getLogger(__name__)

ENV_PREFIX = "CINERL_"
NESTED = "__"

# The reward groups and their default weights (the one definition; rewards/ reads it). Consistency
# groups weigh most: they are what a multi-scene film needs and what prompt choices (identity and
# location locks) control; dynamic degree and novelty in visual_quality reward motion, which the
# temporal-stability group taxes, so visual_quality weighs least. The groups that run offline keep
# the ratio 0.1 : 0.3 : 0.3 : 0.2 : 0.1 (visual, temporal, character, location, narrative), with
# which the prompt policy learns on previz (tests/training/policy/test_learning.py); weights that
# put 0.65 on character + location stalled it.
DEFAULT_WEIGHTS = {
    "visual_quality": 0.09,
    "temporal_stability": 0.27,
    "character_consistency": 0.27,
    "location_consistency": 0.18,
    "text_alignment": 0.10,
    "narrative_coherence": 0.09,
    # the take against the scene plan: light, motion energy, cast in frame (issue 20); weights
    # renormalise over the groups that score, so the six above keep their ratios. At 0.2 a
    # candlelit night lost to soft daylight on previz (the plan's light is a third of the group);
    # 0.45 makes the action that fits the scene pay (benchmarks/policy.py, the per-scene oracle)
    "scene_plan": 0.45,
}


def setting(
    default: Any,
    help: str = "",
    *,
    env: tuple[str, ...] = (),
    frames: bool = True,
    secret: bool = False,
    **kw: Any,
) -> Any:
    """A field with its one-line help; `env` names outside variables that also set it, `frames`
    says whether it can change a film's frames (False: changing it resumes the same run) and a
    `secret` is never printed or fingerprinted."""
    return Field(
        default,
        description=help,
        json_schema_extra={"env": list(env), "frames": frames, "secret": secret},
        **kw,
    )


# what numpy's SeedSequence, torch.manual_seed and every backend's generator all take
MAX_SEED = 2**32 - 1


class Group(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _url(value: str | None, dotted: str) -> str | None:
    """A server URL checked before anything starts (a typo is one line, not 30 fallbacks)."""
    try:
        return check_url(value, dotted) if value else value
    except UserError as e:
        raise ValueError(str(e)) from None


class RunSettings(Group):
    """What one `cinerl make` shoots: seed, backends, frame size, attempts."""

    seed: int = setting(0, "seed for planning, rendering and policy sampling", ge=0, le=MAX_SEED)
    backend: str = setting("previz", "video backend (cinerl config lists the registered ones)")
    image_backend: str = setting("previz", "reference images: previz, wan or diffusers")
    image_model_path: str | None = setting(None, "local folder of the wan/diffusers image model")
    width: int = setting(640, "frame width", ge=32, le=4096)
    height: int = setting(360, "frame height", ge=32, le=4096)
    fps: int = setting(24, "frames per second", ge=1, le=120)
    attempts: int = setting(2, "attempts per scene when no threshold is set", ge=1, le=64)
    max_attempts: int = setting(4, "most attempts a scene may get", ge=1, le=64)
    consistency_threshold: float | None = setting(
        None,
        "if set, a scene keeps getting attempts while its best reward is under it (up to "
        "max_attempts) and stops as soon as one reaches it",
        ge=0.0,
        le=1.0,
    )
    shot_mode: Literal["continuous", "keyframes"] = setting(
        "continuous",
        "continuous: each clip starts from the previous clip's last frame; "
        "keyframes: one keyframe per scene boundary, each clip runs between two",
    )
    parallel_takes: bool = setting(
        False,
        "shoot a scene's takes at once (on --executor ray): every take acts from the state at the "
        "scene's start, so the takes do not see each other's rewards (local or ray: the same film)",
    )
    parallel_scenes: bool = setting(
        False,
        "keyframes mode: shoot every scene's takes at once after the keyframes, all from the policy "
        "snapshot and state at the film's start; updates and commits stay in scene order (docs/executor.md)",
    )
    cast: list[str] = setting(
        [],
        "cast members NAME=PORTRAIT[,LORA_DIR]: the character (by name or id) takes the portrait as "
        "its reference, previz draws its face, wan loads its LoRA (cinerl cast, docs/cast.md)",
    )

    @field_validator("cast", mode="before")
    @classmethod
    def _cast_list(cls, v: Any) -> Any:
        """From the environment or a flag a string: members separated by ';' (or a JSON list)."""
        if isinstance(v, str):
            import json

            text = v.strip()
            return json.loads(text) if text.startswith("[") else [p for p in text.split(";") if p.strip()]
        return v


class PlanSettings(Group):
    """How the story is planned: scene counts and lengths, a finished plan, RAPO modifiers."""

    min_scenes: int = setting(3, "fewest scenes the planner writes", ge=1, le=24)
    max_scenes: int = setting(6, "most scenes the planner writes", ge=1, le=24)
    scenes: int | None = setting(None, "force this many scenes", ge=1, le=24)
    scene_seconds_min: float = setting(10.0, "shortest scene in seconds", gt=0, le=60)
    scene_seconds_max: float = setting(12.0, "longest scene in seconds", gt=0, le=60)
    from_plan: str | None = setting(
        None,
        "shoot a finished `cinerl plan` folder: its bible, with "
        "its critique-revised scene prompts as the base prompts",
    )
    prompt_opt: Literal["none", "rapo"] = setting(
        "none", "rapo: add relation-graph modifiers to each scene before composition"
    )
    rapo_dir: str | None = setting(None, "RAPO graph cache and grown captions (~/.cinerl/rapo)")


class LLMSettings(Group):
    """The language model that plans (and the shared client's server)."""

    provider: Literal["auto", "offline", "openai", "transformers"] = setting(
        "offline",
        "story planner: offline (default), openai (any OpenAI-compatible server), "
        "transformers (local folder or .gguf), auto (openai when a key or URL is set)",
    )
    model: str | None = setting(None, "model name (openai) or local path (transformers)")
    base_url: str | None = setting(None, "OpenAI-compatible server URL", env=("OPENAI_BASE_URL",))
    api_key: str | None = setting(
        None, "key for the OpenAI-compatible server", env=("OPENAI_API_KEY",), frames=False, secret=True
    )
    timeout: float = setting(60.0, "seconds per LLM request", gt=0, le=3600, frames=False)
    retries: int = setting(4, "retries on 429, 5xx and timeouts", ge=0, le=20, frames=False)
    repairs: int = setting(2, "repair rounds before the offline fallback", ge=0, le=10)
    threads: int = setting(1, "CPU threads of a local (transformers/GGUF) model", ge=1, le=256, frames=False)
    cache_dir: str | None = setting(
        None,
        "where converted local models are cached (~/.cache/cinerl)",
        env=("CINERL_CACHE_DIR",),
        frames=False,
    )
    max_failures: int = setting(
        3, "stop asking the server after this many failed steps in a row", ge=1, le=100, frames=False
    )
    deadline: float | None = setting(
        600.0, "seconds for all of a plan's LLM steps; later steps fall back", gt=0, frames=False
    )

    @field_validator("base_url")
    @classmethod
    def _check_url(cls, v: str | None) -> str | None:
        return _url(v, "llm.base_url")


class WanSettings(Group):
    """The Wan2.2 backend: which variant, where its weights are, memory and speed. The backend
    itself says which of these do not change frames (generation/wan/backend.py)."""

    variant: Literal["ti2v-5b", "t2v-a14b", "i2v-a14b"] = setting("ti2v-5b", "Wan2.2 variant")
    model_dir: str | None = setting(None, "local Wan2.2 diffusers folder", env=("WAN_MODEL_ROOT",))
    tokenizer_path: str | None = setting(
        None, "UMT5 tokenizer, if not in model_dir", env=("WAN_TOKENIZER_PATH",)
    )
    text_encoder_path: str | None = setting(
        None, "UMT5 text encoder, if not in model_dir", env=("WAN_T5_PATH",)
    )
    vae_path: str | None = setting(None, "Wan VAE, if not in model_dir", env=("WAN_VAE_PATH",))
    transformer_path: str | None = setting(
        None, "diffusion transformer, if not in model_dir", env=("WAN_DIFFUSION_MODEL",)
    )
    transformer_2_path: str | None = setting(
        None, "A14B low-noise expert, if not in model_dir", env=("WAN_DIFFUSION_MODEL_2",)
    )
    scheduler_path: str | None = setting(
        None, "scheduler config, if not in model_dir", env=("WAN_SCHEDULER_PATH",)
    )
    image_encoder_path: str | None = setting(
        None, "CLIP image encoder, if not in model_dir", env=("WAN_CLIP_PATH",)
    )
    steps: int | None = setting(None, "denoising steps (the variant's own)", ge=1, le=200)
    offload: Literal["auto", "none", "model", "group"] = setting(
        "auto", "model CPU offload or group offload; auto picks from free GPU memory"
    )
    vae_tiling: Literal["auto", "on", "off"] = setting("auto", "force VAE tiling")
    text_encoder: Literal["auto", "gpu", "cpu"] = setting("auto", "where the UMT5 encoder runs")
    attention: str = setting("auto", "auto, native, cudnn, flash3 or a diffusers attention backend name")
    compile: Literal["auto", "on", "off"] = setting(
        "auto", "regional compilation of the transformer block (auto: on with CUDA)"
    )
    compile_mode: str | None = setting(None, "torch.compile mode, e.g. max-autotune-no-cudagraphs")
    cudnn_benchmark: bool = setting(True, "let cuDNN time its conv algorithms (VAE decode)")
    scalar_timestep: bool = setting(True, "5B text-to-video: one timestep per sample")
    step_cache: float | None = setting(None, "first-block step cache threshold (lossy; off when unset)", gt=0)
    fast: bool = setting(
        False,
        "lossy fast mode: diffusers' first-block step cache (--step-cache, 0.05 when unset) and, "
        "on CUDA, FP8 self-attention (fa3-fwd, where its FP8 kernel runs) and a bf16 VAE decode",
    )
    fp8_attention: Literal["auto", "on", "off"] = setting(
        "auto", "FP8 self-attention where fa3-fwd's FP8 kernel runs (lossy; auto: with --fast)"
    )
    decode_dtype: Literal["auto", "fp32", "bf16"] = setting(
        "auto", "VAE decode precision (bf16 is lossy; auto: bf16 with --fast on CUDA, else fp32)"
    )
    save_latents: bool = setting(
        False,
        "keep each take's final latents as attempt_KK.latents.safetensors (training data)",
        frames=False,
    )
    lora: str | None = setting(
        None, "video LoRA folder[:scale] from `cinerl train video-dpo` (several: A;B:0.8, one adapter each)"
    )
    gpus: int = setting(1, "GPUs for one clip, one torchrun process each (docs/multi_gpu.md)", ge=1, le=64)
    parallel: Literal["auto", "ulysses", "ring", "cfg"] = setting(
        "auto",
        "how --gpus N share a clip: ulysses or ring (diffusers' context parallelism), cfg (the two "
        "guidance branches on two GPUs); auto: ulysses",
    )

    def component_paths(self) -> dict[str, str]:
        """Component name -> path for the pieces set one by one (the WAN_* variables)."""
        names = (
            "tokenizer",
            "text_encoder",
            "vae",
            "transformer",
            "transformer_2",
            "scheduler",
            "image_encoder",
        )
        return {n: getattr(self, f"{n}_path") for n in names if getattr(self, f"{n}_path")}


class RewardSettings(Group):
    """The reward suite: group weights, where its models are, the device."""

    weights: dict[str, float] = setting(
        dict(DEFAULT_WEIGHTS), "reward group -> weight (a new group is weighted by adding a key)"
    )
    device: str = setting("auto", "reward models: auto (cuda when torch sees a GPU), cpu, cuda", frames=False)
    workers: int = setting(
        1,
        "components scored on this many threads at once (1, the default, was fastest where measured)",
        ge=1,
        le=64,
        frames=False,
    )
    threads: int = setting(1, "torch CPU threads inside one component", ge=1, le=256, frames=False)
    clip_model_path: str | None = setting(None, "CLIP or SigLIP folder (text alignment, aesthetic)")
    dino_model_path: str | None = setting(None, "DINO folder (subject/location features)")
    lpips_path: str | None = setting(None, "LPIPS AlexNet weights (true t-LPIPS)")
    i3d_path: str | None = setting(None, "TorchScript I3D feature extractor (FVD-lite)")
    fvd_reference_path: str | None = setting(None, "reference I3D features .npz (FVD-lite)")
    aesthetic_head_path: str | None = setting(None, "LAION aesthetic head .pth")
    captioner_path: str | None = setting(None, "image-to-text model folder (caption consistency)")
    cross_encoder_path: str | None = setting(None, "CrossEncoder folder (caption consistency)")
    vlm_base_url: str | None = setting(None, "OpenAI-compatible vision endpoint (VLM judge)")
    vlm_model: str | None = setting(None, "model name at vlm_base_url")
    vlm_api_key: str | None = setting(None, "key sent only to vlm_base_url", frames=False, secret=True)
    judge_base_url: str | None = setting(None, "OpenAI-compatible LLM endpoint (narrative judge)")
    judge_model: str | None = setting(None, "model name at judge_base_url")
    judge_api_key: str | None = setting(None, "key sent only to judge_base_url", frames=False, secret=True)
    endpoint_timeout_s: float = setting(60.0, "seconds per judge request", gt=0, frames=False)

    @field_validator("vlm_base_url", "judge_base_url")
    @classmethod
    def _check_url(cls, v: str | None, info) -> str | None:
        return _url(v, f"rewards.{info.field_name}")

    @model_validator(mode="after")
    def _weights(self) -> "RewardSettings":
        bad = {k: v for k, v in self.weights.items() if v < 0}
        if bad:
            raise ValueError(f"reward weights must not be negative: {bad}")
        if sum(self.weights.values()) <= 0:
            raise ValueError("the reward weights add up to zero")
        return self

    def path(self, name: str) -> Path | None:
        """The configured path for `name`, or None when it is not set."""
        v = getattr(self, name)
        return Path(v).expanduser() if v else None


class PolicySettings(Group):
    """The prompt-factor policy: algorithm, learning, where it is saved, its sentence embedder."""

    # issue 20: GRPO is the default, its group of a scene's takes is the baseline PPO's critic
    # cannot learn in a few films (benchmarks/results/policy_cpu.json: PPO below GRPO after 8)
    rl: Literal["ppo", "grpo"] = setting("grpo", "group-relative (GRPO), or PPO with a value baseline")
    mode: Literal["learn", "random", "frozen", "template"] = setting(
        "learn", "learn and save; uniform random baseline; act without learning; the recipe always"
    )
    path: str | None = setting(None, "policy file (~/.cinerl/policy/<backend>.pt)", frames=False)
    learning_rate: float = setting(1e-2, "Adam learning rate of a part whose own rate is None", gt=0)
    ppo_epochs: int = setting(4, "optimisation passes over a scene's attempts", ge=1, le=100)
    clip_eps: float = setting(0.2, "PPO clip range", gt=0, lt=1)
    clip_eps_high: float | None = setting(None, "upper clip range, DAPO's clip-higher (None: clip_eps)", gt=0)
    entropy_coef: float = setting(0.01, "entropy bonus", ge=0)
    recipe: str = setting(
        "", "factor=value pairs over the composer's default recipe: the prior's centre, template's action"
    )
    prior_strength: float = setting(
        2.5, "a fresh policy's logit on the recipe's choice in every factor (0: uniform start)", ge=0
    )
    prior_kl: float = setting(0.0, "weight of KL(policy || prior) in the loss (0: off)", ge=0)
    greedy_first: bool = setting(True, "a scene's first take is the most likely action; the rest sample")
    temperature: float = setting(1.0, "sampling temperature of the exploring takes", gt=0)
    target_kl: float | None = setting(
        None, "stop a scene's update epochs once approx_kl passes this (CleanRL's --target-kl)", gt=0
    )
    # issue 20: the trunk at 1e-2 moved every scene's logits at once (approx_kl 1-5, the context
    # trial collapsed); a slow trunk and fast one-hot context heads learn the scene's light and
    # motion. learning_rate keeps its default, so runs started before still resume (fingerprint)
    trunk_lr: float | None = setting(
        1e-3, "Adam learning rate of the embedding trunk, its heads and value (None: learning_rate)", gt=0
    )
    context_lr: float | None = setting(
        0.1, "Adam learning rate of the scene-plan context heads (None: learning_rate)", gt=0
    )
    # the heads' biases start as the prior's logits and learn what a choice is worth in every
    # scene: at the trunk's 1e-3 they did not move in 8 films (issue 20)
    bias_lr: float | None = setting(
        0.03, "Adam learning rate of the heads' biases, the learned prior (None: trunk_lr)", gt=0
    )
    # issue 20: a fresh policy lights each scene as its plan implies, and learns per plan fact
    facts_per_factor: bool = setting(
        True, "each factor's context head reads only its reward's plan facts (and its bias stays put)"
    )
    plan_prior: float = setting(
        3.5, "starting logit of the lighting the scene plan's light conventionally takes", ge=0
    )
    explore: Literal["joint", "one_factor"] = setting(
        "one_factor", "an exploring take changes one factor of the greedy action, or samples every factor"
    )

    @field_validator("recipe")
    @classmethod
    def _check_recipe(cls, v: str) -> str:
        parse_recipe(v)  # a ValueError names the bad factor or value and the allowed ones
        return v

    embedder_path: str | None = setting(
        None, "sentence-transformers folder for the state and RAPO (the shipped MiniLM)"
    )


class AssemblySettings(Group):
    """How the chosen takes become a film."""

    transition: Literal["cut", "crossfade"] = setting("cut", "how scenes are joined")
    crossfade_frames: int = setting(12, "frames of a crossfade", ge=1, le=240)
    # drawn on the stitched film only (no take changes, the film is stitched again on a resume)
    burn_subtitles: bool = setting(False, "draw the narration subtitles into the film's frames", frames=False)
    title_card: bool = setting(False, "open with a card of the title and logline", frames=False)
    end_card: bool = setting(False, "close with a card of the cast", frames=False)


class AudioSettings(Group):
    """The soundtrack: narration, music bed, mix (none of it changes a frame)."""

    narration: bool = setting(True, "speak each scene's narration line", frames=False)
    tts: Literal["espeak", "piper"] = setting("espeak", "speech engine: espeak-ng, or piper", frames=False)
    tts_model: str | None = setting(None, "piper voice file (VOICE.onnx) for --tts piper", frames=False)
    voice: str = setting(
        "cast",
        "cast (each line in its scene's first character's voice) or a narrator's espeak-ng voice (en-gb)",
        frames=False,
    )
    cast_language: str = setting("en-us", "espeak-ng language of the cast's voices", frames=False)
    cast_voices: str = setting(
        "", "per character: 'id=VOICE[:WPM[:PITCH]], ...' over the voices from age and gender", frames=False
    )
    rate_wpm: int = setting(160, "speaking rate, words per minute", ge=80, le=300, frames=False)
    pitch: int = setting(50, "espeak-ng pitch of the narrator, 0-99", ge=0, le=99, frames=False)
    lead_in_s: float = setting(0.4, "seconds from a scene's start to its narration", ge=0, le=5, frames=False)
    music: str = setting(
        "generated", "generated (a bed from the scenes' moods), none, or an audio file", frames=False
    )
    duck_db: float = setting(12.0, "how far the music dips under narration, dB", ge=0, le=40, frames=False)
    music_db: float = setting(
        -8.0, "the music bed's loudness against the narration, LU", ge=-40, le=0, frames=False
    )
    loudness_lufs: float = setting(
        -16.0, "integrated loudness of the mix (BS.1770-4)", ge=-40, le=-5, frames=False
    )
    true_peak_dbtp: float = setting(-1.0, "true-peak ceiling of the mix, dBTP", ge=-12, le=0, frames=False)


class ExecutorSettings(Group):
    """Where takes and films run (executor/): in this process, or on a pool of Ray actors. None
    of it changes a frame."""

    kind: Literal["local", "ray"] = setting("local", "local (in this process) or ray (actors)", frames=False)
    address: str | None = setting(
        None, "ray: an existing cluster (auto or HOST:PORT); unset: a local one on 127.0.0.1", frames=False
    )
    workers: int | None = setting(
        None,
        "ray: actors in the pool (default: the cluster's GPUs, or its CPUs)",
        ge=1,
        le=4096,
        frames=False,
    )
    gpus_per_worker: float = setting(0.0, "ray: GPUs per actor (1: one actor per GPU)", ge=0, frames=False)
    max_retries: int = setting(
        2, "ray: times a job is run again after its worker died", ge=0, le=100, frames=False
    )
    connect_timeout_s: float = setting(
        20.0, "ray: seconds --ray-address HOST:PORT may take to answer at run start", gt=0, frames=False
    )


GROUPS: dict[str, type[Group]] = {
    "run": RunSettings,
    "plan": PlanSettings,
    "llm": LLMSettings,
    "wan": WanSettings,
    "rewards": RewardSettings,
    "policy": PolicySettings,
    "assembly": AssemblySettings,
    "audio": AudioSettings,
    "executor": ExecutorSettings,
}


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run: RunSettings = Field(default_factory=RunSettings)
    plan: PlanSettings = Field(default_factory=PlanSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    wan: WanSettings = Field(default_factory=WanSettings)
    rewards: RewardSettings = Field(default_factory=RewardSettings)
    policy: PolicySettings = Field(default_factory=PolicySettings)
    assembly: AssemblySettings = Field(default_factory=AssemblySettings)
    audio: AudioSettings = Field(default_factory=AudioSettings)
    executor: ExecutorSettings = Field(default_factory=ExecutorSettings)

    @model_validator(mode="after")
    def _ranges(self) -> "Settings":
        p, r = self.plan, self.run
        if p.min_scenes > p.max_scenes:
            raise ValueError(f"min_scenes ({p.min_scenes}) is above max_scenes ({p.max_scenes})")
        if p.scene_seconds_min > p.scene_seconds_max:
            raise ValueError("scene_seconds_min is above scene_seconds_max")
        if r.attempts > r.max_attempts:
            raise ValueError(f"attempts ({r.attempts}) is above max_attempts ({r.max_attempts})")
        if r.parallel_scenes and r.shot_mode != "keyframes":
            # continuous clips start from the previous scene's chosen take: they cannot run at once
            raise ValueError(
                "--parallel-scenes needs --mode keyframes (a continuous clip starts from the last one)"
            )
        return self

    @classmethod
    def of(cls, **values: Any) -> "Settings":
        """Settings from dotted (`wan__steps`, `wan.steps`) or 0.1 names (warned) and the defaults,
        no file or environment: for code and tests. The same merge as `load_settings`."""
        dotted = {resolve_key(k.replace("__", ".")): v for k, v in values.items()}
        return load_settings(None, dotted, env={})[0]

    def get(self, dotted: str) -> Any:
        obj: Any = self
        for part in dotted.split("."):
            obj = obj[part] if isinstance(obj, dict) else getattr(obj, part)
        return obj

    def updated(self, **values: Any) -> "Settings":
        """A copy with dotted keys changed (validated again)."""
        data = self.model_dump()
        for key, value in values.items():
            _put(data, resolve_key(key.replace("__", ".")), value)
        return Settings(**data)

    def public_dump(self) -> dict:
        """Every setting as JSON, secrets left out (for reports and logs)."""
        data = self.model_dump(mode="json")
        for dotted, _ in iter_fields():
            group, name = dotted.split(".")
            if is_secret(dotted):
                data[group].pop(name, None)
            elif name.endswith("base_url"):
                data[group][name] = redact_url(data[group][name])
        return data

    def resolved_policy_path(self) -> Path:
        if self.policy.path:
            return Path(self.policy.path).expanduser()
        return Path.home() / ".cinerl" / "policy" / f"{self.run.backend}.pt"

    def film_fingerprint_view(self, frame_neutral: tuple[str, ...] = ()) -> dict:
        """The settings that make a run this run: the 0.1 flat names (so old runs resume) minus
        those that do not change frames; a newer field only when it differs from its default."""
        # the 0.1 fingerprint left out exactly the policy file and the backend's frame-neutral
        # settings; keeping that rule keeps old fingerprints
        legacy_neutral = set(frame_neutral) | {"policy.path"}
        neutral = legacy_neutral | {k for k, _ in iter_fields() if not _extra(k)["frames"]}
        defaults = Settings()
        view: dict[str, Any] = {}
        legacy_targets = set(LEGACY.values())
        for flat, dotted in LEGACY.items():
            if dotted not in legacy_neutral:
                view[flat] = _recorded(dotted, self.get(dotted))
        for dotted, _ in iter_fields():
            if dotted in neutral or dotted in legacy_targets or dotted == "rewards.weights":
                continue
            if self.get(dotted) != defaults.get(dotted):
                view[dotted] = _recorded(dotted, self.get(dotted))
        extra = {g: w for g, w in self.rewards.weights.items() if g not in DEFAULT_WEIGHTS}
        if extra:
            view["rewards.weights"] = extra
        return view


# ---- the flat names of CineRL 0.1 -> their place now ----------------------------------------
_RENAMED = {
    "llm": "llm.provider",
    "llm_model": "llm.model",
    "llm_base_url": "llm.base_url",
    "llm_timeout": "llm.timeout",
    "llm_retries": "llm.retries",
    "llm_repairs": "llm.repairs",
    "policy_mode": "policy.mode",
    "policy_path": "policy.path",
    "reward_device": "rewards.device",
    "reward_workers": "rewards.workers",
    "weight_visual": "rewards.weights.visual_quality",
    "weight_temporal": "rewards.weights.temporal_stability",
    "weight_character": "rewards.weights.character_consistency",
    "weight_location": "rewards.weights.location_consistency",
    "weight_text": "rewards.weights.text_alignment",
    "weight_narrative": "rewards.weights.narrative_coherence",
}
_FLAT_ORDER = (
    "seed backend image_backend image_model_path width height fps attempts max_attempts "
    "consistency_threshold min_scenes max_scenes scenes scene_seconds_min scene_seconds_max "
    "weight_visual weight_temporal weight_character weight_location weight_text weight_narrative "
    "reward_device reward_workers clip_model_path dino_model_path lpips_path i3d_path "
    "fvd_reference_path aesthetic_head_path captioner_path cross_encoder_path vlm_base_url "
    "vlm_model judge_base_url judge_model llm llm_model llm_base_url llm_timeout llm_retries "
    "llm_repairs from_plan rl policy_mode policy_path learning_rate ppo_epochs clip_eps "
    "entropy_coef transition crossfade_frames prompt_opt rapo_dir shot_mode wan_variant "
    "wan_model_dir wan_steps wan_offload wan_vae_tiling wan_text_encoder wan_attention "
    "wan_compile wan_step_cache"
).split()


def _legacy_target(flat: str) -> str:
    if flat in _RENAMED:
        return _RENAMED[flat]
    if flat.startswith("wan_"):
        return "wan." + flat[4:]
    for group, cls in GROUPS.items():
        if flat in cls.model_fields:
            return f"{group}.{flat}"
    raise KeyError(flat)


LEGACY: dict[str, str] = {flat: _legacy_target(flat) for flat in _FLAT_ORDER}
# variables read before they were settings, with their place now (they keep working, warned)
LEGACY_ENV = {
    "CINERL_EMBEDDER_PATH": "policy.embedder_path",
    "CINERL_REWARD_THREADS": "rewards.threads",
    "CINERL_LLM_THREADS": "llm.threads",
    "CINERL_VLM_API_KEY": "rewards.vlm_api_key",
    "CINERL_JUDGE_API_KEY": "rewards.judge_api_key",
}


def _recorded(dotted: str, value: Any) -> Any:
    """A setting as the run store records it: URLs without their user name and password."""
    return redact_url(value) if dotted.endswith("base_url") else _jsonable(value)


def iter_fields():
    """(dotted name, field info) for every setting, group by group."""
    for group, cls in GROUPS.items():
        for name, info in cls.model_fields.items():
            yield f"{group}.{name}", info


def _extra(dotted: str) -> dict:
    group, _, name = dotted.partition(".")
    name = name.split(".")[0]
    info = GROUPS[group].model_fields[name]
    return {"env": (), "frames": True, "secret": False, **(info.json_schema_extra or {})}


def is_secret(dotted: str) -> bool:
    return _extra(dotted)["secret"]


def frame_neutral_fields() -> tuple[str, ...]:
    return tuple(k for k, _ in iter_fields() if not _extra(k)["frames"])


def resolve_key(key: str) -> str:
    """A dotted name (`wan.steps`, `rewards.weights.my_group`), or a 0.1 flat name (warned)."""
    group, _, rest = key.partition(".")
    if group in GROUPS and rest:
        field = rest.split(".")[0]
        if field not in GROUPS[group].model_fields:
            raise UserError(f"unknown setting {key!r}")
        if "." in rest and field != "weights":
            raise UserError(f"unknown setting {key!r}")
        return key
    if key in LEGACY:
        warnings.warn(f"setting {key!r} is deprecated: use {LEGACY[key]!r}", DeprecationWarning, stacklevel=3)
        return LEGACY[key]
    raise UserError(f"unknown setting {key!r}")


def _put(tree: dict, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    for p in parts[:-1]:
        tree = tree.setdefault(p, {})
    tree[parts[-1]] = value


def _jsonable(v: Any) -> Any:
    return dict(v) if isinstance(v, dict) else v


def _problems(e: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg'].removeprefix('Value error, ')}"
        for err in e.errors()
    )


def env_names(dotted: str) -> list[str]:
    """Every variable that sets `dotted`, in rising priority: outside names, the 0.1 flat
    CINERL_ name, then CINERL_GROUP__FIELD."""
    names = list(_extra(dotted)["env"])
    names += [k for k, v in LEGACY_ENV.items() if v == dotted]
    names += [ENV_PREFIX + flat.upper() for flat, d in LEGACY.items() if d == dotted]
    names.append(ENV_PREFIX + dotted.upper().replace(".", NESTED))
    return names


def _from_toml(path: Path) -> dict[str, Any]:
    """Dotted key -> value from a TOML file: tables ([wan] steps = 4) or 0.1 flat keys."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"config file {path} does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"config file {path} is not valid TOML: {e}") from None
    data = {**data.pop("cinerl", {}), **data}
    out: dict[str, Any] = {}
    unknown: list[str] = []
    for key, value in data.items():
        if key in GROUPS and isinstance(value, dict):
            for name, v in value.items():
                if name == "weights" and key == "rewards" and isinstance(v, dict):
                    out.update({f"rewards.weights.{g}": w for g, w in v.items()})
                elif name in GROUPS[key].model_fields:
                    out[f"{key}.{name}"] = v
                else:
                    unknown.append(f"{key}.{name}")
        elif key in LEGACY:
            log.warning(
                "config file %s: flat key %r is deprecated, write [%s] %s",
                path,
                key,
                *LEGACY[key].split(".", 1),
            )
            out[LEGACY[key]] = value
        else:
            unknown.append(key)
    if unknown:
        raise UserError(f"config file {path} has unknown keys: {', '.join(sorted(unknown))}")
    return out


_WARNED: set[str] = set()


def _deprecated_env(name: str, instead: str) -> None:
    if name not in _WARNED:  # once per process: library code reads the environment often
        _WARNED.add(name)
        log.warning("environment variable %s is deprecated: use %s", name, instead)


def _from_env(env: dict[str, str]) -> dict[str, tuple[Any, str]]:
    """Dotted key -> (value, variable) for every variable set; a later name wins."""
    out: dict[str, tuple[Any, str]] = {}
    for dotted, _ in iter_fields():
        for name in env_names(dotted):
            if env.get(name, "") != "":
                if name.startswith(ENV_PREFIX) and NESTED not in name:
                    _deprecated_env(name, ENV_PREFIX + dotted.upper().replace(".", NESTED))
                out[dotted] = (env[name], f"env {name}")
    prefix = ENV_PREFIX + "REWARDS__WEIGHTS__"
    for name, value in env.items():
        if name.startswith(prefix) and value != "":
            out[f"rewards.weights.{name[len(prefix) :].lower()}"] = (value, f"env {name}")
    for flat in (
        "weight_visual",
        "weight_temporal",
        "weight_character",
        "weight_location",
        "weight_text",
        "weight_narrative",
    ):
        name = ENV_PREFIX + flat.upper()
        if env.get(name, "") != "":
            _deprecated_env(name, prefix + LEGACY[flat].rsplit(".", 1)[1].upper())
            out[LEGACY[flat]] = (env[name], f"env {name}")
    return out


def load_settings(
    config_file: Path | None = None,
    overrides: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
) -> tuple[Settings, dict[str, str]]:
    """Merge the four sources; return the settings and, for each dotted field, its source."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    source = {dotted: "default" for dotted, _ in iter_fields()}
    source.update({f"rewards.weights.{g}": "default" for g in DEFAULT_WEIGHTS})
    if config_file is not None:
        path = Path(config_file).expanduser()
        for dotted, value in _from_toml(path).items():
            values[dotted] = value
            source[dotted] = f"file {path}"
    for dotted, (value, name) in _from_env(env).items():
        values[dotted] = value
        source[dotted] = name
    for key, value in (overrides or {}).items():
        if value is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                dotted = resolve_key(key)
            values[dotted] = value
            source[dotted] = "flag"
    nested: dict[str, Any] = {}
    weights = dict(DEFAULT_WEIGHTS)
    for dotted, value in values.items():
        if dotted.startswith("rewards.weights."):
            try:
                weights[dotted.split(".", 2)[2]] = float(value)
            except (TypeError, ValueError):
                raise UserError(f"invalid settings: {dotted}: not a number ({value!r})") from None
        else:
            _put(nested, dotted, value)
    nested.setdefault("rewards", {})["weights"] = weights
    try:
        return Settings(**nested), source
    except ValidationError as e:
        raise UserError(f"invalid settings: {_problems(e)}") from None


def env_settings() -> Settings:
    """Defaults and the environment only: for library code called without a Settings object (a
    test, a notebook), so even then every variable is read here and nowhere else."""
    return load_settings()[0]


def settings_table(settings: Settings, source: dict[str, str]) -> list[dict[str, Any]]:
    """One row per setting, group by group, for `cinerl config`: the value (secrets masked),
    its source, every variable that sets it, and its help."""
    rows = []
    for dotted, info in iter_fields():
        if dotted == "rewards.weights":
            for g, w in settings.rewards.weights.items():
                key = f"rewards.weights.{g}"
                rows.append(
                    {
                        "group": "rewards",
                        "setting": key,
                        "value": w,
                        "source": source.get(key, "default"),
                        "env": [ENV_PREFIX + "REWARDS__WEIGHTS__" + g.upper()],
                        "help": f"reward weight of the {g} group",
                    }
                )
            continue
        value = settings.get(dotted)
        if is_secret(dotted) and value:
            value = "***" + hashlib.sha256(str(value).encode()).hexdigest()[:6]
        names = env_names(dotted)
        old = [n for n in names if n.startswith(ENV_PREFIX) and NESTED not in n]
        rows.append(
            {
                "group": dotted.split(".")[0],
                "setting": dotted,
                "value": value,
                "source": source.get(dotted, "default"),
                "env": [n for n in names if n not in old],
                "env_deprecated": old,
                "help": info.description or "",
            }
        )
    return rows
