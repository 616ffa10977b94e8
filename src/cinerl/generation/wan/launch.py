"""Starting one process per GPU for `--gpus N`: the torchrun command and its environment.

`cinerl make --gpus N` (and benchmarks/wan_speed.py) re-executes itself under
`torch.distributed.run --standalone --nproc-per-node N` when it is not already one of torchrun's
processes. The environment keeps NVLink multicast (NVLS) off in NCCL, torch's symmetric memory
and NVSHMEM: the lent multi-GPU machines hang or fail with it on, as their device notes say.

`CINERL_PARALLEL_CPU=1` lets N gloo processes on the CPU stand in for N GPUs (tests only).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from cinerl.core.errors import UserError

NVLS_OFF = {
    "NCCL_NVLS_ENABLE": "0",
    "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1",
    "NVSHMEM_DISABLE_NVLS": "1",
}
CPU_STAND_IN = "CINERL_PARALLEL_CPU"
# set by torchrun in every process it starts (torch/distributed/elastic/agent/server/api.py)
LAUNCHED_MARKERS = ("TORCHELASTIC_RUN_ID", "LOCAL_RANK")


def launched(env: Mapping[str, str] | None = None) -> bool:
    """Whether this process is one of torchrun's (so it must not launch again)."""
    env = os.environ if env is None else env
    return all(k in env for k in LAUNCHED_MARKERS)


def visible_gpus(env: Mapping[str, str] | None = None) -> tuple[int, str]:
    """How many devices `--gpus` may ask for, and what they are."""
    env = os.environ if env is None else env
    if env.get(CPU_STAND_IN) == "1":
        return 64, "gloo processes on the CPU (CINERL_PARALLEL_CPU=1)"
    import torch

    n = torch.cuda.device_count()
    return n, f"{n} CUDA GPU{'s' if n != 1 else ''} visible"


def check_gpus(gpus: int, env: Mapping[str, str] | None = None) -> None:
    """More GPUs than this machine shows: one line, before anything starts."""
    if gpus < 1:
        raise UserError(f"--gpus must be 1 or more (got {gpus})")
    if gpus == 1:
        return
    n, what = visible_gpus(env)
    if gpus > n:
        raise UserError(f"--gpus {gpus} asks for more GPUs than this machine has ({what})")


def torchrun_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The launched processes' environment: this one's, with NVLink multicast forced off."""
    out = dict(os.environ if env is None else env)
    out.update(NVLS_OFF)
    return out


def torchrun_command(gpus: int, argv: Sequence[str], python: str | None = None) -> list[str]:
    """`python -m torch.distributed.run --standalone --nproc-per-node N SCRIPT ARGS`:
    --standalone picks a free local rendezvous port, so two runs on one host do not collide."""
    script, *rest = argv
    path = Path(script)
    if not path.is_file():  # `python -m cinerl...` gives argv[0] as a module's file path or "-m"
        raise UserError(f"cannot re-run {script!r} under torchrun; start it as a script or with torchrun")
    return [
        python or sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={gpus}",
        str(path),
        *rest,
    ]


def relaunch(gpus: int, argv: Sequence[str] | None = None) -> int:
    """Run this same command again as N torchrun processes; their exit code."""
    cmd = torchrun_command(gpus, list(sys.argv if argv is None else argv))
    return subprocess.run(cmd, env=torchrun_env()).returncode
