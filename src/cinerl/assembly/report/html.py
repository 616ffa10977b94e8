"""report.html, rendered from ``templates/report.html.j2``: inline CSS and SVG, no scripts and
no external resources. By default the film, every take (a thumbnail and a player) and the
reference stills are linked relative to the run folder, so the page stays small; with
``self_contained`` they arrive as ``data:`` URIs (videos when under the embed limit) and the page
is one file.

This module only shapes the report into view values (strings, numbers already formatted, table
cells); every tag lives in the template. The Jinja environment autoescapes, and its ``finalize``
escapes with :func:`html.escape` so that every printed value (a prompt, a name, a reason, a
setting) is escaped exactly as the stdlib does it, quotes included. The view code tolerates
missing or malformed keys: a report with no bible, no scenes or no film still renders, which is
why it reads the JSON form of the report rather than the typed model.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from html import escape
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from cinerl.core.schema import FilmReport

__all__ = ["Cell", "Row", "Table", "render", "table"]

MIME = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
}


# ------------------------------------------------------------------------------------------
# the one table shape every table of the page is drawn from


@dataclass
class Cell:
    """One cell. ``kind`` says how the template draws ``value``: text, strong, name (value +
    ``detail`` id), swatches, action (key=value chips), prompt (``detail``: negative prompt),
    status (``detail``: reason) or chosen (a marker when value is true)."""

    value: Any = ""
    kind: str = "text"
    cls: str = ""
    title: str = ""
    detail: Any = None
    header: bool = False


@dataclass
class Row:
    cells: list[Cell]
    cls: str = ""
    attrs: dict[str, str] = field(default_factory=dict)


@dataclass
class Table:
    head: list[Cell]
    rows: list[Row]
    cls: str = ""
    scroll: bool = False
    empty: str = "none"


def table(
    head: list[Cell | str],
    rows: list[Row | list[Cell]],
    *,
    cls: str = "",
    scroll: bool = False,
    empty: str = "none",
) -> Table:
    """Every table of the report goes through here (and one template macro), so they all look
    and escape alike. A plain string in ``head`` is a header cell."""
    cells = [h if isinstance(h, Cell) else Cell(h, header=True) for h in head]
    body = [r if isinstance(r, Row) else Row(list(r)) for r in rows]
    return Table(cells, body, cls=cls, scroll=scroll, empty=empty)


def th(value: Any, cls: str = "", title: str = "") -> Cell:
    return Cell(value, cls=cls, title=title, header=True)


# ------------------------------------------------------------------------------------------
# tolerant readers of the report's JSON


def _d(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _l(value: Any) -> list:
    return value if isinstance(value, list) else []


def _dicts(value: Any) -> list[dict]:
    return [v for v in _l(value) if isinstance(v, dict)]


def _num(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def _fmt(value: Any, digits: int = 3) -> str:
    v = _num(value)
    if v is None:
        return "—" if value is None else str(value)
    return f"{v:.{digits}f}"


def _ordinal(value: Any) -> Any:
    """A 0-based index as people count it (1-based); anything else as it is."""
    return value + 1 if isinstance(value, int) and not isinstance(value, bool) else value


def _rgb(value: Any) -> tuple[int, int, int] | None:
    if isinstance(value, (list, tuple)) and len(value) == 3:
        try:
            r, g, b = (max(0, min(255, int(c))) for c in value)
        except (TypeError, ValueError):
            return None
        return r, g, b
    return None


def _swatch(color: Any) -> dict:
    """A colour chip's view: its name, and an rgb() made of clamped ints (no CSS can get in)."""
    c = _d(color)
    rgb = _rgb(c.get("rgb"))
    return {"name": c.get("name", ""), "css": "rgb({},{},{})".format(*rgb) if rgb else ""}


def _data_uri(path: Path) -> str | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    mime = MIME.get(path.suffix.lower(), "application/octet-stream")
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _resolve(out_dir: Path, rel: Any) -> Path | None:
    if not rel or not isinstance(rel, str):
        return None
    p = Path(rel)
    return p if p.is_absolute() else out_dir / p


