"""Does the prompt policy beat a template? Learning curves against fixed recipes (issue 20).

On a fixed set of training prompts and a disjoint set of evaluation prompts (previz, the offline
reward suite), the mean chosen-take and all-take reward on the evaluation prompts:

- uniform random choices;
- the composer's default recipe for every take (`--policy-mode template`);
- the best fixed recipe, found here by coordinate search over the 7 factors on the first
  `--search-prompts` training prompts (start at the default recipe; per factor, try every value
  with the others fixed, keep the best; `--search-passes` rounds);
- PPO and GRPO after 0, 1, 2, 4 and 8 training films (the policy file is copied at each point and
  evaluated frozen, so evaluation does not learn), with their update diagnostics (approx_kl, clip
  fraction, entropy) averaged per training film.

Every arm shoots the evaluation prompts with the same seeds; the learning arms also report the
first take's reward (the greedy take: all = (first + the exploring takes) / 3), and
`--train-seed` moves the training films' seeds (film n: seed + n, 1000 by default), so that
several learning runs show how far one curve is from another. Prints a table, writes JSON and a
PNG of the curves beside it (matplotlib, `pip install -e .[bench]`; without it the PNG is skipped
and the JSON says why).

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/policy.py [--size 160x96] [--scenes 3] \\
        [--attempts 3] [--films 8] [--json benchmarks/results/policy_cpu.json]

Options for a loaded machine: `--checkpoints 0,8` evaluates fewer curve points; `--policy
learning_rate=3e-3,target_kl=0.2` sets the learning arms' policy settings; `--learning-only` runs
only the learning arms (one process per algorithm, in parallel), and `--baselines-from FULL.json
--learning-from PPO.json,GRPO.json --algorithms ''` merges them with an earlier run's search and
baselines into one JSON, table and PNG (each must be made at the same settings). The committed
benchmarks/results/policy_cpu.json is a run at --size 96x64 --films 8 made that way (search and
baselines, PPO, GRPO: three processes, merged; its `commands` say how), with the per-scene
headroom measured apart and the `tried` arms (policies not kept) run with --learning-only.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import NoReturn

import numpy as np

from cinerl.core.settings import Settings
from cinerl.core.vocabulary import ACTION_FACTORS, DEFAULT_RECIPE, format_recipe
from cinerl.runtime.director import make_film

TRAIN_PROMPTS = [
    "A young detective chases a thief through the rain-soaked city at night and into the subway.",
    "An old monk keeps a candlelit vigil in a mountain monastery while the snow falls.",
    "Two rival bakers, Lena and Omar, race through a crowded Marrakech souk to deliver a wedding cake.",
    "A retired nurse and her grandson repair a fishing boat on a foggy Norwegian fjord.",
    "A knight and a wizard cross the desert at golden hour to reach the mountain castle.",
    "A jazz singer waits alone in a neon-lit bar after midnight for a letter that never comes.",
]
EVAL_PROMPTS = [
    "A courier on a bicycle races through the neon streets of Tokyo at midnight.",
    "A grandmother tells her granddaughter a story by the fireplace in a snowed-in cabin.",
    "Three friends search for a lost dog in a sunny village market.",
    "A lone astronaut walks across a red desert at dawn toward the landing site.",
]
CHECKPOINTS = (0, 1, 2, 4, 8)


def policy_overrides(text: str) -> dict[str, str]:
    """--policy 'learning_rate=3e-3,target_kl=0.05' -> policy settings for the learning arms."""
    pairs = [p.split("=", 1) for p in text.split(",") if p.strip()]
    if any(len(p) != 2 for p in pairs):
        raise ValueError(f"--policy wants name=value pairs separated by commas, not {text!r}")
    return {k.strip(): v.strip() for k, v in pairs}


def settings_for(args, seed: int, **policy) -> Settings:
    w, h = (int(x) for x in args.size.split("x"))
    fields = {f"policy__{k}": v for k, v in policy.items()}
    return Settings.of(
        run__seed=seed,
        plan__scenes=args.scenes,
        run__attempts=args.attempts,
        run__max_attempts=args.attempts,
        run__width=w,
        run__height=h,
        run__fps=args.fps,
        **fields,
    )


def shoot(prompt: str, out: Path, settings: Settings) -> dict:
    """One film: its chosen-take, first-take (the greedy take) and all-take mean rewards and its
    update diagnostics."""
    report = make_film(prompt, out, settings).report
    chosen = [s.chosen_attempt.reward.total for s in report.scenes if s.chosen_attempt]
    takes = [a.reward.total for s in report.scenes for a in s.attempts]
    first = [min(s.attempts, key=lambda a: a.attempt).reward.total for s in report.scenes if s.attempts]
    learn = [s.learn for s in report.scenes if s.learn]
    keys = [k for k in ("approx_kl", "clip_fraction", "entropy", "epochs") if any(k in lr for lr in learn)]
    diag = {k: float(np.mean([lr[k] for lr in learn if k in lr])) for k in keys}
    shutil.rmtree(out, ignore_errors=True)
    return {
        "chosen": float(np.mean(chosen)),
        "first": float(np.mean(first)),
        "all": float(np.mean(takes)),
        "updates": diag if learn else {},
    }


def evaluate(args, work: Path, name: str, **policy) -> dict:
    """Mean chosen-take and all-take reward over the evaluation prompts, same seeds for every arm."""
    films = [
        shoot(p, work / f"{name}_{i}", settings_for(args, 5000 + i, **policy))
        for i, p in enumerate(EVAL_PROMPTS)
    ]
    return {k: float(np.mean([f[k] for f in films])) for k in ("chosen", "first", "all")}


def coordinate_search(args, work: Path) -> tuple[dict[str, str], list[dict]]:
    """The best fixed recipe on the first training prompts: one factor at a time, every value."""
    prompts = TRAIN_PROMPTS[: args.search_prompts]
    cache: dict[str, float] = {}

    def score(recipe: dict[str, str]) -> float:
        key = format_recipe(recipe)
        if key not in cache:
            runs = [
                shoot(
                    p,
                    work / f"search_{len(cache)}_{i}",
                    settings_for(args, 100 + i, mode="template", recipe=key),
                )
                for i, p in enumerate(prompts)
            ]
            cache[key] = float(np.mean([r["chosen"] for r in runs]))
        return cache[key]

    best, trail = dict(DEFAULT_RECIPE), []
    for _ in range(args.search_passes):
        for factor, values in ACTION_FACTORS.items():
            scored = {v: score({**best, factor: v}) for v in values}
            best[factor] = max(scored, key=scored.get)
            trail.append({"factor": factor, "scores": scored, "kept": best[factor]})
    return best, trail


def learning_curve(args, work: Path, algorithm: str) -> dict:
    """Train on the training prompts film after film; at each checkpoint evaluate a frozen copy."""
    policy_file = work / f"{algorithm}.pt"
    curve, diagnostics = {}, []
    points = [n for n in args.checkpoints if n <= args.films]
    learn = policy_overrides(args.policy)
    for n in range(max(points) + 1):
        if n in points:
            frozen = work / f"{algorithm}_after_{n}.pt"
            if policy_file.exists():
                shutil.copy(policy_file, frozen)
            curve[n] = evaluate(
                args, work, f"{algorithm}_eval_{n}", mode="frozen", rl=algorithm, path=str(frozen), **learn
            )
            print(
                f"  {algorithm} after {n} films: chosen {curve[n]['chosen']:.3f}  "
                f"first {curve[n]['first']:.3f}  all {curve[n]['all']:.3f}"
            )
        if n == max(points):
            break
        film = shoot(
            TRAIN_PROMPTS[n % len(TRAIN_PROMPTS)],
            work / f"{algorithm}_train_{n}",
            settings_for(
                args, args.train_seed + n, mode="learn", rl=algorithm, path=str(policy_file), **learn
            ),
        )
        diagnostics.append({"film": n, "chosen": film["chosen"], "all": film["all"], **film["updates"]})
    return {"curve": curve, "updates": diagnostics}


def fail(message: str) -> NoReturn:
    """Bad input: one line, exit 2."""
    print(f"policy.py: error: {message}", file=sys.stderr)
    raise SystemExit(2)


SHARED = ("size", "scenes", "attempts", "fps", "search_prompts", "search_passes")


def reused_baselines(args) -> tuple[str, list[dict], dict]:
    """The recipe search and baselines of an earlier run, if it was made at the same settings."""
    try:
        old = json.loads(args.baselines_from.read_text())
    except (OSError, ValueError) as e:
        fail(f"--baselines-from {args.baselines_from}: cannot read it ({e})")
    mine = {k: str(getattr(args, k)) for k in SHARED}
    theirs = {k: old.get("settings", {}).get(k) for k in SHARED}
    if mine != theirs:
        diff = ", ".join(f"{k} {theirs[k]} != {mine[k]}" for k in SHARED if mine[k] != theirs[k])
        fail(f"--baselines-from {args.baselines_from} was made at other settings: {diff}")
    print(f"baselines from {args.baselines_from}")
    return old["best_fixed_recipe"], old["search"], old["baselines"]


def reused_learning(args, path: Path) -> dict:
    """The learning arms of an earlier run at the same settings (and the same --policy)."""
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        fail(f"--learning-from {path}: cannot read it ({e})")
    keys = (*SHARED, "films", "policy", "train_seed")
    # runs before --policy and --train-seed had neither
    theirs = {"policy": "", "train_seed": "1000", **old.get("settings", {})}
    diff = [k for k in keys if theirs.get(k) != str(getattr(args, k))]
    if diff:
        fail(f"--learning-from {path} was made at other settings: {', '.join(diff)}")
    return {
        algo: {"curve": {int(n): r for n, r in lc["curve"].items()}, "updates": lc["updates"]}
        for algo, lc in old["learning"].items()
    }


def plot(result: dict, png: Path) -> str:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "unavailable: matplotlib is not installed (pip install -e .[bench])"
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, key in zip(axes, ("chosen", "all")):
        for algo in ("ppo", "grpo"):
            if algo in result["learning"]:
                c = result["learning"][algo]["curve"]
                xs = sorted(int(n) for n in c)
                ax.plot(
                    xs, [c[n][key] if n in c else c[str(n)][key] for n in xs], marker="o", label=algo.upper()
                )
        for name, style in (("random", ":"), ("default_recipe", "--"), ("best_fixed", "-.")):
            ax.axhline(
                result["baselines"][name][key], linestyle=style, color="grey", label=name.replace("_", " ")
            )
        ax.set_xlabel("training films")
        ax.set_title(f"{key}-take reward on the evaluation prompts")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("mean reward")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return str(png)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="160x96", help="WxH of every take")
    ap.add_argument("--scenes", type=int, default=3)
    ap.add_argument("--attempts", type=int, default=3, help="takes per scene")
    ap.add_argument("--fps", type=int, default=4)
    ap.add_argument(
        "--films", type=int, default=8, help="training films (curve points 0, 1, 2, 4, 8 up to it)"
    )
    ap.add_argument("--algorithms", default="ppo,grpo")
    ap.add_argument("--search-prompts", type=int, default=2, help="training prompts the recipe search uses")
    ap.add_argument("--search-passes", type=int, default=1)
    ap.add_argument(
        "--checkpoints",
        type=lambda t: tuple(int(x) for x in t.split(",")),
        default=CHECKPOINTS,
        help="training films after which the policy is evaluated (0,1,2,4,8)",
    )
    ap.add_argument("--policy", default="", help="policy settings of the learning arms: name=value,...")
    ap.add_argument(
        "--train-seed",
        type=int,
        default=1000,
        help="seed of the first training film (film n: this + n); another one gives another learning "
        "run on the same evaluation seeds, to see how far one run's curve is from another's",
    )
    ap.add_argument(
        "--baselines-from",
        type=Path,
        help="reuse the recipe search and baselines of an earlier JSON of the same size, scenes, "
        "attempts, fps and search settings (they do not depend on the learning arms)",
    )
    ap.add_argument(
        "--learning-from",
        type=lambda t: [Path(x) for x in t.split(",") if x],
        default=[],
        help="JSONs of earlier runs whose learning arms to merge in (each at the same settings)",
    )
    ap.add_argument(
        "--learning-only",
        action="store_true",
        help="run the learning arms only (no search, no baselines), to merge into a full run",
    )
    ap.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "policy_cpu.json")
    args = ap.parse_args()
    try:
        policy_overrides(args.policy)
    except ValueError as e:
        ap.error(str(e))  # one line, exit 2
    logging.disable(logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="cinerl-policy-bench-"))
    t0 = time.perf_counter()
    best, trail, baselines = None, [], {}
    if not (args.baselines_from or args.learning_only):
        print("baselines ...")
        best, trail = coordinate_search(args, work)
        baselines = {
            "random": evaluate(args, work, "random", mode="random"),
            "default_recipe": evaluate(args, work, "default", mode="template"),
            "best_fixed": evaluate(args, work, "best", mode="template", recipe=format_recipe(best)),
        }
    learning = {}
    for path in args.learning_from:  # learning arms run apart (in parallel), merged here
        learning.update(reused_learning(args, path))
    for algo in [a for a in args.algorithms.split(",") if a and a not in learning]:
        print(f"{algo} ...")
        learning[algo] = learning_curve(args, work, algo)
    if args.baselines_from:  # read after the learning arms: the earlier run may finish meanwhile
        best, trail, baselines = reused_baselines(args)
    result = {
        "settings": {k: str(v) for k, v in vars(args).items()},
        "train_prompts": TRAIN_PROMPTS,
        "eval_prompts": EVAL_PROMPTS,
        "default_recipe": format_recipe(DEFAULT_RECIPE),
        "best_fixed_recipe": format_recipe(best) if isinstance(best, dict) else best,
        "learning_only": args.learning_only,
        "search": trail,
        "baselines": baselines,
        "learning": learning,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    result["plot"] = "" if args.learning_only else plot(result, args.json.with_suffix(".png"))
    args.json.write_text(json.dumps(result, indent=2))
    shutil.rmtree(work, ignore_errors=True)
    if args.learning_only:
        print(f"wrote {args.json} (learning arms only; merge with --learning-from)")
        return 0

    print(f"\nbest fixed recipe: {result['best_fixed_recipe']}")
    print(f"{'arm':<22}{'chosen':>8}{'all':>8}")
    for name, r in baselines.items():
        print(f"{name:<22}{r['chosen']:>8.3f}{r['all']:>8.3f}")
    for algo, lc in learning.items():
        for n, r in lc["curve"].items():
            print(f"{f'{algo} after {n} films':<22}{r['chosen']:>8.3f}{r['all']:>8.3f}")
    default, fixed = baselines["default_recipe"], baselines["best_fixed"]
    for algo, lc in learning.items():
        last_n = max(lc["curve"])
        first, last = lc["curve"][0], lc["curve"][last_n]
        print(
            f"{algo}: fresh/default chosen {first['chosen'] / default['chosen']:.3f} (target >= 0.98); "
            f"after {last_n} films chosen - best fixed {last['chosen'] - fixed['chosen']:+.3f} "
            f"(target >= +0.03), all - best fixed {last['all'] - fixed['all']:+.3f} (target >= 0)"
        )
    print(f"wrote {args.json} ({result['seconds']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
