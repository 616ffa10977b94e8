"""Growing the relation graph from CineRL's own runs.

A scene prompt whose reward is in the top quartile of its run joins the graph: its location is the
place hub, the scene's action the verb-object, and the policy's choices that produced it (shot,
camera, light, motion) the scenarios. The quartile is taken per run because rewards from
different backends or reward settings are not on one scale.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from cinerl.core.errors import UserError
from cinerl.core.schema import FilmReport, Location
from cinerl.core.store import read_report
from cinerl.prompting.rapo.graph import CaptionRow, grown_csv_path, read_captions, write_captions
from cinerl.core.vocabulary import CAMERA_MOVES, LIGHTING, MOTION, SHOT_SIZES

log = logging.getLogger(__name__)


class GrowthSummary(BaseModel):
    runs: list[str]
    attempts_seen: int
    rows_added: int
    rows_total: int
    csv: str


def find_runs(paths: list[Path]) -> list[Path]:
    """Run folders (holding report.json) at or below each path."""
    found: list[Path] = []
    for p in paths:
        p = Path(p).expanduser()
        if not p.exists():
            raise UserError(f"{p} does not exist")
        if (p / "report.json").is_file():
            found.append(p)
        elif p.is_dir():
            found += sorted(r.parent for r in p.rglob("report.json"))
    return list(dict.fromkeys(found))


def _location_phrase(loc: Location | None) -> str:
    kind = (loc.scenery_type if loc else "") or "place"
    desc = (loc.visual_description if loc else "").strip()
    return f"a {kind} of {desc}" if desc else f"a {kind}"


def top_quartile_rows(report: FilmReport) -> tuple[list[CaptionRow], int]:
    """The caption rows a run contributes, and how many attempts it had."""
    attempts = [(sc, a) for sc in report.scenes for a in sc.attempts]
    if not attempts:
        return [], 0
    totals = np.asarray([a.reward.total for _sc, a in attempts], dtype=float)
    cut = float(np.quantile(totals, 0.75))
    scenes = {s.index: s for s in report.bible.scenes}
    locations = {loc.id: loc for loc in report.bible.locations}
    rows = []
    for sc, a in attempts:
        if a.reward.total < cut:
            continue
        scene = scenes.get(sc.scene)
        loc = locations.get(scene.location_id) if scene else None
        act = a.action
        mods = [
            SHOT_SIZES.get(act.get("shot_size")),
            CAMERA_MOVES.get(act.get("camera_move")),
            LIGHTING.get(act.get("lighting")),
            MOTION.get(act.get("motion")),
        ]
        verb = (scene.action if scene else "").rstrip(".")
        rows.append(
            CaptionRow(
                text=a.prompt,
                verbs=(verb,) if verb else (),
                scenes=tuple(m.lower() for m in mods if m),
                places=(_location_phrase(loc),),
            )
        )
    return rows, len(attempts)


def grow_from_runs(paths: list[Path], csv_path: Path | None = None) -> GrowthSummary:
    """Append the top-quartile scene prompts of these runs to the grown-captions CSV (once each)."""
    runs = find_runs(paths)
    if not runs:
        raise UserError(f"no run folder with a report.json under {', '.join(map(str, paths))}")
    csv_path = Path(csv_path) if csv_path else grown_csv_path()
    existing = read_captions(csv_path) if csv_path.exists() else []
    seen = {r.text for r in existing}
    added: list[CaptionRow] = []
    n_attempts = 0
    for run in runs:
        rows, n = top_quartile_rows(read_report(run))
        n_attempts += n
        for r in rows:
            if r.valid and r.text not in seen:
                seen.add(r.text)
                added.append(r)
    if added:
        write_captions(existing + added, csv_path)
    log.info("grew the relation graph by %d captions from %d runs", len(added), len(runs))
    return GrowthSummary(
        runs=[str(r) for r in runs],
        attempts_seen=n_attempts,
        rows_added=len(added),
        rows_total=len(existing) + len(added),
        csv=str(csv_path),
    )
