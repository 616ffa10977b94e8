import pytest

from cinerl.rewards import ClipAnalysis, ScoreContext
from cinerl.rewards.components.location import location_palette


def _rgb(synth, names):
    return [synth.COLORS[n] for n in names]


def _ctx(synth, ref=None):
    b = synth.bible()
    return ScoreContext(scene=b.scenes[0], bible=b, location_ref=ref)


@pytest.mark.parametrize("with_ref", [False, True])
def test_on_palette_beats_drifting_beats_off_palette(synth, with_ref):
    ref = synth.palette_clip(_rgb(synth, synth.ON_PALETTE), t=1, seed=9).frames[0] if with_ref else None
    ctx = _ctx(synth, ref)
    on = location_palette(ClipAnalysis(synth.palette_clip(_rgb(synth, synth.ON_PALETTE))), ctx)
    off = location_palette(ClipAnalysis(synth.palette_clip(_rgb(synth, synth.OFF_PALETTE))), ctx)
    drift = location_palette(
        ClipAnalysis(
            synth.palette_clip(_rgb(synth, synth.ON_PALETTE), drift_to=_rgb(synth, synth.OFF_PALETTE))
        ),
        ctx,
    )
    assert on.status == off.status == drift.status == "ok"
    assert on.value > 0.8 and off.value < 0.3
    assert on.value > drift.value + 0.15 > off.value + 0.3
    assert ("reference_score" in on.raw) == with_ref
    assert 0 <= on.raw["coverage"] <= 1


def test_not_applicable_without_bible_or_scene(synth):
    a = ClipAnalysis(synth.palette_clip(_rgb(synth, synth.ON_PALETTE), t=3))
    assert location_palette(a, ScoreContext()).status == "not_applicable"


def test_reference_alone_still_scores(synth):
    a = ClipAnalysis(synth.palette_clip(_rgb(synth, synth.ON_PALETTE), t=3))
    ref = synth.palette_clip(_rgb(synth, synth.ON_PALETTE), t=1, seed=9).frames[0]
    c = location_palette(a, ScoreContext(location_ref=ref))
    assert c.status == "ok" and c.value == pytest.approx(c.raw["reference_score"])
