"""`cinerl score` inside a run folder scores a take with the run's own context (the take's prompt,
the references, the previous scene's last frame) and reproduces the reward `cinerl make` stored:
both score the saved H.264 take as it decodes, the frames a viewer sees (issue 12, item 11).
And the non-terminal log has one line per take."""

import json

import pytest

from tests.e2e.helpers import CINERL, run


def test_score_reproduces_make(reference):
    out, _, stderr = reference
    rep = json.loads((out / "report.json").read_text())
    for sc in rep["scenes"]:
        for att in sc["attempts"]:
            proc = run(
                [
                    CINERL,
                    "score",
                    str(out / att["clip_path"]),
                    "--bible",
                    str(out / "story" / "bible.json"),
                    "--scene",
                    str(sc["scene"]),
                    "--json",
                ]
            )
            assert proc.returncode == 0, proc.stderr
            scored = json.loads(proc.stdout)
            assert scored["total"] == pytest.approx(att["reward"]["total"], abs=1e-9)
            stored = att["reward"]["components"]
            for name, comp in scored["components"].items():
                assert comp["status"] == stored[name]["status"], name
                assert comp["value"] == pytest.approx(stored[name]["value"], abs=1e-9), name
    assert "scene 1 take 1: reward" in stderr and "stitching the film" in stderr
