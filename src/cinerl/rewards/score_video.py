"""``cinerl score``: the reward suite on any MP4, optionally against a story bible's scene.

With ``--bible DIR/story/bible.json --scene N`` the scene, its characters and location give the
context; when the bible sits in a CineRL run folder, the run's reference images
(``references/character_<id>.png``, ``location_<id>.png``) and the previous scene's chosen last
frame (from ``report.json``) are used too, exactly as ``cinerl make`` scored the clip.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import ValidationError

import logging

from cinerl.core.errors import UserError
from cinerl.rewards.core.context import ScoreContext
from cinerl.rewards.core.composite import Scorer
from cinerl.core.settings import RewardSettings
from cinerl.core.schema import Clip, RewardBreakdown, StoryBible


log = logging.getLogger(__name__)


@dataclass
class ScoreInputs:
    clip: Clip
    ctx: ScoreContext
    used: list[str]  # what context was found, for the report


def _load_png(path: Path) -> np.ndarray | None:
    if not path.is_file():
        return None
    from cinerl.core.media import load_png

    return load_png(path)


def load_bible(path: Path) -> StoryBible:
    try:
        return StoryBible.model_validate_json(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"bible file {path} does not exist") from None
    except (ValidationError, UnicodeDecodeError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"{path} is not a CineRL story bible: {first}") from None


def previous_last_frame(run_dir: Path, scene_index: int) -> np.ndarray | None:
    """The previous scene's chosen attempt's last frame, when the run's report says which it is."""
    report = run_dir / "report.json"
    if scene_index < 1 or not report.is_file():
        return None
    try:
        rep = json.loads(report.read_text(encoding="utf-8"))
        prev = next(s for s in rep["scenes"] if s["scene"] == scene_index - 1)
        att = next(a for a in prev["attempts"] if a["attempt"] == prev["chosen"])
        return _load_png(run_dir / att["last_frame_path"])
    except (StopIteration, KeyError, TypeError, ValueError):
        return None


def run_attempt_prompt(run_dir: Path, video: Path) -> str | None:
    """The prompt `cinerl make` scored this take with, when the video is a take of the run."""
    report = run_dir / "report.json"
    if not report.is_file():
        return None
    try:
        rep = json.loads(report.read_text(encoding="utf-8"))
        for sc in rep["scenes"]:
            for att in sc["attempts"]:
                if (run_dir / att["clip_path"]).resolve() == video.resolve():
                    return att["prompt"]
    except (KeyError, TypeError, ValueError):
        return None
    return None


def prepare(
    video: Path, prompt: str | None = None, bible_path: Path | None = None, scene: int | None = None
) -> ScoreInputs:
    """Decode the video and build the scoring context; UserError for anything the user can fix."""
    from cinerl.core.media import probe_mp4, read_mp4

    video = Path(video)
    if not video.is_file():
        raise UserError(f"video {video} does not exist")
    if scene is not None and bible_path is None:
        raise UserError("--scene needs --bible")
    try:
        frames, fps = read_mp4(video)
    except Exception as exc:
        raise UserError(f"cannot read {video} as a video: {type(exc).__name__}: {exc}") from None
    try:
        declared = probe_mp4(video)["frames"]
    except Exception:
        declared = 0
    if declared > len(frames):
        log.warning(
            "%s decodes to %d frames but its header says %d: it may be truncated",
            video,
            len(frames),
            declared,
        )
    clip = Clip(frames=frames, fps=max(1, int(fps)))
    ctx = ScoreContext(prompt=prompt or "")
    used = [f"video {frames.shape[2]}x{frames.shape[1]}, {frames.shape[0]} frames at {fps} fps"]
    if prompt:
        used.append("prompt")
    if bible_path is not None:
        bible = load_bible(bible_path)
        idx = 0 if scene is None else scene
        sc = next((s for s in bible.scenes if s.index == idx), None)
        if sc is None:
            raise UserError(f"scene {idx} is not in {bible_path} (scenes 0..{len(bible.scenes) - 1})")
        ctx.bible, ctx.scene = bible, sc
        used.append(f"bible scene {idx} ({sc.title})")
        run_dir = Path(bible_path).resolve().parent.parent
        take_prompt = None if prompt else run_attempt_prompt(run_dir, video)
        if take_prompt:
            ctx.prompt = take_prompt
            used.append("prompt = the take's prompt in the run")
        elif not prompt:
            ctx.prompt = sc.action
            used.append("prompt = the scene's planned action")
        refs = run_dir / "references"
        for cid in sc.character_ids:
            img = _load_png(refs / f"character_{cid}.png")
            if img is not None:
                ctx.character_refs[cid] = img
        ctx.location_ref = _load_png(refs / f"location_{sc.location_id}.png")
        if ctx.character_refs or ctx.location_ref is not None:
            used.append("run reference images")
        ctx.previous_last_frame = previous_last_frame(run_dir, idx)
        if ctx.previous_last_frame is not None:
            used.append("previous scene's last frame")
    return ScoreInputs(clip, ctx, used)


def score_video(
    video: Path,
    prompt: str | None = None,
    bible_path: Path | None = None,
    scene: int | None = None,
    weights: dict[str, float] | None = None,
    config: RewardSettings | None = None,
) -> tuple[RewardBreakdown, list[str]]:
    """Score one video file; returns the breakdown and the list of context that was used."""
    inputs = prepare(video, prompt, bible_path, scene)
    scorer = Scorer(weights=weights, config=config)
    return scorer.score(inputs.clip, inputs.ctx), inputs.used


def detail(c) -> str:
    """One short line for a table cell: the reason, or the component's key measurement."""
    if c.status != "ok":
        return c.reason or ""
    keys = (
        "method",
        "mean_ssim",
        "mean_lpips",
        "accel",
        "mean_abs_diff",
        "loopiness",
        "vbench_dynamic",
        "reversal_rate",
        "mean_edge_ssim",
        "brisque_mean",
        "rating",
        "rating_mean",
        "cosine",
        "novelty",
        "coverage",
        "backbone",
        "fd",
        "parts",
    )
    bits = []
    for k in keys:
        if k in c.raw:
            v = c.raw[k]
            if isinstance(v, float):
                v = round(v, 3)
            elif isinstance(v, list):
                v = [round(x, 3) if isinstance(x, float) else x for x in v[:4]]
            elif isinstance(v, dict):
                v = {a: round(b, 3) if isinstance(b, float) else b for a, b in v.items()}
            bits.append(f"{k}={v}")
    return ", ".join(bits[:3])
