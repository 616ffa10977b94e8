"""`cinerl score` inside a run folder scores a take with the run's own context (the take's prompt,
the references, the previous scene's last frame) and lands near the reward `cinerl make` stored:
make scores the rendered frames, score the decoded H.264 file, so the two differ by the encoding
(an open part of issue 12, item 11). And the non-terminal log has one line per take."""

import json

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
            assert abs(json.loads(proc.stdout)["total"] - att["reward"]["total"]) < 0.05
    assert "scene 1 take 1: reward" in stderr and "stitching the film" in stderr
