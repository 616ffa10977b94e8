"""The prompt enhancer's pairs from real previz runs (make_film at a tiny size), and the starter
SFT set shipped in the package."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

import cinerl.prompting.rapo

from cinerl.core.errors import UserError
from cinerl.core.settings import Settings
from cinerl.core.store import read_report
from cinerl.planning.prompt_audit import WORDS, word_count
from cinerl.planning.scene_prompts import prompt_mode
from cinerl.runtime.director import make_film
from cinerl.training.datasets.prompt_pairs import (
    STARTER_SFT,
    brief_mode,
    compose_starter,
    enhancer_brief,
    read_rows,
    write_enhancer_pairs,
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two films of 2 scenes x 2 takes at 96x64, 4 fps (about 20 s together)."""
    root = tmp_path_factory.mktemp("enhancer_runs")
    settings = Settings.of(
        plan__scenes=2, run__attempts=2, run__max_attempts=2, run__width=96, run__height=64, run__fps=4
    )
    for i, prompt in enumerate(
        ["A fox explores a snowy forest at dawn", "Two friends share tea in a red kitchen"]
    ):
        make_film(prompt, root / f"run{i}", settings.updated(**{"policy.path": str(root / f"policy{i}.pt")}))
    return root


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_enhancer_pairs_from_real_runs(runs, tmp_path):
    counts = write_enhancer_pairs([runs], tmp_path / "pairs", min_margin=0.001)
    sft = _lines(tmp_path / "pairs" / "sft.jsonl")
    dpo = _lines(tmp_path / "pairs" / "dpo.jsonl")
    assert counts == {"runs": 2, "sft": len(sft), "dpo": len(dpo)}
    assert len(sft) == 4  # one row per shot scene: 2 runs x 2 scenes
    for i in range(2):
        report = read_report(runs / f"run{i}")
        shot_mode = report.settings["run"]["shot_mode"]
        for sc in report.scenes:
            scene = report.bible.scenes[sc.scene]
            mode = prompt_mode(sc.scene, shot_mode)
            brief = enhancer_brief(scene, report.bible, mode)
            row = next(r for r in sft if r["prompt"] == brief)
            # the simple prompt holds the plain action and the bible's facts; the detailed one is
            # the best take's prompt
            assert (
                scene.action.rstrip(".") in brief and report.bible.location(scene.location_id).name in brief
            )
            for cid in scene.character_ids:
                assert report.bible.character(cid).name in brief
            best = max(sc.attempts, key=lambda a: a.reward.total)
            assert row["completion"] == best.prompt and row["reward"] == best.reward.total
            assert brief_mode(brief) == mode
            # DPO: every pair of this scene's takes that differ by the margin, better one chosen
            takes = {(a.prompt, a.reward.total) for a in sc.attempts}
            expected = {
                (hi[0], lo[0])
                for hi in takes
                for lo in takes
                if hi[0] != lo[0] and hi[1] - lo[1] >= 0.001 and hi[1] > lo[1]
            }
            got = {(r["chosen"], r["rejected"]) for r in dpo if r["prompt"] == brief}
            assert got == expected
    for r in dpo:
        assert (
            r["chosen_reward"] - r["rejected_reward"] == pytest.approx(r["margin"], abs=1e-6)
            and r["margin"] >= 0.001
        )
    # a wide margin keeps fewer pairs; a .jsonl path writes the DPO rows beside it
    wide = write_enhancer_pairs([runs / "run0", runs / "run1"], tmp_path / "p.jsonl", min_margin=0.5)
    assert wide["sft"] == 4 and wide["dpo"] <= counts["dpo"]
    assert (tmp_path / "p.jsonl").is_file() and (tmp_path / "p.dpo.jsonl").is_file()


def test_enhancer_pairs_refuse_bad_input(tmp_path):
    with pytest.raises(UserError, match="found no make run"):
        write_enhancer_pairs([tmp_path], tmp_path / "out", 0.02)
    with pytest.raises(UserError, match="does not exist"):
        write_enhancer_pairs([tmp_path / "nope"], tmp_path / "out", 0.02)
    with pytest.raises(UserError, match="must not be negative"):
        write_enhancer_pairs([tmp_path], tmp_path / "out", -1)


def test_read_rows_says_what_is_wrong(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text("")
    with pytest.raises(UserError, match="has no rows"):
        read_rows(p)
    p.write_text('{"prompt": "a"}\n')
    with pytest.raises(UserError, match="line 1 has no 'completion'"):
        read_rows(p)
    p.write_text('{"prompt": "a", "completion": "b"}\nnot json\n')
    with pytest.raises(UserError, match="line 2 is not JSON"):
        read_rows(p)
    with pytest.raises(UserError, match="no such file"):
        read_rows(tmp_path / "missing.jsonl")


def test_the_starter_set_ships_and_regenerates():
    rows = read_rows(STARTER_SFT)
    assert len(rows) >= 100
    modes = [brief_mode(r["prompt"]) for r in rows]
    assert modes.count("t2v") > 40 and modes.count("i2v") > 40
    # the tool's rows: the first captions composed again give the same rows
    captions_csv = Path(cinerl.prompting.rapo.__file__).parent / "data" / "starter_captions.csv"
    with captions_csv.open(encoding="utf-8", newline="") as f:
        captions = [r["Input"] for r in csv.DictReader(f)][::6][:3]
    assert compose_starter(captions) == rows[:3]
    for r in rows:  # the offline composer keeps the audit's word range
        lo, hi = WORDS[brief_mode(r["prompt"])]
        assert lo <= word_count(r["completion"]) <= hi


def test_train_pairs_kind_prompts_calls_it(runs, tmp_path):
    """`cinerl train pairs --kind prompts` (apps/cli/train_video.py) writes the same rows."""
    from typer.testing import CliRunner

    from cinerl.apps.cli.app import app

    out = tmp_path / "prompts.jsonl"
    res = CliRunner().invoke(
        app, ["train", "pairs", "--kind", "prompts", "--from", str(runs), "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    expected = write_enhancer_pairs([runs], tmp_path / "direct", min_margin=0.05)
    assert (
        len(_lines(out)) == expected["sft"] and len(_lines(tmp_path / "prompts.dpo.jsonl")) == expected["dpo"]
    )