def _total(attempt: dict) -> float | None:
    return _num(_d(attempt.get("reward")).get("total"))


def _kv_table(rows: dict) -> Table:
    """Key/value rows; nested values shown as JSON."""
    body = []
    for key, value in rows.items():
        if isinstance(value, (dict, list)):
            value = json.dumps(value, ensure_ascii=False, default=str)
        body.append([th(key), Cell(value)])
    return table([], body)


# ------------------------------------------------------------------------------------------
# sections: each returns the template's view of it, or None when there is nothing to show


def _header(report: dict, bible: dict) -> dict:
    meta = [f"{key}: {report[key]}" for key in ("seed", "backend") if report.get(key) is not None]
    if bible.get("planner"):
        meta.append(f"planner: {_planner(bible['planner'], report)}")
    return {
        "title": report.get("title") or bible.get("title") or "CineRL film",
        "seed_prompt": report.get("seed_prompt") or bible.get("seed_prompt") or "",
        "logline": bible.get("logline") or "",
        "meta": meta,
    }


FALLBACK_TAIL = "; used the offline planner for this step"  # llm/structured.py's warning ends so


def _planner(planner: str, report: dict) -> str:
    """'offline' alone would hide that a model was asked and every step fell back: say why."""
    asked = _dicts(_d(report.get("llm")).get("steps"))
    steps = [s for s in asked if s.get("provider") not in ("offline", "plan")]
    if not steps or not all(s.get("fell_back") for s in steps):
        return str(planner)
    reason = str(steps[0].get("warning") or "no answer").removesuffix(FALLBACK_TAIL)
    return f"offline (every LLM step fell back: {reason})"


#: a chosen take whose consistency group scores under this is flagged in its scene
WEAK = 0.3


@dataclass
class Media:
    """How the page points at the run's files: linked (relative paths) or embedded."""

    out_dir: Path
    self_contained: bool
    embed_max: int

    def src(self, rel: Any) -> str | None:
        """The src of a file of the run (None when the report names none or it is missing)."""
        path = _resolve(self.out_dir, rel)
        if path is None or not path.is_file():
            return None
        video = MIME.get(path.suffix.lower(), "").startswith("video/")
        if self.self_contained and (not video or path.stat().st_size < self.embed_max):
            return _data_uri(path)
        return str(rel)


def _film(report: dict, out_dir: Path, embed_max: int) -> dict:
    film = _d(report.get("film"))
    rel = str(film.get("path") or "film.mp4")
    path = _resolve(out_dir, rel)
    src = None
    if path is not None and path.is_file() and path.stat().st_size < embed_max:
        src = _data_uri(path)
    facts = []
    if _num(film.get("seconds")) is not None:
        facts.append(f"{_fmt(film['seconds'], 1)} s")
    if film.get("frames") is not None:
        facts.append(f"{film['frames']} frames")
    if film.get("transition"):
        facts.append(f"transition: {film['transition']}")
    return {
        "src": src or rel,
        "mime": MIME.get(Path(rel).suffix.lower(), "video/mp4"),
        "facts": facts,
        "srt": film.get("srt") or "",
        "rel": rel,
    }


def _sound(report: dict) -> dict | None:
    """The soundtrack: engine, music, loudness figures, and each narration line with its timing."""
    sound = _d(report.get("sound"))
    if not sound:
        return None
    facts = []
    if sound.get("tts"):
        facts.append(f"narration: {sound['tts']}")
    if sound.get("music"):
        facts.append(f"music: {sound['music']}")
    if _num(sound.get("integrated_lufs")) is not None:
        target = _fmt(sound.get("target_lufs"), 1)
        facts.append(f"{_fmt(sound['integrated_lufs'], 1)} LUFS integrated (target {target})")
    if _num(sound.get("true_peak_dbtp")) is not None:
        ceiling = _fmt(sound.get("ceiling_dbtp"), 1)
        facts.append(f"true peak {_fmt(sound['true_peak_dbtp'], 2)} dBTP (ceiling {ceiling})")
    rows = [
        [
            Cell(_ordinal(ln.get("scene"))),
            Cell(f"{_fmt(ln.get('start'), 2)}–{_fmt(ln.get('end'), 2)} s", cls="num"),
            Cell(ln.get("text", "")),
            Cell(ln.get("voice", "")),
            Cell(
                ("sped up " + _fmt(ln.get("speedup"), 2) + "x" if (_num(ln.get("speedup")) or 1) > 1 else "")
                + (", trimmed" if ln.get("trimmed") else "")
            ),
        ]
        for ln in _dicts(sound.get("narration"))
    ]
    head = ["scene", "time", "narration", "voice", "fit"]
    lines = table(head, rows, empty="no narration") if rows else None
    return {"facts": facts, "lines": lines, "warnings": [str(w) for w in _l(sound.get("warnings"))]}


