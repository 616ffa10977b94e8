"""Video preference pairs: CineRL's own takes (and imported sets) as rows for the Flow-DPO trainer.

Each scene of a `cinerl make --backend wan` run shoots K takes of one scene from the same first
frame and scores each with the whole reward suite, so the best and the worst take of a scene
are a preference pair with a measured margin (`mode="best-worst"`), or every ordered pair whose
rewards differ by at least `min_margin` (`mode="all"`). A take's `chosen`/`rejected` path is its
`attempt_KK.latents.safetensors` when the run kept latents (`--save-latents`), else its mp4,
which the trainer encodes once into its latent cache.

Importers: VideoDPO's release format (`metadata.json` of clips and `pair.json` of winner and
loser indices with caption and score) and plain `{prompt, chosen, rejected}` JSONL of videos.

One JSONL row per pair, validated on read (`read_pairs`): a bad row is reported with its line
number and skipped, never silently.
"""

from __future__ import annotations

import json
import logging
import math
from itertools import permutations
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cinerl.core.errors import UserError
from cinerl.core.media import atomic_write_text
from cinerl.core.store import read_report

log = logging.getLogger(__name__)

MIN_MARGIN = 0.05
LATENTS_SUFFIX = ".latents.safetensors"  # generation/wan/take_latents.py's SUFFIX
VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".mkv", ".avi", ".gif")


class VideoPair(BaseModel):
    """One preference pair: a prompt, the better take and the worse one."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1)
    negative_prompt: str = ""
    chosen: str = Field(min_length=1, description="latents (.latents.safetensors) or video path")
    rejected: str = Field(min_length=1, description="latents (.latents.safetensors) or video path")
    chosen_score: float | None = None
    rejected_score: float | None = None
    margin: float | None = Field(None, description="chosen_score - rejected_score")
    chosen_components: dict[str, float] = Field(default_factory=dict)
    rejected_components: dict[str, float] = Field(default_factory=dict)
    seed: int | None = Field(None, description="the chosen take's seed")
    rejected_seed: int | None = None
    rejected_prompt: str | None = Field(None, description="the rejected take's prompt, where it differs")
    num_frames: int | None = Field(None, ge=1)
    height: int | None = Field(None, ge=1)
    width: int | None = Field(None, ge=1)
    variant: str | None = None
    condition_image: str | None = Field(None, description="the first frame both takes started from")
    source: str = ""

    @model_validator(mode="after")
    def _check(self) -> "VideoPair":
        for name in ("chosen_score", "rejected_score", "margin"):
            v = getattr(self, name)
            if v is not None and not math.isfinite(v):
                raise ValueError(f"{name} must be finite")
        if self.chosen == self.rejected:
            raise ValueError("chosen and rejected are the same file")
        if self.margin is not None and self.margin < 0:
            raise ValueError(f"margin is negative ({self.margin}): chosen scored below rejected")
        return self

    def resolved(self, base: Path) -> "VideoPair":
        """Relative paths made absolute against the pairs file's folder."""
        upd = {}
        for name in ("chosen", "rejected", "condition_image"):
            v = getattr(self, name)
            if v and not Path(v).expanduser().is_absolute():
                upd[name] = str((base / v).resolve())
        return self.model_copy(update=upd) if upd else self


def _first_error(e: ValidationError) -> str:
    err = e.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    return f"{where + ': ' if where else ''}{err['msg'].removeprefix('Value error, ')}"


