"""`cinerl make --prompt-opt rapo` and growing the graph from runs."""

from __future__ import annotations

import json

import numpy as np

from cinerl.prompting.rapo.film import conflicts
from cinerl.prompting.rapo.graph import STARTER_CSV, load_graph, read_captions
from cinerl.training.datasets.growth import grow_from_runs


def test_make_applies_rapo_before_composition_and_reports_it(make_run):
    report = json.loads((make_run / "report.json").read_text())
    opt = report["prompt_opt"]
    assert opt["method"] == "rapo" and opt["artifact"] == "story/rapo.json"
    row = opt["scenes"][0]
    assert row["added"], row
    stype = report["bible"]["locations"][0]["scenery_type"]
    assert not any(conflicts(m, stype) for m in row["added"])
    for attempt in report["scenes"][0]["attempts"]:  # every composed prompt carries them
        assert all(m in attempt["prompt"] for m in row["added"])
    html = (make_run / "report.html").read_text()
    assert "Prompt optimisation: rapo" in html and row["added"][0] in html


def test_retrieval_result_is_pinned_for_resume(make_run, tmp_path):
    """The run reads its stored retrieval back, even with another (empty) graph folder."""
    from cinerl.core.settings import Settings
    from cinerl.core.store import RunStore
    from cinerl.prompting.rapo.film import prompt_scenes
    from cinerl.core.schema import StoryBible

    bible = StoryBible.model_validate_json((make_run / "story" / "bible.json").read_text())
    store = RunStore(make_run / "state.db")
    try:
        scenes, report = prompt_scenes(
            bible, Settings.of(plan__prompt_opt="rapo", plan__rapo_dir=str(tmp_path)), make_run, store
        )
    finally:
        store.close()
    assert not list(tmp_path.iterdir())  # no graph was built
    stored = json.loads((make_run / "story" / "rapo.json").read_text())["scenes"][0]
    assert scenes[0].action == stored["action_after"] != bible.scenes[0].action


def test_policy_owned_words_and_other_places_are_left_out():
    assert conflicts("a fast handheld chase", "forest")
    assert conflicts("warm golden hour glow", "forest")
    assert conflicts("waves crashing on the beach", "forest")  # a sea, not the scene's forest
    assert not conflicts("low fog drifting between the trunks", "forest")


def test_top_quartile_prompts_join_the_graph(make_run, tmp_path, rapo_dir):
    report = json.loads((make_run / "report.json").read_text())
    totals = sorted(a["reward"]["total"] for sc in report["scenes"] for a in sc["attempts"])
    cut = float(np.quantile(totals, 0.75))
    grown = tmp_path / "grown.csv"
    summary = grow_from_runs([make_run.parent], grown)
    assert summary.runs == [str(make_run)] and summary.attempts_seen == 3
    assert summary.rows_added == sum(t >= cut for t in totals) >= 1
    rows = read_captions(grown)
    best = max((a for sc in report["scenes"] for a in sc["attempts"]), key=lambda a: a["reward"]["total"])
    row = next(r for r in rows if r.text == best["prompt"])
    assert row.valid and row.places[0].startswith("a forest")
    assert len(row.scenes) == 4  # shot, camera, light, motion that scored
    assert grow_from_runs([make_run], grown).rows_added == 0  # once only
    g = load_graph([STARTER_CSV, grown], rapo_dir=rapo_dir)
    assert row.places[0] in g.places
    assert set(g.neighbours(row.places[0], "scene")) >= set(row.scenes)