def _cast(report: dict) -> Table | None:
    """`make --cast`: who plays whom, with which LoRA and trigger, and the identity lock of each
    scene's chosen take against the portrait (the portrait itself is under References)."""
    members = _dicts(report.get("cast"))
    if not members:
        return None
    rows = []
    for m in members:
        per_scene = [
            f"scene {s.get('scene', 0) + 1}: "
            + (_fmt(s.get("value")) if s.get("status") == "ok" else str(s.get("status", "")))
            + (f" ({s['swaps']} swap{'s' if s['swaps'] != 1 else ''})" if s.get("swaps") else "")
            for s in _dicts(m.get("scenes"))
        ]
        rows.append(
            [
                Cell(m.get("name", ""), kind="name", detail=m.get("character_id", "")),
                Cell(m.get("portrait", ""), title=str(m.get("portrait_sha256", ""))),
                Cell(m.get("lora") or "none"),
                Cell(m.get("trigger") or "—"),
                Cell("; ".join(per_scene) or "in no scene"),
                Cell("; ".join(str(w) for w in _l(m.get("warnings")))),
            ]
        )
    return table(["Character", "Portrait", "LoRA", "Trigger", "Identity lock per scene", "Warnings"], rows)


def _characters(bible: dict) -> Table | None:
    chars = _dicts(bible.get("characters"))
    if not chars:
        return None
    rows = [
        [
            Cell(c.get("name", c.get("id", "")), kind="name", detail=c.get("id", "")),
            Cell(c.get("role", "")),
            Cell(c.get("age", ""), cls="num"),
            Cell(c.get("gender", "")),
            Cell([_swatch(w) for w in _l(c.get("wardrobe"))], kind="swatches"),
            Cell([_swatch(c["hair"])] if isinstance(c.get("hair"), dict) else [], kind="swatches"),
            Cell(c.get("visual_description", "")),
        ]
        for c in chars
    ]
    return table(["Name", "Role", th("Age", "num"), "Gender", "Wardrobe", "Hair", "Look"], rows)


def _locations(bible: dict) -> Table | None:
    locs = _dicts(bible.get("locations"))
    if not locs:
        return None
    rows = [
        [
            Cell(loc.get("name", loc.get("id", "")), kind="name", detail=loc.get("id", "")),
            Cell(loc.get("scenery_type", "")),
            Cell([_swatch(p) for p in _l(loc.get("palette"))], kind="swatches"),
            Cell(loc.get("visual_description", "")),
        ]
        for loc in locs
    ]
    return table(["Name", "Scenery", "Palette", "Look"], rows)


