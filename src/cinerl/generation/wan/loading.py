"""Finding and loading Wan2.2 weights from local files only.

Two ways to point at the weights: a diffusers-format folder (`--model-dir` or `WAN_MODEL_ROOT`,
with tokenizer/, text_encoder/, vae/, transformer/ and, for the A14B variants, transformer_2/),
or one variable per component (the original design's WAN_DIFFUSION_MODEL, WAN_T5_PATH,
WAN_VAE_PATH, WAN_TOKENIZER_PATH, WAN_CLIP_PATH), which override the folder's sub-folders.
Everything is checked before anything loads, and every missing piece is named in one error.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cinerl.generation.wan.variants import WanVariant
from cinerl.core.errors import UserError
from cinerl.core.settings import env_settings

log = logging.getLogger(__name__)

ROOT_VAR = "WAN_MODEL_ROOT"


@dataclass(frozen=True)
class Piece:
    name: str  # component name in a diffusers pipeline
    subfolder: str  # sub-folder of a diffusers-format model folder
    env: str  # variable that points at it directly
    what: str  # for the error message
    markers: tuple[str, ...]  # any of these files makes a folder count as present


PIECES = {
    "tokenizer": Piece(
        "tokenizer",
        "tokenizer",
        "WAN_TOKENIZER_PATH",
        "UMT5 tokenizer",
        ("tokenizer.json", "tokenizer_config.json", "spiece.model"),
    ),
    "text_encoder": Piece(
        "text_encoder", "text_encoder", "WAN_T5_PATH", "UMT5-XXL text encoder", ("config.json",)
    ),
    "vae": Piece("vae", "vae", "WAN_VAE_PATH", "Wan VAE", ("config.json",)),
    "transformer": Piece(
        "transformer",
        "transformer",
        "WAN_DIFFUSION_MODEL",
        "diffusion transformer (high-noise expert for A14B)",
        ("config.json",),
    ),
    "transformer_2": Piece(
        "transformer_2",
        "transformer_2",
        "WAN_DIFFUSION_MODEL_2",
        "low-noise expert transformer",
        ("config.json",),
    ),
    "scheduler": Piece(
        "scheduler", "scheduler", "WAN_SCHEDULER_PATH", "scheduler config", ("scheduler_config.json",)
    ),
    "image_encoder": Piece(
        "image_encoder",
        "image_encoder",
        "WAN_CLIP_PATH",
        "CLIP image encoder (Wan2.1 I2V only; Wan2.2 does not use it)",
        ("config.json",),
    ),
}
OPTIONAL = ("scheduler", "image_encoder")


@dataclass
class WanSources:
    """Where each component comes from; `missing` lists what could not be found."""

    variant: WanVariant
    paths: dict[str, Path] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)

    def describe(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.paths.items()}


def _present(path: Path, piece: Piece) -> bool:
    if path.is_file():
        return path.suffix in (".safetensors", ".json", ".model")
    return path.is_dir() and any((path / m).is_file() for m in piece.markers)


def required_pieces(variant: WanVariant) -> list[str]:
    names = ["tokenizer", "text_encoder", "vae", "transformer"]
    if variant.experts == 2:
        names.append("transformer_2")
    return names


def resolve_sources(
    variant: WanVariant, model_dir: str | Path | None, env: Mapping[str, str] | None = None
) -> WanSources:
    """Find every component, or raise one UserError naming each missing one and its variable."""
    if env is None:  # the WAN_* variables, read through Settings
        w = env_settings().wan
        env = {PIECES[n].env: v for n, v in w.component_paths().items()}
        if w.model_dir:
            env[ROOT_VAR] = w.model_dir
    root_text = str(model_dir) if model_dir else env.get(ROOT_VAR, "")
    root = Path(root_text).expanduser() if root_text else None
    problems: list[str] = []
    if root is not None and not root.is_dir():
        problems.append(
            f"model folder {root} does not exist (set by {'--model-dir' if model_dir else ROOT_VAR})"
        )
        root = None
    src = WanSources(variant)
    for name in required_pieces(variant) + list(OPTIONAL):
        piece = PIECES[name]
        direct = env.get(piece.env, "")
        if direct:
            p = Path(direct).expanduser()
            if _present(p, piece):
                src.paths[name] = p
                continue
            problems.append(f"{piece.what}: {p} (from {piece.env}) has no {' or '.join(piece.markers)}")
            src.missing.append(name)
            continue
        if root is not None and _present(root / piece.subfolder, piece):
            src.paths[name] = root / piece.subfolder
            continue
        if name in OPTIONAL:
            continue
        where = f"no {piece.subfolder}/ in {root}" if root is not None else "not set"
        problems.append(
            f"{piece.what}: {where}; set --model-dir/{ROOT_VAR} to a diffusers "
            f"folder or {piece.env} to this component"
        )
        src.missing.append(name)
    if problems:
        raise UserError(
            f"Wan2.2 {variant.name} weights are missing (nothing is downloaded):\n  - "
            + "\n  - ".join(problems)
        )
    return src


def _load_model(cls, path: Path, dtype, what: str, env_var: str):
    """A component from a diffusers folder, or a single .safetensors file where supported."""
    try:
        if path.is_file():
            if not hasattr(cls, "from_single_file"):
                raise UserError(f"{what} at {path} must be a folder (from {env_var})")
            return cls.from_single_file(str(path), torch_dtype=dtype, local_files_only=True)
        return cls.from_pretrained(str(path), torch_dtype=dtype, local_files_only=True)
    except UserError:
        raise
    except (OSError, ValueError, EnvironmentError) as e:
        raise UserError(f"cannot load the {what} from {path} ({env_var}): {e}") from None


def _check_shapes(variant: WanVariant, transformer, vae) -> None:
    """Catch a folder of another variant before it fails deep inside a forward pass."""
    guess = {48: "ti2v-5b", 16: "t2v-a14b", 36: "i2v-a14b"}.get(transformer.config.in_channels, "?")
    if transformer.config.in_channels != variant.transformer_in_channels:
        raise UserError(
            f"the transformer has {transformer.config.in_channels} input channels, which "
            f"is {guess}, not {variant.name}; pass --variant {guess}"
        )
    if vae.config.z_dim != variant.latent_channels:
        raise UserError(
            f"the VAE has {vae.config.z_dim} latent channels; {variant.name} needs {variant.latent_channels}"
        )


@dataclass
class WanComponents:
    tokenizer: object
    text_encoder: object
    vae: object
    transformer: object
    transformer_2: object | None
    scheduler: object
    image_encoder: object | None = None


def load_components(src: WanSources, dtype, vae_dtype, text_dtype) -> WanComponents:
    """Load every component once, on the CPU; placement is the memory planner's job."""
    from diffusers import AutoencoderKLWan, WanTransformer3DModel
    from transformers import AutoTokenizer, UMT5EncoderModel

    v = src.variant
    p = src.paths
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(p["tokenizer"]), local_files_only=True)
    except (OSError, ValueError) as e:
        raise UserError(f"cannot load the tokenizer from {p['tokenizer']}: {e}") from None
    text_encoder = _load_model(
        UMT5EncoderModel, p["text_encoder"], text_dtype, "text encoder", PIECES["text_encoder"].env
    )
    vae = _load_model(AutoencoderKLWan, p["vae"], vae_dtype, "VAE", PIECES["vae"].env)
    transformer = _load_model(
        WanTransformer3DModel, p["transformer"], dtype, "transformer", PIECES["transformer"].env
    )
    transformer_2 = None
    if v.experts == 2:
        transformer_2 = _load_model(
            WanTransformer3DModel,
            p["transformer_2"],
            dtype,
            "low-noise transformer",
            PIECES["transformer_2"].env,
        )
    _check_shapes(v, transformer, vae)
    scheduler = make_scheduler(v, p.get("scheduler"))
    return WanComponents(
        tokenizer,
        text_encoder.eval(),
        vae.eval(),
        transformer.eval(),
        transformer_2.eval() if transformer_2 is not None else None,
        scheduler,
    )


