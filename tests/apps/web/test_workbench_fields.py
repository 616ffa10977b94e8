"""The New film tab's fields as `cinerl make`'s settings, the Storyboard's field-by-field edit
of characters and scenes, and the `--auth-file` token login (no browser, no film)."""

from __future__ import annotations

import json

import pytest

from cinerl.core.errors import UserError
from tests.runtime.test_edit_log import PROMPT, bible

pytest.importorskip("gradio", reason="the workbench needs gradio (pip install 'cinerl[ui]')")

from cinerl.apps.web.app import (  # noqa: E402
    apply_fields,
    apply_prompts,
    film_overrides,
    parse_wardrobe,
    read_auth_file,
    wardrobe_text,
)


def test_new_film_fields_are_the_cli_settings():
    from cinerl.runtime.edits import new_settings

    s = new_settings(film_overrides("previz", 4, 3, "320x180", 12, False, "offline", " http://h:8000/v1 "))
    assert (s.run.backend, s.plan.scenes, s.run.attempts) == ("previz", 4, 3)
    assert (s.run.width, s.run.height, s.run.fps) == (320, 180, 12)
    assert (s.audio.music, s.llm.provider, s.llm.base_url) == ("none", "offline", "http://h:8000/v1")
    assert new_settings(film_overrides("previz", 3, 1, "64x48", 4)).audio.music == "generated"
    with pytest.raises(UserError, match="size must look like 640x360"):
        film_overrides("previz", 3, 1, "big", 24)
    with pytest.raises(UserError, match="takes per scene must be between 1 and 64"):
        film_overrides("previz", 3, 0, "64x48", 24)


def test_storyboard_fields_edit_characters_and_scenes():
    b = bible(2)
    colours, garments = parse_wardrobe("crimson coat, cobalt blue scarf")
    assert [c.name for c in colours] == ["crimson", "cobalt blue"] and garments == ["coat", "scarf"]
    assert colours[0].rgb == (180, 20, 40)  # measurable: the vocabulary's sRGB
    new = apply_fields(b, [("Mara Vey", "61", "woman", "crimson coat")], ["She rows.", "He waves."])
    c = new.characters[0]
    assert (c.name, c.age, c.gender, [w.name for w in c.wardrobe], c.garments) == (
        "Mara Vey",
        61,
        "woman",
        ["crimson"],
        ["coat"],
    )
    assert [sc.action for sc in new.scenes] == ["She rows.", "He waves."]
    assert wardrobe_text(c) == "crimson coat"
    assert new.seed_prompt == PROMPT and new.locations == b.locations  # the rest untouched
    for fields, actions, words in (
        ([("Mara", "200", "woman", "red coat")], ["a", "b"], "age must be between 1 and 120"),
        ([("Mara", "old", "woman", "red coat")], ["a", "b"], "age must be a whole number"),
        ([("Mara", "60", "woman", "coat")], ["a", "b"], "names no colour cinerl knows"),
        ([("", "60", "woman", "red coat")], ["a", "b"], "the name must not be empty"),
        ([("Mara", "60", "woman", "red coat")], ["a", " "], "scene 2: the action must not be empty"),
    ):
        with pytest.raises(UserError, match=words):
            apply_fields(b, fields, actions)
    saved = json.dumps({"scenes": [{"scene": 0, "base_prompt": "old"}, {"scene": 1, "base_prompt": "keep"}]})
    rows = json.loads(apply_prompts(saved, ["new prompt", ""]))["scenes"]
    assert [r["base_prompt"] for r in rows] == ["new prompt", "keep"]


def test_auth_file(tmp_path):
    good = tmp_path / "token"
    good.write_text("\nann:s3 cret\n")
    assert read_auth_file(good) == "ann:s3 cret"
    bad = tmp_path / "bad"
    bad.write_text("justuser\n")
    with pytest.raises(UserError, match="first line must be USER:PASSWORD"):
        read_auth_file(bad)
    with pytest.raises(UserError, match="cannot read it"):
        read_auth_file(tmp_path / "missing")
    # through the command (in-process: a new `cinerl` process costs seconds): one line, exit 2
    from typer.testing import CliRunner

    from cinerl.apps.cli.app import app

    for args, words in (
        (["--auth-file", str(bad)], "first line must be USER:PASSWORD"),
        (["--auth-file", str(good), "--auth", "a:b"], "--auth or --auth-file, not both"),
    ):
        res = CliRunner().invoke(app, ["ui", "--host", "0.0.0.0", *args])
        assert res.exit_code == 2 and words in res.output, res.output