def _curve(scenes: list[dict]) -> dict | None:
    """The reward plot's geometry: attempt totals in shooting order and the running best."""
    points: list[tuple[Any, Any, float, bool]] = []  # (scene, attempt, total, chosen)
    bounds: list[tuple[int, Any]] = []  # (first point index, scene number)
    for s in scenes:
        first = len(points)
        for a in _dicts(s.get("attempts")):
            t = _total(a)
            if t is not None:
                points.append(
                    (s.get("scene", 0), a.get("attempt", 0), t, a.get("attempt") == s.get("chosen"))
                )
        if len(points) > first:
            bounds.append((first, s.get("scene", 0)))
    if not points:
        return None
    width, height = 760, 260
    left, right, top, bottom = 44, 16, 14, 34
    pw, ph = width - left - right, height - top - bottom
    n = len(points)

    def x(i: float) -> float:
        return left + (pw * i / (n - 1) if n > 1 else pw / 2)

    def y(v: float) -> float:
        return top + ph * (1.0 - max(0.0, min(1.0, v)))

    grid = [
        {"y": f"{y(v):.1f}", "ty": f"{y(v) + 4:.1f}", "label": f"{v:.2f}"}
        for v in (0.0, 0.25, 0.5, 0.75, 1.0)
    ]
    scene_lines = []
    for first, scene_no in bounds:
        bx = x(first) - (pw / (n - 1) / 2 if n > 1 and first > 0 else 0)
        scene_lines.append({"x": f"{bx:.1f}", "tx": f"{bx + 3:.1f}", "label": f"S{_ordinal(scene_no)}"})
    # the running best restarts at every scene: rewards of different scenes do not compare
    best_lines: list[list[str]] = []
    best, scene_of = -1.0, object()
    for i, p in enumerate(points):
        if p[0] != scene_of:
            best, scene_of = -1.0, p[0]
            best_lines.append([])
        best = max(best, p[2])
        best_lines[-1].append(f"{x(i):.1f},{y(best):.1f}")
    dots = []
    for i, (sc, at, t, chosen) in enumerate(points):
        label = f"scene {_ordinal(sc)} take {_ordinal(at)}: {t:.3f}" + (" (chosen)" if chosen else "")
        dots.append(
            {
                "cx": f"{x(i):.1f}",
                "cy": f"{y(t):.1f}",
                "r": 5 if chosen else 3.5,
                "fill": "#d9822b" if chosen else "#2f6fde",
                "label": label,
            }
        )
    return {
        "width": width,
        "height": height,
        "left": left,
        "right_x": width - right,
        "top": top,
        "bottom_y": top + ph,
        "label_x": left - 6,
        "scene_label_y": height - 18,
        "legend_y": height - 4,
        "grid": grid,
        "scenes": scene_lines,
        "best": [" ".join(line) for line in best_lines],
        "totals": " ".join(f"{x(i):.1f},{y(p[2]):.1f}" for i, p in enumerate(points)),
        "dots": dots,
    }


def _component_cell(comp: Any) -> Cell:
    c = _d(comp)
    if not c:
        return Cell("—", cls="num muted")
    status = c.get("status", "ok")
    if status == "ok":
        return Cell(_fmt(c.get("value")), cls="num", title=c.get("reason") or "")
    return Cell(status, kind="status", cls="num", detail=c.get("reason", ""))


def _attempt_table(atts: list[dict], chosen: Any) -> Table:
    comp_names: list[str] = []  # columns: component and group names, in first-seen order
    group_names: list[str] = []
    for a in atts:
        reward = _d(a.get("reward"))
        comp_names += [n for n in _d(reward.get("components")) if n not in comp_names]
        group_names += [n for n in _d(reward.get("groups")) if n not in group_names]
    head = (
        [th("#", "num"), th(""), th("seed", "num"), "prompt", "action", th("total", "num")]
        + [th(g, "num", "group") for g in group_names]
        + [th(c, "num") for c in comp_names]
        + [th("render s", "num"), th("score s", "num")]
    )
    rows = []
    for a in atts:
        reward = _d(a.get("reward"))
        comps, groups, timings = (
            _d(reward.get("components")),
            _d(reward.get("groups")),
            _d(a.get("timings")),
        )
        is_chosen = a.get("attempt") == chosen
        lp = _num(a.get("log_prob"))
        cells = [
            Cell(a.get("attempt", ""), cls="num"),
            Cell(is_chosen, kind="chosen"),
            Cell(a.get("seed", ""), cls="num", title=f"log_prob {lp:.3f}" if lp is not None else ""),
            Cell(a.get("prompt", ""), kind="prompt", cls="prompt", detail=a.get("negative_prompt") or ""),
            Cell(list(_d(a.get("action")).items()), kind="action", cls="action"),
            Cell(_fmt(reward.get("total")), kind="strong", cls="num"),
        ]
        cells += [Cell(_fmt(groups.get(g)), cls="num") for g in group_names]
        cells += [_component_cell(comps.get(c)) for c in comp_names]
        cells += [
            Cell(_fmt(timings.get("render"), 2), cls="num"),
            Cell(_fmt(timings.get("score"), 2), cls="num"),
        ]
        attrs = {"data-attempt": str(a.get("attempt", ""))}
        if is_chosen:
            attrs["data-chosen"] = "true"
        rows.append(Row(cells, cls="chosen" if is_chosen else "attempt", attrs=attrs))
    return table(head, rows, cls="attempts", scroll=True, empty="no attempts recorded")


