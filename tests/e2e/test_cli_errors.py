"""Bad input through the real command: one clear message, exit code 2, no traceback, nothing written."""

import subprocess

import pytest

from tests.e2e.helpers import CINERL, env, run


@pytest.mark.parametrize(
    "args, message",
    [
        (["make", "", "--out", "{out}"], "prompt is empty"),
        (["make", "   ", "--out", "{out}"], "prompt is empty"),
        (["make", "x" * 20_001, "--out", "{out}"], "limit is 20,000"),
        (["make", "a\x01film", "--out", "{out}"], "control characters"),
        (["make", "a film", "--out", "{out}", "--scenes", "0"], "--scenes must be between 1 and 24"),
        (["make", "a film", "--out", "{out}", "--scenes", "1000"], "--scenes must be between 1 and 24"),
        (["make", "a film", "--out", "/proc/cinerl-run"], "not writable"),
        (["make", "a film", "--out", "{out}", "--size", "big"], "--size must look like 640x360"),
        (["make", "a film", "--out", "{out}", "--rl", "dqn"], "rl"),
        (["make", "a film", "--out", "{out}", "--backend", "sora"], "unknown video backend 'sora'"),
    ],
)
def test_bad_input_exits_2_with_one_message(tmp_path, args, message):
    out = tmp_path / "run"
    res = run([CINERL, *[a.replace("{out}", str(out)) for a in args]])
    assert res.returncode == 2, res.stderr
    assert message in " ".join(res.stderr.split())
    assert "Traceback" not in res.stderr + res.stdout
    if message != "unknown video backend 'sora'":
        assert not out.exists() or not any(out.iterdir())


def test_invalid_utf8_prompt(tmp_path):
    out = tmp_path / "run"
    res = subprocess.run(
        [CINERL.encode(), b"make", b"caf\xe9 \xff", b"--out", str(out).encode()],
        capture_output=True,
        env=env(),
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert res.returncode == 2
    assert b"not valid UTF-8" in res.stderr and b"Traceback" not in res.stderr
    assert not out.exists()


def test_config_command_shows_every_setting_with_its_source_in_groups(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[run]\nattempts = 3\n")
    res = run(
        [CINERL, "config", "--config", str(cfg), "--json", "--set", "wan.steps=9"],
        env={**env(), "CINERL_RUN__FPS": "12", "OPENAI_API_KEY": "sk-not-printed"},
    )
    assert res.returncode == 0, res.stderr
    import json

    data = json.loads(res.stdout)
    rows = {r["setting"]: r for r in data["settings"]}
    assert (rows["run.attempts"]["value"], rows["run.attempts"]["source"]) == (3, f"file {cfg}")
    assert (rows["run.fps"]["value"], rows["run.fps"]["source"]) == (12, "env CINERL_RUN__FPS")
    assert (rows["wan.steps"]["value"], rows["wan.steps"]["source"]) == (9, "flag")
    assert rows["run.seed"] == {**rows["run.seed"], "value": 0, "source": "default"}
    assert rows["llm.api_key"]["source"] == "env OPENAI_API_KEY"
    assert "sk-not-printed" not in res.stdout
    assert {r["group"] for r in data["settings"]} == {
        "run",
        "plan",
        "llm",
        "wan",
        "rewards",
        "policy",
        "assembly",
        "audio",
        "executor",
    }
    # what each reward component needs, and whether it has it
    needs = {n["name"]: n for n in data["reward_components"]}
    assert needs["fvd_lite"]["requires"] == ["i3d_path", "fvd_reference_path"]
    assert not needs["fvd_lite"]["configured"] and needs["temporal_flicker"]["configured"]
    table = run([CINERL, "config"], env={**env(), "COLUMNS": "200"})
    assert table.returncode == 0 and "[wan]" in table.stdout and "WAN_MODEL_ROOT" in table.stdout
