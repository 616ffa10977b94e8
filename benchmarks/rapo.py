"""RAPO retrieval on the CPU: graph build time and retrieval latency over 1,000 distinct prompts.

Prints one table and writes JSON (default benchmarks/out/rapo.json). Target from the issue:
retrieval under 5 ms per prompt after load. Latency is measured four ways, each as p50/p95 over
the 1,000 prompts:

- one at a time: `Retriever.retrieve(prompt)`, what `cinerl rapo` and SSPO call (direct MiniLM
  forward, encoder.py, then the graph walk and threshold);
- one at a time through `SentenceTransformer.encode` + the same walk (the path before encoder.py);
- the graph walk alone (prompt already encoded);
- batched: `retrieve_many` on 64 prompts at a time, per prompt (batch time / 64 per batch).

No cache of any kind: every prompt is encoded. On a shared machine timings are noisy, so every
measure is repeated `--repeats` times (interleaved) and the quietest pass (lowest p50) is kept;
every pass's p50 and the load average at its start are in the JSON. Also prints the similarity
spread of what retrieval returns (the evidence for the default threshold).

    python benchmarks/rapo.py [--prompts 1000] [--repeats 3] [--threads N] [--json PATH]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

SUBJECTS = (
    "a knight",
    "a detective",
    "two astronauts",
    "a young dancer",
    "an old fisherman",
    "a pirate captain",
    "a lost child",
    "a robot",
    "a cowboy",
    "a violinist",
)
ACTIONS = (
    "walks slowly through",
    "runs across",
    "waits quietly in",
    "fights bravely in",
    "searches carefully through",
    "dances alone in",
    "rides a horse through",
    "hides from danger in",
    "sings softly in",
    "repairs a machine in",
)
SETTINGS = (
    "a misty forest",
    "a rainy city street at night",
    "a space station",
    "a desert",
    "a stormy harbour",
    "a castle hall",
    "a snowy mountain",
    "a crowded market",
    "a quiet beach at sunset",
    "an abandoned house",
)


def prompts(n: int) -> list[str]:
    combos = itertools.product(SUBJECTS, ACTIONS, SETTINGS)
    return [f"{s} {a} {p}" for s, a, p in itertools.islice(itertools.cycle(combos), n)]


def ms(values: list[float]) -> dict:
    """Mean, p50 and p95 in ms (nearest-rank percentiles)."""
    v = sorted(values)
    return {
        "mean_ms": 1000 * statistics.fmean(v),
        "p50_ms": 1000 * v[math.ceil(0.5 * len(v)) - 1],
        "p95_ms": 1000 * v[math.ceil(0.95 * len(v)) - 1],
    }


def timed(fn: Callable, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def quietest(passes: list[tuple[list[float], tuple]]) -> dict:
    """The pass with the lowest p50, plus every pass's p50 and load average."""
    stats = [ms(v) for v, _load in passes]
    best = min(range(len(stats)), key=lambda i: stats[i]["p50_ms"])
    return {
        **stats[best],
        "passes_p50_ms": [round(s["p50_ms"], 3) for s in stats],
        "passes_load_avg_1min": [round(load[0], 2) for _v, load in passes],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3, help="passes per measure; the quietest is kept")
    ap.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch CPU threads (0: torch's default); 1 helps on a busy shared machine",
    )
    ap.add_argument("--json", type=Path, default=Path(__file__).parent / "out" / "rapo.json")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from cinerl.prompting.rapo import graph as graph_mod
    from cinerl.prompting.rapo.graph import STARTER_CSV, load_graph
    from cinerl.prompting.rapo.retrieval import Retriever
    from cinerl.models.embedder import load_embedder

    work = Path(tempfile.mkdtemp(prefix="cinerl-rapo-bench-"))
    rows: dict[str, float] = {}
    t0 = time.perf_counter()
    load_embedder()
    rows["load MiniLM (s)"] = time.perf_counter() - t0
    # cold: no shipped seed, every phrase encoded
    seed, graph_mod.STARTER_EMBEDDINGS = graph_mod.STARTER_EMBEDDINGS, work / "no-seed.npz"
    t0 = time.perf_counter()
    load_graph([STARTER_CSV], rapo_dir=work / "cold")
    rows["build, encoding every phrase (s)"] = time.perf_counter() - t0
    graph_mod.STARTER_EMBEDDINGS = seed
    t0 = time.perf_counter()
    load_graph([STARTER_CSV], rapo_dir=work / "seeded")
    rows["build, shipped embeddings (s)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    g = load_graph([STARTER_CSV], rapo_dir=work / "seeded")
    rows["load from graph cache (s)"] = time.perf_counter() - t0
    assert g.from_cache

    r = Retriever(g)
    st = load_embedder()
    ps = prompts(args.prompts)
    assert len(set(ps)) == len(ps), "the prompts must be distinct"
    vecs = r.embed(ps)
    results = [r.retrieve_vector(p, v) for p, v in zip(ps, vecs)]
    r.retrieve(ps[0])  # warm-up of the direct forward

    def via_encode(p: str):
        q = st.encode([p], normalize_embeddings=True, show_progress_bar=False)[0]
        return r.retrieve_vector(p, q)

    measures: dict[str, list] = {
        "one_at_a_time": [],
        "one_at_a_time_sentence_transformers": [],
        "graph_walk_only": [],
        "batched_64_per_prompt": [],
    }
    for _ in range(args.repeats):  # interleaved, so a noisy spell does not hit one measure only
        load = os.getloadavg()
        measures["one_at_a_time"].append(([timed(r.retrieve, p) for p in ps], load))
        measures["one_at_a_time_sentence_transformers"].append(
            ([timed(via_encode, p) for p in ps], os.getloadavg())
        )
        measures["graph_walk_only"].append(
            ([timed(r.retrieve_vector, p, v) for p, v in zip(ps, vecs)], os.getloadavg())
        )
        batches = [ps[i : i + 64] for i in range(0, len(ps), 64)]
        measures["batched_64_per_prompt"].append(
            ([timed(r.retrieve_many, b) / len(b) for b in batches], os.getloadavg())
        )
    retrieval = {k: quietest(v) for k, v in measures.items()}
    sims = np.asarray([m.similarity for x in results for m in x.kept + x.dropped])
    kept = np.asarray([len(x.kept) for x in results])
    out = {
        "graph": g.stats(),
        "build": rows,
        "retrieval": {
            "prompts": len(ps),
            "distinct": True,
            "repeats": args.repeats,
            "kept": "quietest pass (lowest p50) per measure",
            "target_ms": 5.0,
            **retrieval,
        },
        "similarity": {
            "p25": float(np.percentile(sims, 25)),
            "p50": float(np.percentile(sims, 50)),
            "p75": float(np.percentile(sims, 75)),
            "p90": float(np.percentile(sims, 90)),
            "kept_per_prompt_mean": float(kept.mean()),
            "prompts_with_nothing_kept": int((kept == 0).sum()),
            "threshold": r.threshold,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "load_avg_at_end": os.getloadavg(),
        },
    }
    shutil.rmtree(work, ignore_errors=True)
    print(f"{'measure':<46} {'value':>16}")
    for k, v in rows.items():
        print(f"{k:<46} {v:>16.3f}")
    print(f"{'retrieval over ' + str(len(ps)) + ' distinct prompts (ms)':<46} {'p50 / p95':>16}")
    for name, m in retrieval.items():
        print(f"  {name:<44} {m['p50_ms']:>7.2f} / {m['p95_ms']:<7.2f}")
    s = out["similarity"]
    print(f"{'similarity p50 / p90 of candidates':<46} {s['p50']:>7.3f} / {s['p90']:.3f}")
    label = f"kept per prompt at threshold {r.threshold}"
    print(f"{label:<46} {s['kept_per_prompt_mean']:>16.2f}")
    print(
        f"torch threads {torch.get_num_threads()}; quietest of {args.repeats} passes kept; "
        f"1-min load average at each pass start: "
        f"{retrieval['one_at_a_time']['passes_load_avg_1min']}"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
