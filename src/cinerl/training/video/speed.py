"""How a Wan trainer runs fast, shared by the DPO trainer, online GRPO and the benchmark
(benchmarks/train_video.py): the attention kernel, regional compilation, the optimizer and when
to checkpoint activations.

- Attention: a kernel with a backward (`generation/wan/attention.training_attention`): cuDNN SDPA
  on CUDA where its kernel takes the head size, native SDPA on ROCm (`torch.version.hip`) and on
  the CPU. The fa3-fwd wheel inference uses has no backward; asking for it falls back, said in
  the log.
- The forwards no gradient goes through (online GRPO's rollouts, its reference forward and its
  evaluation samples) may use the forward-only fa3-fwd kernel (`ForwardAttention`,
  `--rollout-attention auto`): it is the fastest attention on Hopper, and the log-probabilities
  it gives differ from the training kernel's by about 1e-7 (measured on an H200: 2.4e-7 at most
  over a 4-step window, against a PPO clip range of 1e-3), so the first pass's ratio stays 1.
- Regional compilation (`--compile`): `torch.compile` of each `WanTransformerBlock` through
  diffusers' `compile_repeated_blocks` (the PyTorch regional-compilation recipe): one block's
  graph is compiled once and reused by all 30 or 40, so compiling takes seconds, not minutes.
  auto: on for CUDA (ROCm included), off on the CPU (inductor's C++ build would cost more than
  the few steps a CPU run makes).
- AdamW fused into one kernel on NVIDIA CUDA (`fused=True`); ROCm (`torch.version.hip`) and the
  CPU keep torch's default (foreach), so CPU runs stay bit-identical across resumes.
- Gradient checkpointing: `on`, `off`, or `auto`. auto on the CPU: on above 5k tokens (the
  issue's rule). auto on a GPU: off while the activations fit, since recomputing the forward
  only costs time when memory is not the limit (an H200 has 139 GiB: the obvious code's
  checkpointed 5B step peaks at 14-16 GiB); a CUDA out-of-memory on a step turns it on and
  redoes that step (`Checkpointing.after_oom`), logged once.
"""

from __future__ import annotations

import contextlib
import logging

import torch

log = logging.getLogger(__name__)

TOKENS_RULE = 5000  # the "on by default above 5k tokens" (the CPU's auto)


def tokens_of(frames: int, height: int, width: int, patch: tuple[int, int, int] = (1, 2, 2)) -> int:
    """Transformer tokens of one latent (C, frames, height, width)."""
    return (frames // patch[0]) * (height // patch[1]) * (width // patch[2])


class Checkpointing:
    """The activation-checkpointing decision for a run (see the module doc)."""

    def __init__(self, choice: str, device: torch.device, tokens: int):
        self.choice = choice
        self.device = device
        self.oom_switched = False
        if choice == "on":
            self.on, self.why = True, "gradient checkpointing on (--gradient-checkpointing on)"
        elif choice == "off":
            self.on, self.why = False, "gradient checkpointing off (--gradient-checkpointing off)"
        elif device.type == "cpu":
            self.on = tokens > TOKENS_RULE
            state = "on" if self.on else "off"
            self.why = (
                f"gradient checkpointing {state} ({tokens} tokens; auto on the CPU: on above {TOKENS_RULE})"
            )
        else:
            self.on, self.why = False, "gradient checkpointing off while the activations fit (auto on a GPU)"

    @property
    def can_switch(self) -> bool:
        return self.choice == "auto" and not self.on and self.device.type != "cpu"

    def apply(self, modules) -> None:
        for m in modules:
            if self.on:
                m.enable_gradient_checkpointing()
            elif getattr(m, "gradient_checkpointing", False):
                m.disable_gradient_checkpointing()

    def after_oom(self, modules) -> bool:
        """On a CUDA out-of-memory: turn checkpointing on (auto only); whether to redo the step."""
        if not self.can_switch:
            return False
        self.on, self.oom_switched = True, True
        self.why = "gradient checkpointing on: a step ran out of GPU memory without it (auto)"
        log.warning(self.why)
        self.apply(modules)
        torch.cuda.empty_cache()
        return True


def setup_attention(modules, dtype, choice: str = "auto") -> str:
    """Set the training attention kernel on every module; the log line (also returned)."""
    from cinerl.generation.wan.attention import training_attention

    modules = list(modules)
    attn, why = training_attention(choice, modules[0].config.attention_head_dim, dtype)
    for m in modules:
        if attn is not None:
            m.set_attention_backend(attn)
    log.info(why)
    return why


class ForwardAttention:
    """fa3-fwd for the forwards no gradient is taken through, the training kernel for the rest:
    `with fast():` gives every WanAttention one fa3-fwd processor (made once, so regional compile
    keeps one graph per kernel instead of recompiling) and puts the training processors back
    after. Off (a no-op, with the reason) without CUDA, on ROCm, where the fa3-fwd probe fails,
    or with choice `training`."""

    def __init__(self, modules, dtype, choice: str = "auto", device: torch.device | None = None):
        from cinerl.generation.wan import attention as wa

        if choice not in ("auto", "training"):
            raise ValueError(f"rollout attention {choice!r}: auto or training")
        modules = list(modules)
        self.fast = None
        self.training: list[tuple] = []  # (WanAttention, its training processor)
        if choice == "training":
            self.why = "forward-only attention: the training kernel (--rollout-attention training)"
        elif not _nvidia(device or modules[0].device):
            self.why = "forward-only attention: the training kernel (fa3-fwd needs NVIDIA CUDA)"
        else:
            runs, probe = wa.fa3_runs(modules[0].config.attention_head_dim, dtype)
            if not runs:
                self.why = f"forward-only attention: the training kernel ({probe})"
            else:
                self.fast = wa.fa3_processor()
                self.training = [(mod, mod.processor) for m in modules for mod in wa.wan_attentions(m)]
                self.why = "forward-only attention (rollouts, reference, evaluation): fa3-fwd"
        log.info(self.why)

    @property
    def kernel(self) -> str:
        return "fa3_fwd" if self.fast is not None else "training"

    @contextlib.contextmanager
    def __call__(self):
        if self.fast is None:
            yield
            return
        for mod, _ in self.training:
            mod.set_processor(self.fast)
        try:
            yield
        finally:
            for mod, training in self.training:
                mod.set_processor(training)


def _nvidia(device: torch.device) -> bool:
    from cinerl.generation.wan.attention import is_rocm

    return device.type == "cuda" and not is_rocm()


def compile_wanted(choice: str, device: torch.device) -> bool:
    return choice == "on" or (choice == "auto" and device.type == "cuda")


def compile_blocks(modules, mode: str | None = None) -> int:
    """Regional compilation: torch.compile each WanTransformerBlock (diffusers'
    compile_repeated_blocks); how many blocks were compiled."""
    n = 0
    kw = {"mode": mode} if mode else {}
    for m in modules:
        m.compile_repeated_blocks(fullgraph=False, **kw)
        n += sum(1 for b in m.modules() if b.__class__.__name__ in m._repeated_blocks)
    log.info("regional compile: %d transformer blocks", n)
    return n


def adamw(params, lr: float, weight_decay: float, device: torch.device) -> torch.optim.Optimizer:
    """AdamW, fused into one kernel on NVIDIA CUDA, torch's default elsewhere (ROCm, CPU)."""
    return torch.optim.AdamW(
        params, lr=lr, betas=(0.9, 0.999), weight_decay=weight_decay, fused=_nvidia(device)
    )


def is_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()
