"""`cinerl train video-dpo` at the command line: a real SIGKILL mid-training and the same command
again reaches the uninterrupted run's LoRA bit for bit; bad input ends in one line and exit 2."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest
import torch
from safetensors.torch import load_file

from tests.e2e.helpers import CINERL, env, run
from tests.training.video.tiny import take, write_pairs, write_transformers

STEPS = 20


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return write_transformers("ti2v-5b", tmp_path_factory.mktemp("wan") / "model")


def cmd(model, pairs, out, *extra) -> list[str]:
    return [
        CINERL,
        "train",
        "video-dpo",
        "--model-dir",
        str(model),
        "--pairs",
        str(pairs),
        "--out",
        str(out),
        "--steps",
        str(STEPS),
        "--warmup-steps",
        "5",
        "--lora-rank",
        "4",
        "--lora-alpha",
        "4",
        "--checkpoint-every",
        "5",
        "--batch-size",
        "2",
        "--seed",
        "3",
        *extra,
    ]


def logged_steps(out) -> int:
    p = out / "metrics.jsonl"
    return len(p.read_text().splitlines()) if p.exists() else 0


@pytest.mark.heavy
def test_sigkill_mid_training_then_the_same_command_reaches_the_same_lora(model, tmp_path):
    pairs = write_pairs(tmp_path / "data", n=3)
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    res = run(cmd(model, pairs, whole))
    assert res.returncode == 0, res.stderr
    proc = subprocess.Popen(
        cmd(model, pairs, killed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env()
    )
    t0 = time.monotonic()
    while logged_steps(killed) < 6:  # past a checkpoint, well before the end
        assert proc.poll() is None, "training ended before the kill"
        assert time.monotonic() - t0 < 120
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    done = logged_steps(killed)
    assert done < STEPS, "the kill should land mid-training"
    assert not (killed / "pytorch_lora_weights.safetensors").exists()
    res = run(cmd(model, pairs, killed))
    assert res.returncode == 0, res.stderr
    a = load_file(str(whole / "pytorch_lora_weights.safetensors"))
    b = load_file(str(killed / "pytorch_lora_weights.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # the metrics of the redone steps replace the lost ones: one row per step, the same curve
    rows_a = [json.loads(x) for x in (whole / "metrics.jsonl").read_text().splitlines()]
    rows_b = [json.loads(x) for x in (killed / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows_b] == list(range(1, STEPS + 1))
    assert [r["loss"] for r in rows_a] == [r["loss"] for r in rows_b]
    assert not list((killed / "checkpoints").glob(".tmp-*"))


def one_line_exit_2(res) -> str:
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert "Traceback" not in res.stderr
    # one message; skipped rows may be reported above it, each with its line number
    lines = [x for x in res.stderr.splitlines() if x.strip() and not x.startswith("WARNING")]
    assert len(lines) == 1, res.stderr
    return lines[0]


def test_bad_input_is_one_line_and_exit_2(model, tmp_path):
    pairs = write_pairs(tmp_path / "data", n=1)
    out = tmp_path / "out"
    line = one_line_exit_2(run(cmd(tmp_path / "nowhere", pairs, out)))
    assert "--model-dir" in line and "does not exist" in line
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    assert "is empty" in one_line_exit_2(run(cmd(model, empty, out)))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "x", "chosen": "a"}\nnot json\n')
    res = run(cmd(model, bad, out))
    line = one_line_exit_2(res)
    assert "no valid row" in line and "line 1" in line
    assert "line 2 skipped" in res.stderr
    # a pair whose takes differ in size
    take("ti2v-5b", 0, frames=9).save(tmp_path / "data" / "big.latents.safetensors")
    take("ti2v-5b", 1, frames=5).save(tmp_path / "data" / "small.latents.safetensors")
    mixed = tmp_path / "data" / "mixed.jsonl"
    mixed.write_text(
        json.dumps(
            {"prompt": "p", "chosen": "big.latents.safetensors", "rejected": "small.latents.safetensors"}
        )
    )
    assert "differ in size" in one_line_exit_2(run(cmd(model, mixed, out)))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert "--out" in one_line_exit_2(run(cmd(model, pairs, blocker / "sub")))
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.geteuid() != 0:  # root writes anywhere: the file-in-the-way case above covers it
            assert "not writable" in one_line_exit_2(run(cmd(model, pairs, ro / "x")))
    finally:
        ro.chmod(0o700)
    assert "--steps" in one_line_exit_2(run([*cmd(model, pairs, out), "--steps", "0"]))


def test_config_file_then_flags_build_the_config(tmp_path):
    from cinerl.apps.cli.train_video import config_from
    from cinerl.core.errors import UserError
    from cinerl.training.video.config import VideoDPOConfig

    toml = tmp_path / "dpo.toml"
    toml.write_text('steps = 50\nbeta = 20.0\n[video_dpo]\nlora-rank = 8\nlora_targets = "attn,ffn"\n')
    cfg = config_from(VideoDPOConfig, toml, {"steps": 7, "beta": None}, "video_dpo")
    assert (cfg.steps, cfg.beta, cfg.lora_rank, cfg.lora_targets) == (7, 20.0, 8, "attn,ffn")
    assert cfg.learning_rate == 1e-4 and cfg.warmup_steps == 100 and cfg.max_grad_norm == 1.0
    toml.write_text("stepz = 3\n")
    with pytest.raises(UserError, match="unknown keys: stepz"):
        config_from(VideoDPOConfig, toml, {}, "video_dpo")
    toml.write_text("steps = [1\n")
    with pytest.raises(UserError, match="not valid TOML"):
        config_from(VideoDPOConfig, toml, {}, "video_dpo")
