"""`cinerl plan` (the LLM-only pipeline), its resume after a kill, and `cinerl make` with --llm
and --from-plan, through the real CLI and a real HTTP server."""

import json
import os
import signal
import subprocess
import sys
from collections import Counter

from typer.testing import CliRunner

from cinerl.apps.cli.app import app
from cinerl.planning.offline import plan_story
from cinerl.planning.prompt_audit import audit
from cinerl.prompting.composer import compose, compose_onto
from cinerl.core.schema import StoryBible
from tests.llm.llm_servers import FaultServer

PROMPT = "A retired lighthouse keeper and her son sail from the stormy coast to the harbour town."
KEY = "sk-test-SECRET-0123456789abcdef"
runner = CliRunner()


def test_offline_plan_writes_documents_that_make_from_plan_shoots(tmp_path):
    plan_dir = tmp_path / "plan"
    r = runner.invoke(app, ["plan", PROMPT, "--out", str(plan_dir), "--scenes", "2"])
    assert r.exit_code == 0, r.output
    bible = StoryBible.model_validate_json((plan_dir / "creative_document.json").read_text())
    prompts = json.loads((plan_dir / "scene_prompts.json").read_text())
    report = json.loads((plan_dir / "plan_report.json").read_text())
    assert len(bible.scenes) == 2 and [p["mode"] for p in prompts] == ["t2v", "i2v"]
    for p, sc in zip(prompts, bible.scenes):
        assert audit(p["revised_prompt"], sc, bible, p["mode"]) == []  # locks, words, colours
    assert [s["step"] for s in report["steps"]] == [
        "plan",
        "enrich.scene_00",
        "critique.scene_00",
        "enrich.scene_01",
        "critique.scene_01",
    ]
    assert {s["provider"] for s in report["steps"]} == {"offline"}

    film = tmp_path / "film"
    r = runner.invoke(
        app,
        [
            "make",
            "--from-plan",
            str(plan_dir),
            "--out",
            str(film),
            "--attempts",
            "1",
            "--max-attempts",
            "1",
            "--size",
            "96x64",
            "--fps",
            "6",
            "--policy",
            str(tmp_path / "p.pt"),
        ],
    )
    assert r.exit_code == 0, r.output
    rep = json.loads((film / "report.json").read_text())
    assert StoryBible.model_validate(rep["bible"]) == bible
    assert rep["llm"]["steps"][0]["provider"] == "plan"
    # the plan's critique-revised prompts are what the backend is given, with the policy's
    # camera, light and motion in front
    assert rep["llm"]["scene_prompts"]["source"] == f"plan {plan_dir}"
    for p, sc, row in zip(prompts, bible.scenes, rep["scenes"]):
        att = row["attempts"][0]
        assert att["prompt"] == compose_onto(p["revised_prompt"], sc, bible, att["action"])[0]
        for name in [bible.character(c).name for c in sc.character_ids]:
            sentence = next(x for x in p["revised_prompt"].split(". ") if x.startswith(name))
            assert sentence in att["prompt"]


def test_make_refuses_a_plan_that_did_not_finish(tmp_path):
    plan_dir = tmp_path / "plan"
    plan_dir.mkdir()
    (plan_dir / "creative_document.json").write_text(plan_story(PROMPT).model_dump_json())
    r = runner.invoke(app, ["make", "--from-plan", str(plan_dir), "--out", str(tmp_path / "f")])
    message = " ".join(r.output.split())
    assert r.exit_code == 2 and "no scene_prompts.json there" in message and "--resume" in message
    assert not (tmp_path / "f").exists()