def _groups(reward: dict) -> list[dict]:
    """A take's reward by group, as bars: name, value, width in percent (None: not scored)."""
    rows = []
    for name, value in _d(reward.get("groups")).items():
        v = _num(value)
        rows.append(
            {
                "name": name.replace("_", " "),
                "value": _fmt(v),
                "pct": f"{100 * max(0.0, min(1.0, v)):.0f}" if v is not None else None,
                "weak": v is not None and "consistency" in name and v < WEAK,
            }
        )
    return rows


def _takes(atts: list[dict], chosen: Any, number: Any, media: Media) -> list[dict]:
    """Every take of a scene side by side: thumbnail, player, total and breakdown."""
    takes = []
    for a in atts:
        reward = _d(a.get("reward"))
        at = a.get("attempt")
        takes.append(
            {
                "attempt": at,
                "number": _ordinal(at),
                "chosen": at == chosen,
                "thumb": media.src(a.get("thumbnail_path")),
                "clip": media.src(a.get("clip_path")),
                "clip_rel": a.get("clip_path") or "",
                "total": _fmt(reward.get("total")),
                "groups": _groups(reward),
                "alt": f"scene {number} take {_ordinal(at)}",
            }
        )
    return takes


def _flags(chosen_att: dict | None) -> list[str]:
    """What is weak about the chosen take: a consistency group under WEAK."""
    if chosen_att is None:
        return []
    out = []
    for name, value in _d(_d(chosen_att.get("reward")).get("groups")).items():
        v = _num(value)
        if v is not None and "consistency" in name and v < WEAK:
            out.append(f"weak {name.replace('_', ' ')}: {v:.2f} (under {WEAK:.2f})")
    return out


def _spark(atts: list[dict], chosen: Any) -> dict | None:
    """The scene's own curve: each take's total and the scene's running best."""
    totals = [(a.get("attempt"), _total(a)) for a in atts]
    totals = [(at, v) for at, v in totals if v is not None]
    if len(totals) < 2:
        return None
    w, h, pad = 220, 60, 6

    def x(i: int) -> float:
        return pad + (w - 2 * pad) * i / (len(totals) - 1)

    def y(v: float) -> float:
        return pad + (h - 2 * pad) * (1.0 - max(0.0, min(1.0, v)))

    best, best_pts = -1.0, []
    for i, (_, v) in enumerate(totals):
        best = max(best, v)
        best_pts.append(f"{x(i):.1f},{y(best):.1f}")
    dots = [
        {
            "cx": f"{x(i):.1f}",
            "cy": f"{y(v):.1f}",
            "r": 4 if at == chosen else 2.5,
            "fill": "#d9822b" if at == chosen else "#2f6fde",
            "label": f"take {_ordinal(at)}: {v:.3f}",
        }
        for i, (at, v) in enumerate(totals)
    ]
    return {
        "width": w,
        "height": h,
        "totals": " ".join(f"{x(i):.1f},{y(v):.1f}" for i, (_, v) in enumerate(totals)),
        "best": " ".join(best_pts),
        "dots": dots,
    }


