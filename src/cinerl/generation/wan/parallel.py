"""One Wan clip on several GPUs: the schemes, their checks, and the rank-0-leads protocol.

Three schemes, one process per GPU (launched by torchrun; wan/launch.py):

- `ulysses` and `ring`: diffusers' own context parallelism (`ContextParallelConfig`,
  `ModelMixin.enable_parallelism`, the `_cp_plan` that `WanTransformer3DModel` declares). The
  video tokens are split over the GPUs; Ulysses trades them for heads with all-to-alls around
  attention (the head count must divide by N), ring passes key/value chunks round and merges the
  partial softmaxes by their log-sum-exp (Jacobs et al. 2023, DeepSpeed-Ulysses; Liu et al.
  2023, Ring Attention).
- `cfg`: the conditional branch on rank 0 and the unconditional one on rank 1, exchanged by one
  all-gather per step. Written by hand because the installed diffusers has no CFG-parallel
  (its `_modeling_parallel.py` lists "CFG/Data Parallel" as a TODO); it is a diffusers
  `ModelHook` on the transformer, keyed by the "cond"/"uncond" cache context that the Wan
  pipelines already set around each branch.

Every rank loads the weights and runs the denoising loop; rank 0 leads: it runs the film and,
before each clip, sends the clip's arguments to the others (`announce`), which wait in
`serve` and render the same clip without decoding it. Only rank 0 decodes and writes.

On the CPU (gloo) `ulysses` and `cfg` run; `ring` cannot: diffusers' ring attention needs an
attention kernel that returns the log-sum-exp, and native SDPA's forward op raises
"Native attention does not support return_lse=True", while those that return it
(`_native_flash`, `_native_cudnn`, flash-attn, sage) have no CPU kernel.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from cinerl.core.errors import UserError

log = logging.getLogger(__name__)

SCHEMES = ("ulysses", "ring", "cfg")
# attention kernels diffusers' context parallelism accepts (its registry's supports_context_parallel)
CP_ATTENTION_CUDA = "_native_cudnn"


@dataclass(frozen=True)
class World:
    """This process's place among the torchrun processes of one clip."""

    rank: int
    size: int
    local_rank: int

    @property
    def leader(self) -> bool:
        return self.rank == 0


def world_from_env(env=None) -> World | None:
    """The torchrun world (RANK, WORLD_SIZE, LOCAL_RANK), or None outside torchrun or alone."""
    env = os.environ if env is None else env
    size = int(env.get("WORLD_SIZE", "1") or 1)
    if size <= 1:
        return None
    return World(int(env.get("RANK", "0")), size, int(env.get("LOCAL_RANK", env.get("RANK", "0"))))


def resolve_scheme(scheme: str, gpus: int) -> str | None:
    """auto: Ulysses (one all-to-all pair per attention, the cheaper exchange over NVLink)."""
    if gpus <= 1:
        return None
    return "ulysses" if scheme == "auto" else scheme


def check_plan(
    gpus: int,
    scheme: str,
    *,
    heads: int | None = None,
    guidance: float | None = None,
    cuda: bool = True,
    step_cache: bool = False,
) -> str | None:
    """The scheme `--gpus N --parallel S` runs, or one UserError saying why it cannot."""
    if gpus < 1:
        raise UserError(f"--gpus must be 1 or more (got {gpus})")
    if scheme not in ("auto", *SCHEMES):
        raise UserError(f"--parallel must be one of auto, {', '.join(SCHEMES)} (got {scheme!r})")
    chosen = resolve_scheme(scheme, gpus)
    if chosen is None:
        return None
    if step_cache:
        raise UserError(
            "--fast/--step-cache cannot be combined with --gpus above 1: each rank would decide to "
            "skip a step on its own and the ranks would stop exchanging in step"
        )
    if chosen == "cfg":
        if gpus != 2:
            raise UserError(
                f"--parallel cfg puts the two guidance branches on two GPUs: use --gpus 2 (got {gpus})"
            )
        if guidance is not None and guidance <= 1.0:
            raise UserError(
                f"--parallel cfg needs classifier-free guidance, and the guidance scale is {guidance}"
            )
    if chosen == "ulysses" and heads is not None and heads % gpus:
        raise UserError(
            f"--parallel ulysses splits the attention heads over the GPUs: the model has {heads} "
            f"heads, which do not divide by --gpus {gpus} (use a divisor of {heads}, or --parallel ring)"
        )
    if chosen == "ring" and not cuda:
        raise UserError(
            "--parallel ring needs a CUDA GPU: diffusers' ring attention needs an attention kernel "
            "that returns the log-sum-exp, and none of those runs on the CPU"
        )
    return chosen


