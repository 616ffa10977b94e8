"""The gated length curriculum: its state machine (advance, retry, stop, done), its state saved
and restored, and the DPO trainer driven by it (each stage at its length, curriculum.json, the
same LoRA after a resume mid-curriculum)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from cinerl.core.errors import UserError
from cinerl.training.video.curriculum import Curriculum
from cinerl.training.video.dpo import VideoDPOConfig, parse_curriculum, train
from tests.training.video.tiny import write_pairs, write_transformers


def gate_of(verdicts):
    """A gate returning (now, next) figures from a list, one call per stage end."""
    calls = []

    def gate(now, nxt, _context):
        calls.append((now, nxt))
        return verdicts[len(calls) - 1]

    gate.calls = calls
    return gate


HOLDS = ({"accuracy": 0.9, "smoothness": 0.8}, {"accuracy": 0.88, "smoothness": 0.8})
FALLS = ({"accuracy": 0.9, "smoothness": 0.8}, {"accuracy": 0.6, "smoothness": 0.8})


def test_the_gate_advances_retries_and_stops():
    c = Curriculum([33, 49, 65, 97], stage_steps=10, tolerance=0.05, retries=1)
    assert (c.frames, c.stage_end) == (33, 10) and not c.stage_done(9) and c.stage_done(10)
    assert c.apply(10, *HOLDS)["decision"] == "advance"
    assert (c.index, c.frames, c.round, c.stage_end) == (1, 49, 0, 20)
    d = c.apply(20, *FALLS)
    assert d["decision"] == "retry" and d["fell"] == ["accuracy"] and "65 frames: accuracy" in d["reason"]
    assert (c.index, c.round, c.stage_end) == (1, 1, 30)
    d = c.apply(30, *FALLS)
    assert d["decision"] == "stop" and c.finished and c.status == "stopped"
    assert "stopped at 49 frames after 2 rounds" in c.reason and "accuracy fell by more than 0.05" in c.reason
    assert [h["decision"] for h in c.history] == ["advance", "retry", "stop"]


def test_the_last_stage_finishes_without_a_gate_and_a_retry_can_recover():
    c = Curriculum([5, 9], stage_steps=2, retries=2)
    gate = gate_of([FALLS, HOLDS])
    assert c.decide(2, gate)["decision"] == "retry"
    assert c.decide(4, gate)["decision"] == "advance"
    assert c.decide(6, gate)["decision"] == "done" and c.status == "finished"
    assert gate.calls == [(5, 9), (5, 9)]  # the gate measures now and the next length only


def test_the_state_round_trips_and_a_changed_curriculum_is_refused():
    c = Curriculum([5, 9, 13], stage_steps=3, retries=1)
    c.apply(3, *HOLDS)
    c.apply(6, *FALLS)
    back = Curriculum.restore(json.loads(json.dumps(c.state())), [5, 9, 13], 3, 0.05, 1)
    assert back.state() == c.state()
    with pytest.raises(UserError, match="curriculum"):
        Curriculum.restore(c.state(), [5, 9], 3, 0.05, 1)
    assert parse_curriculum("33,49,65,97") == [33, 49, 65, 97]
    for bad in ("32,48", "49,33", "a,b", ""):
        with pytest.raises(UserError):
            parse_curriculum(bad)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return write_transformers("ti2v-5b", tmp_path_factory.mktemp("wan") / "model")


def cfg(model, pairs, out, **kw):
    base = dict(
        model_dir=str(model),
        pairs=str(pairs),
        out=str(out),
        steps=12,
        warmup_steps=0,
        learning_rate=1e-3,
        lora_rank=4,
        lora_alpha=4,
        checkpoint_every=2,
        curriculum="5,9,13",
        stage_steps=3,
        gate_retries=1,
    )
    return VideoDPOConfig(**{**base, **kw})


def test_training_follows_the_curriculum_and_writes_its_decisions(model, tmp_path):
    pairs = write_pairs(tmp_path / "data", n=2, frames=13)
    gate = gate_of([HOLDS, FALLS, HOLDS])
    res = train(cfg(model, pairs, tmp_path / "out"), gate=gate)
    frames = [m["frames"] for m in res.metrics]
    # stage 5 (3 steps), advance; stage 9 (3), retry; stage 9 again (3), advance; stage 13 (3), done
    assert frames == [5] * 3 + [9] * 6 + [13] * 3
    saved = json.loads((tmp_path / "out" / "curriculum.json").read_text())
    assert [h["decision"] for h in saved["history"]] == ["advance", "retry", "advance", "done"]
    assert saved["status"] == "finished" and res.curriculum["status"] == "finished"
    assert "Length curriculum" in (tmp_path / "out" / "training_report.html").read_text()


def test_a_stopped_curriculum_ends_training_and_says_why(model, tmp_path):
    pairs = write_pairs(tmp_path / "data", n=1, frames=13)
    res = train(cfg(model, pairs, tmp_path / "out", gate_retries=0), gate=gate_of([FALLS]))
    assert len(res.metrics) == 3 and res.curriculum["status"] == "stopped"
    assert "stopped at 5 frames" in res.curriculum["reason"]


@pytest.mark.heavy
def test_resuming_mid_curriculum_reaches_the_same_lora(model, tmp_path):
    pairs = write_pairs(tmp_path / "data", n=2, frames=13)
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    train(cfg(model, pairs, whole), gate=gate_of([HOLDS, FALLS, HOLDS]))
    train(cfg(model, pairs, parts, steps=4), gate=gate_of([HOLDS]))  # stops inside stage 9
    state = json.loads((parts / "checkpoints" / "step_000004" / "state.json").read_text())
    assert state["curriculum"]["index"] == 1
    train(cfg(model, pairs, parts), gate=gate_of([FALLS, HOLDS]))  # the rest of the verdicts
    a = load_file(str(whole / "pytorch_lora_weights.safetensors"))
    b = load_file(str(parts / "pytorch_lora_weights.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_default_gate_measures_accuracy_at_both_lengths(model, tmp_path):
    pairs = write_pairs(tmp_path / "data", n=1, frames=9)
    res = train(cfg(model, pairs, tmp_path / "out", curriculum="5,9", steps=6, learning_rate=1e-2))
    first = res.curriculum["history"][0]
    assert first["gate"] == "dpo"  # the model folder has no vae/ to render the reward gate's clips
    assert set(first["metrics"]) == {"accuracy", "margin"} and set(first["next_metrics"]) == {
        "accuracy",
        "margin",
    }
    assert first["decision"] in ("advance", "retry")