def _scene(
    scene: dict,
    bible_scenes: dict,
    chars: dict,
    locs: dict,
    out_dir: Path,
    media: Media | None = None,
    stale: frozenset = frozenset(),
) -> dict:
    idx = scene.get("scene", 0)
    chosen = scene.get("chosen")
    atts = _dicts(scene.get("attempts"))
    bscene = _d(bible_scenes.get(idx))
    number = _ordinal(idx)
    chosen_att = next((a for a in atts if a.get("attempt") == chosen), None)
    thumb = None
    media = media or Media(out_dir, True, 0)
    for key in ("thumbnail_path", "last_frame_path") if chosen_att is not None else ():
        uri = media.src(chosen_att.get(key))
        if uri:
            thumb = {"src": uri, "alt": f"scene {number} chosen take {_ordinal(chosen)}"}
            break
    facts: list[tuple[str, Any]] = []
    if bscene:
        facts.append(("beat", bscene.get("beat", "")))
        if bscene.get("duration_s") is not None:
            facts.append(("duration", f"{_fmt(bscene.get('duration_s'), 1)} s"))
        if bscene.get("location_id") is not None:
            loc = bscene["location_id"]
            facts.append(("location", locs.get(loc, loc)))
        cids = _l(bscene.get("character_ids"))
        if cids:
            facts.append(("characters", ", ".join(str(chars.get(c, c)) for c in cids)))
        for key, label in (
            ("time_of_day", "time of day"),
            ("action", "action"),
            ("shot_notes", "shot notes"),
        ):
            if bscene.get(key):
                facts.append((label, bscene[key]))
    best = _total(chosen_att) if chosen_att else None
    facts.append(
        (
            "chosen",
            f"take {_ordinal(chosen)} of {len(atts)}"
            + (f" (reward {_fmt(best)})" if best is not None else ""),
        )
    )
    return {
        "idx": idx,
        "number": number,
        "title": scene.get("title") or bscene.get("title") or "",
        "thumb": thumb,
        "facts": facts,
        "attempts": _attempt_table(atts, chosen),
        "takes": _takes(atts, chosen, number, media),
        "flags": _flags(chosen_att),
        "stale": idx in stale,
        "spark": _spark(atts, chosen),
    }


def _references(report: dict, bible: dict, media: Media) -> list[dict]:
    """The reference stills every scene is held to, with whom or where each shows."""
    names = {("character", c.get("id")): c.get("name", "") for c in _dicts(bible.get("characters"))}
    names |= {("location", loc.get("id")): loc.get("name", "") for loc in _dicts(bible.get("locations"))}
    out = []
    for key, rel in _d(report.get("references")).items():
        kind, _, ident = str(key).partition(":")
        src = media.src(rel)
        if src:
            out.append({"src": src, "kind": kind, "name": names.get((kind, ident)) or ident, "rel": rel})
    return out


def _workbench(report: dict) -> dict | None:
    """The estimate against what the run measured, the budget and where it cut, the edits."""
    est, budget, edits = _d(report.get("estimate")), _d(report.get("budget")), _dicts(report.get("edits"))
    if not (est or budget or edits):
        return None
    rows = []
    if est:
        m = _d(est.get("measured"))
        for key, label in (("clips", "clips"), ("frames", "frames"), ("steps", "denoising steps")):
            rows.append([Cell(label), Cell(est.get(key, "—"), cls="num"), Cell(m.get(key, "—"), cls="num")])
        rows.append(
            [
                Cell(f"seconds ({est.get('kind', '')})"),
                Cell(_fmt(est.get("seconds"), 1), cls="num", title=str(est.get("source", ""))),
                Cell(_fmt(m.get("seconds"), 1), cls="num"),
            ]
        )
    cuts = [
        [
            Cell(_ordinal(c.get("scene"))),
            Cell(c.get("kept"), cls="num"),
            Cell(c.get("planned"), cls="num"),
            Cell(_fmt(c.get("spent"), 1), cls="num"),
        ]
        for c in _dicts(budget.get("cuts"))
    ]
    edit_rows = [
        [
            Cell(e.get("kind", "")),
            Cell(", ".join(f"{k}={v}" for k, v in _d(e.get("params")).items() if v not in (None, False, []))),
            Cell(e.get("status", "")),
        ]
        for e in edits
    ]
    return {
        "estimate": table(["", th("estimated", "num"), th("measured (edits included)", "num")], rows)
        if rows
        else None,
        "source": est.get("source", ""),
        "budget": (
            f"budget {_fmt(budget.get('budget_s'), 1)} s · spent {_fmt(budget.get('spent_s'), 1)} s"
            if budget
            else ""
        ),
        "cuts": table(
            [th("scene"), th("takes kept", "num"), th("takes planned", "num"), th("spent s", "num")],
            cuts,
            empty="the budget cut no attempts",
        )
        if budget
        else None,
        "edits": table(["edit", "what", "status"], edit_rows) if edit_rows else None,
    }


