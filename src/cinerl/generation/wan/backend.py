"""The Wan2.2 video backend, through diffusers.

Loads once per run and keeps everything resident: the components, the text-to-video and
image-to-video pipelines built over the same modules, and the prompt embeddings (each text is
encoded once). A clip continues from `init_image` (the previous clip's last frame, or a
keyframe) and, on the first-last-frame variant, ends on `last_image`. Memory placement comes
from free GPU memory (wan_memory); a CUDA out-of-memory walks a ladder and every rung is
recorded in the clip's metadata, which the report carries.

Speed, all lossless unless said: a chosen attention backend (FlashAttention-3 from the fa3-fwd
wheel where it runs, else cuDNN; wan/attention.py), regional compilation of the repeated
transformer block, one scalar timestep for 5B text-to-video, and, off by default and marked
lossy (`--fast`), diffusers' first-block step cache, FP8 self-attention and a bf16 decode.

Several GPUs for one clip (`--gpus N`, wan/parallel.py): diffusers' context parallelism
(Ulysses, ring) or CFG-parallel, one torchrun process per GPU; rank 0 leads and decodes.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from contextlib import contextmanager

import numpy as np

from cinerl.core.errors import BackendUnavailable
from cinerl.core.settings import Settings, WanSettings
from cinerl.generation.registry import register_backend
from cinerl.generation.wan.attention import FP8, cudnn_attention_runs
from cinerl.generation.wan.loading import (
    PIECES,
    WanSources,
    build_pipelines,
    load_components,
    resolve_sources,
)
from cinerl.generation.wan.memory import (
    MemoryPlan,
    Placement,
    estimate_bytes,
    free_cuda_memory,
    next_rung,
    plan_memory,
    release_memory,
    scaled_frames,
    scaled_side,
)
from cinerl.generation.wan.variants import WanVariant, fit_request, get_variant
from cinerl.core.errors import UserError
from cinerl.core.schema import Clip, ClipRequest

log = logging.getLogger(__name__)
EMBED_CACHE_SIZE = 64
# --fast without --step-cache: diffusers' FirstBlockCacheConfig default (hooks/first_block_cache.py)
FAST_STEP_CACHE = 0.05


ATTENTION_NAMES = {
    "native": "native",
    "cudnn": "_native_cudnn",
    "flash3": "_flash_3",
    "flash": "flash",
    "efficient": "_native_efficient",
}


def pick_attention(choice: str, cuda: bool, head_dim: int | None = None, dtype=None) -> str | None:
    """The attention kernel to set: a diffusers backend name, `fa3_fwd` (this package's
    FlashAttention-3 processor, generation/wan/attention.py), or None for diffusers' default
    (native SDPA, which picks a kernel per call).
    auto: native on ROCm; on CUDA fa3-fwd where it imports and its probe runs, else cuDNN SDPA
    when its kernel takes the model's head size, else native. `fa3` asks for fa3-fwd and fails
    with the reason where it cannot run."""
    from cinerl.generation.wan.attention import FA3, fa3_runs, is_rocm

    if choice == "auto":
        if not cuda or is_rocm():
            return None
        if head_dim is not None and fa3_runs(head_dim, dtype)[0]:
            return FA3
        if head_dim is None or cudnn_attention_runs(head_dim, dtype):
            return "_native_cudnn"
        return None
    if choice in ("fa3", FA3):
        ok, why = fa3_runs(head_dim or 128, dtype) if cuda and not is_rocm() else (False, "no CUDA GPU")
        if not ok:
            raise BackendUnavailable(f"--attention fa3: {why}")
        return FA3
    return ATTENTION_NAMES.get(choice, choice)


def to_uint8(video: np.ndarray) -> np.ndarray:
    """diffusers' float frames in [0, 1] to uint8, rounding to nearest."""
    return (np.clip(video, 0.0, 1.0) * 255.0).round().astype(np.uint8)


