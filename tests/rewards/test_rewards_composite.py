import math

import numpy as np
import pytest

from cinerl.rewards import (
    DEFAULT_WEIGHTS,
    RewardSettings,
    ScoreContext,
    Scorer,
    ok,
    register,
    registered_components,
    unregister,
)

ALL = [
    "temporal_flicker",
    "flow_smoothness",
    "warp_consistency",
    "dynamic_degree",
    "loop_break",
    "physics_plausibility",
    "seam_continuity",
    "structure_constancy",
    "character_consistency",
    "identity_lock",
    "subject_consistency",
    "novelty_after_k",
    "location_palette",
    "location_features",
    "clip_alignment",
    "caption_consistency",
    "vlm_alignment",
    "narrative_judge",
    "imaging_quality",
    "aesthetic",
    "framing",
    "fvd_lite",
    "scene_light",
    "scene_motion",
    "scene_cast",
]
GROUPS = {
    "visual_quality": [
        "dynamic_degree",
        "novelty_after_k",
        "imaging_quality",
        "aesthetic",
        "framing",
        "fvd_lite",
    ],
    "temporal_stability": [
        "temporal_flicker",
        "flow_smoothness",
        "warp_consistency",
        "loop_break",
        "physics_plausibility",
        "seam_continuity",
        "structure_constancy",
        "subject_consistency",
    ],
    "character_consistency": ["character_consistency", "identity_lock"],
    "location_consistency": ["location_palette", "location_features"],
    "text_alignment": ["clip_alignment", "caption_consistency", "vlm_alignment"],
    "narrative_coherence": ["narrative_judge"],
    "scene_plan": ["scene_light", "scene_motion", "scene_cast"],
}


def _full_ctx(synth, previous=True):
    b = synth.bible()
    return ScoreContext(
        prompt="Mara walks into the canyon.",
        scene=b.scenes[0],
        bible=b,
        character_refs={"mara": synth.character_ref()},
        location_ref=synth.palette_clip([synth.COLORS[n] for n in synth.ON_PALETTE], t=1).frames[0],
        previous_last_frame=(synth.texture(360, 640, 7) if previous else None),
    )


def test_all_components_registered_in_order_and_grouped():
    assert list(registered_components())[: len(ALL)] == ALL
    assert set(DEFAULT_WEIGHTS) == set(GROUPS)
    # the six groups before scene_plan (issue 20) still sum to 1, so old runs keep their fingerprint
    assert sum(v for g, v in DEFAULT_WEIGHTS.items() if g != "scene_plan") == pytest.approx(1.0)
    for group, names in GROUPS.items():
        assert [registered_components()[n].group for n in names] == [group] * len(names)


def test_unconfigured_groups_drop_out_and_weights_renormalise(synth):
    clip = synth.figure_clip(synth.WARDROBE, t=40)
    r = Scorer(config=RewardSettings()).score(clip, _full_ctx(synth, previous=False))
    assert r.components["seam_continuity"].status == "not_applicable"
    assert r.components["narrative_judge"].status == "unavailable"
    # the scorer does not call a component whose required settings are unset, and says which
    assert "rewards.judge_base_url" in r.components["narrative_judge"].reason
    for name, setting in [
        ("clip_alignment", "clip_model_path"),
        ("vlm_alignment", "vlm_base_url"),
        ("caption_consistency", "captioner_path"),
        ("aesthetic", "aesthetic_head_path"),
        ("fvd_lite", "i3d_path"),
    ]:
        c = r.components[name]
        assert c.status == "unavailable" and setting in c.reason and c.value is None
    # no text model and no LLM configured: those two groups drop out, the rest renormalise
    assert r.groups["narrative_coherence"] is None and r.groups["text_alignment"] is None
    assert set(r.weights) == {
        "visual_quality",
        "temporal_stability",
        "character_consistency",
        "location_consistency",
        "scene_plan",
    }
    assert sum(r.weights.values()) == pytest.approx(1.0)
    assert r.weights["temporal_stability"] == pytest.approx(
        DEFAULT_WEIGHTS["temporal_stability"] / sum(DEFAULT_WEIGHTS[g] for g in r.weights)
    )
    expect = sum(r.weights[g] * r.groups[g] for g in r.weights)
    assert r.total == pytest.approx(expect)
    temporal = [
        c.value for c in r.components.values() if c.group == "temporal_stability" and c.status == "ok"
    ]
    assert len(temporal) == 7 and r.groups["temporal_stability"] == pytest.approx(np.mean(temporal))
    assert r.seconds > 0


def test_every_component_value_in_unit_interval(synth):
    clips = [
        synth.pan_clip(t=10, jitter=5.0),
        synth.flicker_clip(t=6, amount=0.4),
        synth.figure_clip(synth.RECOLOURED, t=6),
        synth.palette_clip([(255, 255, 255), (0, 0, 0)], t=5),
    ]
    for clip in clips:
        r = Scorer().score(clip, _full_ctx(synth))
        assert 0.0 <= r.total <= 1.0
        for c in r.components.values():
            if c.status == "ok":
                assert c.value is not None and 0.0 <= c.value <= 1.0 and math.isfinite(c.value)
            else:
                assert c.value is None and c.reason
        assert r.groups["narrative_coherence"] is None  # no LLM judge configured


