"""`make --cast NAME=PORTRAIT`: the portrait is the character's reference, previz draws its face,
the identity reward measures against it; bad cast values are one line and exit 2."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from cinerl.apps.cli.app import app
from cinerl.core.errors import UserError
from cinerl.core.media import load_png, read_mp4, save_png
from cinerl.core.schema import Clip
from cinerl.core.settings import Settings
from cinerl.rewards import ClipAnalysis, ScoreContext
from cinerl.rewards.components.identity import identity_lock
from cinerl.runtime.director import make_film
from cinerl.training.character.cast import add_triggers, parse_cast, resolve_cast
from cinerl.training.character.dataset.portrait import load_portrait
from tests.fixtures.faces import FACE
from tests.rewards.conftest import bible

PROMPT = "Mara, a woman in a red coat, walks through a quiet canyon at dusk"


def other_person(path):
    """Another real face: a face of scikit-image's LFW subset, upscaled onto a grey backdrop."""
    skd = pytest.importorskip("skimage.data", reason="scikit-image (test extra) provides the LFW faces")
    face = cv2.resize((skd.lfw_subset()[0] * 255).astype(np.uint8), (160, 160), interpolation=cv2.INTER_CUBIC)
    img = np.repeat(np.pad(face, 40, constant_values=128)[..., None], 3, axis=2)
    save_png(np.ascontiguousarray(img), path)
    return path


def test_cast_names_match_by_name_or_id_and_unknown_names_list_the_characters(tmp_path):
    b = bible()
    assert resolve_cast([f"mara={FACE}"], b)[0].character_id == "mara"
    (m,) = resolve_cast([f"MARA={FACE}"], b)
    assert m.name == "Mara" and m.has_face and m.warnings == [] and m.trigger is None
    with pytest.raises(UserError, match=r"no such character.*its characters: Mara \(mara\)"):
        resolve_cast([f"Ilya={FACE}"], b)
    for bad, message in [
        ("Mara", "expected NAME=PORTRAIT"),
        (f"Mara={tmp_path / 'nope.jpg'}", "is not a file"),
        (f"Mara={FACE},{tmp_path / 'nolora'}", "LoRA folder"),
    ]:
        with pytest.raises(UserError, match=message):
            parse_cast([bad])


def test_a_portrait_without_a_face_warns_and_is_still_the_reference(tmp_path):
    flat = tmp_path / "wall.png"
    save_png(np.full((200, 200, 3), 90, np.uint8), flat)
    (m,) = resolve_cast([f"Mara={flat}"], bible())
    assert not m.has_face and "no face found in the portrait" in m.warnings[0]


def test_triggers_go_where_the_prompt_shows_the_character(tmp_path):
    lora = tmp_path / "lora"
    lora.mkdir()
    (lora / "character.json").write_text(json.dumps({"trigger": "mxra person"}))
    b = bible()
    (m,) = resolve_cast([f"Mara={FACE},{lora}"], b)
    assert add_triggers("Mara, a woman, walks.", ["mara"], b, [m]) == "Mara (mxra person), a woman, walks."
    assert add_triggers("A person walks.", ["mara"], b, [m]) == "mxra person. A person walks."
    assert add_triggers("Wind over rocks.", [], b, [m]) == "Wind over rocks."


def test_previz_draws_the_cast_face_where_the_figure_is_and_identity_lock_sees_it(tmp_path):
    """One previz take of Mara (a medium shot with a dolly, so the figure and camera move): the
    portrait's face follows her head, identity lock is ok against her portrait and lower against
    another person's; a scene without her is left as previz drew it."""
    from cinerl.core.schema import ClipRequest
    from cinerl.generation.previz.backend import PrevizBackend
    from cinerl.training.character.cast import dress_take

    b = bible()
    prompt = "Medium shot, slow dolly in. In Red Canyon. Day. Mara, a woman in a crimson coat. Mara walks."
    req = ClipRequest(prompt=prompt, width=640, height=360, fps=12, num_frames=18, seed=3)
    plain = PrevizBackend().generate(req)
    settings = Settings.of(run__cast=[f"Mara={FACE}"])
    ctx = ScoreContext(scene=b.scenes[0], bible=b)
    dressed = dress_take(plain, req, ctx, settings)
    assert dressed.metadata["cast"][0]["character_id"] == "mara"
    changed = np.abs(dressed.frames.astype(int) - plain.frames.astype(int)).sum(axis=3) > 30
    ys, xs = np.nonzero(changed[0])
    assert 0.3 * 640 < xs.mean() < 0.7 * 640 and ys.mean() < 0.5 * 360  # on the centred figure's head
    empty = dress_take(plain, req, ScoreContext(scene=b.scenes[1], bible=b), settings)
    assert empty is plain
    analysis = ClipAnalysis(dressed)
    portrait = load_portrait(FACE).rgb
    own = identity_lock(analysis, ScoreContext(scene=b.scenes[0], bible=b, character_refs={"mara": portrait}))
    other_ref = load_png(other_person(tmp_path / "other.png"))
    other = identity_lock(
        analysis, ScoreContext(scene=b.scenes[0], bible=b, character_refs={"mara": other_ref})
    )
    assert own.status == "ok" and own.raw["swaps"] == [] and own.value > 0.8
    assert other.raw["identities"] == ["mara"] and own.value > other.value + 0.3
    assert not identity_lock(ClipAnalysis(plain), ScoreContext()).status == "ok"  # drawn figures: no face