def _prompt_opt(report: dict) -> dict | None:
    """What prompt optimisation (cinerl make --prompt-opt rapo) added to each scene."""
    opt = _d(report.get("prompt_opt"))
    rows = _dicts(opt.get("scenes"))
    if not rows:
        return None
    body = [
        [
            Cell(r.get("scene", ""), cls="num"),
            Cell(r.get("query", "")),
            Cell("; ".join(map(str, _l(r.get("added")))) or "—"),
        ]
        for r in rows
    ]
    return {
        "method": opt.get("method", ""),
        "table": table(["scene", "retrieval query", "added to the action"], body),
    }


def _llm(report: dict) -> dict | None:
    """The language-model steps (plan, enrich, critique): who answered, tokens, time, fallbacks;
    and each scene's base prompt as the critic left it."""
    llm = _d(report.get("llm"))
    steps = _dicts(llm.get("steps"))
    prompts = _d(llm.get("scene_prompts"))
    scene_rows = _dicts(prompts.get("scenes"))
    if not steps and not scene_rows:
        return None
    step_rows = [
        [
            Cell(s.get("step", "")),
            Cell(s.get("provider", "")),
            Cell(s.get("model", "")),
            Cell(len(_l(s.get("calls"))), cls="num"),
            Cell(s.get("prompt_tokens", 0), cls="num"),
            Cell(s.get("completion_tokens", 0), cls="num"),
            Cell(_fmt(s.get("seconds"), 2), cls="num"),
            Cell(s.get("repairs", 0), cls="num"),
            Cell("yes" if s.get("fell_back") else "no"),
            Cell(s.get("warning") or ""),
        ]
        for s in steps
    ]
    steps_table = table(
        [
            "step",
            "provider",
            "model",
            th("calls", "num"),
            th("prompt tokens", "num"),
            th("completion tokens", "num"),
            th("seconds", "num"),
            th("repairs", "num"),
            "fell back",
            "warning",
        ],
        step_rows,
    )
    prompt_rows = [
        [
            Cell(_ordinal(r.get("scene", "")), cls="num"),
            Cell(r.get("mode", "")),
            Cell(r.get("base_prompt") or "— (offline composition)", cls="prompt"),
            Cell("; ".join(map(str, _l(r.get("issues")))) or "—"),
            Cell(r.get("warning") or ""),
        ]
        for r in scene_rows
    ]
    prompts_table = (
        table([th("scene", "num"), "mode", "base prompt", "critic's issues", "warning"], prompt_rows)
        if prompt_rows
        else None
    )
    facts = [
        f"{llm.get('prompt_tokens', 0)} prompt tokens",
        f"{llm.get('completion_tokens', 0)} completion tokens",
        f"{_fmt(llm.get('seconds'), 2)} s",
    ]
    if prompts.get("source"):
        facts.append(f"scene prompts: {prompts['source']}")
    return {
        "facts": facts,
        "steps": steps_table,
        "prompts": prompts_table,
        "warnings": [str(w) for w in _l(llm.get("warnings")) if w],
    }


def _stages(report: dict) -> Table | None:
    stages = _d(report.get("stages"))
    if not stages:
        return None
    nums = [_num(v) for v in stages.values()]
    total = sum(v for v in nums if v is not None)
    rows: list[Row | list[Cell]] = []
    for (name, value), v in zip(stages.items(), nums):
        share = f"{100.0 * v / total:.1f}%" if v is not None and total > 0 else "—"
        rows.append([Cell(name), Cell(_fmt(value, 2), cls="num"), Cell(share, cls="num")])
    rows.append([th("total"), th(f"{total:.2f}", "num"), th("100%", "num")])
    return table(["stage", th("seconds", "num"), th("share", "num")], rows)


