"""The edit rules without a film: which scenes a changed choice leaves stale, the checks on a
hand-edited plan, the estimate's arithmetic and its cache under $HOME, and the budget's rule."""

from __future__ import annotations

import json

import pytest

from cinerl.core.errors import UserError
from cinerl.core.schema import (
    AttemptRecord,
    Character,
    Location,
    NamedColor,
    RewardBreakdown,
    Scene,
    StoryBible,
)
from cinerl.core.settings import load_settings
from cinerl.core.store import RunStore
from cinerl.runtime import edit_log
from cinerl.runtime.budget import Budget
from cinerl.runtime.edits import check_plan, flatten
from cinerl.runtime.estimate import estimate, lines, update_rates
from cinerl.runtime.heal import record_take

PROMPT = "A keeper and her son sail to the harbour."


def bible(n: int = 3) -> StoryBible:
    return StoryBible(
        seed_prompt=PROMPT,
        title="T",
        logline="L",
        characters=[
            Character(
                id="mara",
                name="Mara",
                age=60,
                gender="woman",
                wardrobe=[NamedColor(name="red", rgb=(200, 0, 0))],
            )
        ],
        locations=[
            Location(
                id="harbour",
                name="Harbour",
                scenery_type="harbor",
                palette=[NamedColor(name="slate", rgb=(80, 90, 100))],
            )
        ],
        scenes=[
            Scene(
                index=i,
                title=f"S{i}",
                beat="turn",
                duration_s=2.0 + i,
                character_ids=["mara"],
                location_id="harbour",
                action="row",
            )
            for i in range(n)
        ],
    )


def take(store: RunStore, out, scene: int, attempt: int, total: float) -> AttemptRecord:
    folder = out / "scenes" / f"scene_{scene:02d}"
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"attempt_{attempt:02d}"
    for suffix in (".mp4", "_last.png", "_thumb.jpg"):
        (folder / f"{stem}{suffix}").write_bytes(f"{scene}-{attempt}-{suffix}".encode())
    rec = AttemptRecord(
        scene=scene,
        attempt=attempt,
        seed=0,
        prompt="p",
        negative_prompt="",
        action={},
        log_prob=0.0,
        reward=RewardBreakdown(total=total, components={}, groups={}, weights={}),
        clip_path=f"scenes/scene_{scene:02d}/{stem}.mp4",
        last_frame_path=f"scenes/scene_{scene:02d}/{stem}_last.png",
        thumbnail_path=f"scenes/scene_{scene:02d}/{stem}_thumb.jpg",
    )
    record_take(store, rec, out)
    store.commit_attempt(rec, [0.0])
    return rec


def test_a_changed_choice_makes_the_next_scene_stale_only(tmp_path):
    store = RunStore(tmp_path / "state.db")
    for scene in range(3):
        take(store, tmp_path, scene, 0, 0.5)
        take(store, tmp_path, scene, 1, 0.4)
        store.commit_scene(scene, 0, 1, "", {})
    edit_log.fill_origins(store, keyframes=False)
    assert edit_log.stale_scenes(store) == []
    # scene 2 (index 1) now uses take 2: scene 3 starts from a frame the film no longer shows
    store.commit_scene(1, 1, 1, "", {})
    assert edit_log.stale_scenes(store) == [2]
    # a take of scene 3 shot from the new frame, chosen: nothing is stale any more
    new = take(store, tmp_path, 2, 2, 0.3)
    edit_log.set_origin(store, 2, 2, edit_log.expected_origin(store, 2, keyframes=False))
    store.commit_scene(2, new.attempt, 1, "", {})
    assert edit_log.stale_scenes(store) == []
    # back to scene 2's first take: scene 3's new take is the stale one now
    store.commit_scene(1, 0, 1, "", {})
    assert edit_log.stale_scenes(store) == [2]
    # keyframes mode: every take starts on its keyframe, so no join goes stale
    store2 = RunStore(tmp_path / "k" / "state.db")
    for scene in range(2):
        take(store2, tmp_path / "k", scene, 0, 0.5)
        take(store2, tmp_path / "k", scene, 1, 0.6)
        store2.commit_scene(scene, 0, 1, "", {})
    edit_log.fill_origins(store2, keyframes=True)
    store2.commit_scene(0, 1, 1, "", {})
    assert edit_log.stale_scenes(store2) == []


def test_edits_rows_and_pending(tmp_path):
    store = RunStore(tmp_path / "state.db")
    assert edit_log.pending_edit(store) is None
    eid = edit_log.begin_edit(store, "retake", {"scene": 2, "attempts": 1})
    assert edit_log.pending_edit(store) == {
        "id": eid,
        "kind": "retake",
        "params": {"attempts": 1, "scene": 2},
    }
    edit_log.finish_edit(store, eid, {"shot": {"2": [3]}})
    assert edit_log.pending_edit(store) is None
    assert edit_log.edits(store)[0]["status"] == "done" and edit_log.edits(store)[0]["result"] == {
        "shot": {"2": [3]}
    }