class WanBackend:
    """VideoBackend (and ImageBackend for keyframes) on Wan2.2 through diffusers."""

    name = "wan"

    def __init__(self, options: WanSettings | None = None, components=None):
        """`components` (a WanComponents already in memory, e.g. the benchmark's random
        real-size models) skips the file lookup; otherwise every file is checked now, so a
        missing one fails before the run writes anything."""
        self.options = options or WanSettings()
        self.variant: WanVariant = get_variant(self.options.variant)
        self.sources: WanSources | None = None
        if components is None:
            paths = {PIECES[n].env: p for n, p in self.options.component_paths().items()}
            self.sources = resolve_sources(self.variant, self.options.model_dir, paths)
        self.comp = None
        self._given = components
        self.t2v = self.i2v = None
        self.placement: Placement | None = None
        self.plan: MemoryPlan | None = None
        self._embeds: OrderedDict[str, object] = OrderedDict()
        self._take_latents = None  # the last render's latents, when options.save_latents
        self.stats = {
            "loads": 0,
            "embed_hits": 0,
            "embed_misses": 0,
            "compiled": False,
            "attention": "native",
            "step_cache": None,
            "parallel": None,
        }

    # loading ------------------------------------------------------------------------------
    @property
    def loaded(self) -> bool:
        return self.comp is not None

    def load(self) -> None:
        """Load the weights and build both pipelines once; later calls do nothing."""
        if self.loaded:
            return
        import torch

        cuda = torch.cuda.is_available()
        self.device = torch.device("cuda" if cuda else "cpu")
        dtype = torch.bfloat16 if cuda else torch.float32
        t0 = time.perf_counter()
        self.comp = self._given or load_components(
            self.sources, dtype=dtype, vae_dtype=torch.float32, text_dtype=dtype
        )
        self.t2v, self.i2v = build_pipelines(
            self.comp, self.variant, scalar_timestep=self.options.scalar_timestep
        )
        self.placement = Placement(self.comp, self.device)
        self._load_lora()
        self._speed_setup(cuda)
        self.stats["loads"] += 1
        self.stats["load_seconds"] = round(time.perf_counter() - t0, 3)
        log.info(
            "wan %s loaded in %.1f s from %s",
            self.variant.name,
            self.stats["load_seconds"],
            self.sources.describe() if self.sources else "memory",
        )

    def _load_lora(self) -> None:
        """`--lora DIR[:scale]`: a CineRL video LoRA into the transformer(s), both experts for A14B
        (before compilation, so the compiled blocks include it)."""
        if not self.options.lora:
            return
        from cinerl.generation.wan.lora import load_loras, parse_loras

        specs = parse_loras(self.options.lora)  # several: diffusers' multiple adapters
        self.stats["lora"] = load_loras(self.t2v or self.i2v, self.comp, specs, self.variant.name)
        for info in self.stats["lora"]["adapters"]:
            log.info("wan: LoRA %s loaded at scale %g into %s", info["path"], info["scale"], info["experts"])

    def _speed_setup(self, cuda: bool) -> None:
        o = self.options
        experts = [m for m in (self.comp.transformer, self.comp.transformer_2) if m is not None]
        attn = pick_attention(o.attention, cuda, experts[0].config.attention_head_dim, experts[0].dtype)
        scheme = self._parallel_scheme(cuda, experts)
        if cuda and (
            (scheme == "ulysses" and attn == "fa3_fwd")
            or (scheme == "ring" and attn in (None, "native", "fa3_fwd"))
        ):
            from cinerl.generation.wan.parallel import CP_ATTENTION_CUDA

            # fa3-fwd's processor knows nothing of the sequence split, and ring attention needs a
            # kernel that returns the log-sum-exp (native SDPA's does not): cuDNN SDPA does both
            attn = CP_ATTENTION_CUDA
        if attn == "fa3_fwd":
            from cinerl.generation.wan.attention import fa3_fp8_runs, install_fa3

            fp8 = False
            if (o.fp8_attention == "on" or (o.fp8_attention == "auto" and o.fast)) and scheme is None:
                fp8, why = fa3_fp8_runs(experts[0].config.attention_head_dim)
                self.stats["fp8_attention"] = "on (lossy)" if fp8 else f"off: {why}"
            for m in experts:
                install_fa3(m, fp8=fp8)
            self.stats["attention"] = FP8 if fp8 else attn
        elif attn is not None:
            for m in experts:
                m.set_attention_backend(attn)
            self.stats["attention"] = attn
        threshold = o.step_cache or (FAST_STEP_CACHE if o.fast else None)
        if threshold:
            from diffusers import FirstBlockCacheConfig

            for m in experts:
                m.enable_cache(FirstBlockCacheConfig(threshold=float(threshold)))
            self.stats["step_cache"] = {
                "kind": "first_block",
                "threshold": float(threshold),
                "lossy": True,
                "fast": bool(o.fast),
            }
        if scheme is not None:  # after the kernel is set (diffusers checks it), before compiling
            from cinerl.generation.wan import parallel

            self.stats["parallel"] = parallel.apply(scheme, experts, parallel.joined())
        if cuda and (o.decode_dtype == "bf16" or (o.decode_dtype == "auto" and o.fast)):
            # lossy: the VAE decode in bf16 (measured on an H200: 6.2 s against 9.3 s in fp32 for
            # 1280x704x121, PSNR 50.8 dB; benchmarks/results/wan_speed_h200_extras.json)
            import torch

            self.comp.vae.to(torch.bfloat16)
            self.stats["decode"] = "bf16 (lossy)"
        if cuda and o.cudnn_benchmark:
            import torch

            # The VAE decodes latent frame by frame with the same conv shapes each time, so
            # timing cuDNN's algorithms once pays back on the first clip.
            torch.backends.cudnn.benchmark = True
            self.stats["cudnn_benchmark"] = True
        if o.compile == "on" or (o.compile == "auto" and cuda):
            kw = {"mode": o.compile_mode} if o.compile_mode else {}
            # not fullgraph: group offload (chosen later by the memory plan or the OOM ladder)
            # wraps each block in a hook that compilation must step around
            for m in experts:
                m.compile_repeated_blocks(fullgraph=False, **kw)
            self.stats["compiled"] = o.compile_mode or True

    def _parallel_scheme(self, cuda: bool, experts) -> str | None:
        """`--gpus N`: check the scheme against the model and join the torchrun processes."""
        o = self.options
        if o.gpus <= 1:
            return None
        from cinerl.generation.wan import parallel

        scheme = parallel.check_plan(
            o.gpus,
            o.parallel,
            heads=experts[0].config.num_attention_heads,
            guidance=self.variant.guidance,
            cuda=cuda,
            step_cache=bool(o.step_cache or o.fast),
        )
        world = parallel.joined() or parallel.world_from_env()
        if world is None or world.size != o.gpus:
            raise UserError(
                f"--gpus {o.gpus} needs {o.gpus} processes started by torchrun (`cinerl make` starts "
                f"them itself); this process sees {world.size if world else 1}"
            )
        parallel.init(world)
        return scheme

    # memory -------------------------------------------------------------------------------
    def _ensure_plan(self, width: int, height: int, frames: int) -> None:
        if self.plan is None:
            need = estimate_bytes(self.variant, self.comp, width, height, frames)
            self.plan = plan_memory(
                free_cuda_memory(),
                need,
                self.options.offload,
                self.options.vae_tiling,
                self.options.text_encoder,
            )
            log.info("wan memory plan: %s", self.plan)
        self.placement.apply(self.plan)

    # prompt embeddings --------------------------------------------------------------------
    def embed(self, text: str):
        """The text encoder's output for one text, computed once and kept (LRU)."""
        if text in self._embeds:
            self._embeds.move_to_end(text)
            self.stats["embed_hits"] += 1
            return self._embeds[text]
        self.stats["embed_misses"] += 1
        pipe = self.t2v or self.i2v
        emb, _ = pipe.encode_prompt(
            text,
            do_classifier_free_guidance=False,
            max_sequence_length=self.variant.max_seq_len,
            device=self.device,
        )
        self._embeds[text] = emb
        while len(self._embeds) > EMBED_CACHE_SIZE:
            self._embeds.popitem(last=False)
        return emb

    # generation ---------------------------------------------------------------------------
    def generate(self, request: ClipRequest) -> Clip:
        v = self.variant
        fitted = fit_request(v, request.width, request.height, request.num_frames)
        notes = list(fitted.warnings)
        if request.fps != v.fps:
            notes.append(f"{request.fps} fps requested; {v.name} renders at its own {v.fps} fps")
        image = request.init_image
        if image is None and not v.text_to_video:
            image = getattr(request, "reference_image", None)
            if image is None:
                raise UserError(
                    f"{v.name} needs a first frame and the request has none; use "
                    "--variant ti2v-5b or t2v-a14b, or --mode keyframes"
                )
            notes.append("first frame: the scene's reference image (no previous clip)")
        if image is not None and not v.image_to_video:
            notes.append(f"continuity off: {v.name} cannot start from an image")
            image = None
        last = getattr(request, "last_image", None)
        if last is not None and not v.first_last_frame:
            notes.append(f"last keyframe not applied: {v.name} has no last-frame conditioning")
            last = None
        self.load()
        frames, info = self._run_with_ladder(
            request, fitted.width, fitted.height, fitted.num_frames, image, last
        )
        report = {
            "variant": v.name,
            "mode": "i2v" if image is not None else "t2v",
            "first_last_frame": last is not None,
            "size": [fitted.width, fitted.height],
            "fps": v.fps,
            "warnings": notes,
            **info,
            "speed": {
                "attention": self.stats["attention"],
                "compiled": self.stats["compiled"],
                "scalar_timestep": self.options.scalar_timestep
                and v.boundary_ratio is None
                and image is None,
                "step_cache": self.stats["step_cache"],
                "decode": self.stats.get("decode", "fp32"),
                "lossless": self.stats["step_cache"] is None
                and self.stats.get("decode", "fp32") == "fp32"
                and self.stats["attention"] != FP8,
                "parallel": self.stats["parallel"],
            },
            "embeddings": {"hits": self.stats["embed_hits"], "misses": self.stats["embed_misses"]},
            "loads": self.stats["loads"],
            "lora": self.stats.get("lora"),
        }
        meta = {"backend": self.name, "seed": request.seed, "prompt": request.prompt, "report": report}
        if self._take_latents is not None:  # --save-latents: the director writes it beside the mp4
            self._take_latents.meta["seed"] = request.seed
            meta["files"] = {"latents.safetensors": self._take_latents.to_bytes()}
            report["latents_saved"] = True
            self._take_latents = None
        return Clip(frames=frames, fps=v.fps, metadata=meta)

    def generate_image(self, prompt: str, width: int, height: int, seed: int) -> np.ndarray:
        """One frame from text (a keyframe). The image-to-video-only variant cannot."""
        if not self.variant.text_to_video:
            raise BackendUnavailable(f"{self.variant.name} cannot render an image from text")
        req = ClipRequest(prompt=prompt, width=width, height=height, num_frames=1, seed=seed)
        return self.generate(req).frames[0]

    def _run_with_ladder(self, request, width, height, frames, image, last):
        import torch

        ladder: list[dict] = []
        self._ensure_plan(width, height, frames)
        while True:
            f = scaled_frames(frames, self.plan.frame_scale)
            m = self.variant.size_multiple
            w = scaled_side(width, self.plan.size_scale, m)
            h = scaled_side(height, self.plan.size_scale, m)
            try:
                out, timing = self.render(
                    request.prompt, request.negative_prompt, w, h, f, request.seed, image, last
                )
                break
            except torch.OutOfMemoryError as e:
                release_memory()
                if self.stats["parallel"]:  # the other ranks wait inside a collective: no retry
                    raise BackendUnavailable(
                        f"CUDA out of memory with --gpus {self.options.gpus} (no memory ladder across "
                        f"GPUs; fewer frames, a smaller size or --offload group): {str(e).splitlines()[0]}"
                    ) from None
                step = next_rung(self.plan, self.variant, width, height, frames)
                if step is None:
                    raise BackendUnavailable(
                        f"CUDA out of memory at every rung of the ladder "
                        f"({', '.join(r['rung'] for r in ladder) or 'none'}): {e}"
                    ) from None
                rung, self.plan = step
                ladder.append({"rung": rung, "error": str(e).splitlines()[0][:200]})
                log.warning("wan: out of memory, retrying with %s", rung)
                self.placement.apply(self.plan)
        if (w, h) != (width, height):
            import cv2

            out = np.stack([cv2.resize(fr, (width, height), interpolation=cv2.INTER_CUBIC) for fr in out])
        info = {
            "frames": int(out.shape[0]),
            "rendered_size": [w, h],
            "timing": timing,
            "memory_plan": self.plan.as_dict(),
            "oom_ladder": ladder,
            "placement_notes": list(self.placement.notes),
        }
        return out, info

    def pipeline_kwargs(
        self, negative: str, width: int, height: int, frames: int, seed: int, image, last
    ) -> tuple[object, dict]:
        """The pipeline and the arguments one clip is rendered with (embeddings from the cache)."""
        import torch
        from PIL import Image

        v = self.variant
        pipe = self.i2v if image is not None else self.t2v
        kw = dict(
            height=height,
            width=width,
            num_frames=frames,
            num_inference_steps=self.options.steps or v.steps,
            guidance_scale=v.guidance,
            negative_prompt_embeds=self.embed(negative),
            generator=torch.Generator("cpu").manual_seed(int(seed) % (2**63)),
            max_sequence_length=v.max_seq_len,
        )
        if v.guidance_2 is not None:
            kw["guidance_scale_2"] = v.guidance_2
        if image is not None:
            kw["image"] = Image.fromarray(image)
            if last is not None:
                kw["last_image"] = Image.fromarray(last)
        return pipe, kw

    def render(
        self,
        prompt: str,
        negative: str,
        width: int,
        height: int,
        frames: int,
        seed: int,
        image=None,
        last=None,
        decode: bool = True,
    ) -> tuple[np.ndarray | None, dict]:
        """Denoise and decode one clip; returns uint8 frames (None without `decode`, as the
        follower ranks of `--gpus N` render) and per-stage seconds."""
        import torch

        if self.stats["parallel"]:
            from cinerl.generation.wan import parallel

            parallel.announce(
                prompt=prompt,
                negative=negative,
                width=width,
                height=height,
                frames=frames,
                seed=seed,
                image=image,
                last=last,
                steps=self.options.steps,  # a caller may change it between clips (benchmarks do)
            )
        cuda = self.device.type == "cuda"
        sync = torch.cuda.synchronize if cuda else (lambda: None)
        t0 = time.perf_counter()
        self.placement.before_call(self.i2v if image is not None else self.t2v)
        pipe, kw = self.pipeline_kwargs(negative, width, height, frames, seed, image, last)
        kw["prompt_embeds"] = self.embed(prompt)
        par = self.stats["parallel"]
        if par and par["scheme"] == "cfg":
            from cinerl.generation.wan.parallel import branch_embeddings

            kw["prompt_embeds"], kw["negative_prompt_embeds"] = branch_embeddings(
                kw["prompt_embeds"], kw["negative_prompt_embeds"]
            )
        elif par:
            from cinerl.generation.wan.parallel import check_tokens, video_tokens

            check_tokens(
                video_tokens(pipe, self.comp.transformer, width, height, frames),
                par["gpus"],
                width,
                height,
                frames,
            )
        sync()
        t_embed = time.perf_counter()
        step_ends: list[float] = []

        def on_step(_pipe, _i, _t, cb_kwargs):
            sync()
            step_ends.append(time.perf_counter())
            return cb_kwargs

        captured: dict = {}
        with self._capturing_condition(pipe, captured):
            latents = pipe(output_type="latent", callback_on_step_end=on_step, **kw).frames
        sync()
        t_denoise = time.perf_counter()
        if self.options.save_latents and decode:
            self._take_latents = self.take_latents(latents, kw, captured, prompt, last is not None)
        if not decode:
            return None, {"denoise": round(time.perf_counter() - t_embed, 4)}
        video = self.decode(pipe, latents)
        sync()
        t_end = time.perf_counter()
        steps = np.diff([t_embed] + step_ends).tolist()
        timing = {
            "embed": round(t_embed - t0, 4),
            "denoise": round(t_denoise - t_embed, 4),
            "decode": round(t_end - t_denoise, 4),
            "steps": [round(s, 4) for s in steps],
        }
        return to_uint8(video[0]), timing

    def follow(self, args: dict) -> None:
        """A follower rank's share of a clip the leader announced (wan/parallel.py serve)."""
        self.load()
        args = dict(args)
        self.options.steps = args.pop("steps")
        self._ensure_plan(args["width"], args["height"], args["frames"])
        self.render(**args, decode=False)

    @contextmanager
    def _capturing_condition(self, pipe, captured: dict):
        """With save_latents: keep what the pipeline's prepare_latents returns (the image
        conditioning), restoring whatever prepare_latents the pipeline had."""
        if not self.options.save_latents:
            yield
            return
        had = "prepare_latents" in vars(pipe)
        before = pipe.prepare_latents

        def prepare(*a, **k):
            out = before(*a, **k)
            captured["prepared"] = out
            return out

        pipe.prepare_latents = prepare
        try:
            yield
        finally:
            if had:
                pipe.prepare_latents = before
            else:
                del pipe.prepare_latents

    def take_latents(self, latents, kw: dict, captured: dict, prompt: str, first_last: bool):
        """The take's final latents, prompt embedding and image conditioning (take_latents.py)."""
        from cinerl.generation.wan.take_latents import TakeLatents, prompt_key

        v = self.variant
        prepared = captured.get("prepared")
        kind, cond = "none", None
        if isinstance(prepared, tuple) and len(prepared) == 3:  # 5B: (latents, condition, mask)
            kind, cond = "first_frame", prepared[1][0]
        elif isinstance(prepared, tuple) and len(prepared) == 2:  # A14B i2v: mask + image latents
            kind, cond = "concat", prepared[1][0]
        meta = {
            "variant": v.name,
            "width": kw["width"],
            "height": kw["height"],
            "num_frames": kw["num_frames"],
            "prompt": prompt,
            "prompt_key": prompt_key(prompt, v.max_seq_len),
            "first_last_frame": first_last,
        }
        return TakeLatents(
            latents[0].detach().float().cpu(),
            kw["prompt_embeds"][0].detach().cpu(),
            cond.detach().float().cpu() if cond is not None else None,
            kind,
            meta,
        )

    def decode(self, pipe, latents) -> np.ndarray:
        """Latents to float frames in [0, 1], exactly as the diffusers Wan pipelines do it."""
        import torch
        from diffusers.utils.torch_utils import get_module_execution_device

        vae = self.comp.vae
        with torch.no_grad():
            latents = latents.to(get_module_execution_device(vae), dtype=vae.dtype)
            mean = torch.tensor(vae.config.latents_mean).view(1, vae.config.z_dim, 1, 1, 1)
            inv_std = 1.0 / torch.tensor(vae.config.latents_std).view(1, vae.config.z_dim, 1, 1, 1)
            latents = latents / inv_std.to(latents) + mean.to(latents)
            video = vae.decode(latents, return_dict=False)[0].float()
            frames = pipe.video_processor.postprocess_video(video, output_type="np")
        pipe.maybe_free_model_hooks()
        return frames


