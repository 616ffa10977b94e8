"""`cinerl score VIDEO [--prompt P] [--bible B --scene N] [--json]` on MP4 files written here."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from cinerl.apps.cli.app import app
from cinerl.core.media import save_png, write_mp4
from tests.rewards.conftest import bible, character_ref, figure_clip, WARDROBE

runner = CliRunner()


def test_score_json_on_any_mp4(tmp_path):
    clip = figure_clip(WARDROBE, t=24, h=180, w=320)
    write_mp4(clip.frames, clip.fps, tmp_path / "clip.mp4")
    res = runner.invoke(app, ["score", str(tmp_path / "clip.mp4"), "--prompt", "a figure walks", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert 0.0 <= out["total"] <= 1.0 and abs(sum(out["weights"].values()) - 1) < 1e-6
    comps = out["components"]
    assert comps["temporal_flicker"]["status"] == "ok" and comps["imaging_quality"]["status"] == "ok"
    assert comps["character_consistency"]["status"] == "not_applicable"  # no bible: nothing to compare
    assert (
        comps["clip_alignment"]["status"] == "unavailable"
        and "clip_model_path" in comps["clip_alignment"]["reason"]
    )


def test_score_with_a_run_bible_uses_its_references_and_prints_a_table(tmp_path):
    b = bible()
    (tmp_path / "story").mkdir()
    (tmp_path / "story" / "bible.json").write_text(b.model_dump_json())
    save_png(character_ref(), tmp_path / "references" / "character_mara.png")
    clip = figure_clip(WARDROBE, t=24, h=180, w=320)
    write_mp4(clip.frames, clip.fps, tmp_path / "clip.mp4")
    res = runner.invoke(
        app,
        [
            "score",
            str(tmp_path / "clip.mp4"),
            "--bible",
            str(tmp_path / "story" / "bible.json"),
            "--scene",
            "0",
        ],
    )
    assert res.exit_code == 0, res.output
    for word in ("character_consistency", "identity_lock", "not_applicable", "temporal_stability", "total"):
        assert word in res.output
    res = runner.invoke(
        app,
        ["score", str(tmp_path / "clip.mp4"), "--bible", str(tmp_path / "story" / "bible.json"), "--json"],
    )
    comps = json.loads(res.output)["components"]
    assert comps["character_consistency"]["status"] == "ok" and comps["character_consistency"]["value"] > 0.5
    assert comps["location_palette"]["status"] == "ok"


def invoke(*args):
    res = runner.invoke(app, list(args))
    return res.exit_code, " ".join(res.output.split())  # rich wraps long messages


def test_user_errors_exit_2_with_one_message(tmp_path):
    code, out = invoke("score", str(tmp_path / "missing.mp4"))
    assert code == 2 and "does not exist" in out and "Traceback" not in out
    (tmp_path / "junk.mp4").write_bytes(b"not a video at all" * 10)
    code, out = invoke("score", str(tmp_path / "junk.mp4"))
    assert code == 2 and "cannot read" in out
    write_mp4(np.zeros((4, 64, 96, 3), np.uint8), 24, tmp_path / "ok.mp4")
    code, out = invoke("score", str(tmp_path / "ok.mp4"), "--scene", "1")
    assert code == 2 and "--scene needs --bible" in out
    (tmp_path / "bible.json").write_text(bible().model_dump_json())
    code, out = invoke(
        "score", str(tmp_path / "ok.mp4"), "--bible", str(tmp_path / "bible.json"), "--scene", "7"
    )
    assert code == 2 and "scene 7 is not in" in out
    (tmp_path / "bad.json").write_text("{}")
    code, out = invoke("score", str(tmp_path / "ok.mp4"), "--bible", str(tmp_path / "bad.json"))
    assert code == 2 and "is not a CineRL story bible" in out
