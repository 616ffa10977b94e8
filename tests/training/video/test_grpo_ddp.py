"""Flow-GRPO on two CPU processes (`torchrun --nproc-per-node 2`, gloo, 127.0.0.1): each process
rolls out, scores and trains its own group of the step (global slots rank x prompts-per-step),
DDP (or FSDP2) averages the gradients, and the run equals one process given both groups: the
same rewards step by step and the same LoRA within float tolerance; only the main process writes
and prints; a one-process resume of the two-process run is refused."""

from __future__ import annotations

import json
import shutil

import pytest
from safetensors.torch import load_file

from tests.e2e.helpers import CINERL, run
from tests.generation.wan_tiny import write_tiny_model
from tests.training.video.test_ddp import TORCHRUN, torchrun

pytestmark = pytest.mark.heavy  # three tiny-Wan runs of 3 steps, two of them on 2 processes: ~1 min


def args(model, prompts, out, per_step, strategy="auto", steps=3):
    return ["train", "video-grpo", "--model-dir", str(model), "--prompts", str(prompts), "--out", str(out),
            "--size", "64x32", "--frames", "9", "--train-steps", "3", "--group-size", "3",
            "--reward", "temporal_flicker", "--lora-rank", "4", "--lora-alpha", "4", "--score-workers", "1",
            "--steps", str(steps), "--prompts-per-step", str(per_step), "--learning-rate", "1e-2",
            "--seed", "7", "--strategy", strategy, "--checkpoint-every", "10"]  # fmt: skip


def rows(out) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def weights(out) -> dict:
    return load_file(str(out / "pytorch_lora_weights.safetensors"))


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    root = tmp_path_factory.mktemp("grpo_ddp")
    model = write_tiny_model("ti2v-5b", root / "model")
    prompts = root / "prompts.txt"
    prompts.write_text("a woman walks\na red boat\na dog runs\n")
    res = run([CINERL, *args(model, prompts, root / "one", 2)])
    assert res.returncode == 0, res.stderr
    return root, model, prompts


@pytest.mark.skipif(shutil.which(TORCHRUN) is None, reason="torchrun is not installed")
@pytest.mark.parametrize("strategy,port", [("ddp", 29541), ("fsdp", 29542)])
def test_two_processes_of_one_group_each_equal_one_process_of_two_groups(one_process, strategy, port):
    root, model, prompts = one_process
    two = root / strategy
    res = run(torchrun(*args(model, prompts, two, 1, strategy), port=port))
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("lora:") == 1  # the main process prints, the other does not
    a, b = rows(root / "one"), rows(two)
    assert [r["processes"] for r in a] == [1, 1, 1] and [r["processes"] for r in b] == [2, 2, 2]
    assert [r["clips"] for r in b] == [6, 6, 6] and [r["groups_trained"] for r in b] == [2, 2, 2]
    for ra, rb in zip(a, b):
        # step 1 is sampled by the same (untrained) model: the same clips, the same rewards
        assert rb["reward_mean"] == pytest.approx(ra["reward_mean"], abs=1e-4), (ra, rb)
        assert rb["group_reward_mean"] == pytest.approx(ra["group_reward_mean"], abs=1e-4)
        assert rb["grad_norm"] == pytest.approx(ra["grad_norm"], rel=1e-3, abs=1e-6)
    assert a[0]["first_pass_ratio_min"] == b[0]["first_pass_ratio_min"] == 1.0
    wa, wb = weights(root / "one"), weights(two)
    assert wa.keys() == wb.keys()
    assert any(float(v.abs().max()) > 0 for k, v in wa.items() if "lora_B" in k)  # it trained
    worst = max(float((wa[k] - wb[k]).abs().max()) for k in wa)
    # Adam moves each weight by about the learning rate (1e-2) a step whatever the gradient's
    # size, so float-level gradient differences (another summation order) show at 1e-5
    assert worst < 1e-4, worst
    # one process resuming the two-process run: the step's groups would change, refused
    res = run([CINERL, *args(model, prompts, two, 1, "auto", 4)])
    assert res.returncode == 2 and "2 processes" in res.stderr