def read_pairs(path: Path) -> list[VideoPair]:
    """Every valid row of a pairs JSONL, paths resolved against its folder. A bad row is logged
    with its line number and skipped; a missing or empty file, or one with no valid row, is a
    UserError."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"pairs file {path} does not exist")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise UserError(f"pairs file {path} is not UTF-8 text (byte {e.start})") from None
    rows, bad = [], 0
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rows.append(VideoPair.model_validate_json(line).resolved(path.parent))
        except ValidationError as e:
            bad += 1
            msg = _first_error(e)
            log.warning("%s line %d skipped: %s", path, n, msg)
            if bad == 1:
                first_bad = f"line {n}: {msg}"
    if not rows:
        if bad:
            raise UserError(f"pairs file {path} has no valid row ({bad} bad, first at {first_bad})")
        raise UserError(f"pairs file {path} is empty")
    if bad:
        log.warning("%s: %d of %d rows skipped", path, bad, bad + len(rows))
    return rows


def write_pairs(rows: list[VideoPair], out: Path) -> Path:
    text = "".join(r.model_dump_json(exclude_none=True) + "\n" for r in rows)
    return atomic_write_text(out, text)


# ---- CineRL runs ----------------------------------------------------------------------------
def _components(att) -> dict[str, float]:
    return {
        n: float(c.value)
        for n, c in att.reward.components.items()
        if c.status == "ok" and c.value is not None and math.isfinite(c.value)
    }


def take_file(run_dir: Path, att) -> Path:
    """A take's latents when the run kept them (and they are this take's: same seed and prompt,
    not a file left by an earlier run in the folder), else its mp4."""
    clip = run_dir / att.clip_path
    lat = clip.with_name(clip.name.removesuffix(clip.suffix) + LATENTS_SUFFIX)
    if not lat.is_file():
        return clip
    from safetensors import safe_open

    try:
        with safe_open(str(lat), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as e:  # a damaged file: the mp4 is still there
        log.warning("%s unreadable (%s): using the mp4", lat, e)
        return clip
    if meta.get("seed") != str(att.seed) or meta.get("prompt") != att.prompt:
        log.warning("%s is not this take's (seed or prompt differ): using the mp4", lat)
        return clip
    return lat


def _condition_image(run_dir: Path, report, scene_index: int, att) -> str | None:
    info = att.backend_info or {}
    if info.get("mode") != "i2v":
        return None
    key = run_dir / "keyframes" / f"boundary_{scene_index:02d}.png"
    if key.is_file():
        return str(key)
    prev = next((s for s in report.scenes if s.scene == scene_index - 1), None)
    if prev is not None and prev.chosen_attempt is not None:
        return str(run_dir / prev.chosen_attempt.last_frame_path)
    return None


def pairs_from_run(
    run_dir: Path, min_margin: float = MIN_MARGIN, mode: Literal["best-worst", "all"] = "best-worst"
) -> list[VideoPair]:
    """The preference pairs of one finished run (its report.json, read through the store)."""
    run_dir = Path(run_dir).expanduser().resolve()
    report = read_report(run_dir)
    variant = (report.settings or {}).get("wan", {}).get("variant") if report.backend == "wan" else None
    out: list[VideoPair] = []
    for sc in report.scenes:
        atts = [a for a in sc.attempts if (run_dir / a.clip_path).is_file()]
        if len(atts) < 2:
            continue
        if mode == "best-worst":
            ranked = sorted(atts, key=lambda a: (-a.reward.total, a.attempt))
            candidates = [(ranked[0], ranked[-1])]
        else:
            candidates = list(permutations(atts, 2))
        for w, lo in candidates:
            margin = w.reward.total - lo.reward.total
            if margin < min_margin:
                continue
            info = w.backend_info or {}
            size = info.get("size") or [None, None]
            out.append(
                VideoPair(
                    prompt=w.prompt,
                    negative_prompt=w.negative_prompt,
                    chosen=str(take_file(run_dir, w)),
                    rejected=str(take_file(run_dir, lo)),
                    chosen_score=w.reward.total,
                    rejected_score=lo.reward.total,
                    margin=round(margin, 6),
                    chosen_components=_components(w),
                    rejected_components=_components(lo),
                    seed=w.seed,
                    rejected_seed=lo.seed,
                    rejected_prompt=lo.prompt if lo.prompt != w.prompt else None,
                    num_frames=info.get("frames"),
                    width=size[0],
                    height=size[1],
                    variant=info.get("variant") or variant,
                    condition_image=_condition_image(run_dir, report, sc.scene, w),
                    source=f"{run_dir}#scene{sc.scene}:{w.attempt}>{lo.attempt}",
                )
            )
    return out


def find_runs(paths: list[Path]) -> list[Path]:
    """Run folders (with report.json) at or one level under each path."""
    runs: list[Path] = []
    for p in paths:
        p = Path(p).expanduser()
        if (p / "report.json").is_file():
            runs.append(p)
        elif p.is_dir():
            runs.extend(sorted(q.parent for q in p.glob("*/report.json")))
        else:
            raise UserError(f"--from {p}: no such folder")
    if not runs:
        raise UserError(f"no finished run (a folder with report.json) under {', '.join(map(str, paths))}")
    return runs


def build_video_pairs(
    runs: list[Path], out: Path, min_margin: float = MIN_MARGIN, mode: str = "best-worst"
) -> dict[str, int]:
    """`cinerl train pairs --kind video`: every run's pairs into one JSONL; counts back."""
    if mode not in ("best-worst", "all"):
        raise UserError(f"--pairs-mode must be best-worst or all (got {mode!r})")
    rows: list[VideoPair] = []
    folders = find_runs(runs)
    for run in folders:
        rows.extend(pairs_from_run(run, min_margin, mode))
    if not rows:
        raise UserError(
            f"no pair with a margin of at least {min_margin} in {len(folders)} run(s): "
            "shoot more takes per scene (--attempts) or lower --min-margin"
        )
    write_pairs(rows, out)
    latents = sum(r.chosen.endswith(LATENTS_SUFFIX) and r.rejected.endswith(LATENTS_SUFFIX) for r in rows)
    return {"runs": len(folders), "pairs": len(rows), "with_latents": latents}


