from cinerl.core.store import RunStore, fingerprint
from cinerl.core.schema import AttemptRecord, ComponentScore, RewardBreakdown


def record(scene, attempt, total):
    comps = {
        "temporal_flicker": ComponentScore(
            name="temporal_flicker", group="visual_quality", status="ok", value=total
        ),
        "narrative_judge": ComponentScore(
            name="narrative_judge", group="narrative_coherence", status="unavailable", reason="no LLM"
        ),
    }
    return AttemptRecord(
        scene=scene,
        attempt=attempt,
        seed=1,
        prompt="p",
        negative_prompt="",
        action={"shot_size": "wide"},
        log_prob=-1.0,
        reward=RewardBreakdown(total=total, components=comps, groups={}, weights={}),
        clip_path="c.mp4",
        last_frame_path="l.png",
        thumbnail_path="t.jpg",
    )


def test_attempts_scenes_and_stages_survive_reopening(tmp_path):
    db = tmp_path / "state.db"
    store = RunStore(db)
    store.start_run("prompt", fingerprint("prompt", {"a": 1}), {"a": 1})
    store.commit_attempt(record(0, 0, 0.4), [0.1, 0.2])
    store.commit_attempt(record(0, 1, 0.6), [0.3, 0.4])
    store.commit_scene(0, 1, 1, "policy/after_scene_00.pt", {"entropy": 1.0})
    store.add_stage_time("render", 1.5)
    store.add_stage_time("render", 0.5)
    store.close()
    again = RunStore(db)
    assert again.run()["fingerprint"] == fingerprint("prompt", {"a": 1})
    got = again.attempts(0)
    assert [r.attempt for r, _ in got] == [0, 1] and got[1][1] == [0.3, 0.4]
    assert got[1][0] == record(0, 1, 0.6)
    assert again.scenes()[0]["chosen"] == 1
    assert again.stage_times() == {"render": 2.0}
    rows = again.db.execute("SELECT component, status, value FROM rewards WHERE attempt = 1").fetchall()
    assert sorted(rows) == [("narrative_judge", "unavailable", None), ("temporal_flicker", "ok", 0.6)]


def test_artifact_is_only_trusted_when_file_matches(tmp_path):
    store = RunStore(tmp_path / "state.db")
    f = tmp_path / "story" / "bible.json"
    f.parent.mkdir()
    f.write_text("{}")
    store.record_artifact("story", "bible", f, tmp_path)
    assert store.artifact("story", "bible", tmp_path) == f
    f.write_text('{"changed": 1}')
    assert store.artifact("story", "bible", tmp_path) is None
    f.unlink()
    assert store.artifact("story", "bible", tmp_path) is None
    assert store.artifact("story", "other", tmp_path) is None


def test_fingerprint_depends_on_prompt_and_settings():
    assert fingerprint("a", {"x": 1}) == fingerprint("a", {"x": 1})
    assert fingerprint("a", {"x": 1}) != fingerprint("b", {"x": 1})
    assert fingerprint("a", {"x": 1}) != fingerprint("a", {"x": 2})
