"""Time `cinerl make` on the CPU: 3 scenes x 2 attempts at 640x360, per stage.

Prints one table and writes JSON (default benchmarks/out/make_cpu.json). Targets from the issue:
the whole run under 60 s on a 2-core machine, scoring at most 40% of it.

    python benchmarks/make_cpu.py [--size 640x360] [--scenes 3] [--attempts 2] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STAGES = ("plan", "references", "render", "score", "save", "learn", "stitch", "audio", "report")
PROMPT = (
    "A retired lighthouse keeper and her estranged son sail from the stormy coast to the old "
    "harbour town to save the drowning lantern festival."
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--scenes", type=int, default=3)
    ap.add_argument("--attempts", type=int, default=2)
    ap.add_argument("--json", type=Path, default=Path(__file__).parent / "out" / "make_cpu.json")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cinerl-bench-"))
    cinerl = Path(sys.executable).with_name("cinerl")
    cmd = [
        str(cinerl),
        "make",
        PROMPT,
        "--out",
        str(work / "run"),
        "--scenes",
        str(args.scenes),
        "--attempts",
        str(args.attempts),
        "--max-attempts",
        str(args.attempts),
        "--size",
        args.size,
        "--policy",
        str(work / "policy.pt"),
        "--fresh",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    report = json.loads((work / "run" / "report.json").read_text())
    stages = {k: float(report["stages"].get(k, 0.0)) for k in STAGES}
    startup = wall - sum(stages.values())
    seconds_of_video = sum(sc["duration_s"] for sc in report["bible"]["scenes"]) * args.attempts
    rows = [(name, stages[name]) for name in STAGES] + [("startup+other", startup), ("total", wall)]
    print(
        f"cinerl make: {args.scenes} scenes x {args.attempts} attempts at {args.size}, "
        f"{seconds_of_video:.0f} s of video rendered, {os.cpu_count()} CPUs"
    )
    print(f"{'stage':<15}{'seconds':>10}{'share':>9}")
    for name, sec in rows:
        print(f"{name:<15}{sec:>10.2f}{sec / wall:>8.1%}")
    result = {
        "size": args.size,
        "scenes": args.scenes,
        "attempts": args.attempts,
        "cpus": os.cpu_count(),
        "video_seconds_rendered": seconds_of_video,
        "stages": stages,
        "startup_other": startup,
        "total": wall,
        "score_share": stages["score"] / wall,
        "render_seconds_per_video_second": stages["render"] / seconds_of_video,
        "targets": {
            "total_under_60s": wall < 60,
            "score_share_at_most_40pct": stages["score"] / wall <= 0.40,
        },
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"json: {args.json}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