_SHARED: dict[str, WanBackend] = {}


def shared_backend(options: WanSettings) -> WanBackend:
    """One loaded backend per process for the same options, so the video backend and a Wan
    reference-image backend in the same run share the weights instead of loading them twice.
    Only the latest options are kept, so a process that switches models frees the old ones."""
    key = options.model_dump_json()
    if key not in _SHARED:
        _SHARED.clear()
        release_memory()
        _SHARED[key] = WanBackend(options)
    return _SHARED[key]


def preflight(settings: Settings, source: dict[str, str]) -> Settings:
    """Before a run writes anything: check every weight file (one clear error), and use the
    variant's own frame size and fps where the user did not choose them."""
    backend = shared_backend(settings.wan)
    v = backend.variant
    if settings.wan.gpus > 1:
        if settings.executor.kind == "ray":
            raise UserError(
                "--gpus N (one clip over N GPUs) and --executor ray (one take per GPU) cannot be "
                "combined: choose one way to use the GPUs"
            )
        preflight_parallel(settings.wan, backend)
    if settings.wan.lora:
        from cinerl.generation.wan.lora import preflight_lora

        preflight_lora(settings.wan.lora, v.name)
    update = {}
    if source.get("run.width", "default") == "default":
        update.update({"run.width": v.width, "run.height": v.height})
    if source.get("run.fps", "default") == "default":
        update["run.fps"] = v.fps
    return settings.updated(**update) if update else settings


