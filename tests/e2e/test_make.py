"""`cinerl make` end to end at a small size through the real command."""

import json

import numpy as np

from cinerl.core.media import read_mp4
from cinerl.core.store import read_report
from tests.e2e.helpers import CINERL, film_frames, make_cmd, run


def test_make_writes_every_output(tmp_path):
    out = tmp_path / "run"
    res = run(make_cmd(out, tmp_path / "policy.pt", "--transition", "crossfade"))
    assert res.returncode == 0, res.stderr
    assert str(out / "film.mp4") in res.stdout and str(out / "report.html") in res.stdout
    bible = json.loads((out / "story" / "bible.json").read_text())
    assert len(bible["scenes"]) == 3
    for ch in bible["characters"]:
        assert (out / "references" / f"character_{ch['id']}.png").exists()
    for loc in bible["locations"]:
        assert (out / "references" / f"location_{loc['id']}.png").exists()
    report = json.loads((out / "report.json").read_text())
    assert read_report(out).model_dump(mode="json") == report  # the typed report is the file
    assert report["policy"]["version_start"] == 0 and report["policy"]["version_end"] == 3
    assert set(report["stages"]) >= {"plan", "references", "render", "score", "learn", "stitch", "report"}
    scene_frames = []
    for sc, planned in zip(report["scenes"], bible["scenes"]):
        assert len(sc["attempts"]) == 2
        totals = [a["reward"]["total"] for a in sc["attempts"]]
        assert sc["chosen"] == int(np.argmax(totals))
        for a in sc["attempts"]:
            assert 0.0 <= a["reward"]["total"] <= 1.0
            comps = a["reward"]["components"]
            assert comps["narrative_judge"]["status"] == "unavailable"
            assert comps["temporal_flicker"]["status"] == "ok"
            assert set(a["action"]) == {
                "shot_size",
                "camera_move",
                "lighting",
                "identity_lock",
                "location_lock",
                "motion",
                "negative_preset",
            }
            assert (out / a["clip_path"]).exists() and (out / a["thumbnail_path"]).exists()
        seam = sc["attempts"][0]["reward"]["components"]["seam_continuity"]["status"]
        assert seam == ("not_applicable" if sc["scene"] == 0 else "ok")
        frames, fps = read_mp4(out / sc["attempts"][sc["chosen"]]["clip_path"])
        assert fps == 6 and frames.shape[1:] == (64, 96, 3)
        assert len(frames) == round(planned["duration_s"] * 6)
        scene_frames.append(len(frames))
    film = film_frames(out)
    assert len(film) == sum(scene_frames) - 12 * 2  # two crossfades of 12 frames
    srt = (out / "film.srt").read_text()
    assert srt.count(" --> ") == 3 and report["sound"]["narration"][0]["text"] in srt
    html = (out / "report.html").read_text()
    # takes and the film are linked from the run folder (--self-contained embeds them)
    assert 'poster="scenes/scene_00/attempt_00_thumb.jpg"' in html and '<source src="film.mp4"' in html
    assert '<source src="scenes/scene_00/attempt_00.mp4"' in html
    assert (tmp_path / "policy.pt").exists()


def test_policy_carries_across_films(tmp_path):
    policy = tmp_path / "policy.pt"
    assert run(make_cmd(tmp_path / "a", policy)).returncode == 0
    res = run(make_cmd(tmp_path / "b", policy, "--seed", "1"))
    assert res.returncode == 0, res.stderr
    report = json.loads((tmp_path / "b" / "report.json").read_text())
    assert report["policy"]["version_start"] == 3 and report["policy"]["version_end"] == 6


def test_smoke_writes_its_report(tmp_path):
    res = run([CINERL, "smoke", "--out", str(tmp_path / "smoke.json")])
    assert res.returncode == 0, res.stdout + res.stderr
    report = json.loads((tmp_path / "smoke.json").read_text())
    assert report["ok"] and [c["check"] for c in report["checks"]] == [
        "planner",
        "policy_update",
        "run_store",
    ]
