"""RAPO retrieval on the CPU: graph build time and retrieval latency over 1,000 prompts.

Prints one table and writes JSON (default benchmarks/out/rapo.json). Target from the issue:
retrieval under 5 ms per prompt after load. Measured three ways: one prompt per call (MiniLM
encoding of the prompt + graph walk + threshold), the graph walk alone (prompt already encoded),
and prompts encoded in batches of 64. Also prints the similarity spread of what retrieval returns
(the evidence for the default threshold).

    python benchmarks/rapo.py [--prompts 1000] [--threads N] [--json PATH]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

SUBJECTS = ("a knight", "a detective", "two astronauts", "a young dancer", "an old fisherman",
            "a pirate captain", "a lost child", "a robot", "a cowboy", "a violinist")
ACTIONS = ("walks slowly through", "runs across", "waits quietly in", "fights bravely in",
           "searches carefully through", "dances alone in", "rides a horse through",
           "hides from danger in", "sings softly in", "repairs a machine in")
SETTINGS = ("a misty forest", "a rainy city street at night", "a space station", "a desert",
            "a stormy harbour", "a castle hall", "a snowy mountain", "a crowded market",
            "a quiet beach at sunset", "an abandoned house")


def prompts(n: int) -> list[str]:
    combos = itertools.product(SUBJECTS, ACTIONS, SETTINGS)
    return [f"{s} {a} {p}" for s, a, p in itertools.islice(itertools.cycle(combos), n)]


def ms(values: list[float]) -> dict:
    v = sorted(values)
    return {"mean_ms": 1000 * statistics.fmean(v), "p50_ms": 1000 * v[len(v) // 2],
            "p95_ms": 1000 * v[int(len(v) * 0.95) - 1]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=0,
                    help="torch CPU threads (0: torch's default); 1 helps on a busy shared machine")
    ap.add_argument("--json", type=Path, default=Path(__file__).parent / "out" / "rapo.json")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from cinerl.prompting.rapo import graph as graph_mod
    from cinerl.prompting.rapo.graph import STARTER_CSV, load_graph
    from cinerl.prompting.rapo.retrieval import Retriever
    from cinerl.rl.features import load_embedder

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
    ps = prompts(args.prompts)
    r.retrieve(ps[0])  # warm-up
    single = []
    for p in ps:
        t0 = time.perf_counter()
        r.retrieve(p)
        single.append(time.perf_counter() - t0)
    vecs = r.embed(ps)
    walk = []
    results = []
    for p, v in zip(ps, vecs):
        t0 = time.perf_counter()
        results.append(r.retrieve_vector(p, v))
        walk.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    for i in range(0, len(ps), 64):
        r.retrieve_many(ps[i:i + 64])
    batch_per = (time.perf_counter() - t0) / len(ps)
    sims = np.asarray([m.similarity for x in results for m in x.kept + x.dropped])
    kept = np.asarray([len(x.kept) for x in results])
    out = {
        "graph": g.stats(),
        "build": rows,
        "retrieval": {"prompts": len(ps), "single_call": ms(single), "graph_walk_only": ms(walk),
                      "batched_64_mean_ms": 1000 * batch_per, "target_ms": 5.0},
        "similarity": {"p25": float(np.percentile(sims, 25)), "p50": float(np.percentile(sims, 50)),
                       "p75": float(np.percentile(sims, 75)), "p90": float(np.percentile(sims, 90)),
                       "kept_per_prompt_mean": float(kept.mean()),
                       "prompts_with_nothing_kept": int((kept == 0).sum()),
                       "threshold": r.threshold},
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "load_avg": os.getloadavg()},
    }
    shutil.rmtree(work, ignore_errors=True)
    print(f"{'measure':<42} {'value':>10}")
    for k, v in rows.items():
        print(f"{k:<42} {v:>10.3f}")
    for name in ("single_call", "graph_walk_only"):
        m = out["retrieval"][name]
        print(f"{'retrieve ' + name + ' mean / p95 (ms)':<42} {m['mean_ms']:>5.2f} / {m['p95_ms']:.2f}")
    print(f"{'retrieve batched (64) mean (ms)':<42} {1000 * batch_per:>10.2f}")
    s = out["similarity"]
    print(f"{'similarity p50 / p90 of candidates':<42} {s['p50']:>5.3f} / {s['p90']:.3f}")
    print(f"{'kept per prompt at threshold ' + str(r.threshold):<42} {s['kept_per_prompt_mean']:>10.2f}")
    print(f"torch threads {torch.get_num_threads()}; load average during the run: "
          f"{out['machine']['load_avg']}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
