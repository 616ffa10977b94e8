"""`cinerl train enhancer sft | grpo | eval` through typer's CliRunner: bad input ends in one
line and exit code 2; a run on a tiny model through the flags and a --config TOML works."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cinerl.apps.cli.app import app
from cinerl.training.enhancer.config import read_metrics


def _invoke(*args):
    return CliRunner().invoke(app, ["train", "enhancer", *map(str, args)])


def _one_line_error(res) -> str:
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1, res.output
    return lines[0]


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def data(tmp_path):
    return _jsonl(
        tmp_path / "sft.jsonl", [{"prompt": "Scene: a fox runs, dawn.", "completion": "A red fox runs."}] * 4
    )


def test_missing_model_is_one_line_exit_2(tmp_path, data):
    line = _one_line_error(
        _invoke("sft", "--base", tmp_path / "no-such-model", "--data", data, "--out", tmp_path / "o")
    )
    assert "no-such-model: no such folder or .gguf file" in line
    line = _one_line_error(_invoke("sft", "--data", data, "--out", tmp_path / "o"))
    assert "--base is required" in line
    line = _one_line_error(_invoke("sft", "--base", "HuggingFaceTB/SmolLM2-135M", "--data", data))
    assert "nothing is downloaded" in line


def test_empty_data_and_a_row_without_completion_are_one_line_exit_2(tiny_lm, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    line = _one_line_error(_invoke("sft", "--base", tiny_lm, "--data", empty, "--out", tmp_path / "o"))
    assert "empty.jsonl: the file has no rows" in line
    bad = _jsonl(tmp_path / "bad.jsonl", [{"prompt": "a", "completion": "b"}, {"prompt": "c"}])
    line = _one_line_error(_invoke("sft", "--base", tiny_lm, "--data", bad, "--out", tmp_path / "o"))
    assert "line 2 has no 'completion'" in line
    line = _one_line_error(_invoke("grpo", "--base", tiny_lm, "--prompts", empty, "--out", tmp_path / "g"))
    assert "the file has no rows" in line
    line = _one_line_error(_invoke("eval", "--enhancer", tiny_lm, "--prompts", bad))
    assert "not a trained enhancer folder" in line
    toml = tmp_path / "c.toml"
    toml.write_text("learning_rate = 0.1\n")
    line = _one_line_error(_invoke("sft", "--base", tiny_lm, "--config", toml))
    assert "unknown keys: learning_rate" in line


def test_sft_through_the_cli_with_a_config_file(tiny_lm, data, tmp_path):
    toml = tmp_path / "sft.toml"
    toml.write_text(f'base = "{tiny_lm}"\nlr = 0.01\nbatch_size = 2\nsteps = 5\n')
    out = tmp_path / "enh"
    res = _invoke("sft", "--config", toml, "--data", data, "--out", out, "--steps", 2, "--seed", 3)
    assert res.exit_code == 0, res.output
    assert f"enhancer: {out}" in res.output
    info = json.loads((out / "enhancer.json").read_text())
    # flags win over the file: 2 steps, seed 3; the file's lr and batch size stay
    assert info["config"]["steps"] == 2 and info["config"]["seed"] == 3 and info["config"]["lr"] == 0.01
    assert [m["step"] for m in read_metrics(out / "metrics.jsonl") if "loss" in m] == [1, 2]


@pytest.fixture(scope="module")
def tiny_enhancer(tiny_lm, tmp_path_factory):
    from cinerl.training.enhancer.sft import EnhancerSFTConfig, train

    root = tmp_path_factory.mktemp("tiny_enhancer")
    rows = _jsonl(
        root / "sft.jsonl", [{"prompt": "Scene: a fox runs, dawn.", "completion": "A red fox runs."}] * 2
    )
    return train(EnhancerSFTConfig(base=str(tiny_lm), data=str(rows), out=str(root / "tiny-enh"), steps=1))


def test_enhance_prints_the_enhancers_prompt_and_caches_it(tiny_enhancer, tmp_path):
    import typer

    from cinerl.apps.cli.common import OneLineErrors
    from cinerl.apps.cli.train_enhancer import enhance_cmd
    from cinerl.training.enhancer.enhance import FileCache, enhance

    cache = FileCache(tmp_path / "cache")
    first = enhance("a cat on a windowsill", tiny_enhancer, max_new_tokens=6, cache=cache)
    again = enhance("a cat on a windowsill", tiny_enhancer, max_new_tokens=6, cache=cache)
    assert not first["cached"] and again["cached"] and again["prompt"] == first["prompt"]
    assert first["enhancer"] == "enhancer:tiny-enh" and "windowsill" in first["brief"]
    assert len(list((tmp_path / "cache").glob("enhance-*.txt"))) == 1

    cli = typer.Typer(cls=OneLineErrors)
    cli.command()(enhance_cmd)
    cli.command("other")(lambda: None)  # a group, as `cinerl` is
    res = CliRunner().invoke(
        cli,
        [
            "enhance-cmd",
            "a cat on a windowsill",
            "--enhancer",
            str(tiny_enhancer),
            "--brief",
            "--max-new-tokens",
            "6",
        ],
    )
    assert res.exit_code == 0, res.output
    assert res.output.splitlines()[0].startswith("brief: Scene:")
    line = _one_line_error(
        CliRunner().invoke(cli, ["enhance-cmd", "a cat", "--enhancer", str(tmp_path / "nope")])
    )
    assert "no such folder" in line


def test_eval_writes_the_table_as_json(tiny_enhancer, tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("a cat on a windowsill\n")
    out = tmp_path / "eval.json"
    res = _invoke(
        "eval",
        "--enhancer",
        tiny_enhancer,
        "--prompts",
        prompts,
        "--json",
        out,
        "--samples",
        1,
        "--max-new-tokens",
        6,
    )
    assert res.exit_code == 0, res.output
    result = json.loads(out.read_text())
    assert set(result) >= {"base", "enhancer", "win_rate"}
    for key in ("base", "enhancer"):
        r = result[key]
        assert 0 <= r["mean_reward"] <= 1.5 and len(r["prompts"]) == 1
        assert r["mean_reward"] == pytest.approx(r["prompts"][0]["reward"])
    assert result["base"]["model"].startswith("base:") and result["enhancer"]["model"] == "enhancer:tiny-enh"
    assert "mean reward" in res.output
