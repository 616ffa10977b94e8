"""benchmarks/train_character.py --tiny: the character trainer's step timed on the tests' tiny
random Wan (CPU, fp32), an image row and a clip row, with the projected 1500-step time; the
JSON and table are written."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "train_character.py"


def load():
    spec = importlib.util.spec_from_file_location("train_character_benchmark", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_tiny_benchmark_times_image_and_clip_steps_and_projects_a_lora(tmp_path, capsys):
    bench = load()
    assert bench.latent_shape("1024") == (48, 1, 64, 64) and bench.tokens("1024") == 1024
    assert bench.tokens("512-clip17") == 5 * 256  # 17 frames: 5 latent frames
    out = tmp_path / "train_character_cpu.json"
    bench.main(["--tiny", "--steps", "3", "--warmup", "1", "--out", str(out)])
    saved = json.loads(out.read_text())
    img, clip = saved["rows"]
    assert (img["row"], clip["row"]) == ("tiny", "tiny-clip9") and clip["tokens"] == 3 * img["tokens"]
    for r in (img, clip):
        assert len(r["losses"]) == 3 and all(math.isfinite(x) for x in r["losses"])
        assert r["steps_per_s"] > 0 and abs(r["steps_per_s"] * r["s_per_step"] - 1) < 0.01
        assert abs(r["lora_1500_min"] - 1500 * r["s_per_step"] / 60) < 0.06
        assert r["trainable_params"] > 0 and r["checkpointing"] is False
    mixed = 1500 * (0.75 * img["s_per_step"] + 0.25 * clip["s_per_step"]) / 60
    assert abs(img["lora_1500_with_clips_min"] - mixed) < 0.06
    table = capsys.readouterr().out
    assert "tiny-clip9" in table and "1500 steps" in table and f"wrote {out}" in table
