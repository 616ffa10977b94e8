"""benchmarks/train_video_grpo.py --tiny: the obvious Flow-GRPO code and CineRL's parts side by
side on the tiny random Wan (CPU, fp32): the same log-probabilities, ratio 1 on the first pass,
the JSON and the table written."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "train_video_grpo.py"


def load():
    spec = importlib.util.spec_from_file_location("train_video_grpo_benchmark", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.heavy  # two tiny Wans built and trained through diffusers and peft: 15 s here
def test_the_tiny_grpo_benchmark_runs_both_sides_and_they_agree(tmp_path, capsys):
    bench = load()
    out = tmp_path / "grpo_cpu.json"
    bench.main(["--tiny", "--out", str(out)])
    (row,) = json.loads(out.read_text())["rows"]
    o, c = row["obvious"], row["cinerl"]
    assert row["row"] == "tiny" and row["group"] == 2 and row["window"] == 2
    assert o["first_pass_ratios"] == [1.0] * 4 and c["first_pass_ratios"] == [1.0] * 4
    assert row["max_old_logp_diff"] < 1e-5  # one clip at a time and the batched group agree
    assert o["trainable_params"] == c["trainable_params"] > 0
    for side in (o, c):
        assert side["rollout_s_per_clip"] > 0 and side["train_s_per_clip_step"] > 0
        assert 0 < side["score_share_of_generation"] and side["peak_memory_gib"] is None
    assert row["time_ratio"] > 0
    table = capsys.readouterr().out
    assert "tiny     obvious" in table and "tiny     cinerl" in table and f"wrote {out}" in table


def test_flops_of_a_forward_are_the_dpo_benchmarks_count():
    bench = load()
    assert bench.forward_flops("5b-49") * 8 == bench.tv.flops_per_pair_step("5b-49")
