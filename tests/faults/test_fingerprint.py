"""Changed settings on resume: frame settings refused by name, later-stage settings redo only their
stage, the rest accepted."""

from tests.e2e.helpers import run
from tests.faults.runs import make2, one_line_error


def test_frame_setting_is_refused_by_name(copy_of, tmp_path):
    out = copy_of()
    line = one_line_error(run(make2(out, tmp_path / "p.pt", "--seed", "7")))
    assert "run.seed: 0 -> 7" in line


def test_later_and_neutral_settings_resume(copy_of, tmp_path):
    out = copy_of()
    import os

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CINERL_LLM__TIMEOUT": "5", "CINERL_REWARDS__WORKERS": "2"}
    proc = run(make2(out, tmp_path / "p.pt", "--transition", "crossfade", "--weight-text", "0.9"), env=env)
    assert proc.returncode == 0, proc.stderr
    assert "assembly.transition: cut -> crossfade" in proc.stderr
    assert "rewards.weights.text_alignment: 0.1 -> 0.9" in proc.stderr
    assert "llm.timeout" not in proc.stderr or "refuse" not in proc.stderr
    import json

    rep = json.loads((out / "report.json").read_text())
    assert rep["film"]["transition"] == "crossfade"
    # and again with the same flags: nothing differs any more
    again = run(make2(out, tmp_path / "p.pt", "--transition", "crossfade", "--weight-text", "0.9"), env=env)
    assert again.returncode == 0 and "resuming with" not in again.stderr