def preflight_parallel(options: WanSettings, backend: WanBackend) -> str | None:
    """`--gpus N`: the GPUs are there, and the scheme suits the model (its head count, read
    from the transformer's config.json) and the other settings; one line otherwise."""
    import json

    import torch

    from cinerl.generation.wan import launch, parallel

    launch.check_gpus(options.gpus)
    heads = None
    folder = (backend.sources.paths.get("transformer") if backend.sources else None) or None
    if folder is not None and (folder / "config.json").is_file():
        heads = json.loads((folder / "config.json").read_text()).get("num_attention_heads")
    return parallel.check_plan(
        options.gpus,
        options.parallel,
        heads=heads,
        guidance=backend.variant.guidance,
        cuda=torch.cuda.is_available(),
        step_cache=bool(options.step_cache or options.fast),
    )


def image_backend(options: WanSettings | None, model_path: str | None = None, **_) -> WanBackend:
    """Wan2.2 text-to-video asked for one frame: reference stills from the same loaded weights
    as the run's video backend; the folder is `model_path` (image_model_path) or wan.model_dir."""
    options = options or WanSettings()
    if model_path:
        options = options.model_copy(update={"model_dir": model_path})
    if not options.model_dir:
        raise BackendUnavailable(
            "the Wan image backend needs a local Wan2.2 diffusers folder: set "
            "run.image_model_path (or wan.model_dir)"
        )
    return shared_backend(options)


def _factory(options: WanSettings | None, kind: str, model_path: str | None = None, **_) -> WanBackend:
    if kind == "image":
        return image_backend(options, model_path)
    return shared_backend(options or WanSettings())


register_backend(
    "wan",
    _factory,
    "wan",
    kinds=("video", "image"),
    preflight=preflight,
    # memory placement, kernels and compilation change speed, not the frames beyond the
    # kernels' noise floor (benchmarks/wan_speed.py measures that floor)
    frame_neutral=(
        "wan.offload",
        "wan.text_encoder",
        "wan.attention",
        "wan.compile",
        "wan.compile_mode",
        "wan.cudnn_benchmark",
        # several GPUs share the same computation; the exchange reorders float sums only
        "wan.gpus",
        "wan.parallel",
    ),
    description="Wan2.2 through diffusers (CUDA; weights from local folders)",
)
