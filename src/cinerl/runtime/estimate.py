"""What a film will cost before it is shot: clips, frames, denoising steps and seconds.

Seconds come from what this machine measured on earlier runs, cached in
`~/.cinerl/timings.json` (`$HOME` decides where `~` is) per backend, variant and frame size:
previz costs CPU seconds per frame (render, save, score, the policy update); Wan costs GPU
seconds per denoising step and frame, plus the same per-frame scoring. Each finished make
updates the cache from its own stage times, and its report shows the estimate beside what it
measured, so the estimate's error is visible. With no measurement for a size, the nearest
measured size of the same backend is scaled by pixels; with none at all the seconds are
`unknown` and say why.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

from cinerl.core.media import atomic_write_text
from cinerl.core.schema import StoryBible
from cinerl.core.settings import Settings
from cinerl.core.store import RunStore

log = logging.getLogger(__name__)

CACHE_NAME = "timings.json"
TAKE_STAGES = ("render", "save", "score", "learn")


def cache_path() -> Path:
    return Path.home() / ".cinerl" / CACHE_NAME


def rate_key(settings: Settings) -> str:
    r = settings.run
    key = f"{r.backend}:{r.width}x{r.height}"
    return f"{key}:{settings.wan.variant}" if r.backend == "wan" else key


def read_rates() -> dict[str, dict]:
    try:
        data = json.loads(cache_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def takes_per_scene(settings: Settings) -> int:
    r = settings.run
    return r.max_attempts if r.consistency_threshold is not None else r.attempts


def frames_of(scene, fps: int) -> int:
    """The frames one take of `scene` renders (the director's ClipRequest.num_frames)."""
    return max(1, round(scene.duration_s * fps))


def steps_per_frame(settings: Settings) -> int:
    return settings.wan.steps if settings.run.backend == "wan" else 0


def _rate(settings: Settings) -> tuple[dict | None, str]:
    rates = read_rates()
    key = rate_key(settings)
    if key in rates:
        return rates[key], f"measured on this machine ({cache_path()})"
    prefix = key.rsplit(":", 1)[0] if settings.run.backend == "wan" else settings.run.backend
    same = {k: v for k, v in rates.items() if k.split(":")[0] == prefix.split(":")[0]}
    if not same:
        return None, f"unknown: no {settings.run.backend} run measured on this machine yet ({cache_path()})"
    pixels = settings.run.width * settings.run.height

    def px(k: str) -> int:
        w, h = k.split(":")[1].split("x")
        return int(w) * int(h)

    near = min(same, key=lambda k: abs(px(k) - pixels))
    scale = pixels / px(near)
    scaled = {name: value * scale for name, value in same[near].items() if isinstance(value, (int, float))}
    return scaled, f"scaled by pixels from {near} measured on this machine"


def estimate(bible: StoryBible, settings: Settings) -> dict:
    """The film's size in clips, frames and steps, and its seconds (or None and why not)."""
    per_scene = takes_per_scene(settings)
    frames = sum(frames_of(sc, settings.run.fps) for sc in bible.scenes) * per_scene
    steps = frames_steps = 0
    if settings.run.backend == "wan":
        steps = len(bible.scenes) * per_scene * settings.wan.steps
        frames_steps = frames * settings.wan.steps
    rate, source = _rate(settings)
    seconds = None
    if rate is not None:
        seconds = frames * rate.get("per_frame", 0.0) + frames_steps * rate.get("per_frame_step", 0.0)
    return {
        "backend": settings.run.backend,
        "scenes": len(bible.scenes),
        "takes_per_scene": per_scene,
        "clips": len(bible.scenes) * per_scene,
        "frames": frames,
        "steps": steps,
        "steps_per_take": settings.wan.steps if settings.run.backend == "wan" else 0,
        "scene_frames": [frames_of(sc, settings.run.fps) for sc in bible.scenes],
        "seconds": seconds,
        "source": source,
        "kind": "GPU seconds" if settings.run.backend == "wan" else "CPU seconds",
    }


def lines(est: dict) -> list[str]:
    """The estimate as the first lines of `cinerl make` and `cinerl estimate` print it."""
    size = (
        f"{est['scenes']} scenes x {est['takes_per_scene']} take{'s' if est['takes_per_scene'] != 1 else ''}"
        f" = {est['clips']} clips, "
        f"{est['frames']} frames"
    )
    if est["steps"]:
        size += f", {est['steps']} denoising steps"
    secs = est["seconds"]
    cost = f"about {secs:.0f} {est['kind']} ({est['source']})" if secs is not None else est["source"]
    out = [f"estimate: {size}", f"estimate: {cost}"]
    if est.get("budget_s") is not None:
        out.append(f"budget: {est['budget_s']:.0f} s")
    return out


def measured(store: RunStore, bible: StoryBible, settings: Settings) -> dict:
    """What the run spent, in the estimate's units: clips, frames, steps, seconds."""
    scenes = {sc.index: sc for sc in bible.scenes}
    takes = [rec for rec, _ in store.attempts() if rec.scene in scenes]
    frames = sum(frames_of(scenes[rec.scene], settings.run.fps) for rec in takes)
    stages = store.stage_times()
    return {
        "clips": len(takes),
        "frames": frames,
        "steps": len(takes) * steps_per_frame(settings),
        "seconds": sum(stages.get(k, 0.0) for k in TAKE_STAGES),
        "render_seconds": stages.get("render", 0.0),
    }


def update_rates(store: RunStore, bible: StoryBible, settings: Settings) -> None:
    """Cache this run's cost per frame (and per Wan step and frame) for the next estimate."""
    m = measured(store, bible, settings)
    if not m["frames"]:
        return
    if settings.run.backend == "wan":
        fs = m["frames"] * settings.wan.steps
        rate = {
            "per_frame_step": m["render_seconds"] / fs,
            "per_frame": (m["seconds"] - m["render_seconds"]) / m["frames"],
        }
    else:
        rate = {"per_frame": m["seconds"] / m["frames"]}
    rates = read_rates()
    rates[rate_key(settings)] = {**rate, "frames": m["frames"]}
    try:
        atomic_write_text(cache_path(), json.dumps(rates, indent=2, sort_keys=True))
    except OSError as e:  # a read-only home: the estimate stays as it was
        log.warning("could not cache timings in %s: %s", cache_path(), e)


def estimate_prompt(prompt: str, settings: Settings, budget_s: float | None = None) -> dict:
    """`cinerl estimate`: plan the prompt as make would (in a scratch folder) and estimate it."""
    from cinerl.planning.bible import plan_bible

    with tempfile.TemporaryDirectory(prefix="cinerl-estimate-") as tmp:
        store = RunStore(Path(tmp) / "state.db")
        try:
            bible = plan_bible(prompt, settings, store, Path(tmp))
        finally:
            store.close()
    return {**estimate(bible, settings), "budget_s": budget_s}
