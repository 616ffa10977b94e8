"""Flow-GRPO with the gated length curriculum (`--curriculum`, curriculum.py, the Flow-DPO
trainer's machine): rollouts at each stage's length, the gate's decisions in curriculum.json,
the real reward gate measuring the LoRA's clips at both lengths, and (heavy) a resume in the
middle of the curriculum reaching the same LoRA."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from cinerl.core.errors import UserError
from cinerl.training.video.grpo import VideoGRPOTrainer, reward_gate, train
from tests.training.video.test_grpo import config


def gate_of(*verdicts):
    calls = []

    def gate(now, nxt, trainer):
        calls.append((now, nxt, trainer.frames))
        return verdicts[len(calls) - 1]

    gate.calls = calls
    return gate


HOLDS = ({"temporal_flicker": 0.9}, {"temporal_flicker": 0.89})
FALLS = ({"temporal_flicker": 0.9}, {"temporal_flicker": 0.5})


def test_each_stage_rolls_out_at_its_length_the_gate_decides_and_the_reward_gate_measures(
    model, prompts, tmp_path
):
    out = tmp_path / "out"
    cfg = config(
        model, prompts, out, steps=6, curriculum="5,9", stage_steps=1, gate_retries=1, kl=0.0,
        eval_prompts=1, eval_steps=2,
    )  # fmt: skip
    gate = gate_of(FALLS, HOLDS)
    tr = VideoGRPOTrainer(cfg)
    res = tr.train(gate)
    # step 1 at 5 frames, the gate falls: a second round at 5; then it holds: 9 frames; the
    # last stage ends after its steps: done, before the step budget
    assert [m["frames"] for m in res.metrics] == [5, 5, 9]
    assert [m["stage"] for m in res.metrics] == [0, 0, 1]
    assert [(c[0], c[1]) for c in gate.calls] == [(5, 9), (5, 9)]
    saved = json.loads((out / "curriculum.json").read_text())
    assert [h["decision"] for h in saved["history"]] == ["retry", "advance", "done"]
    assert saved["status"] == "finished" and res.curriculum["status"] == "finished"
    assert saved["history"][0]["fell"] == ["temporal_flicker"]
    assert res.steps == 3 and (out / "pytorch_lora_weights.safetensors").is_file()
    # the real gate (the default): the LoRA's ODE clips at both lengths, scored
    now, nxt = reward_gate(5, 9, tr)
    assert tr.frames == 9  # the gate's lengths are its own: the rollout length is kept
    both = set(now) & set(nxt)
    assert "temporal_flicker" in both  # the trained component
    assert len(both) >= 2  # and length-sensitive monitoring ones that apply to these clips
    assert all(0.0 <= v <= 1.0 for v in [*now.values(), *nxt.values()]), (now, nxt)
    assert now != nxt  # two lengths, two sets of clips


@pytest.mark.heavy  # one more tiny run: about 10 s here under load
def test_the_curriculum_stops_when_the_gate_keeps_falling(model, prompts, tmp_path):
    cfg = config(
        model, prompts, tmp_path / "out", steps=6, curriculum="5,9", stage_steps=1, gate_retries=0, kl=0.0
    )
    res = train(cfg, gate=gate_of(FALLS))
    assert res.steps == 1 and res.curriculum["status"] == "stopped"
    assert "stopped at 5 frames after 1 rounds" in res.curriculum["reason"]


def test_a_bad_curriculum_is_refused_before_anything_is_written(model, prompts, tmp_path):
    for bad in ("32,48", "9,5"):
        with pytest.raises(UserError, match="--curriculum"):
            VideoGRPOTrainer(config(model, prompts, tmp_path / "out", curriculum=bad))
    assert not (tmp_path / "out").exists()


@pytest.mark.heavy  # two 4-step runs and one 3-step run of the tiny Wan: about 40 s here
def test_a_resume_in_the_middle_of_the_curriculum_reaches_the_same_lora(model, prompts, tmp_path):
    def run(out, steps):
        cfg = config(
            model, prompts, out, steps=steps, curriculum="5,9", stage_steps=2, checkpoint_every=1,
            learning_rate=1e-2, seed=3,
        )  # fmt: skip
        return train(cfg, gate=gate_of(HOLDS, HOLDS))

    whole = run(tmp_path / "whole", 4)
    run(tmp_path / "parts", 3)  # stops in the second stage
    parts = run(tmp_path / "parts", 4)
    assert [m["frames"] for m in parts.metrics] == [m["frames"] for m in whole.metrics] == [5, 5, 9, 9]
    a = load_file(str(tmp_path / "whole" / "pytorch_lora_weights.safetensors"))
    b = load_file(str(tmp_path / "parts" / "pytorch_lora_weights.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