# a whole previz film (plan, references, take, full reward suite, stitch, report): ~35 s here
@pytest.mark.heavy
def test_a_previz_film_with_a_cast_face_is_measured_against_the_portrait(tmp_path):
    """One 2 s previz scene: the portrait is the reference, previz draws its face on Mara, and
    identity lock is ok and scores the take higher against her portrait than another person's."""
    out = tmp_path / "film"
    settings = Settings.of(
        run__cast=[f"Mara={FACE}"],
        run__fps=12,
        plan__scenes=1,
        plan__scene_seconds_min=2,
        plan__scene_seconds_max=2,
        run__attempts=1,
        policy__mode="template",
        audio__music="none",
    )
    result = make_film(PROMPT, out, settings)
    rep = result.report
    assert rep.references["character:mara"] == "references/cast_mara.png"
    take = rep.scenes[0].attempts[0]
    il = take.reward.components["identity_lock"]
    assert il.status == "ok" and il.raw["identities"] == ["mara"] and il.raw["swaps"] == []
    assert all(n >= 1 for n in il.raw["faces_per_keyframe"]) and max(il.raw["reference_distances"]) < 0.45
    frames, fps = read_mp4(out / take.clip_path)
    analysis = ClipAnalysis(Clip(frames=frames, fps=fps))
    scene, b = rep.bible.scenes[0], rep.bible
    portrait = load_portrait(FACE).rgb
    own = identity_lock(analysis, ScoreContext(scene=scene, bible=b, character_refs={"mara": portrait}))
    other_ref = load_png(other_person(tmp_path / "other.png"))
    other = identity_lock(analysis, ScoreContext(scene=scene, bible=b, character_refs={"mara": other_ref}))
    assert other.raw["identities"] == ["mara"]  # the other face is found, and it is not hers
    assert own.value > other.value + 0.3 and other.raw["swaps"]
    (member,) = json.loads((out / "report.json").read_text())["cast"]
    assert (
        member["character_id"] == "mara" and member["lora"] is None and member["scenes"][0]["status"] == "ok"
    )
    assert "<h2>Cast</h2>" in (out / "report.html").read_text()
    # an unknown name: the story's characters in one line, exit 2
    res = CliRunner().invoke(
        app, ["make", PROMPT, "--out", str(tmp_path / "f2"), "--scenes", "1", "--cast", f"Ilya={FACE}"]
    )
    text = " ".join(res.output.split())
    assert res.exit_code == 2 and "no such character" in text and "Mara (mara)" in text, text


def test_the_report_shows_the_cast_with_identity_lock_per_scene(tmp_path):
    from cinerl.assembly.report.build import render_html

    cast = [
        {
            "character_id": "mara",
            "name": "Mara",
            "portrait": "/photos/me.jpg",
            "lora": "/loras/mara",
            "trigger": "mara person",
            "warnings": [],
            "scenes": [
                {"scene": 0, "status": "ok", "value": 0.9512, "swaps": 0},
                {"scene": 1, "status": "ok", "value": 0.4, "swaps": 2},
            ],
        }
    ]
    page = render_html({"title": "T", "seed_prompt": "p", "cast": cast}, tmp_path)
    assert "<h2>Cast</h2>" in page and "mara person" in page and "/loras/mara" in page
    assert "scene 1: 0.951" in page and "scene 2: 0.400 (2 swaps)" in page
    assert "<h2>Cast</h2>" not in render_html({"title": "T", "seed_prompt": "p"}, tmp_path)


def test_cinerl_cast_makes_the_set_and_prints_the_cast_argument(tmp_path, monkeypatch):
    monkeypatch.delenv("WAN_MODEL_ROOT", raising=False)
    runner = CliRunner()
    res = runner.invoke(
        app, ["cast", str(FACE), "--name", "Mara", "--out", str(tmp_path / "c"), "--width", "128"]
    )
    assert res.exit_code == 0, res.output
    assert "(17/17 images)" in res.output and "lora:      none" in res.output
    assert f"--cast 'Mara={FACE.resolve()}'" in res.output
    assert len(list((tmp_path / "c" / "actor" / "images").glob("*.jpg"))) == 17
    res = runner.invoke(app, ["cast", str(FACE), "--name", "a=b", "--out", str(tmp_path / "d")])
    assert res.exit_code == 2 and "give the character's name" in " ".join(res.output.split())


def test_cli_bad_cast_values_are_one_line_and_exit_2(tmp_path):
    runner = CliRunner()
    for cast, message in [
        ("Mara", "expected NAME=PORTRAIT"),
        (f"Mara={tmp_path / 'nope.jpg'}", "is not a file"),
    ]:
        out = tmp_path / "run"
        res = runner.invoke(app, ["make", PROMPT, "--out", str(out), "--cast", cast])
        text = " ".join(res.output.split())
        assert res.exit_code == 2 and message in text and "Traceback" not in text, text
        assert not out.exists()
