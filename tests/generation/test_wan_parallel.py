"""One Wan clip on several processes (issue 19), on the CPU: 2-process gloo runs of each scheme
against the one-process clip on a tiny random Wan, the launcher's command and environment, and
the one-line errors of `--gpus`/`--parallel`.

Run as a script, this file is the torchrun worker of the multi-process tests.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
PROMPT = "a woman in a red coat walks on the stormy coast, slow pan"
NEG = "blurry, low quality"
# 64x64 at 5 frames: 2 latent frames x 2 x 2 patches = 8 video tokens (5B), even over 2 ranks
REQUEST = dict(prompt=PROMPT, negative_prompt=NEG, width=64, height=64, num_frames=5, seed=7)


def _settings(model: str, variant: str, gpus: int = 1, scheme: str = "auto"):
    from cinerl.core.settings import WanSettings

    return WanSettings(
        variant=variant,
        model_dir=model,
        steps=2,
        gpus=gpus,
        parallel=scheme,
        save_latents=True,
        compile="off",
    )


def _clip(backend, image: bool):
    from cinerl.core.schema import ClipRequest

    req = dict(REQUEST)
    if image:
        req["init_image"] = np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    backend.load()
    seen: list[int] = []  # tokens the first self-attention gets: a rank's share under context parallelism
    hook = backend.comp.transformer.blocks[0].attn1.register_forward_pre_hook(
        lambda _m, args: seen.append(int(args[0].shape[1]))
    )
    try:
        clip = backend.generate(ClipRequest(**req))
    finally:
        hook.remove()
    clip.metadata["tokens_seen"] = sorted(set(seen))
    from safetensors.torch import load

    latents = load(clip.metadata["files"]["latents.safetensors"])["latents"].numpy()  # --save-latents
    return clip, latents


def worker(argv: list[str]) -> None:
    """torchrun worker: rank 0 renders the clip and saves frames, latents and the report."""
    import torch

    torch.set_num_threads(1)
    model, variant, scheme, out, image = argv
    from cinerl.generation.wan import parallel
    from cinerl.generation.wan.backend import WanBackend

    world = parallel.world_from_env()
    parallel.init(world)
    backend = WanBackend(_settings(model, variant, world.size, scheme))
    try:
        if world.leader:
            clip, latents = _clip(backend, image == "1")
            np.savez(out, frames=clip.frames, latents=latents)
            report = clip.metadata["report"]
            hook = None
            if scheme == "cfg":
                hook = parallel.cfg_calls(backend.comp.transformer)
            info = {
                "parallel": report["speed"]["parallel"],
                "cfg": hook,
                "tokens": clip.metadata["tokens_seen"],
            }
            Path(out + ".json").write_text(json.dumps(info))
        else:
            parallel.serve(backend)
    finally:
        parallel.finish()


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    worker(sys.argv[1:])
    raise SystemExit(0)


# --- the tests --------------------------------------------------------------------------------
from cinerl.core.errors import UserError  # noqa: E402
from cinerl.generation.wan import launch, parallel  # noqa: E402


class _Models(dict):
    """Tiny model folders, each written on first use (the fast tests need the 5B only)."""

    def __init__(self, root: Path):
        super().__init__()
        self.root = root

    def __missing__(self, variant: str) -> str:
        from tests.generation.wan_tiny import write_tiny_model

        self[variant] = str(write_tiny_model(variant, self.root / variant))
        return self[variant]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return _Models(tmp_path_factory.mktemp("wanpar"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_gloo(
    model: str, variant: str, scheme: str, out: Path, image: bool = False, n: int = 2, cpu: bool = True
):
    """2 gloo processes on 127.0.0.1 (NCCL on GPUs with cpu=False), started by torchrun as
    `cinerl make --gpus 2` would be."""
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc-per-node={n}",
        "--master-addr=127.0.0.1",
        f"--master-port={_free_port()}",
        __file__,
        model,
        variant,
        scheme,
        str(out),
        "1" if image else "0",
    ]
    env = {**launch.torchrun_env(), "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    if cpu:  # the CPU tests stay on the CPU on a GPU host too
        env["CUDA_VISIBLE_DEVICES"] = ""
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    got = np.load(str(out) + ".npz")
    return got["frames"], got["latents"], json.loads(Path(str(out) + ".json").read_text())


def one_process(model: str, variant: str, image: bool = False, cpu: bool = True):
    """The reference: the same clip in this process, on one thread like each torchrun worker
    (and on the CPU unless cpu=False, even where a GPU is visible)."""
    from contextlib import nullcontext
    from unittest import mock

    import torch

    from cinerl.generation.wan.backend import WanBackend

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with mock.patch("torch.cuda.is_available", return_value=False) if cpu else nullcontext():
            clip, latents = _clip(WanBackend(_settings(model, variant)), image)
    finally:
        torch.set_num_threads(threads)
    return clip.frames, latents, clip.metadata["tokens_seen"]


# the launcher ----------------------------------------------------------------------------------
def test_launched_processes_get_nvlink_multicast_off_and_keep_the_rest_of_the_environment():
    env = launch.torchrun_env({"PATH": "/bin", "NCCL_NVLS_ENABLE": "1", "HF_HUB_OFFLINE": "1"})
    assert env["NCCL_NVLS_ENABLE"] == "0"  # forced off even where the caller had it on
    assert env["TORCH_SYMM_MEM_DISABLE_MULTICAST"] == "1" and env["NVSHMEM_DISABLE_NVLS"] == "1"
    assert env["PATH"] == "/bin" and env["HF_HUB_OFFLINE"] == "1"


def test_the_launcher_reruns_the_same_command_as_n_torchrun_processes(tmp_path):
    script = tmp_path / "cinerl"
    script.write_text("#!/usr/bin/env python\n")
    cmd = launch.torchrun_command(2, [str(script), "make", "a prompt", "--gpus", "2"], python="/py")
    assert cmd == [
        "/py",
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node=2",
        str(script),
        "make",
        "a prompt",
        "--gpus",
        "2",
    ]
    with pytest.raises(UserError, match="cannot re-run '-c' under torchrun"):
        launch.torchrun_command(2, ["-c", "make"])


def test_a_torchrun_process_is_recognised_and_does_not_launch_again():
    env = {"TORCHELASTIC_RUN_ID": "x", "LOCAL_RANK": "1", "RANK": "1", "WORLD_SIZE": "2"}
    assert launch.launched(env) and not launch.launched({"RANK": "0", "WORLD_SIZE": "2"})
    assert parallel.world_from_env(env) == parallel.World(rank=1, size=2, local_rank=1)
    assert not parallel.world_from_env(env).leader
    assert parallel.world_from_env({"WORLD_SIZE": "1"}) is None  # one process: no group at all


# the checks ------------------------------------------------------------------------------------
def test_bad_gpu_counts_and_schemes_are_refused_in_one_line():
    with pytest.raises(UserError, match=r"--gpus must be 1 or more \(got 0\)"):
        launch.check_gpus(0, {})
    with pytest.raises(UserError, match=r"--gpus 2 asks for more GPUs than this machine has \(0 CUDA GPUs"):
        launch.check_gpus(2, {})
    launch.check_gpus(8, {launch.CPU_STAND_IN: "1"})  # gloo processes stand in (tests)
    with pytest.raises(UserError, match="the model has 24 heads, which do not divide by --gpus 5"):
        parallel.check_plan(5, "ulysses", heads=24)
    assert parallel.check_plan(4, "auto", heads=24) == "ulysses"
    assert parallel.check_plan(1, "cfg", heads=24) is None  # one GPU: no scheme
    assert parallel.check_plan(5, "ring", heads=24) == "ring"  # ring does not split heads
    with pytest.raises(UserError, match="use --gpus 2 \\(got 4\\)"):
        parallel.check_plan(4, "cfg")
    with pytest.raises(UserError, match="needs classifier-free guidance, and the guidance scale is 1.0"):
        parallel.check_plan(2, "cfg", guidance=1.0)
    with pytest.raises(UserError, match="--parallel ring needs a CUDA GPU"):
        parallel.check_plan(2, "ring", cuda=False)
    with pytest.raises(UserError, match="--fast/--step-cache cannot be combined"):
        parallel.check_plan(2, "cfg", step_cache=True)
    with pytest.raises(
        UserError, match="1280x720x81 makes 75 video tokens, which do not split evenly over --gpus 2"
    ):
        parallel.check_tokens(75, 2, 1280, 720, 81)


@pytest.mark.parametrize(
    "args, env, message",
    [
        (["--gpus", "0"], {}, "wan.gpus: Input should be greater than or equal to 1"),
        (["--gpus", "2"], {}, "--gpus 2 asks for more GPUs than this machine has"),
        (
            ["--gpus", "3"],
            {launch.CPU_STAND_IN: "1"},
            "the model has 2 heads, which do not divide by --gpus 3",
        ),
        (
            ["--gpus", "2", "--parallel", "ring"],
            {launch.CPU_STAND_IN: "1"},
            "--parallel ring needs a CUDA GPU",
        ),
    ],
)
def test_cinerl_make_refuses_bad_gpu_input_in_one_line_with_exit_2(
    models, tmp_path, monkeypatch, args, env, message
):
    import torch
    from typer.testing import CliRunner

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the messages of a host without GPUs
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)

    from cinerl.apps.cli.app import app

    out = tmp_path / "run"
    cmd = ["make", PROMPT, "--out", str(out), "--backend", "wan", "--model-dir", models["ti2v-5b"], *args]
    res = CliRunner().invoke(app, cmd, env={launch.CPU_STAND_IN: "0", **env})
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and message in " ".join(res.output.split()), res.output
    assert not out.exists()  # nothing written


# the schemes on 2 gloo processes ---------------------------------------------------------------
# Tolerance: none. Each rank runs the same kernels on the same inputs as the one process, on one
# thread like it: CFG-parallel computes each branch whole; Ulysses computes attention for half the
# heads over all tokens and the per-token layers on half the tokens, and on the CPU neither
# changes an accumulation order. So frames and final latents are asserted equal; on GPUs the
# kernels' own choices make the difference nonzero (benchmarks/wan_speed.py --gpus measures it).
def _same(par, ref):
    frames, latents, info = par
    ref_frames, ref_latents, ref_tokens = ref
    np.testing.assert_array_equal(frames, ref_frames)
    np.testing.assert_array_equal(latents, ref_latents)
    return info, ref_tokens


def test_ulysses_on_two_gloo_processes_gives_the_one_process_clip(models, tmp_path):
    # about 17 s on 2 cores: two torchrun processes, each importing diffusers
    m = models["ti2v-5b"]
    info, ref_tokens = _same(run_gloo(m, "ti2v-5b", "ulysses", tmp_path / "u"), one_process(m, "ti2v-5b"))
    assert info["parallel"] == {"scheme": "ulysses", "gpus": 2, "by": "diffusers context parallelism"}
    assert ref_tokens == [8] and info["tokens"] == [4]  # rank 0's attention saw its half of the tokens


@pytest.mark.heavy  # about 30 s on 2 cores
def test_cfg_parallel_on_two_gloo_processes_gives_the_one_process_clip(models, tmp_path):
    m = models["ti2v-5b"]
    info, _ = _same(run_gloo(m, "ti2v-5b", "cfg", tmp_path / "c"), one_process(m, "ti2v-5b"))
    assert info["parallel"]["scheme"] == "cfg" and info["tokens"] == [8]  # whole branches
    assert info["cfg"] == {"ran": 2, "from_peer": 2}  # 2 steps: one forward each, the other branch received


@pytest.mark.heavy  # about 45 s on 2 cores: two runs of the two-expert model
@pytest.mark.parametrize("scheme", ["ulysses", "cfg"])
def test_two_experts_from_an_image_on_two_gloo_processes_give_the_one_process_clip(models, tmp_path, scheme):
    m = models["i2v-a14b"]
    ref = one_process(m, "i2v-a14b", image=True)
    info, _ = _same(run_gloo(m, "i2v-a14b", scheme, tmp_path / scheme, image=True), ref)
    assert info["parallel"]["scheme"] == scheme


def test_ring_attention_cannot_run_on_the_cpu_for_the_reason_the_docs_give():
    """The reason the ring test below is skipped, checked: if a later diffusers or torch gives
    the CPU a log-sum-exp kernel, this fails and the skip must go."""
    import torch
    from diffusers.models import attention_dispatch as ad

    q = torch.randn(1, 8, 2, 16)
    with pytest.raises(ValueError, match="Native attention does not support return_lse=True"):
        ad._native_attention_forward_op(None, q, q, q, return_lse=True, _save_ctx=False)
    with pytest.raises(NotImplementedError, match="_scaled_dot_product_flash_attention"):
        ad._native_flash_attention_forward_op(None, q, q, q, return_lse=True, _save_ctx=False)


def _two_gpus() -> bool:
    import torch

    return torch.cuda.device_count() >= 2


@pytest.mark.heavy
@pytest.mark.skipif(
    not _two_gpus(),
    reason="ring attention needs 2 CUDA GPUs: diffusers 0.42.1's ring attention needs a kernel that "
    "returns the log-sum-exp, native SDPA's forward op refuses return_lse on the CPU and "
    "_native_flash/_native_cudnn have no CPU kernel (test above)",
)
def test_ring_on_two_gpus_gives_the_one_gpu_clip_within_bf16_noise(tmp_path):
    from tests.generation.wan_tiny import write_tiny_model

    m = write_tiny_model("ti2v-5b", tmp_path / "m")
    _write_transformer(m / "transformer", head_dim=16)  # cuDNN attention takes multiples of 8
    frames, _, info = run_gloo(str(m), "ti2v-5b", "ring", tmp_path / "r", cpu=False)
    ref_frames, _, _ = one_process(str(m), "ti2v-5b", cpu=False)
    assert info["parallel"]["scheme"] == "ring" and info["tokens"] == [4]
    # bf16 on GPUs: the ring's fp32 merge of partial softmaxes is another rounding of the same sum
    assert np.abs(frames.astype(int) - ref_frames).max() <= 8


def _write_transformer(folder: Path, head_dim: int) -> None:
    import shutil

    from diffusers import WanTransformer3DModel

    cfg = WanTransformer3DModel.load_config(str(folder))
    shutil.rmtree(folder)
    WanTransformer3DModel.from_config({**cfg, "attention_head_dim": head_dim}).save_pretrained(folder)


# the whole command -----------------------------------------------------------------------------
@pytest.mark.heavy  # about 60 s on 2 cores: one film on 2 gloo processes, one in one process
def test_cinerl_make_with_gpus_2_relaunches_under_torchrun_and_makes_the_same_film(models, tmp_path):
    from cinerl.core.media import read_mp4
    from tests.e2e.helpers import CINERL

    def make(out: Path, *extra: str) -> dict:
        cmd = [CINERL, "make", PROMPT, "--out", str(out), "--policy", str(out.parent / f"{out.name}.pt")]
        cmd += ["--backend", "wan", "--model-dir", models["ti2v-5b"], "--steps", "2", "--size", "64x64"]
        cmd += ["--fps", "1", "--scenes", "2", "--attempts", "1", "--max-attempts", "1", *extra]
        env = {**os.environ, "HF_HUB_OFFLINE": "1", launch.CPU_STAND_IN: "1", "OMP_NUM_THREADS": "1"}
        env["CUDA_VISIBLE_DEVICES"] = ""  # gloo processes on the CPU, on a GPU host too
        res = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL
        )
        assert res.returncode == 0, res.stderr[-3000:]
        return json.loads((out / "report.json").read_text())

    par = make(tmp_path / "par", "--gpus", "2", "--parallel", "cfg")
    one = make(tmp_path / "one")
    for sp, so in zip(par["scenes"], one["scenes"], strict=True):
        ap, ao = sp["attempts"][0], so["attempts"][0]
        assert ap["backend_info"]["speed"]["parallel"] == {
            "scheme": "cfg",
            "gpus": 2,
            "by": "cinerl CFG-parallel hook",
        }
        assert ao["backend_info"]["speed"]["parallel"] is None
        fp, _ = read_mp4(tmp_path / "par" / ap["clip_path"])
        fo, _ = read_mp4(tmp_path / "one" / ao["clip_path"])
        np.testing.assert_array_equal(fp, fo)
    assert (tmp_path / "par" / "film.mp4").exists()


@pytest.mark.heavy  # about 55 s on 2 cores: two torchrun runs of the benchmark's worker
def test_the_speed_benchmark_times_one_gpu_and_each_scheme_and_compares_their_frames(tmp_path):
    out = tmp_path / "table.json"
    cmd = [
        sys.executable,
        str(ROOT / "benchmarks" / "wan_speed.py"),
        "--tiny",
        "--gpus",
        "2",
        "--parallel",
        "cfg",
    ]
    cmd += ["--width", "64", "--height", "64", "--frames", "5", "--steps", "2", "--parallel-compile", "off"]
    cmd += ["--worker-dir", str(tmp_path / "runs"), "--out", str(out)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", launch.CPU_STAND_IN: "1", "OMP_NUM_THREADS": "1"}
    env["CUDA_VISIBLE_DEVICES"] = ""  # gloo processes on the CPU, on a GPU host too
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=400)
    assert res.returncode == 0, res.stderr[-3000:]
    table = json.loads(out.read_text())
    one, cfg = table["rows"]
    assert (one["scheme"], one["gpus"], cfg["scheme"], cfg["gpus"]) == ("one", 1, "cfg", 2)
    assert cfg["speed"]["parallel"]["scheme"] == "cfg" and one["speed"]["parallel"] is None
    assert cfg["pixel_max_abs_diff"] == 0 and cfg["latent_max_abs_diff"] == 0.0  # exact on the CPU
    assert cfg["speedup_per_step"] == round(one["s_per_step"] / cfg["s_per_step"], 3)
    assert table["fastest_scheme"] == "cfg" and "cfg" in res.stdout.splitlines()[-2]
