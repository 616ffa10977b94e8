"""Processes for the Wan LoRA trainers (Flow-DPO `dpo.py`, Flow-GRPO `grpo.py`): one place for
what both need to run as `--strategy single|ddp|fsdp`.

- `accelerator`: accelerate's `Accelerator` (one GPU or the CPU; several processes under
  `torchrun` / `accelerate launch`, gloo on CPUs, NCCL on GPUs);
- `resolve_strategy`: the strategy a run uses, checked against how it was launched (one line,
  exit 2, before a model loads);
- `shard`: FSDP2 (`torch.distributed.fsdp.fully_shard`) per WanTransformerBlock, then per expert;
- `TrainState`: the LoRA tensors and optimiser state to save and restore, gathered whole from
  FSDP2 shards on every process (the main one writes them);
- `lora_state_dicts`: each expert's peft LoRA state dict, whole.

Written here rather than taken from accelerate's FSDP plugin because the trainers shard per
transformer block with FSDP2 directly and gather only the (small) LoRA tensors for checkpoints.
"""

from __future__ import annotations

import torch

from cinerl.core.errors import UserError

STRATEGIES = ("auto", "single", "ddp", "fsdp")


def accelerator(experts_trained: int = 1):
    """The run's Accelerator (mixed precision is the trainers' own: bf16 weights, fp32 LoRA)."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    handlers = []
    if experts_trained > 1:  # one expert per forward: the other's LoRA has no gradient then
        handlers.append(DistributedDataParallelKwargs(find_unused_parameters=True))
    # cpu=True without CUDA: accelerate only sets up gloo for several CPU processes when told
    return Accelerator(kwargs_handlers=handlers, mixed_precision="no", cpu=not torch.cuda.is_available())


def resolve_strategy(strategy: str, processes: int) -> str:
    """single, ddp or fsdp for `strategy` (auto: ddp when launched on several processes)."""
    if strategy not in STRATEGIES:
        raise UserError(f"--strategy must be single, ddp or fsdp (got {strategy!r})")
    if strategy == "fsdp" and processes < 2:
        raise UserError(
            "--strategy fsdp shards over several processes: launch with `torchrun "
            "--nproc-per-node N` or `accelerate launch` (one process: --strategy single)"
        )
    if strategy == "single" and processes > 1:
        raise UserError("--strategy single was launched on several processes")
    if strategy == "ddp" and processes < 2:
        return "single"  # DDP of one process is the module itself
    if strategy == "auto":
        return "ddp" if processes > 1 else "single"
    return strategy


def shard(experts) -> None:
    """FSDP2: `fully_shard` each WanTransformerBlock, then each expert."""
    import warnings

    from torch.distributed.fsdp import fully_shard

    # the transformer's output is a view (unpatchify); nothing here changes it in place
    warnings.filterwarnings("ignore", message=".*returned a view tensor.*")
    for m in experts:
        for block in m.blocks:
            fully_shard(block)
        fully_shard(m)


def full(t: torch.Tensor) -> torch.Tensor:
    """A DTensor (an FSDP2 shard) gathered whole; a tensor as it is."""
    return t.full_tensor() if hasattr(t, "full_tensor") else t


class TrainState:
    """The LoRA tensors and optimizer state to save and restore: the module's own, or, under
    FSDP2, shards gathered into full tensors on every process (the main one writes them)."""

    def __init__(self, module, params: dict, opt, fsdp: bool):
        self.module, self.params, self.opt, self.fsdp = module, params, opt, fsdp

    def lora(self) -> dict[str, torch.Tensor]:
        return {n: full(p).detach().cpu().contiguous() for n, p in self.params.items()}

    def optimizer(self) -> dict:
        if not self.fsdp:
            return self.opt.state_dict()
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

        opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
        return get_optimizer_state_dict(self.module, self.opt, options=opts)

    def load(self, lora: dict, optimizer: dict) -> None:
        with torch.no_grad():
            for n, p in self.params.items():
                v = lora[n].to(p.device, p.dtype)
                if self.fsdp:
                    from torch.distributed.tensor import distribute_tensor

                    v = distribute_tensor(v, p.device_mesh, p.placements)
                p.copy_(v)
        if not self.fsdp:
            self.opt.load_state_dict(optimizer)
            return
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

        opts = StateDictOptions(full_state_dict=True)
        set_optimizer_state_dict(self.module, self.opt, optim_state_dict=optimizer, options=opts)


def lora_state_dicts(experts) -> dict[str, dict[str, torch.Tensor]]:
    """Each expert's peft LoRA state dict, whole (gathered from FSDP2 shards on every process)."""
    from peft.utils import get_peft_model_state_dict

    return {
        name: {k: full(v).detach().cpu().contiguous() for k, v in get_peft_model_state_dict(m).items()}
        for name, m in experts.experts.items()
    }