@pytest.mark.parametrize(
    "weights",
    [{"visual_quality": -0.1}, {"style": 1.0}, {"visual_quality": float("nan")}, {"visual_quality": 0.0}, {}],
)
def test_bad_weights_raise(weights):
    with pytest.raises(ValueError):
        Scorer(weights=weights)


def test_unknown_component_raises():
    with pytest.raises(ValueError, match="unknown reward component"):
        Scorer(components=["nope"])


def test_custom_weights_used_and_missing_groups_get_zero(synth):
    r = Scorer(
        weights={"temporal_stability": 2.0, "location_consistency": 2.0},
        components=["temporal_flicker", "character_consistency", "location_palette"],
    ).score(synth.figure_clip(synth.WARDROBE, t=6), _full_ctx(synth))
    assert r.weights == {"temporal_stability": 0.5, "location_consistency": 0.5}
    assert r.groups["character_consistency"] is not None  # reported, not counted
    assert r.total == pytest.approx(
        0.5 * r.groups["temporal_stability"] + 0.5 * r.groups["location_consistency"]
    )


def test_nothing_available_gives_zero_total_and_reasons(synth):
    one = synth.flicker_clip(t=1, h=12, w=12)  # one frame too small for the per-frame components
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

    temp_components("test_boom", "temporal_stability", boom)
    r = Scorer(components=["temporal_flicker", "test_boom"]).score(synth.pan_clip(t=6), ScoreContext())
    c = r.components["test_boom"]
    assert c.status == "unavailable" and c.value is None and "kaboom inside the metric" in c.reason
    assert c.group == "temporal_stability"
    assert r.components["temporal_flicker"].status == "ok"
    assert r.groups["temporal_stability"] == r.components["temporal_flicker"].value
    assert "kaboom" in caplog.text


def test_new_component_is_one_registration_and_clamped(synth, temp_components):
    class Always:
        def measure(self, analysis, ctx):
            return ok(1.7, note="over range")

    register(name="test_class_component", group="temporal_stability")(Always)
    try:
        r = Scorer(components=["test_class_component"]).score(synth.pan_clip(t=3), ScoreContext())
    finally:
        unregister("test_class_component")
    assert r.components["test_class_component"].value == 1.0
    assert r.total == 1.0 and r.weights == {"temporal_stability": 1.0}
    with pytest.raises(ValueError, match="already registered"):
        register(name="temporal_flicker", group="temporal_stability")(lambda a, c: ok(1.0))


def test_concurrent_scoring_equals_one_after_another(synth):
    """Components on 4 threads share each lazy analysis value and give the serial breakdown."""
    clip, ctx = synth.figure_clip(synth.WARDROBE, t=20), _full_ctx(synth)
    serial = Scorer(config=RewardSettings(workers=1)).score(clip, ctx)
    concurrent = Scorer(config=RewardSettings(workers=4)).score(clip, ctx)
    assert list(concurrent.components) == list(serial.components)
    for name, c in serial.components.items():
        other = concurrent.components[name]
        assert (other.status, other.value, other.raw) == (c.status, c.value, c.raw), name
    assert concurrent.total == serial.total


def test_lazy_analysis_values_are_computed_once_across_threads(synth, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    from cinerl.rewards.core.analysis import ClipAnalysis

    analysis = ClipAnalysis(synth.pan_clip(t=12, h=90, w=160))
    calls = []
    real = ClipAnalysis._compute_flow

    def counted(self):
        calls.append(1)
        return real(self)

    monkeypatch.setattr(ClipAnalysis, "_compute_flow", counted)
    with ThreadPoolExecutor(6) as pool:
        flows = list(pool.map(lambda _: analysis.flow, range(6)))
    assert len(calls) == 1 and all(f is flows[0] for f in flows)


def test_concurrent_cpu_threads_restore_torch_thread_count():
    import threading

    import torch

    from cinerl.models.cache import cpu_threads

    torch.set_num_threads(2)
    before = torch.get_num_threads()
    inside, release = threading.Barrier(3), threading.Event()

    seen = []

    def hold():
        with cpu_threads("cpu"):
            seen.append(torch.get_num_threads())
            inside.wait()
            release.wait()

    threads = [threading.Thread(target=hold, daemon=True) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        inside.wait(timeout=30)
    finally:
        release.set()
        for t in threads:
            t.join(timeout=30)
    assert seen == [1, 1] and torch.get_num_threads() == before


def test_values_do_not_depend_on_the_number_of_cores(synth, monkeypatch):
    """Per-frame work (flow, warps, edges, BRISQUE, face detection) is split over threads by core
    count; one core and eight give the same breakdown, faces included."""
    import cinerl.rewards.core.analysis as analysis_module
    from tests.rewards.test_rewards_calibration import astronaut_clips

    _, swap, ref = astronaut_clips()
    ctx = ScoreContext(
        prompt="an astronaut",
        character_refs={"mara": ref},
        scene=synth.bible().scenes[0],
        bible=synth.bible(),
    )
    runs = []
    for cores in (1, 8):
        monkeypatch.setattr(analysis_module.os, "cpu_count", lambda cores=cores: cores)
        runs.append(
            Scorer(
                components=[
                    "structure_constancy",
                    "warp_consistency",
                    "imaging_quality",
                    "identity_lock",
                    "flow_smoothness",
                ]
            ).score(swap, ctx)
        )
    one, eight = runs
    assert one.components["identity_lock"].status == "ok"
    for name, c in one.components.items():
        assert (eight.components[name].status, eight.components[name].value) == (c.status, c.value), name
