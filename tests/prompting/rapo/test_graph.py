"""The relation graph: the shipped starter CSV, construction, the embedding cache, bad input."""

from __future__ import annotations

import shutil
from importlib import resources

import numpy as np
import pytest

from cinerl.core.errors import UserError
from cinerl.prompting.rapo import graph as graph_mod
from cinerl.prompting.rapo.graph import STARTER_CSV, load_graph, parse_captions, read_captions


def test_starter_csv_ships_with_the_package_and_has_500_captions_across_genres():
    shipped = resources.files("cinerl.prompting.rapo") / "data" / "starter_captions.csv"
    assert shipped.is_file()
    rows = read_captions(STARTER_CSV)
    assert sum(r.valid for r in rows) >= 500
    assert len({r.text for r in rows}) == len(rows)  # no duplicated captions
    places = {p for r in rows for p in r.places}
    assert len(places) >= 40
    words = " ".join(places)
    for genre_place in (
        "forest",
        "alley",
        "starship",
        "frontier",
        "trench",
        "cathedral",
        "stadium",
        "coral reef",
        "jazz club",
    ):
        assert genre_place in words


def test_starter_graph_links_every_place_to_its_phrases(starter_graph):
    rows = read_captions(STARTER_CSV)
    g = starter_graph
    assert set(g.places) == {p for r in rows for p in r.places}
    assert set(g.verbs) == {v for r in rows for v in r.verbs}
    assert set(g.scenes) == {s for r in rows for s in r.scenes}
    nx_graph = g.graph
    assert nx_graph.number_of_nodes() == len(g.places) + len(g.verbs) + len(g.scenes)
    # edge weights count co-occurrences: they add up to every (place, phrase) pair in the rows
    assert sum(w for _a, _b, w in nx_graph.edges(data="weight")) == sum(
        len(r.places) * (len(r.verbs) + len(r.scenes)) for r in rows
    )
    # places are the hubs: every verb and scene node touches places only
    for node, kind in nx_graph.nodes(data="kind"):
        if kind != "place":
            assert all(nx_graph.nodes[n]["kind"] == "place" for n in nx_graph.neighbors(node))
    assert "riding a grey horse along a mossy trail" in g.neighbours("a misty pine forest", "verb")
    for emb, names in ((g.place_emb, g.places), (g.verb_emb, g.verbs), (g.scene_emb, g.scenes)):
        assert emb.shape == (len(names), 384) and emb.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-4)


def test_cache_is_reused_and_a_changed_csv_only_embeds_new_phrases(
    starter_graph, rapo_dir, tmp_path, monkeypatch
):
    again = load_graph([STARTER_CSV], rapo_dir=rapo_dir)
    assert again.from_cache and not starter_graph.from_cache
    assert again.content_hash == starter_graph.content_hash
    np.testing.assert_array_equal(again.verb_emb, starter_graph.verb_emb)

    encoded: list[str] = []
    real = graph_mod.embed_texts
    monkeypatch.setattr(
        graph_mod, "embed_texts", lambda texts, path=None: encoded.extend(texts) or real(texts, path)
    )
    grown = tmp_path / "grown.csv"
    shutil.copy(STARTER_CSV, grown)
    with open(grown, "a", encoding="utf-8") as f:
        f.write(
            "A cat naps on a sunny windowsill.,\"['napping on a windowsill']\","
            "\"['warm afternoon sun']\",\"['a quiet apartment']\"\n"
        )
    g2 = load_graph([grown], rapo_dir=rapo_dir)
    assert not g2.from_cache and g2.content_hash != starter_graph.content_hash
    assert sorted(encoded) == ["a quiet apartment", "napping on a windowsill", "warm afternoon sun"]
    assert g2.neighbours("a quiet apartment", "scene") == ["warm afternoon sun"]


def test_rows_missing_a_kind_do_not_join_the_graph():
    rows = parse_captions(
        "Input,verb_obj_word,scenario_word,place\nx,\"['a']\",\"['']\",\"['p']\"\ny,a; b,calm,p\n"
    )
    assert [r.valid for r in rows] == [False, True]
    assert rows[1].verbs == ("a", "b")  # plain text separated by ';' works too


@pytest.mark.parametrize(
    "text, message",
    [
        ("Input,verb_obj_word,place\nx,['a'],['p']\n", "lacks the column(s) scenario_word"),
        ("Input,verb_obj_word,scenario_word,place\nx,\"['a'\",['s'],['p']\n", "line 2"),
        ("Input,verb_obj_word,scenario_word,place\nx,\"[1, 2]\",['s'],['p']\n", "list of strings"),
    ],
)
def test_bad_csv_is_a_user_error(tmp_path, text, message):
    p = tmp_path / "bad.csv"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_captions(p)


def test_missing_csv_and_empty_graph_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_graph([tmp_path / "nope.csv"], rapo_dir=tmp_path)
    empty = tmp_path / "empty.csv"
    empty.write_text("Input,verb_obj_word,scenario_word,place\nx,['a'],[''],['p']\n")
    with pytest.raises(UserError, match="would be empty"):
        load_graph([empty], rapo_dir=tmp_path)


def test_shipped_starter_embeddings_are_the_installed_minilm(starter_graph):
    """The float16 seed matches a fresh encoding by the installed model (else it is not used)."""
    from cinerl.prompting.rapo.graph import PhraseCache, embed_texts, embedder_key

    seeded = PhraseCache(None, embedder_key(), None)
    assert seeded.seeded == len(starter_graph.places) + len(starter_graph.verbs) + len(starter_graph.scenes)
    sample = starter_graph.verbs[::40] + starter_graph.places[::10]
    fresh = embed_texts(sample)
    shipped = np.stack([seeded.vectors[t] for t in sample])
    assert np.min(np.sum(fresh * shipped, axis=1)) > 0.999
    assert PhraseCache(None, "another-model", None).seeded == 0