def test_check_plan_names_what_is_wrong(tmp_path):
    path = tmp_path / "bible.json"
    good = bible()
    assert check_plan(good.model_dump_json(), PROMPT, path) == good
    cases = [
        (
            {"scenes": [{**good.scenes[0].model_dump(), "location_id": "moon"}]},
            "scene 1 names an unknown location 'moon'",
        ),
        ({"scenes": [{**good.scenes[0].model_dump(), "character_ids": ["bob"]}]}, "unknown character 'bob'"),
        ({"scenes": [{**good.scenes[1].model_dump()}]}, "scenes must keep their index 0, 1, 2"),
        ({"seed_prompt": "another film"}, "seed_prompt differs from the run's prompt"),
        (
            {"characters": [{**good.characters[0].model_dump(), "id": "../x"}]},
            "character id '../x' is not a safe id",
        ),
        ({"scenes": []}, "scenes: List should have at least 1 item"),
    ]
    for change, words in cases:
        text = json.dumps({**good.model_dump(mode="json"), **json.loads(json.dumps(change, default=list))})
        with pytest.raises(UserError, match=words.replace("(", r"\(").replace(")", r"\)")):
            check_plan(text, PROMPT, path)
    with pytest.raises(UserError, match="bible.json: .*the plan was not changed"):
        check_plan("{not json", PROMPT, path)


def test_estimate_counts_and_its_cache_under_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    settings, _ = load_settings(None, {"run.attempts": 2, "run.fps": 4, "run.width": 64, "run.height": 48})
    b = bible()
    est = estimate(b, settings)
    # frames per take: round(duration * fps) = 8, 12, 16
    assert (est["clips"], est["frames"], est["steps"]) == (6, 2 * (8 + 12 + 16), 0)
    assert est["seconds"] is None and "no previz run measured" in est["source"]
    wan, _ = load_settings(None, {"run.backend": "wan", "wan.steps": 5, "run.attempts": 1, "run.fps": 4})
    assert estimate(b, wan)["steps"] == 3 * 5
    # a finished run's cost per frame is cached in $HOME/.cinerl and used next time
    store = RunStore(tmp_path / "run" / "state.db")
    for scene in range(3):
        take(store, tmp_path / "run", scene, 0, 0.5)
        take(store, tmp_path / "run", scene, 1, 0.5)
    store.add_stage_time("render", 3.0)
    store.add_stage_time("score", 6.0)
    store.add_stage_time("plan", 100.0)  # not a take's cost
    update_rates(store, b, settings)
    cached = json.loads((tmp_path / ".cinerl" / "timings.json").read_text())
    assert cached["previz:64x48"]["per_frame"] == pytest.approx(9.0 / 72)
    again = estimate(b, settings)
    assert again["seconds"] == pytest.approx(9.0) and "measured on this machine" in again["source"]
    bigger, _ = load_settings(None, {"run.attempts": 2, "run.fps": 4, "run.width": 128, "run.height": 96})
    assert estimate(b, bigger)["seconds"] == pytest.approx(36.0)  # scaled by pixels, said so
    assert lines({**again, "budget_s": 30.0}) == [
        "estimate: 3 scenes x 2 takes = 6 clips, 72 frames",
        f"estimate: about 9 CPU seconds (measured on this machine ({tmp_path}/.cinerl/timings.json))",
        "budget: 30 s",
    ]


def test_budget_stops_retries_when_the_rest_would_not_fit(tmp_path):
    store = RunStore(tmp_path / "state.db")
    take(store, tmp_path, 0, 0, 0.5)
    store.add_stage_time("render", 2.0)  # one take so far: 2 s a take
    budget = Budget(seconds=9.0, scenes=3, planned=4)
    # scene 1 with one take: another (2 s) plus one for each of the 2 scenes left (4 s): 8 <= 9
    assert budget.allows_another(store, 0, 1)
    take(store, tmp_path, 0, 1, 0.5)
    store.add_stage_time("render", 2.0)
    # 4 s spent + 2 + 4 = 10 > 9: the scene stops at 2 takes of 4, recorded
    assert not budget.allows_another(store, 0, 2)
    assert edit_log.budget_cuts(store) == [{"scene": 0, "kept": 2, "planned": 4, "spent": 4.0, "budget": 9.0}]


def test_saved_settings_reopen_the_same_run(tmp_path):
    settings, _ = load_settings(
        None, {"run.attempts": 3, "wan.steps": 7, "rewards.weights.text_alignment": 0.5}
    )
    store = RunStore(tmp_path / "state.db")
    edit_log.remember_settings(store, settings)
    again, _ = load_settings(None, flatten(edit_log.saved_settings(store)))
    assert again.film_fingerprint_view() == settings.film_fingerprint_view()