# ---- importers ------------------------------------------------------------------------------
def _clip_path(entry, root: Path) -> str | None:
    if isinstance(entry, str):
        return str((root / entry).resolve())
    if isinstance(entry, dict):
        for key in ("path", "video_path", "video", "file", "filepath", "clip"):
            if isinstance(entry.get(key), str):
                return str((root / entry[key]).resolve())
    return None


def import_videodpo(folder: Path) -> list[VideoPair]:
    """VideoDPO's release: `pair.json` (a list of {video1, video2: clip indices, winner first
    unless `label` is 1; frame_caption or caption; score(s)}) over `metadata.json` (the clips, a
    list or an index-keyed mapping of paths or {path/video_path: ...}). Without metadata.json the
    release's layout is used: even index -> winvideos/, odd -> losevideos/, file index // 2."""
    folder = Path(folder).expanduser()
    pair_file = folder / "pair.json"
    if not pair_file.is_file():
        raise UserError(f"{folder} has no pair.json (VideoDPO format)")
    try:
        pairs = json.loads(pair_file.read_text())
        meta_file = folder / "metadata.json"
        meta = json.loads(meta_file.read_text()) if meta_file.is_file() else None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{folder}: bad JSON ({e})") from None
    if isinstance(meta, dict) and isinstance(meta.get("clips"), list):
        meta = meta["clips"]

    def clip(i: int) -> str | None:
        if meta is None:
            sub = "winvideos" if i % 2 == 0 else "losevideos"
            return str((folder / sub / f"{i // 2:06d}.mp4").resolve())
        entry = meta[i] if isinstance(meta, list) and 0 <= i < len(meta) else None
        if isinstance(meta, dict):
            entry = meta.get(str(i))
        return _clip_path(entry, folder)

    rows: list[VideoPair] = []
    for n, item in enumerate(pairs if isinstance(pairs, list) else []):
        try:
            a, b = int(item["video1"]), int(item["video2"])
            w, lo = (b, a) if int(item.get("label", 0)) == 1 else (a, b)
            caption = item.get("frame_caption") or item.get("caption") or item.get("prompt")
            cw, cl = clip(w), clip(lo)
            if not caption or cw is None or cl is None:
                raise ValueError("no caption or an unknown clip index")
            scores = item.get("scores") or item.get("score")
            sw = sl = None
            if isinstance(scores, (list, tuple)) and len(scores) == 2:
                sw, sl = (float(scores[1]), float(scores[0])) if w == b else map(float, scores)
            rows.append(
                VideoPair(
                    prompt=caption,
                    chosen=cw,
                    rejected=cl,
                    chosen_score=sw,
                    rejected_score=sl,
                    margin=None if sw is None else round(sw - sl, 6),
                    source=f"videodpo:{n}",
                )
            )
        except (KeyError, TypeError, ValueError, ValidationError) as e:
            log.warning("%s item %d skipped: %s", pair_file, n, e)
    if not rows:
        raise UserError(f"{pair_file} has no usable pair")
    return rows


def import_plain(path: Path) -> list[VideoPair]:
    """Plain `{prompt, chosen, rejected}` JSONL of video files (extra keys of the schema kept)."""
    return read_pairs(path)
