"""One Settings object, fed in order by defaults, a TOML file, CINERL_* environment variables and
command-line flags. Each value remembers where it came from, so `cinerl config` can say why."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

from cinerl.inputs import UserError

ENV_PREFIX = "CINERL_"


class Settings(BaseModel):
    seed: int = Field(0, description="seed for planning, rendering and policy sampling")
    backend: str = Field("previz", description="video backend")
    image_backend: str = Field("previz", description="reference images: previz, wan or diffusers")
    image_model_path: str | None = Field(
        None, description="local folder of the wan/diffusers image model (references)")
    width: int = Field(640, ge=32, le=4096)
    height: int = Field(360, ge=32, le=4096)
    fps: int = Field(24, ge=1, le=120)
    attempts: int = Field(2, ge=1, le=64, description="attempts per scene when no threshold is set")
    max_attempts: int = Field(4, ge=1, le=64, description="most attempts a scene may get")
    consistency_threshold: float | None = Field(
        None, ge=0.0, le=1.0,
        description="if set, a scene keeps getting attempts while its best reward is under it "
                    "(up to max_attempts) and stops as soon as one reaches it")
    min_scenes: int = Field(3, ge=1, le=24)
    max_scenes: int = Field(6, ge=1, le=24)
    scenes: int | None = Field(None, ge=1, le=24, description="force this many scenes")
    scene_seconds_min: float = Field(10.0, gt=0, le=60)
    scene_seconds_max: float = Field(12.0, gt=0, le=60)
    weight_visual: float = Field(0.09, ge=0, description="reward weight: visual quality")
    weight_temporal: float = Field(0.27, ge=0, description="reward weight: temporal stability")
    weight_character: float = Field(0.27, ge=0, description="reward weight: character consistency")
    weight_location: float = Field(0.18, ge=0, description="reward weight: location consistency")
    weight_text: float = Field(0.1, ge=0, description="reward weight: text alignment")
    weight_narrative: float = Field(0.09, ge=0, description="reward weight: narrative coherence")
    reward_device: str = Field("auto", description="reward models: auto (cuda when torch sees a GPU), cpu, cuda")
    reward_workers: int = Field(1, ge=1, le=64, description="reward components scored on this many threads "
                                "at once (1, the default, was fastest where measured)")
    clip_model_path: str | None = Field(None, description="CLIP or SigLIP folder (text alignment, aesthetic)")
    dino_model_path: str | None = Field(None, description="DINO folder (subject/location features)")
    lpips_path: str | None = Field(None, description="LPIPS AlexNet weights (true t-LPIPS)")
    i3d_path: str | None = Field(None, description="TorchScript I3D feature extractor (FVD-lite)")
    fvd_reference_path: str | None = Field(None, description="reference I3D features .npz (FVD-lite)")
    aesthetic_head_path: str | None = Field(None, description="LAION aesthetic head .pth")
    captioner_path: str | None = Field(None, description="image-to-text model folder (caption consistency)")
    cross_encoder_path: str | None = Field(None, description="CrossEncoder folder (caption consistency)")
    vlm_base_url: str | None = Field(None, description="OpenAI-compatible vision endpoint (VLM judge)")
    vlm_model: str | None = Field(None, description="model name at vlm_base_url")
    judge_base_url: str | None = Field(None, description="OpenAI-compatible LLM endpoint (narrative judge)")
    judge_model: str | None = Field(None, description="model name at judge_base_url")
    llm: Literal["auto", "offline", "openai", "transformers"] = Field(
        "offline", description="story planner: offline (default), openai (any OpenAI-compatible "
        "server), transformers (local folder or .gguf), auto (openai when a key or URL is set)")
    llm_model: str | None = Field(None, description="model name (openai) or local path (transformers)")
    llm_base_url: str | None = Field(None, description="OpenAI-compatible server URL for --llm openai")
    llm_timeout: float = Field(60.0, gt=0, le=3600, description="seconds per LLM request")
    llm_retries: int = Field(4, ge=0, le=20, description="retries on 429, 5xx and timeouts")
    llm_repairs: int = Field(2, ge=0, le=10, description="repair rounds before the offline fallback")
    from_plan: str | None = Field(None, description="shoot a finished `cinerl plan` folder: its bible, with its "
                                     "critique-revised scene prompts as the scenes' base prompts")
    rl: Literal["ppo", "grpo"] = "ppo"
    policy_mode: Literal["learn", "random", "frozen"] = "learn"
    policy_path: str | None = Field(None, description="default ~/.cinerl/policy/<backend>.pt")
    learning_rate: float = Field(1e-2, gt=0)
    ppo_epochs: int = Field(4, ge=1, le=100)
    clip_eps: float = Field(0.2, gt=0, lt=1)
    entropy_coef: float = Field(0.01, ge=0)
    transition: Literal["cut", "crossfade"] = "cut"
    crossfade_frames: int = Field(12, ge=1, le=240)
    prompt_opt: Literal["none", "rapo"] = Field(
        "none", description="rapo: add relation-graph modifiers to each scene before composition")
    rapo_dir: str | None = Field(None, description="RAPO graph cache and grown captions "
                                 "(default ~/.cinerl/rapo)")
    shot_mode: Literal["continuous", "keyframes"] = Field(
        "continuous", description="continuous: each clip starts from the previous clip's last "
        "frame; keyframes: one keyframe per scene boundary, each clip runs between two")
    wan_variant: Literal["ti2v-5b", "t2v-a14b", "i2v-a14b"] = "ti2v-5b"
    wan_model_dir: str | None = Field(None, description="local Wan2.2 diffusers folder "
                                      "(else WAN_MODEL_ROOT or the WAN_* component paths)")
    wan_steps: int | None = Field(None, ge=1, le=200, description="denoising steps (variant's own)")
    wan_offload: Literal["auto", "none", "model", "group"] = "auto"
    wan_vae_tiling: Literal["auto", "on", "off"] = "auto"
    wan_text_encoder: Literal["auto", "gpu", "cpu"] = "auto"
    wan_attention: str = Field("auto", description="auto, native, cudnn, flash3 or a diffusers "
                               "attention backend name")
    wan_compile: Literal["auto", "on", "off"] = Field(
        "auto", description="regional compilation of the transformer block (auto: on with CUDA)")
    wan_step_cache: float | None = Field(
        None, gt=0, description="first-block step cache threshold (lossy; off when unset)")

    @model_validator(mode="after")
    def _ranges(self) -> "Settings":
        if self.min_scenes > self.max_scenes:
            raise ValueError(f"min_scenes ({self.min_scenes}) is above max_scenes ({self.max_scenes})")
        if self.scene_seconds_min > self.scene_seconds_max:
            raise ValueError("scene_seconds_min is above scene_seconds_max")
        if self.attempts > self.max_attempts:
            raise ValueError(f"attempts ({self.attempts}) is above max_attempts ({self.max_attempts})")
        if sum(self.reward_weights().values()) <= 0:
            raise ValueError("the reward weights add up to zero")
        return self

    def reward_weights(self) -> dict[str, float]:
        return {"visual_quality": self.weight_visual, "temporal_stability": self.weight_temporal,
                "character_consistency": self.weight_character,
                "location_consistency": self.weight_location, "text_alignment": self.weight_text,
                "narrative_coherence": self.weight_narrative}

    def resolved_policy_path(self) -> Path:
        if self.policy_path:
            return Path(self.policy_path).expanduser()
        return Path.home() / ".cinerl" / "policy" / f"{self.backend}.pt"


def load_settings(config_file: Path | None = None, overrides: dict[str, Any] | None = None,
                  env: dict[str, str] | None = None) -> tuple[Settings, dict[str, str]]:
    """Merge the four sources; return the settings and, for each field, the source that set it."""
    env = os.environ if env is None else env
    fields = Settings.model_fields
    values: dict[str, Any] = {}
    source = {name: "default" for name in fields}
    if config_file is not None:
        path = Path(config_file).expanduser()
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserError(f"config file {path} does not exist") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise UserError(f"config file {path} is not valid TOML: {e}") from None
        data = {**data.pop("cinerl", {}), **data}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise UserError(f"config file {path} has unknown keys: {', '.join(unknown)}")
        values.update(data)
        source.update({k: f"file {path}" for k in data})
    for name in fields:
        key = ENV_PREFIX + name.upper()
        if key in env and env[key] != "":
            values[name] = env[key]
            source[name] = f"env {key}"
    for name, value in (overrides or {}).items():
        if value is not None:
            if name not in fields:
                raise UserError(f"unknown setting {name!r}")
            values[name] = value
            source[name] = "flag"
    try:
        return Settings(**values), source
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}" for err in e.errors())
        raise UserError(f"invalid settings: {problems}") from None
