"""The single-prompt MiniLM path gives sentence-transformers' vectors, and retrieval uses it."""

from __future__ import annotations

import numpy as np
import pytest

from cinerl.prompting.rapo.encoder import PromptEncoder, prompt_encoder
from cinerl.models.embedder import load_embedder

PROMPTS = [
    "a knight rides through a misty forest",
    "A detective waits in the rain on a city street at night.",
    "Ünïcödé café: a naïve chef flambés noodles — très vite!",
    "x",
    "",
    # longer than the model's 256-token limit: both sides must truncate the same way
    " ".join(["an old fisherman mends a torn net on a stormy harbour wall"] * 40),
]


def test_fast_path_matches_sentence_transformers():
    enc = prompt_encoder()
    assert enc.fast, "the shipped MiniLM is BERT + mean pooling: the direct forward should apply"
    ref = load_embedder().encode(
        PROMPTS, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    mine = np.stack([enc.encode(p) for p in PROMPTS])
    assert mine.dtype == np.float32 and mine.shape == ref.shape
    assert np.allclose(np.linalg.norm(mine, axis=1), 1.0, atol=1e-5)
    assert np.min(np.sum(mine * ref, axis=1)) > 0.9999


def test_fallback_is_sentence_transformers_itself():
    enc = PromptEncoder()
    enc.fast = False  # what a non-BERT model gets
    ref = load_embedder().encode(PROMPTS[:2], normalize_embeddings=True, convert_to_numpy=True)
    assert np.stack([enc.encode(p) for p in PROMPTS[:2]]) == pytest.approx(ref, abs=1e-6)


def test_retrieve_encodes_one_prompt_with_the_fast_path(retriever, monkeypatch):
    from cinerl.prompting.rapo import retrieval

    def no_batch(*a, **k):
        raise AssertionError("a single prompt should not go through SentenceTransformer.encode")

    monkeypatch.setattr(retrieval, "embed_texts", no_batch)
    r = retriever.retrieve("a pirate captain swings from the rigging")
    assert r.places and r.seconds > 0