def _policy(report: dict) -> dict | None:
    policy = _d(report.get("policy"))
    settings = _d(report.get("settings"))
    if not policy and not settings:
        return None
    known = ("mode", "algorithm", "path", "version_start", "version_end")
    items = [(key, policy[key]) for key in known[:3] if key in policy]
    if "version_start" in policy or "version_end" in policy:
        items.append(("version", f"{policy.get('version_start', '?')} → {policy.get('version_end', '?')}"))
    items += [(key, value) for key, value in policy.items() if key not in known]
    return {
        "facts": items,
        "settings": _kv_table(settings) if settings else None,
        "updates": _updates(_dicts(report.get("scenes"))),
    }


_UPDATE_COLUMNS = ("approx_kl", "clip_fraction", "entropy", "kl_to_prior", "policy_loss", "value_loss")


def _updates(scenes: list[dict]) -> Table | None:
    """CleanRL's diagnostics of each scene's policy update: approx_kl and clip fraction say how
    far an update moved the policy, each factor's entropy which choices it has settled."""
    learns = [(s.get("scene"), _d(s.get("learn"))) for s in scenes]
    learns = [(i, lr) for i, lr in learns if lr]
    if not learns:
        return None
    keys = [k for k in _UPDATE_COLUMNS if any(k in lr for _, lr in learns)]
    factors = list(dict.fromkeys(k for _, lr in learns for k in lr if k.startswith("entropy/")))
    head = ["scene", *(th(k.replace("_", " "), "num") for k in keys)]
    head += [
        th(f.split("/", 1)[1].replace("_", " "), "num", title=f"entropy of {f.split('/', 1)[1]}")
        for f in factors
    ]
    rows = [
        [Cell(_ordinal(i)), *(Cell(_fmt(lr.get(k)), cls="num") for k in (*keys, *factors))]
        for i, lr in learns
    ]
    return table(head, rows, scroll=True)


# ------------------------------------------------------------------------------------------
# rendering


def _finalize(value: Any) -> Markup:
    """Every printed value: None is empty, the rest escaped as html.escape(quote=True) does."""
    if hasattr(value, "__html__"):
        return Markup(value)
    return Markup(escape("" if value is None else str(value), quote=True))


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("cinerl.assembly.report", "templates"),
        autoescape=True,
        finalize=_finalize,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render(
    report: FilmReport | Mapping[str, Any],
    out_dir: Path,
    embed_video_max_bytes: int,
    self_contained: bool = False,
) -> str:
    """The page for ``report``; relative paths in it (film, thumbnails) resolve against
    ``out_dir``, and a film under ``embed_video_max_bytes`` is embedded."""
    out_dir = Path(out_dir)
    if isinstance(report, FilmReport):
        data = report.to_json()
    else:
        data = dict(report) if isinstance(report, Mapping) else {}
    bible = _d(data.get("bible"))
    chars = {c.get("id"): c.get("name", c.get("id")) for c in _dicts(bible.get("characters"))}
    locs = {loc.get("id"): loc.get("name", loc.get("id")) for loc in _dicts(bible.get("locations"))}
    bible_scenes = {s.get("index"): s for s in _dicts(bible.get("scenes"))}
    scenes = _dicts(data.get("scenes"))
    media = Media(out_dir, self_contained, embed_video_max_bytes)
    stale = frozenset(i for i in _l(data.get("continuity_stale")) if isinstance(i, int))
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            header=_header(data, bible),
            film=_film(data, out_dir, embed_video_max_bytes if self_contained else 0),
            sound=_sound(data),
            cast=_cast(data),
            characters=_characters(bible),
            locations=_locations(bible),
            curve=_curve(scenes),
            scenes=[_scene(s, bible_scenes, chars, locs, out_dir, media, stale) for s in scenes],
            references=_references(data, bible, media),
            workbench=_workbench(data),
            prompt_opt=_prompt_opt(data),
            llm=_llm(data),
            stages=_stages(data),
            policy=_policy(data),
        )
    )
