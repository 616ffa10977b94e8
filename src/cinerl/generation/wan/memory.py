"""Memory for the Wan backend: a placement plan chosen from free GPU memory, its application to
the loaded modules, and the ladder walked on CUDA out-of-memory.

The plan is the fastest placement whose estimate fits: everything resident; then the text encoder
on the CPU (prompt embeddings are cached, so it runs rarely); then VAE tiling; then model CPU
offload (one model on the GPU at a time); then group offload (transformer blocks streamed in).
Each choice can be forced by a flag. The activation estimates are rough and are anchored on one
measurement (5B VAE decode of 1280x704x121 in fp32: 33 GiB peak, 17.6 GiB tiled, H100); the
ladder catches what the estimate gets wrong.
"""

from __future__ import annotations

import gc
import logging
from dataclasses import asdict, dataclass, replace

from cinerl.generation.wan.variants import WanVariant, round_frames

log = logging.getLogger(__name__)
GiB = 1024**3
OFFLOAD_CHOICES = ("auto", "none", "model", "group")
TILING_CHOICES = ("auto", "on", "off")
TEXT_ENCODER_CHOICES = ("auto", "gpu", "cpu")
# Anchor (issue 5): decoding 1280x704 frames with the 5B VAE (decoder width 256) peaks at
# 33 GiB untiled and 17.6 GiB tiled; the peak follows the frame area and the decoder width.
VAE_BYTES_PER_PIXEL_UNTILED = 33 * GiB / (1280 * 704) / 256
VAE_BYTES_PER_PIXEL_TILED = 17.6 * GiB / (1280 * 704) / 256
LADDER = ("vae_tiling", "model_offload", "group_offload", "fewer_frames", "lower_resolution")


@dataclass(frozen=True)
class MemoryPlan:
    offload: str = "none"  # none | model | group
    vae_tiling: bool = False
    text_encoder_cpu: bool = False
    frame_scale: float = 1.0  # set by the ladder: share of the requested frames
    size_scale: float = 1.0  # set by the ladder: share of the requested side lengths
    reason: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def module_bytes(module) -> int:
    if module is None:
        return 0
    return sum(p.numel() * p.element_size() for p in module.parameters())


