"""Modifier retrieval from the relation graph, and the rule-based merge used when no LLM is on.

Retrieval follows RAPO (Vchitect/RAPO retrieve_modifiers.py and word_augment.py): encode the prompt,
take the top-k places by cosine similarity, walk to their verb and scene neighbours, rank the
neighbours by similarity to the prompt, then keep only modifiers whose similarity reaches a
threshold. Two deliberate differences: RAPO samples `verb_num` neighbours at random before ranking;
we rank all neighbours, so the same prompt always retrieves the same modifiers (resume and tests
depend on it). And a modifier whose content words the prompt already contains is dropped as
redundant rather than merged twice.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable

import numpy as np
from pydantic import BaseModel, Field

from cinerl.prompting.rapo.encoder import prompt_encoder
from cinerl.prompting.rapo.graph import RelationGraph, embed_texts
from cinerl.core.vocabulary import find_scenery_type

# RAPO's defaults: place_num = 3, verb_num = topk_num = 5 (retrieve_modifiers.py).
PLACE_NUM = 3
VERB_NUM = 5
SCENE_NUM = 5
# RAPO's word_augment.sh uses 0.6 for MiniLM similarity between a prompt and one modifier. On our
# starter graph that keeps almost nothing (a short prompt and a short phrase rarely reach 0.6 even
# when they belong together), so the default here is lower; measured with benchmarks/rapo.py,
# which prints the similarity spread of what retrieval returns.
THRESHOLD = 0.25
MAX_WORDS = 120  # RAPO++'s rewrite limit (phyaware_wan2.1.py: "Keep it under 120 words")

_STOP = {
    "a",
    "an",
    "the",
    "and",
    "of",
    "in",
    "on",
    "at",
    "to",
    "with",
    "into",
    "through",
    "by",
    "for",
    "from",
    "over",
    "under",
    "is",
    "are",
    "its",
    "his",
    "her",
    "their",
    "as",
    "up",
    "down",
    "out",
    "off",
    "across",
    "along",
    "between",
    "beneath",
    "around",
}
_WORD_RE = re.compile(r"[a-z][a-z'-]*")


class Modifier(BaseModel):
    text: str
    kind: str = Field(description="place, verb or scene")
    similarity: float = Field(description="cosine similarity to the prompt (MiniLM)")
    place: str = Field("", description="the place hub it was reached through")


class Retrieval(BaseModel):
    """What retrieval found for one prompt and what it kept."""

    prompt: str
    places: list[Modifier]
    kept: list[Modifier]
    dropped: list[Modifier] = Field(default_factory=list, description="under the threshold or redundant")
    threshold: float
    seconds: float = 0.0

    def kept_of(self, kind: str) -> list[Modifier]:
        return [m for m in self.kept if m.kind == kind]


def content_words(text: str) -> set[str]:
    return {w.rstrip("s") for w in _WORD_RE.findall(text.lower()) if w not in _STOP and len(w) > 2}


def is_redundant(modifier: str, prompt_words: set[str]) -> bool:
    """True when every content word of the modifier is already in the prompt."""
    words = content_words(modifier)
    return bool(words) and words <= prompt_words


class Retriever:
    """Holds the graph and answers prompts; the embedder loads once per process."""

    def __init__(
        self,
        graph: RelationGraph,
        embedder_path: str | None = None,
        place_num: int = PLACE_NUM,
        verb_num: int = VERB_NUM,
        scene_num: int = SCENE_NUM,
        threshold: float = THRESHOLD,
    ):
        if place_num < 1 or verb_num < 0 or scene_num < 0:
            raise ValueError("place_num must be >= 1 and verb_num, scene_num >= 0")
        self.graph = graph
        self.embedder_path = embedder_path
        self.place_num = min(place_num, len(graph.places))
        self.verb_num, self.scene_num = verb_num, scene_num
        self.threshold = threshold

    def embed(self, prompts: list[str]) -> np.ndarray:
        """One prompt goes through the direct MiniLM forward (encoder.py: the same vector in
        about half the time of SentenceTransformer.encode, benchmarks/results/rapo_cpu.json);
        several go through encode in batches, which amortises its per-call overhead."""
        if len(prompts) == 1:
            return prompt_encoder(self.embedder_path).encode(prompts[0])[None]
        return embed_texts(prompts, self.embedder_path)

    @staticmethod
    def _top(sims: np.ndarray, idx: np.ndarray, k: int):
        """The k best of a place's neighbours `idx`, given every node's similarity `sims`."""
        if k == 0 or len(idx) == 0:
            return []
        s = sims[idx]
        order = np.argsort(-s, kind="stable")[:k]
        return [(int(idx[o]), float(s[o])) for o in order]

    def retrieve_vector(self, prompt: str, q: np.ndarray) -> Retrieval:
        """Retrieval for a prompt whose embedding is already known (the graph part alone).
        Each kind's similarities come from one matrix-vector product (the rows are unit
        vectors, so the product is the cosine); neighbours are then looked up, not recomputed."""
        t0 = time.perf_counter()
        g = self.graph
        psims = g.place_emb @ q
        vsims, ssims = g.verb_emb @ q, g.scene_emb @ q
        top = np.argsort(-psims, kind="stable")[: self.place_num]
        places = [
            Modifier(text=g.places[i], kind="place", similarity=float(psims[i]), place=g.places[i])
            for i in top
        ]
        found: dict[tuple[str, str], Modifier] = {}
        for i in top:
            hub = g.places[i]
            cands = [("place", g.places[i], float(psims[i]))]
            cands += [("verb", g.verbs[j], s) for j, s in self._top(vsims, g.place_verbs[i], self.verb_num)]
            cands += [
                ("scene", g.scenes[j], s) for j, s in self._top(ssims, g.place_scenes[i], self.scene_num)
            ]
            for kind, text, sim in cands:
                key = (kind, text)
                if key not in found or found[key].similarity < sim:
                    found[key] = Modifier(text=text, kind=kind, similarity=round(sim, 4), place=hub)
        prompt_words = content_words(prompt)
        kept, dropped = [], []
        for m in sorted(found.values(), key=lambda m: -m.similarity):
            ok = m.similarity >= self.threshold and not is_redundant(m.text, prompt_words)
            (kept if ok else dropped).append(m)
        return Retrieval(
            prompt=prompt,
            places=places,
            kept=kept,
            dropped=dropped,
            threshold=self.threshold,
            seconds=time.perf_counter() - t0,
        )

    def retrieve(self, prompt: str) -> Retrieval:
        t0 = time.perf_counter()
        r = self.retrieve_vector(prompt, self.embed([prompt])[0])
        r.seconds = time.perf_counter() - t0
        return r

    def retrieve_many(self, prompts: Iterable[str]) -> list[Retrieval]:
        """Batch-encode the prompts, then walk the graph for each."""
        prompts = list(prompts)
        vecs = self.embed(prompts)
        return [self.retrieve_vector(p, v) for p, v in zip(prompts, vecs)]


# ---------------------------------------------------------------------------------------------
# the offline merge


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def limit_words(text: str, limit: int = MAX_WORDS) -> str:
    words = text.split()
    if len(words) <= limit:
        return text
    cut = " ".join(words[:limit]).rstrip(",;:")
    return cut if cut.endswith(".") else cut + "."


def rule_merge(
    prompt: str, retrieval: Retrieval, max_verbs: int = 2, max_scenes: int = 2, limit: int = MAX_WORDS
) -> tuple[str, list[Modifier]]:
    """Enrich the prompt with the kept modifiers while keeping the prompt itself intact (the aim
    of RAPO's merge step). A place is added only when the prompt names no setting. Returns the
    merged prompt and the modifiers it used."""
    body = " ".join(prompt.split()).rstrip(" .")
    used: list[Modifier] = []
    places = retrieval.kept_of("place")
    if places and find_scenery_type(body) is None:
        body += (
            f", {places[0].text}"
            if places[0].text.startswith(("in ", "on ", "at "))
            else f" in {places[0].text}"
        )
        used.append(places[0])
    verbs = retrieval.kept_of("verb")[:max_verbs]
    if verbs:
        body += ", " + _join([v.text for v in verbs])
        used += verbs
    text = _cap(body) + "."
    scenes = retrieval.kept_of("scene")[:max_scenes]
    if scenes:
        text += " " + _cap(", ".join(s.text for s in scenes)) + "."
        used += scenes
    return limit_words(text, limit), used