def check_tokens(tokens: int, gpus: int, width: int, height: int, frames: int) -> None:
    """Context parallelism splits the video tokens evenly (diffusers' EquipartitionSharder)."""
    if tokens % gpus:
        raise UserError(
            f"{width}x{height}x{frames} makes {tokens} video tokens, which do not split evenly over "
            f"--gpus {gpus}; choose another size or frame count, or --parallel cfg"
        )


def video_tokens(pipe, transformer, width: int, height: int, frames: int) -> int:
    """Tokens the transformer sees for one clip: latent frames x latent rows x latent columns
    over the patch size (the Wan pipelines' prepare_latents and the patch embedding)."""
    pt, ph, pw = transformer.config.patch_size
    lat_f = (frames - 1) // pipe.vae_scale_factor_temporal + 1
    s = pipe.vae_scale_factor_spatial
    return (lat_f // pt) * (height // s // ph) * (width // s // pw)


# the process group ------------------------------------------------------------------------
_CONTROL = {"group": None, "world": None}
CONTROL_TIMEOUT = timedelta(days=1)


def init(world: World) -> None:
    """Join the clip's process group (NCCL on GPUs, gloo on the CPU) and a gloo group for the
    leader's small messages (a pickled request must not go through NCCL's device buffers)."""
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        cuda = torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(world.local_rank)
        dist.init_process_group("nccl" if cuda else "gloo")
    if _CONTROL["group"] is None:
        # the followers wait here while rank 0 plans, scores and stitches: no 30-minute timeout
        _CONTROL["group"] = dist.new_group(backend="gloo", timeout=CONTROL_TIMEOUT)
        _CONTROL["world"] = world
    log.info("wan parallel: rank %d of %d joined (%s)", world.rank, world.size, dist.get_backend())


def joined() -> World | None:
    return _CONTROL["world"]


def finish() -> None:
    """The leader tells the others there is nothing more to render; everyone leaves the group."""
    import torch.distributed as dist

    w = _CONTROL["world"]
    if w is None:
        return
    if w.leader:
        _send({"stop": True})
    group, _CONTROL["group"], _CONTROL["world"] = _CONTROL["group"], None, None
    if dist.is_initialized():
        if group is not None:
            dist.destroy_process_group(group)
        dist.destroy_process_group()


def _send(message: dict) -> None:
    import torch.distributed as dist

    dist.broadcast_object_list([message], src=0, group=_CONTROL["group"])


def _receive() -> dict:
    import torch.distributed as dist

    box = [None]
    dist.broadcast_object_list(box, src=0, group=_CONTROL["group"])
    return box[0]


def announce(**render_args) -> None:
    """Leader: the next clip's render arguments, to every other rank (no-op alone)."""
    w = _CONTROL["world"]
    if w is not None and w.leader:
        _send({"render": render_args})


def serve(backend) -> int:
    """Follower: render what the leader announces, without decoding, until it says stop;
    returns how many clips it rendered."""
    w = _CONTROL["world"]
    if w is None or w.leader:
        raise RuntimeError("serve() runs on the ranks above 0 of a joined process group")
    backend.load()
    n = 0
    while True:
        msg = _receive()
        if msg.get("stop"):
            log.info("wan parallel: rank %d rendered %d clips with the leader", w.rank, n)
            return n
        backend.follow(msg["render"])
        n += 1


# applying a scheme ------------------------------------------------------------------------
@contextmanager
def _one_device_on_cpu():
    """diffusers 0.42.1 `ModelMixin._resolve_parallel_config` computes the rank's device as
    `rank % torch.accelerator.device_count()`, which divides by zero on a host without an
    accelerator; the device it computes is only recorded (the CPU mesh and the gloo collectives
    do not use it). So on the CPU the count reads 1 for that call; on GPUs nothing changes."""
    import torch

    if torch.accelerator.device_count() > 0:
        yield
        return
    original = torch.accelerator.device_count
    torch.accelerator.device_count = lambda: 1
    try:
        yield
    finally:
        torch.accelerator.device_count = original


def apply(scheme: str, experts: list, world: World) -> dict:
    """Make each expert transformer run its share of one clip; what was done, for the report."""
    if scheme in ("ulysses", "ring"):
        from diffusers import ContextParallelConfig

        for m in experts:
            degree = {"ulysses_degree": world.size} if scheme == "ulysses" else {"ring_degree": world.size}
            with _one_device_on_cpu():
                m.enable_parallelism(config=ContextParallelConfig(**degree))
        return {"scheme": scheme, "gpus": world.size, "by": "diffusers context parallelism"}
    if scheme == "cfg":
        for m in experts:
            install_cfg_parallel(m, world)
        return {"scheme": "cfg", "gpus": world.size, "by": "cinerl CFG-parallel hook"}
    raise ValueError(scheme)


def branch_embeddings(positive, negative):
    """CFG-parallel: the prompt embeddings this rank's pipeline call gets. Rank 1 computes the
    unconditional branch, so its "cond" call carries the negative prompt (the hook then gives
    every rank both branches in the pipeline's order)."""
    w = _CONTROL["world"]
    if w is not None and w.rank == 1:
        return negative, positive
    return positive, negative


CFG_HOOK = "cinerl_cfg_parallel"


def install_cfg_parallel(model, world: World) -> None:
    """Register the CFG-parallel hook on one Wan transformer (diffusers' HookRegistry)."""
    from diffusers.hooks.hooks import BaseState, HookRegistry, ModelHook, StateManager

    class _NoState(BaseState):
        def reset(self, *args, **kwargs) -> None:
            pass

    class CFGParallelHook(ModelHook):
        """On the "cond" call each rank runs its own branch and the two outputs are
        all-gathered; the "uncond" call that follows returns rank 1's output without running."""

        _is_stateful = True  # so that cache_context(name) reaches the StateManager below

        def __init__(self):
            super().__init__()
            self.state = StateManager(_NoState)
            self.pending = None
            self.calls = {"ran": 0, "from_peer": 0}

        def reset_state(self, module):
            self.pending = None
            return module

        def new_forward(self, module, *args, **kwargs):
            import torch
            import torch.distributed as dist

            ctx = self.state._context
            name = ctx.name if ctx is not None else None
            if name == "uncond":
                if self.pending is None:
                    raise RuntimeError("CFG-parallel: an unconditional call without its conditional one")
                out, self.pending = self.pending, None
                self.calls["from_peer"] += 1
                return out
            if name != "cond":
                raise RuntimeError(
                    f"CFG-parallel needs the pipeline's cache_context('cond'/'uncond'), got {name!r}"
                )
            result = self.fn_ref.original_forward(*args, **kwargs)
            sample = result[0] if isinstance(result, tuple) else result.sample
            parts = [torch.empty_like(sample) for _ in range(world.size)]
            dist.all_gather(parts, sample.contiguous())
            self.calls["ran"] += 1
            self.pending = _like(result, parts[1])
            return _like(result, parts[0])

    HookRegistry.check_if_exists_or_initialize(model).register_hook(CFGParallelHook(), CFG_HOOK)


def _like(result, sample):
    """A transformer output of the same kind as `result` carrying `sample`."""
    if isinstance(result, tuple):
        return (sample, *result[1:])
    return type(result)(sample=sample)


def cfg_calls(model) -> dict | None:
    from diffusers.hooks.hooks import HookRegistry

    hook = HookRegistry.check_if_exists_or_initialize(model).get_hook(CFG_HOOK)
    return None if hook is None else dict(hook.calls)
