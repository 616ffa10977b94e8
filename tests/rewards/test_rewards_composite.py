import math

import numpy as np
import pytest

from cinerl.rewards import (DEFAULT_WEIGHTS, ScoreContext, Scorer, ok, register, registered_components,
                            unregister)
from cinerl.rewards.narrative import NO_LLM_REASON

ALL = ["temporal_flicker", "flow_smoothness", "character_consistency", "location_palette",
       "seam_continuity", "narrative_judge"]


def _full_ctx(synth, previous=True):
    b = synth.bible()
    return ScoreContext(prompt="Mara walks into the canyon.", scene=b.scenes[0], bible=b,
                        character_refs={"mara": synth.character_ref()},
                        location_ref=synth.palette_clip([synth.COLORS[n] for n in synth.ON_PALETTE], t=1).frames[0],
                        previous_last_frame=(synth.texture(360, 640, 7) if previous else None))


def test_all_components_registered_in_order():
    assert list(registered_components())[:6] == ALL
    assert {registered_components()[n].group for n in ALL} == set(DEFAULT_WEIGHTS)


def test_first_scene_drops_narrative_group_and_renormalises(synth):
    clip = synth.figure_clip(synth.WARDROBE, t=12)
    r = Scorer().score(clip, _full_ctx(synth, previous=False))
    assert r.components["seam_continuity"].status == "not_applicable"
    assert r.components["narrative_judge"].status == "unavailable"
    assert r.components["narrative_judge"].reason == NO_LLM_REASON
    assert r.groups["narrative_coherence"] is None
    assert set(r.weights) == {"visual_quality", "character_consistency", "location_consistency"}
    assert sum(r.weights.values()) == pytest.approx(1.0)
    assert r.weights["visual_quality"] == pytest.approx(0.3 / 0.8)
    expect = sum(r.weights[g] * r.groups[g] for g in r.weights)
    assert r.total == pytest.approx(expect)
    vis = [r.components[n].value for n in ("temporal_flicker", "flow_smoothness")]
    assert r.groups["visual_quality"] == pytest.approx(np.mean(vis))
    assert r.seconds > 0


def test_every_component_value_in_unit_interval(synth):
    clips = [synth.pan_clip(t=10, jitter=5.0), synth.flicker_clip(t=6, amount=0.4),
             synth.figure_clip(synth.RECOLOURED, t=6), synth.palette_clip([(255, 255, 255), (0, 0, 0)], t=5)]
    for clip in clips:
        r = Scorer().score(clip, _full_ctx(synth))
        assert 0.0 <= r.total <= 1.0
        for c in r.components.values():
            if c.status == "ok":
                assert c.value is not None and 0.0 <= c.value <= 1.0 and math.isfinite(c.value)
            else:
                assert c.value is None and c.reason
        assert r.groups["narrative_coherence"] == r.components["seam_continuity"].value


@pytest.mark.parametrize("weights", [{"visual_quality": -0.1}, {"style": 1.0}, {"visual_quality": float("nan")},
                                     {"visual_quality": 0.0}, {}])
def test_bad_weights_raise(weights):
    with pytest.raises(ValueError):
        Scorer(weights=weights)


def test_unknown_component_raises():
    with pytest.raises(ValueError, match="unknown reward component"):
        Scorer(components=["nope"])


def test_custom_weights_used_and_missing_groups_get_zero(synth):
    r = Scorer(weights={"visual_quality": 2.0, "location_consistency": 2.0}).score(
        synth.figure_clip(synth.WARDROBE, t=6), _full_ctx(synth))
    assert r.weights == {"visual_quality": 0.5, "location_consistency": 0.5}
    assert r.groups["character_consistency"] is not None  # reported, not counted
    assert r.total == pytest.approx(0.5 * r.groups["visual_quality"] + 0.5 * r.groups["location_consistency"])


def test_nothing_available_gives_zero_total_and_reasons(synth):
    one = synth.flicker_clip(t=1)
    r = Scorer().score(one, ScoreContext())
    assert r.total == 0.0 and r.weights == {}
    assert all(g is None for g in r.groups.values())
    assert all(c.status != "ok" and c.reason for c in r.components.values())


@pytest.fixture
def temp_components():
    names = []

    def reg(name, group, fn):
        register(name=name, group=group)(fn)
        names.append(name)

    yield reg
    for n in names:
        unregister(n)


def test_raising_component_is_unavailable_and_scoring_continues(synth, temp_components, caplog):
    def boom(analysis, ctx):
        raise RuntimeError("kaboom inside the metric")

    temp_components("test_boom", "visual_quality", boom)
    r = Scorer().score(synth.pan_clip(t=6), ScoreContext())
    c = r.components["test_boom"]
    assert c.status == "unavailable" and c.value is None and "kaboom inside the metric" in c.reason
    assert c.group == "visual_quality"
    assert r.components["temporal_flicker"].status == "ok"
    assert r.groups["visual_quality"] is not None
    assert "kaboom" in caplog.text


def test_new_component_is_one_registration_and_clamped(synth, temp_components):
    class Always:
        def measure(self, analysis, ctx):
            return ok(1.7, note="over range")

    register(name="test_class_component", group="visual_quality")(Always)
    try:
        r = Scorer(components=["test_class_component"]).score(synth.pan_clip(t=3), ScoreContext())
    finally:
        unregister("test_class_component")
    assert r.components["test_class_component"].value == 1.0
    assert r.total == 1.0 and r.weights == {"visual_quality": 1.0}
    with pytest.raises(ValueError, match="already registered"):
        register(name="temporal_flicker", group="visual_quality")(lambda a, c: ok(1.0))
