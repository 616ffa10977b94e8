import numpy as np
import pytest

from cinerl.rewards import ClipAnalysis, ScoreContext
from cinerl.rewards.components.character import character_consistency, reference_look


def _ctx(synth, refs=None, scene_index=0):
    b = synth.bible()
    return ScoreContext(
        scene=b.scenes[scene_index],
        bible=b,
        character_refs={"mara": synth.character_ref()} if refs is None else refs,
    )


@pytest.mark.parametrize("tint", [(60, 110, 50), (128, 128, 128), (180, 150, 110), (40, 40, 60)])
def test_same_wardrobe_beats_recoloured_whatever_the_background(synth, tint):
    ctx = _ctx(synth)
    same = character_consistency(ClipAnalysis(synth.figure_clip(synth.WARDROBE, tint=tint)), ctx)
    recol = character_consistency(ClipAnalysis(synth.figure_clip(synth.RECOLOURED, tint=tint)), ctx)
    assert same.status == recol.status == "ok"
    assert same.value > 0.7
    assert recol.value < 0.4
    assert same.value > recol.value + 0.3
    assert same.raw["method"] == "wardrobe colour match, Lab"
    assert "mara" in same.raw["characters"]


def test_reference_look_finds_the_figure_colours(synth):
    look = reference_look(synth.character_ref())
    assert abs(look["shares"].sum() - 1) < 1e-6
    # the two dominant colours are the coat (crimson) and trousers (navy), not the grey backdrop
    from cinerl.rewards.colour import delta_e76, rgb_colors_to_lab

    want = rgb_colors_to_lab([synth.COLORS["crimson"], synth.COLORS["navy"]])
    assert delta_e76(want, look["lab"][:2]).min(axis=1).max() < 5
    assert delta_e76(look["lab"], look["backdrop_lab"]).min() > 12
    again = reference_look(synth.character_ref().copy())
    np.testing.assert_allclose(again["lab"], look["lab"])  # deterministic


def test_not_applicable_without_characters_or_refs(synth):
    a = ClipAnalysis(synth.figure_clip(synth.WARDROBE, t=4))
    assert character_consistency(a, ScoreContext()).status == "not_applicable"
    assert character_consistency(a, _ctx(synth, scene_index=1)).status == "not_applicable"  # empty scene
    assert character_consistency(a, _ctx(synth, refs={})).status == "not_applicable"


def test_blank_reference_is_unavailable_not_zero(synth):
    a = ClipAnalysis(synth.figure_clip(synth.WARDROBE, t=4))
    c = character_consistency(a, _ctx(synth, refs={"mara": np.full((64, 64, 3), 128, np.uint8)}))
    assert c.status == "unavailable" and c.value is None and "no figure" in c.reason
