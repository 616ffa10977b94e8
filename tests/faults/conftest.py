"""Shared by the fault tests: the real CLI in-process, and a tiny saved plan."""

import json
import shutil

import pytest
from typer.testing import CliRunner

from cinerl.apps.cli.app import app
from cinerl.planning.offline import plan_story
from cinerl.planning.scene_prompts import prompt_mode

PROMPT = "A young pilot and her old mentor cross the desert to reach the mountain observatory."
TINY = ["--scenes", "1", "--attempts", "1", "--size", "32x32"]


def cli(*args: str, env: dict | None = None):
    """`cinerl ARGS` in this process; stderr apart from stdout."""
    try:
        runner = CliRunner(mix_stderr=False)
    except TypeError:  # click >= 8.2 keeps them apart already
        runner = CliRunner()
    return runner.invoke(app, [str(a) for a in args], env=env)


def error_lines(res) -> list[str]:
    return [line for line in (res.stderr or "").splitlines() if line.strip()]


def assert_one_line_error(res) -> str:
    """Exit 2, one line on stderr, no traceback anywhere."""
    out = (res.stdout or "") + (res.stderr or "")
    assert res.exit_code == 2, (res.exit_code, out, res.exception)
    assert "Traceback" not in out
    lines = error_lines(res)
    assert len(lines) == 1, lines
    return lines[0]


@pytest.fixture
def saved_plan(tmp_path):
    """A finished `cinerl plan` folder written by hand: one scene, offline."""

    def make(edit=None):
        bible = plan_story(PROMPT, seed=0, scenes=1).model_dump(mode="json")
        if edit:
            edit(bible)
        d = tmp_path / "plan"
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir()
        (d / "creative_document.json").write_text(json.dumps(bible))
        rows = [
            {
                "scene": sc["index"],
                "title": sc["title"],
                "mode": prompt_mode(sc["index"]),
                "prompt": "p",
                "issues": [],
                "revised_prompt": "a plain prompt",
                "negative_prompt": "",
            }
            for sc in bible["scenes"]
        ]
        (d / "scene_prompts.json").write_text(json.dumps(rows))
        return d

    return make
