"""Stage 3 export: JSONL pairs from SSPO chains and make runs, validated against the schema."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from cinerl.core.errors import UserError
from cinerl.training.datasets.prompt_pairs import DPORecord, SFTRecord, export_feedback
from cinerl.training.sspo.loop import SSPOConfig, run_sspo


@pytest.fixture(scope="module")
def sources(tmp_path_factory, make_run):
    root = tmp_path_factory.mktemp("feedback")
    cfg = SSPOConfig(
        prompt="Wide shot, fast handheld camera. A rider gallops along a beach, frantic erratic motion.",
        iterations=2,
        width=128,
        height=72,
        fps=8,
        seconds=3.0,
    )
    chain = run_sspo(cfg, root / "chain", llm="offline")
    return root, chain


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_export_writes_valid_sft_and_dpo_pairs(sources, make_run, tmp_path):
    root, chain = sources
    summary = export_feedback([root, make_run], tmp_path / "out")
    sft = [SFTRecord.model_validate(d) for d in _lines(tmp_path / "out" / "sft.jsonl")]
    dpo = [DPORecord.model_validate(d) for d in _lines(tmp_path / "out" / "dpo.jsonl")]
    assert summary.sft_records == len(sft) and summary.dpo_records == len(dpo)
    # the SSPO chain: its best prompt is the completion of its starting prompt
    s = next(r for r in sft if r.origin == "sspo")
    assert s.prompt == chain.prompt and s.completion == chain.best_prompt
    assert s.reward == chain.best_reward and s.baseline_reward == chain.iterations[0].reward
    d = next(r for r in dpo if r.origin == "sspo")
    assert d.chosen == chain.best_prompt and d.rejected == chain.iterations[0].prompt
    assert d.chosen_reward > d.rejected_reward
    # the film: one SFT record per scene (its chosen take), DPO against clearly worse takes
    report = json.loads((make_run / "report.json").read_text())
    scene = report["scenes"][0]
    chosen = next(a for a in scene["attempts"] if a["attempt"] == scene["chosen"])
    m = next(r for r in sft if r.origin == "make")
    assert m.completion == chosen["prompt"] and m.reward == chosen["reward"]["total"]
    worse = {
        a["prompt"]
        for a in scene["attempts"]
        if chosen["reward"]["total"] - a["reward"]["total"] >= summary.min_margin
    }
    assert {r.rejected for r in dpo if r.origin == "make"} == worse
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["schema_version"] == 1 and manifest["sft_records"] == len(sft)
    assert set(manifest["dpo_schema"]["required"]) >= {"prompt", "chosen", "rejected"}


def test_schema_rejects_bad_records():
    good = dict(
        prompt="p",
        chosen="a",
        rejected="b",
        chosen_reward=0.8,
        rejected_reward=0.5,
        margin=0.3,
        origin="sspo",
        source="x",
    )
    DPORecord(**good)
    for bad in (
        {"chosen": "b"},
        {"rejected_reward": 0.9, "margin": -0.1},
        {"margin": 0.2},
        {"extra": 1},
        {"origin": "elsewhere"},
    ):
        with pytest.raises(ValidationError):
            DPORecord(**{**good, **bad})
    with pytest.raises(ValidationError):
        SFTRecord(prompt="same", completion="same", reward=0.5, origin="make", source="x")


def test_nothing_to_export_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="found no SSPO chain"):
        export_feedback([tmp_path], tmp_path / "out")
    with pytest.raises(UserError, match="does not exist"):
        export_feedback([tmp_path / "missing"], tmp_path / "out")
