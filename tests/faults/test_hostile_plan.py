"""Ids become file names (references/<id>.png): a bible from any source whose id is a path is
refused with one line naming the id, and nothing is written outside --out (issue 12, case 4)."""

import json

import pytest

from cinerl.core.errors import UserError
from cinerl.core.schema import StoryBible
from cinerl.planning.offline import plan_story
from tests.faults.conftest import PROMPT, TINY, assert_one_line_error, cli

EVIL = "x/../../TRAVERSED"


def bible_json() -> dict:
    return plan_story(PROMPT, seed=0, scenes=1).model_dump(mode="json")


def set_character_id(b: dict, new: str) -> None:
    old = b["characters"][0]["id"]
    b["characters"][0]["id"] = new
    for sc in b["scenes"]:
        sc["character_ids"] = [new if c == old else c for c in sc["character_ids"]]


def set_location_id(b: dict, new: str) -> None:
    old = b["locations"][0]["id"]
    b["locations"][0]["id"] = new
    for sc in b["scenes"]:
        if sc["location_id"] == old:
            sc["location_id"] = new


@pytest.mark.parametrize(
    "edit, what",
    [
        (lambda b: set_character_id(b, EVIL), "character id"),
        (lambda b: set_location_id(b, EVIL), "location id"),
        (lambda b: b["scenes"][0].update(character_ids=["../up"]), "scene character id"),
        (lambda b: b["scenes"][0].update(location_id="/etc/passwd"), "scene location id"),
        (lambda b: set_character_id(b, "Mira"), "character id"),  # not a slug: upper case
        (lambda b: set_character_id(b, ""), "character id"),
        (lambda b: set_location_id(b, "a" * 41), "location id"),
    ],
)
def test_every_id_that_becomes_a_file_name_is_a_slug(edit, what):
    b = bible_json()
    edit(b)
    with pytest.raises(UserError, match=what):
        StoryBible.model_validate_json(json.dumps(b))  # story/bible.json, a saved plan
    with pytest.raises(UserError, match=what):
        StoryBible.model_validate(b)  # an LLM draft, a bible built in code


def test_a_traversing_plan_writes_nothing_outside_out(tmp_path, saved_plan):
    plan = saved_plan(lambda b: set_character_id(b, EVIL))
    out = tmp_path / "deep" / "er" / "out"
    res = cli("make", "--from-plan", plan, "--out", out, *TINY)
    line = assert_one_line_error(res)
    assert EVIL in line and "creative_document.json" in line
    assert not list(tmp_path.rglob("TRAVERSED*"))


def test_a_plan_with_safe_ids_still_shoots(tmp_path, saved_plan):
    res = cli("make", "--from-plan", saved_plan(), "--out", tmp_path / "out", *TINY)
    assert res.exit_code == 0, (res.stdout, res.stderr, res.exception)
    stills = {p.stem for p in (tmp_path / "out" / "references").rglob("*.png")}
    bible = json.loads((tmp_path / "out" / "story" / "bible.json").read_text())
    assert {f"character_{c['id']}" for c in bible["characters"]} <= stills