def make_scheduler(variant: WanVariant, path: Path | None = None):
    """UniPC with flow sigmas (diffusers' Wan default) at the variant's flow shift."""
    from diffusers import UniPCMultistepScheduler

    if path is not None:
        cfg = UniPCMultistepScheduler.load_config(str(path))
        return UniPCMultistepScheduler.from_config(cfg, flow_shift=variant.flow_shift)
    return UniPCMultistepScheduler(
        prediction_type="flow_prediction",
        use_flow_sigmas=True,
        num_train_timesteps=1000,
        flow_shift=variant.flow_shift,
    )


def build_pipelines(comp: WanComponents, variant: WanVariant, scalar_timestep: bool = True):
    """Text-to-video and image-to-video pipelines over the same module objects (nothing is
    loaded twice). For the 5B, text-to-video with `scalar_timestep` passes one timestep per
    sample instead of one per token: every token carries the same t when no frame is
    conditioned, so the result is the same and the per-token time embedding is skipped."""
    from diffusers import WanImageToVideoPipeline, WanPipeline

    is_5b = variant.boundary_ratio is None
    t2v = i2v = None
    if variant.text_to_video:
        t2v = WanPipeline(
            tokenizer=comp.tokenizer,
            text_encoder=comp.text_encoder,
            vae=comp.vae,
            scheduler=comp.scheduler,
            transformer=comp.transformer,
            transformer_2=comp.transformer_2,
            boundary_ratio=variant.boundary_ratio,
            expand_timesteps=is_5b and not scalar_timestep,
        )
    if variant.image_to_video:
        i2v = WanImageToVideoPipeline(
            tokenizer=comp.tokenizer,
            text_encoder=comp.text_encoder,
            vae=comp.vae,
            scheduler=comp.scheduler,
            transformer=comp.transformer,
            transformer_2=comp.transformer_2,
            boundary_ratio=variant.boundary_ratio,
            expand_timesteps=is_5b,
        )
    for pipe in (t2v, i2v):
        if pipe is not None:
            pipe.set_progress_bar_config(disable=True)
    return t2v, i2v
