"""DPO of the enhancer on ranked pairs (TRL DPOTrainer, LoRA): the loss at initialisation is ln 2
(policy = reference while LoRA's B is zero), and a few steps on one pair lower it."""

from __future__ import annotations

import json
import math

import pytest

from cinerl.training.enhancer.config import read_metrics
from cinerl.training.enhancer.dpo import EnhancerDPOConfig, train
from cinerl.training.enhancer.model import INFO


def test_dpo_loss_starts_at_ln2_and_falls(tiny_lm, tmp_path):
    row = {
        "prompt": "Scene: a fox runs through snow, dawn. Shot: image-to-video.",
        "chosen": "A red fox runs through white snow at dawn, slow pan.",
        "rejected": "A beach party at noon.",
    }
    data = tmp_path / "dpo.jsonl"
    data.write_text(json.dumps(row) + "\n")
    out = train(
        EnhancerDPOConfig(
            base=str(tiny_lm), data=str(data), out=str(tmp_path / "d"), steps=6, lr=5e-3, batch_size=1
        )
    )
    losses = [m["loss"] for m in read_metrics(out / "metrics.jsonl") if "loss" in m]
    assert losses[0] == pytest.approx(math.log(2), abs=1e-4)
    assert losses[-1] < losses[0] - 0.05, losses
    assert json.loads((out / INFO).read_text())["kind"] == "dpo"
