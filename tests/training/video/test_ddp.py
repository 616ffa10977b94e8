"""Two CPU processes (`torchrun --nproc-per-node 2`, gloo), in DDP and in FSDP2, give the loss curve
of one process with the same global batch, within float tolerance (the gradients are averaged by a
collective instead of inside one batch); only the main process writes and prints; an FSDP2 run
stopped and run again reaches the same LoRA exactly."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.e2e.helpers import CINERL, run
from tests.training.video.tiny import write_pairs, write_transformers

pytestmark = pytest.mark.heavy
TORCHRUN = str(Path(sys.executable).with_name("torchrun"))


def args(model, pairs, out, batch, strategy="ddp", steps=6):
    return ["train", "video-dpo", "--model-dir", str(model), "--pairs", str(pairs), "--out", str(out),
            "--steps", str(steps), "--warmup-steps", "0", "--learning-rate", "1e-3", "--lora-rank", "4",
            "--lora-alpha", "4", "--batch-size", str(batch), "--seed", "5", "--strategy", strategy,
            "--checkpoint-every", "3"]  # fmt: skip


def torchrun(*a, port: int) -> list[str]:
    return [TORCHRUN, "--nproc-per-node", "2", "--master-addr", "127.0.0.1", "--master-port", str(port),
            "--no-python", CINERL, *a]  # fmt: skip


def curve(out) -> list[float]:
    return [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines()]


def weights(out) -> dict:
    return load_file(str(out / "pytorch_lora_weights.safetensors"))


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    model = write_transformers("ti2v-5b", root / "model")
    pairs = write_pairs(root / "data", n=4)
    res = run([CINERL, *args(model, pairs, root / "one", 2)])
    assert res.returncode == 0, res.stderr
    return root, model, pairs


@pytest.mark.skipif(shutil.which(TORCHRUN) is None, reason="torchrun is not installed")
@pytest.mark.parametrize("strategy,port", [("ddp", 29533), ("fsdp", 29534)])
def test_two_processes_give_the_loss_curve_of_one(one_process, strategy, port):
    root, model, pairs = one_process
    two = root / strategy
    res = run(torchrun(*args(model, pairs, two, 1, strategy), port=port))
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("lora:") == 1  # the main process prints, the other does not
    a, b = curve(root / "one"), curve(two)
    assert len(a) == len(b) == 6
    assert max(abs(x - y) for x, y in zip(a, b)) < 1e-4, (a, b)
    assert a[0] == b[0]  # step 1: both the reference, exactly log 2
    wa, wb = weights(root / "one"), weights(two)
    assert wa.keys() == wb.keys() and all(torch.allclose(wa[k], wb[k], atol=1e-5) for k in wa)
    if strategy == "fsdp":  # stopped at step 3 and run again: the same LoRA, exactly
        parts = root / "fsdp_parts"
        for steps in (3, 6):
            res = run(torchrun(*args(model, pairs, parts, 1, strategy, steps), port=port))
            assert res.returncode == 0, res.stderr
        assert all(torch.equal(wb[k], v) for k, v in weights(parts).items())
        res = run([CINERL, *args(model, pairs, parts, 1, strategy, 9)])
        assert res.returncode == 2 and "several processes" in res.stderr
    else:  # one process resuming a two-process run would change the global batch: refused
        res = run([CINERL, *args(model, pairs, two, 1, strategy, 9)])
        assert res.returncode == 2 and "2 processes" in res.stderr
