"""A take as an executor job: render, save and score one take on any worker (`shoot_take`), and
the driver's half, which renames the take's files into place before the store records them
(`commit_files`).

The job writes each file under a staged temporary name (`.attempt_00.staged.tmp.mp4`) in the
scene's folder, each one atomically; a job run again after its worker died writes them again,
and a run killed before the commit leaves only temp files, which the next run removes under its
lock (run_folder.remove_stale_temps). The run store is written by the driver alone.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from cinerl.assembly.stitch import crossfade_keyframes
from cinerl.core.media import (
    atomic_write_bytes,
    probe_mp4,
    read_mp4,
    save_jpeg,
    save_png,
    thumbnail,
    write_mp4,
)
from cinerl.core.schema import Clip, ClipRequest
from cinerl.core.settings import AssemblySettings, Settings
from cinerl.executor import worker_cache
from cinerl.generation.registry import backend_spec, get_video_backend
from cinerl.rewards import ScoreContext, Scorer
from cinerl.rewards.core.registry import registered_components
from cinerl.training.character.cast import dress_take

log = logging.getLogger(__name__)

SHOOT_TAKE = "cinerl.runtime.takes:shoot_take"
# the settings groups no backend reads (a worker keeps one backend per value of the rest)
NOT_BACKEND = {"run", "plan", "llm", "policy", "rewards", "assembly", "audio", "executor"}


def staged(path: Path) -> Path:
    """Where a job writes `path` before the driver commits it (a name run_folder.TEMP matches)."""
    return path.with_name(f".{path.stem}.staged.tmp{path.suffix}")


def save_take(
    clip: Clip, folder: Path, stem: str, expected: int, asm: AssemblySettings, stage: bool = False
) -> tuple[Clip, list[str]]:
    """Write the take's mp4, lossless last frame, thumbnail and the backend's extra files (wan
    latents); return the mp4 decoded (the frames a viewer and `cinerl score` see), warning when
    it decodes short, and the files' names. `stage`: under their staged names (commit_files)."""

    def at(name: str) -> Path:
        return staged(folder / name) if stage else folder / name

    names = [f"{stem}.mp4", f"{stem}_last.png", f"{stem}_thumb.jpg"]
    # IDR frames where a crossfade begins and ends: stitched unencoded
    keys = (
        crossfade_keyframes(len(clip.frames), asm.crossfade_frames) if asm.transition == "crossfade" else ()
    )
    path = write_mp4(clip.frames, clip.fps, at(names[0]), keyframes=keys)
    for suffix, data in clip.metadata.get("files", {}).items():
        names.append(f"{stem}.{suffix}")
        atomic_write_bytes(at(names[-1]), data)
    save_png(clip.frames[-1], at(names[1]))
    save_jpeg(thumbnail(clip.frames[len(clip.frames) // 2]), at(names[2]))
    frames, fps = read_mp4(path)
    if len(frames) < max(expected, probe_mp4(path)["frames"]):
        log.warning("%s decodes to %d frames, fewer than the %d written", path, len(frames), expected)
    return Clip(frames=frames, fps=fps or clip.fps, metadata=clip.metadata), names


def commit_files(folder: Path, names: list[str]) -> None:
    """The driver's commit of a take's files: each staged file renamed onto its final name."""
    for name in names:
        os.replace(staged(folder / name), folder / name)


def discard_files(folder: Path, names: list[str]) -> None:
    """A take shot ahead that the scene did not need (its threshold was met before it)."""
    for name in names:
        staged(folder / name).unlink(missing_ok=True)


def shoot_take(settings: Settings, request: ClipRequest, ctx: ScoreContext, folder: str, stem: str) -> dict:
    """Render, save (staged) and score one take. The backend and the scorer are kept by the
    worker between jobs (executor.worker_cache): a Ray actor loads its models once."""
    name = settings.run.backend
    # keyed by what builds them: the settings, the registered factory and reward components (a
    # backend or component registered later in this process gets a new one)
    factory = id(backend_spec(name, "video").factory)
    backend_key = ("video", name, factory, settings.model_dump_json(exclude=NOT_BACKEND))
    backend = worker_cache(backend_key, lambda: get_video_backend(name, settings))
    components = tuple((n, id(spec)) for n, spec in registered_components().items())
    scorer_key = ("scorer", settings.rewards.model_dump_json(), components)
    scorer = worker_cache(scorer_key, lambda: Scorer(config=settings.rewards))
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    clip = dress_take(backend.generate(request), request, ctx, settings)  # --cast faces on previz
    t1 = time.perf_counter()
    saved, names = save_take(clip, Path(folder), stem, request.num_frames, settings.assembly, stage=True)
    t2 = time.perf_counter()
    # the saved take, decoded: the frames a viewer sees and `cinerl score` reads
    reward = scorer.score(saved, ctx)
    timings.update(render=t1 - t0, save=t2 - t1, score=time.perf_counter() - t2)
    return {
        "reward": reward,
        "backend_info": clip.metadata.get("report", {}),
        "timings": timings,
        "files": names,
    }