def estimate_bytes(variant: WanVariant, comp, width: int, height: int, num_frames: int) -> dict:
    """Rough peak needs, per part, in bytes."""
    t = comp.transformer
    inner = t.config.num_attention_heads * t.config.attention_head_dim
    lat_f = (num_frames - 1) // 4 + 1
    tokens = lat_f * (height // variant.size_multiple) * (width // variant.size_multiple)
    # the largest live tensors of one block: the FFN hidden state plus a few residual copies, bf16,
    # and the cond/uncond passes run one after the other
    act = tokens * (t.config.ffn_dim + 6 * inner) * 2 * 2
    dec_dim = comp.vae.config.decoder_base_dim or comp.vae.config.base_dim
    return {
        "transformers": module_bytes(t) + module_bytes(comp.transformer_2),
        "largest_expert": max(module_bytes(t), module_bytes(comp.transformer_2)),
        "largest_block": module_bytes(t.blocks[0]) if hasattr(t, "blocks") else 0,
        "text_encoder": module_bytes(comp.text_encoder),
        "vae": module_bytes(comp.vae),
        "activations": act,
        "vae_decode": int(VAE_BYTES_PER_PIXEL_UNTILED * width * height * dec_dim),
        "vae_decode_tiled": int(VAE_BYTES_PER_PIXEL_TILED * min(width * height, 256 * 256 * 4) * dec_dim),
    }


def plan_memory(
    free_bytes: int | None,
    need: dict,
    offload: str = "auto",
    vae_tiling: str = "auto",
    text_encoder: str = "auto",
    headroom: float = 0.9,
) -> MemoryPlan:
    """The fastest placement that fits `free_bytes` (None: no GPU, nothing to plan), with the
    forced choices kept as given."""
    if free_bytes is None:
        return MemoryPlan(
            offload="none",
            vae_tiling=vae_tiling == "on",
            text_encoder_cpu=True,
            reason="no CUDA device: everything on the CPU",
        )
    budget = free_bytes * headroom
    te_gpu = need["text_encoder"]
    resident = need["transformers"] + need["vae"] + need["activations"]
    candidates = []
    for off in ("none", "model", "group"):
        for tiling in (False, True):
            for te_cpu in (False, True):
                decode = need["vae_decode_tiled"] if tiling else need["vae_decode"]
                if off == "none":
                    peak = resident + (0 if te_cpu else te_gpu) + decode
                elif off == "model":
                    peak = max(
                        need["largest_expert"] + need["activations"],
                        need["vae"] + decode,
                        0 if te_cpu else te_gpu,
                    )
                else:
                    peak = max(
                        4 * need["largest_block"] + need["activations"],
                        need["vae"] + decode,
                        0 if te_cpu else te_gpu,
                    )
                candidates.append((off, tiling, te_cpu, peak))

    def allowed(c) -> bool:
        off, tiling, te_cpu, _ = c
        return (
            (offload == "auto" or off == offload)
            and (vae_tiling == "auto" or tiling == (vae_tiling == "on"))
            and (text_encoder == "auto" or te_cpu == (text_encoder == "cpu"))
        )

    # candidates are ordered fastest first: offload none < model < group, then tiling, then TE
    options = [c for c in candidates if allowed(c)]
    fitting = [c for c in options if c[3] <= budget]
    off, tiling, te_cpu, peak = (fitting or options[-1:])[0]
    why = f"estimated peak {peak / GiB:.1f} GiB of {free_bytes / GiB:.1f} GiB free" + (
        "" if fitting else " (nothing fits; lowest-memory choice, the OOM ladder may follow)"
    )
    return MemoryPlan(offload=off, vae_tiling=tiling, text_encoder_cpu=te_cpu, reason=why)


def next_rung(
    plan: MemoryPlan, variant: WanVariant, width: int, height: int, num_frames: int
) -> tuple[str, MemoryPlan] | None:
    """The next step down the out-of-memory ladder, skipping steps already in effect or that
    cannot shrink further; None when the ladder is exhausted."""
    for rung in LADDER:
        if rung == "vae_tiling" and not plan.vae_tiling:
            return rung, replace(plan, vae_tiling=True)
        if rung == "model_offload" and plan.offload == "none":
            return rung, replace(plan, offload="model")
        if rung == "group_offload" and plan.offload in ("none", "model"):
            return rung, replace(plan, offload="group")
        if rung == "fewer_frames":
            f = scaled_frames(num_frames, plan.frame_scale)
            if f > 5:
                return rung, replace(plan, frame_scale=plan.frame_scale / 2)
        if rung == "lower_resolution":
            m = variant.size_multiple
            if min(scaled_side(width, plan.size_scale, m), scaled_side(height, plan.size_scale, m)) > m:
                return rung, replace(plan, size_scale=plan.size_scale * 0.75)
    return None


def scaled_frames(num_frames: int, scale: float) -> int:
    return round_frames(max(1, int((num_frames - 1) * scale) + 1))


def scaled_side(side: int, scale: float, multiple: int) -> int:
    return max(multiple, int(side * scale) // multiple * multiple)


def free_cuda_memory() -> int | None:
    import torch

    if not torch.cuda.is_available():
        return None
    free, _ = torch.cuda.mem_get_info()
    # blocks PyTorch's allocator holds but no tensor uses are free to this process too
    return int(free + torch.cuda.memory_reserved() - torch.cuda.memory_allocated())


def release_memory() -> None:
    """After an OOM: drop what Python still holds and return cached blocks to the driver."""
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class Placement:
    """Applies a MemoryPlan to the loaded components, idempotently, and only changes what
    differs from the placement already in force."""

    def __init__(self, comp, device):
        self.comp = comp
        self.device = device
        self.current: MemoryPlan | None = None
        self.offload_owner = None  # the pipeline whose model-offload hooks are installed
        self.notes: list[str] = []

    @property
    def on_gpu(self) -> bool:
        return self.device.type == "cuda"

    def apply(self, plan: MemoryPlan) -> None:
        c = self.comp
        if self.current is None or self.current.vae_tiling != plan.vae_tiling:
            (c.vae.enable_tiling if plan.vae_tiling else c.vae.disable_tiling)()
        if not self.on_gpu:
            if plan.offload != "none":
                self.notes.append(f"{plan.offload} offload not applied: no CUDA device")
            self.current = plan
            return
        same_offload = self.current is not None and self.current.offload == plan.offload
        same_te = self.current is not None and self.current.text_encoder_cpu == plan.text_encoder_cpu
        if not same_offload:
            self._clear_offload()
            if plan.offload == "group":
                for m in (c.transformer, c.transformer_2):
                    if m is not None:
                        m.enable_group_offload(
                            onload_device=self.device,
                            offload_type="block_level",
                            num_blocks_per_group=1,
                            use_stream=True,
                        )
                c.vae.to(self.device)
            elif plan.offload == "none":
                for m in (c.transformer, c.transformer_2, c.vae):
                    if m is not None:
                        m.to(self.device)
        if (
            plan.offload in ("none", "group")
            and c.text_encoder is not None
            and (not same_te or not same_offload)
        ):
            c.text_encoder.to("cpu" if plan.text_encoder_cpu else self.device)
        self.current = plan
        release_memory()

    def before_call(self, pipe) -> None:
        """Model offload hooks live on a pipeline; the two pipelines share modules, so the hooks
        move to whichever pipeline runs next."""
        if self.on_gpu and self.current is not None and self.current.offload == "model":
            if self.offload_owner is not pipe:
                if self.offload_owner is not None:
                    self.offload_owner.remove_all_hooks()
                pipe.enable_model_cpu_offload(device=self.device)
                self.offload_owner = pipe

    def _clear_offload(self) -> None:
        from diffusers.hooks import HookRegistry

        if self.offload_owner is not None:
            self.offload_owner.remove_all_hooks()
            self.offload_owner = None
        for m in (self.comp.transformer, self.comp.transformer_2):
            if m is None:
                continue
            registry = HookRegistry.check_if_exists_or_initialize(m)
            for name in (
                "group_offloading",
                "layer_execution_tracker",
                "lazy_prefetch_group_offloading",
            ):  # diffusers.hooks.group_offloading
                registry.remove_hook(name, recurse=True)
        for m in (self.comp.transformer, self.comp.transformer_2, self.comp.vae, self.comp.text_encoder):
            if m is not None:
                m.to("cpu")
        release_memory()
