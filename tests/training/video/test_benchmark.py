"""benchmarks/train_video.py --tiny: the obvious code and CineRL's trainer step side by side on
the tests' tiny random Wan (CPU, fp32): both start at log 2, compute the same curve, and the
JSON and table are written."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "train_video.py"


def load():
    spec = importlib.util.spec_from_file_location("train_video_benchmark", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.heavy  # two tiny models built and trained through diffusers and peft: 15-35 s here
def test_the_tiny_benchmark_runs_both_steps_and_they_agree(tmp_path, capsys):
    bench = load()
    out = tmp_path / "train_video_cpu.json"
    result = bench.main(["--tiny", "--steps", "3", "--warmup", "1", "--out", str(out)])
    (row,) = json.loads(out.read_text())["rows"]
    assert result["rows"][0]["row"] == row["row"] == "tiny"
    o, c = row["obvious"], row["cinerl"]
    assert abs(o["losses"][0] - math.log(2)) < 1e-6 and abs(c["losses"][0] - math.log(2)) < 1e-6
    assert c["losses"][-1] < c["losses"][0]  # it learns
    assert row["max_loss_diff"] < 1e-5  # the same maths, step for step
    assert o["trainable_params"] == c["trainable_params"] > 0  # the same LoRA (attn1 and attn2)
    assert o["s_per_pair_step"] > 0 and c["s_per_pair_step"] > 0 and row["time_ratio"] > 0
    assert not c["checkpointing"] and c["compiled_blocks"] == 0  # CPU auto: tiny, no compile
    table = capsys.readouterr().out
    assert "tiny     obvious" in table and "tiny     cinerl" in table and f"wrote {out}" in table


def test_the_real_rows_count_flops_as_wan_speed_does():
    bench = load()
    # 5B at 832x480x81: L = 21 x 15 x 26 tokens, d 3072, f 14336, S 512, 30 blocks; 4 forwards x 2
    L, d, f, S = 21 * 15 * 26, 3072, 14336, 512
    block = 8 * L * d * d + 4 * L * L * d + 4 * L * d * d + 4 * S * d * d + 4 * L * S * d + 4 * L * d * f
    assert bench.flops_per_pair_step("5b-81") == 8 * 30 * block
    assert bench.latent_shape("a14b-81") == (16, 21, 60, 104)
