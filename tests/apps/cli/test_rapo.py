"""The commands: `cinerl rapo PROMPT`, `rapo build`, `rapo export`, `cinerl sspo`."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from cinerl.apps.cli.app import app

runner = CliRunner()


def _flat(text: str) -> str:
    """Rich wraps long error lines, at a space or inside a long path: compare without whitespace."""
    return "".join(text.split())


def test_rapo_prompt_prints_modifiers_and_the_optimised_prompt(rapo_env):
    res = runner.invoke(app, ["rapo", "a knight rides through a misty forest", "--llm", "offline"])
    assert res.exit_code == 0, res.output
    assert "a misty pine forest" in res.output
    line = next(x for x in res.output.splitlines() if x.startswith("optimised: "))
    assert line.lower().startswith("optimised: a knight rides through a misty forest,")
    # the explicit form and JSON output agree
    res2 = runner.invoke(
        app, ["rapo", "query", "a knight rides through a misty forest", "--llm", "offline", "--json"]
    )
    data = json.loads(res2.output)
    assert data["optimised"] == line.removeprefix("optimised: ")
    assert data["retrieval"]["places"][0]["text"] == "a misty pine forest"


def test_rapo_build_and_bad_inputs(rapo_env, tmp_path):
    csv = tmp_path / "mini.csv"
    csv.write_text(
        "Input,verb_obj_word,scenario_word,place\n"
        "x,\"['rowing a boat']\",\"['calm water']\",\"['a still lake']\"\n"
    )
    res = runner.invoke(app, ["rapo", "build", "--csv", str(csv), "--rapo-dir", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "1 places, 1 verbs, 1 scenes, 2 edges from 1/1 captions" in res.output
    bad = runner.invoke(app, ["rapo", "build", "--csv", str(tmp_path / "none.csv")])
    assert bad.exit_code == 2 and "Traceback" not in bad.output
    assert _flat("none.csv does not exist") in _flat(bad.output)
    empty = runner.invoke(app, ["rapo", "  "])
    assert empty.exit_code == 2 and _flat("the prompt is empty") in _flat(empty.output)


def test_sspo_then_export(rapo_env, tmp_path):
    out = tmp_path / "chain"
    args = [
        "sspo",
        "Medium shot, shaky handheld camera. A dancer spins on a stage, frantic motion.",
        "--out",
        str(out),
        "--iterations",
        "2",
        "--size",
        "128x72",
        "--fps",
        "8",
        "--seconds",
        "2",
        "--physics-law",
        "angular momentum is conserved",
        "--llm",
        "offline",
    ]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "best: iteration" in res.output and (out / "sspo_log.csv").exists()
    again = runner.invoke(app, args)  # finished chain: resumes, regenerates nothing
    assert "resumed after iteration 2" in again.output
    assert runner.invoke(app, [*args[:2], "--out", str(out), "--size", "bad"]).exit_code == 2
    exp = runner.invoke(app, ["rapo", "export", "--from", str(out), "--out", str(tmp_path / "x")])
    assert exp.exit_code == 0, exp.output
    assert "from 1 SSPO chain(s) and 0 run(s)" in exp.output
    assert (tmp_path / "x" / "sft.jsonl").exists()