def test_make_with_llm_records_each_step_and_falls_back_to_the_offline_composition(tmp_path):
    with FaultServer() as srv:
        r = runner.invoke(
            app,
            [
                "make",
                PROMPT,
                "--out",
                str(tmp_path / "film"),
                "--llm",
                "openai",
                "--model",
                "fault-model",
                "--llm-base-url",
                srv.url,
                "--scenes",
                "1",
                "--attempts",
                "1",
                "--max-attempts",
                "1",
                "--size",
                "96x64",
                "--fps",
                "6",
                "--policy",
                str(tmp_path / "p.pt"),
            ],
            env={"OPENAI_API_KEY": KEY},
        )
    assert r.exit_code == 0, r.output
    rep = json.loads((tmp_path / "film" / "report.json").read_text())
    steps = rep["llm"]["steps"]
    assert [(s["step"], s["provider"], s["model"]) for s in steps] == [
        ("plan.cast", "openai", "fault-model"),
        ("plan.scenes", "openai", "fault-model"),
        ("enrich.scene_00", "openai", "fault-model"),
    ]
    assert all(s["prompt_tokens"] == 100 * len(s["calls"]) and s["seconds"] > 0 for s in steps)
    assert rep["bible"]["planner"] == "openai:fault-model"
    # The server's minimal JSON is too short for a prompt: after two repairs the scene falls
    # back to the offline composition (no critique of a stand-in), with a warning, no crash.
    assert steps[2]["fell_back"] and len(steps[2]["calls"]) == 3
    row = rep["llm"]["scene_prompts"]["scenes"][0]
    assert row["base_prompt"] is None and "offline composition" in row["warning"]
    assert {row["warning"], steps[2]["warning"]} <= set(rep["llm"]["warnings"])
    bible = StoryBible.model_validate(rep["bible"])
    att = rep["scenes"][0]["attempts"][0]
    assert att["prompt"] == compose(bible.scenes[0], bible, att["action"])[0]
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path  # not in report, logs or run store


def test_refused_key_exits_2_with_one_message_and_no_key(tmp_path):
    with FaultServer(["401"]) as srv:
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "cinerl.apps.cli.app",
                "plan",
                PROMPT,
                "--out",
                str(tmp_path / "p"),
                "--llm",
                "openai",
                "--llm-base-url",
                srv.url,
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "OPENAI_API_KEY": KEY},
            timeout=120,
        )
    assert r.returncode == 2
    assert "refused the API key (HTTP 401)" in r.stderr and "Traceback" not in r.stderr
    assert KEY not in r.stderr + r.stdout


def test_plan_resumes_after_a_kill_without_repeating_finished_calls(tmp_path):
    out = tmp_path / "plan"
    cmd = [
        sys.executable,
        "-m",
        "cinerl.apps.cli.app",
        "plan",
        PROMPT,
        "--out",
        str(out),
        "--llm",
        "openai",
        "--model",
        "fault-model",
        "--llm-base-url",
        None,
        "--scenes",
        "2",
    ]
    # The server answers with minimal schema-valid JSON: the rule check rejects it, so each
    # prompt step makes three calls (two repairs). The plan takes requests 1-2, the first prompt
    # 3-5; request 7 is the critic's second call, where the kill lands, mid-step.
    with FaultServer(["ok"] * 6 + ["block"]) as srv:
        cmd[cmd.index(None)] = srv.url
        proc = subprocess.Popen(
            cmd, env={**os.environ, "OPENAI_API_KEY": KEY}, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        srv.wait_for(7, timeout=90)
        assert len(srv.requests) == 7, proc.communicate(timeout=5)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        first = list(srv.answered)
        assert len(first) == 6 and not (out / "plan_report.json").exists()
        srv.release.set()
        r = runner.invoke(
            app,
            [
                "plan",
                PROMPT,
                "--out",
                str(out),
                "--llm",
                "openai",
                "--model",
                "fault-model",
                "--llm-base-url",
                srv.url,
                "--scenes",
                "2",
                "--resume",
            ],
            env={"OPENAI_API_KEY": KEY},
        )
        assert r.exit_code == 0, r.output
    report = json.loads((out / "plan_report.json").read_text())
    # nothing the killed run finished was asked again
    assert srv.answered[:6] == first and not set(first) & set(srv.answered[6:])
    assert max(Counter(srv.answered).values()) == 1
    assert report["resumed_steps"] == ["bible", "enrich_00"]
    # the cut-off step found its finished call in the cache
    assert report["cache_hits"] == 1 and report["calls"] >= 7
    assert {s["provider"] for s in report["steps"]} == {"openai"}
    assert any("used the offline planner" in w for w in report["warnings"])
