"""Time the reward suite per component on one 121-frame clip at 1280x704 and at 832x480.

The clip is a previz render of a planned scene (characters, location, camera move) with the full
scoring context `cinerl make` gives (bible, reference images, previous scene's last frame), held in
memory, so decoding is not timed. Each size is scored once cold (models load: reported
separately) and then `--repeats` times warm, one component at a time (the default) and on
`--workers` threads (`rewards.workers`), interleaved; the table shows the warm median per
component (one at a time), the shared analysis pass (resize once to the analysis resolution), and
both totals. Shared work (DIS flow, frame features, face detection) is charged to the first
component that needs it. Targets (issue 3): every offline component for one 121-frame 1280x704
clip in at most 10 s on a 2-core CPU and 1 s on an H100.

    python benchmarks/rewards.py [--device auto|cpu|cuda] [--repeats 3] [--json PATH]

Torch components run on --device; OpenCV parts (resize, DIS flow, SSIM, BRISQUE features, dlib)
always run on the CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

SIZES = [(1280, 704), (832, 480)]
FRAMES = 121
FPS = 24
STORY = "A young detective chases a thief through the city and into the subway tunnels."


def scene_context(width: int, height: int):
    """(clip, context) like `cinerl make` builds them: a planned scene shot on previz with the
    policy's default-ish action, references rendered from the bible, the previous scene's last frame."""
    from cinerl.generation.registry import get_image_backend, get_video_backend
    from cinerl.planning.offline import plan_story
    from cinerl.prompting.composer import compose, reference_prompt_character, reference_prompt_location
    from cinerl.rewards import ScoreContext
    from cinerl.core.schema import ClipRequest

    bible = plan_story(STORY, seed=0, scenes=2)
    scene = bible.scenes[1]
    action = {
        "shot_size": "medium",
        "camera_move": "pan",
        "lighting": "golden hour",
        "identity_lock": "full",
        "location_lock": "full",
        "motion": "gentle",
        "negative_preset": "full",
    }
    prompt, negative = compose(scene, bible, action)
    video, image = get_video_backend("previz"), get_image_backend("previz")
    refs = {
        c.id: image.generate_image(reference_prompt_character(c), width, height, 0) for c in bible.characters
    }
    loc = bible.location(scene.location_id)
    prev = video.generate(
        ClipRequest(
            prompt=compose(bible.scenes[0], bible, action)[0],
            width=width,
            height=height,
            fps=FPS,
            num_frames=2,
            seed=2,
        )
    ).frames[-1]
    clip = video.generate(
        ClipRequest(
            prompt=prompt,
            negative_prompt=negative,
            width=width,
            height=height,
            fps=FPS,
            num_frames=FRAMES,
            seed=3,
            init_image=prev,
        )
    )
    ctx = ScoreContext(
        prompt=prompt,
        scene=scene,
        bible=bible,
        character_refs={cid: refs[cid] for cid in scene.character_ids},
        location_ref=image.generate_image(reference_prompt_location(loc), width, height, 0),
        previous_last_frame=prev,
    )
    return clip, ctx


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda (torch components)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--workers",
        type=int,
        default=0,
        help="threads for the concurrent comparison (default: one per core, at most 8)",
    )
    ap.add_argument("--json", type=Path, default=Path(__file__).parent / "out" / "rewards.json")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from cinerl.core.settings import env_settings
    from cinerl.models.cache import resolve_device
    from cinerl.rewards import Scorer

    device = resolve_device(args.device)
    config = env_settings().rewards.model_copy(update={"device": device})
    workers = args.workers or min(8, os.cpu_count() or 1)
    serial = Scorer(config=config.model_copy(update={"workers": 1}))
    concurrent = Scorer(config=config.model_copy(update={"workers": workers}))
    results = {
        "device": device,
        "torch_device_name": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "frames": FRAMES,
        "default_workers": 1,
        "compared_workers": workers,
        "sizes": {},
    }

    def timed(scorer, clip, ctx, timings=None):
        """(seconds, breakdown) of one scoring."""
        t0 = time.perf_counter()
        r = scorer.score(clip, ctx, timings=timings)
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0, r

    for w, h in SIZES:
        clip, ctx = scene_context(w, h)
        cold_total, _ = timed(serial, clip, ctx)
        runs: list[dict[str, float]] = []
        serial_totals, concurrent_totals = [], []
        for _ in range(max(1, args.repeats)):  # interleaved, so both see the same machine load
            tm: dict[str, float] = {}
            serial_totals.append(timed(serial, clip, ctx, tm)[0])
            runs.append(tm)
            seconds, r = timed(concurrent, clip, ctx)
            concurrent_totals.append(seconds)
        med = {k: statistics.median(run[k] for run in runs) for k in runs[0]}
        status = {n: c.status for n, c in r.components.items()}
        offline = sum(v for k, v in med.items() if k == "analysis" or status.get(k) != "unavailable")
        wall, one_by_one = statistics.median(concurrent_totals), statistics.median(serial_totals)
        results["sizes"][f"{w}x{h}"] = {
            "cold_total_s": cold_total,
            "serial_total_s": one_by_one,
            "concurrent_total_s": wall,
            "speedup_concurrent": one_by_one / wall,
            "offline_serial_sum_s": offline,
            "per_component_serial_s": med,
            "status": status,
            "target_cpu_10s": one_by_one <= 10.0 if device == "cpu" else None,
            "target_gpu_1s": one_by_one <= 1.0 if device == "cuda" else None,
        }
        print(
            f"\n{FRAMES} frames at {w}x{h} on {device} ({os.cpu_count()} CPUs, torch threads "
            f"{torch.get_num_threads()}): cold {cold_total:.2f} s (incl. model loads); warm: "
            f"{one_by_one:.2f} s one component at a time, {wall:.2f} s on {workers} workers "
            f"({one_by_one / wall:.2f}x)"
        )
        print(f"{'component (one at a time)':<28}{'status':<16}{'seconds':>9}")
        for k, v in med.items():
            print(f"{k:<28}{status.get(k, '(shared pass)'):<16}{v:>9.3f}")
        print(f"{'offline components, sum':<44}{offline:>9.3f}")
        print(f"{'whole suite, one at a time (the default)':<44}{one_by_one:>9.3f}")
        print(f"{'whole suite, ' + str(workers) + ' workers':<44}{wall:>9.3f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    print(f"\njson: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
