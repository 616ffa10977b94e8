"""The offline planner against tests/planning/data/prompts.jsonl: precision, recall and F1 for
characters, places and events, the share of plans with a wrong character (a place or a word that
is no one), and the time to load the pipelines (after torch, which every cinerl process imports
anyway and which spaCy's thinc would otherwise pull in) and to plan one prompt.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/planner.py   # writes benchmarks/out/planner.json
"""

from __future__ import annotations

import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests/planning/data/prompts.jsonl"
OUT = ROOT / "benchmarks/out/planner.json"


def _match_char(exp: dict, ch) -> bool:
    if exp.get("species") and ch.species != exp["species"]:
        return False
    if exp.get("name") and ch.name != exp["name"]:
        return False
    role = exp.get("role", "")
    if role and role.split()[-1] not in (ch.role or "").split() and role not in (ch.role or ""):
        return False
    if exp.get("gender") and ch.gender != exp["gender"] and not ch.species:
        return False
    return True


def _greedy(expected: list, got: list, match) -> int:
    free, hits = list(got), 0
    for e in expected:
        k = next((i for i, g in enumerate(free) if match(e, g)), None)
        if k is not None:
            hits += 1
            free.pop(k)
    return hits


def _prf(tp: int, n_pred: int, n_exp: int) -> dict:
    p = tp / n_pred if n_pred else 1.0
    r = tp / n_exp if n_exp else 1.0
    return {
        "precision": round(p, 3),
        "recall": round(r, 3),
        "f1": round(2 * p * r / (p + r) if p + r else 0.0, 3),
    }


def main() -> dict:
    # torch first: every cinerl process imports it (MiniLM, the policy), and spaCy's thinc imports
    # it when it is installed, so it would otherwise be counted as the spaCy load
    tt = time.perf_counter()
    import torch  # noqa: F401

    load_torch = time.perf_counter() - tt
    t0 = time.perf_counter()
    from cinerl.planning import nlp

    nlp.load_pipeline("en")
    load_en = time.perf_counter() - t0
    t1 = time.perf_counter()
    nlp.load_pipeline("fr")
    load_fr = time.perf_counter() - t1
    from cinerl.planning.offline import plan_story
    from cinerl.planning.prompt_facts import read_prompt, scenery_type

    t2 = time.perf_counter()
    scenery_type("harbour")  # MiniLM and the scenery vocabulary's embeddings
    load_minilm = time.perf_counter() - t2
    rows = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    counts = {k: [0, 0, 0] for k in ("characters", "places", "events")}
    wrong, per, times = 0, [], []
    for row in rows:
        t = time.perf_counter()
        bible = plan_story(row["prompt"], seed=0)
        times.append(time.perf_counter() - t)
        facts = read_prompt(row["prompt"])
        chars = bible.characters if facts.characters else []
        hits = _greedy(row["characters"], chars, _match_char)
        counts["characters"][0] += hits
        counts["characters"][1] += len(chars)
        counts["characters"][2] += len(row["characters"])
        names = [loc.name.lower() for loc in bible.locations] if facts.places else []
        ph = _greedy(row["places"], names, lambda e, g: e.lower() in g)
        counts["places"][0] += ph
        counts["places"][1] += len(names)
        counts["places"][2] += len(row["places"])
        ev = len(facts.events)
        counts["events"][0] += min(ev, row["events"])
        counts["events"][1] += ev
        counts["events"][2] += row["events"]
        place_words = {w for pl in facts.places for w in pl.name.lower().split()} | {
            w for e in facts.doc.ents if e.label_ in ("GPE", "LOC", "FAC") for w in e.text.lower().split()
        }
        bad = [c.name for c in chars if c.name.lower() in place_words or c.role.lower() in place_words]
        bad += [c.name for c in chars[hits:]] if len(chars) > len(row["characters"]) else []
        wrong += bool(bad)
        per.append(
            {
                "prompt": row["prompt"],
                "characters": [[c.name, c.role, c.gender, c.species] for c in chars],
                "places": names,
                "events": ev,
                "expected_events": row["events"],
                "wrong": bad,
            }
        )
    result = {k: _prf(*v) for k, v in counts.items()}
    result["wrong_character_share"] = round(wrong / len(rows), 3)
    result["prompts"] = len(rows)
    result["load_s"] = {
        "torch_import": round(load_torch, 2),
        "spacy_en": round(load_en, 2),
        "spacy_fr": round(load_fr, 2),
        "minilm": round(load_minilm, 2),
    }
    result["plan_s"] = {"mean": round(sum(times) / len(times), 3), "max": round(max(times), 3)}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({**result, "per_prompt": per}, indent=1, ensure_ascii=False))
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
