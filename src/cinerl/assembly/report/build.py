"""The run report: ``report.json`` (the director's dict, verbatim) and a self-contained
``report.html`` (inline CSS and SVG, images and — when small enough — the film embedded as
``data:`` URIs; no external resources and no scripts).

Every piece of text that came from the user or a model (prompts, names, titles, reasons, settings)
goes through :func:`html.escape`. The renderer tolerates missing optional keys: a report with no
bible, no scenes or no film still renders.
"""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path
from typing import Any

from cinerl.core.media import atomic_write_text

__all__ = ["EMBED_VIDEO_MAX_BYTES", "render_html", "write_report"]

#: A film at most this large is embedded in the page; a larger one is linked relatively.
EMBED_VIDEO_MAX_BYTES = 20 * 1024 * 1024

_MIME = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
}

_CSS = """
:root { --fg:#1d1f24; --muted:#666c78; --line:#d9dce3; --bg:#f6f7f9; --card:#fff;
        --accent:#2f6fde; --best:#d9822b; --chosen:#fff6d6; }
* { box-sizing: border-box; }
body { margin:0; padding:24px; background:var(--bg); color:var(--fg);
       font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 1200px; margin: 0 auto; }
h1 { font-size: 28px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 28px 0 10px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 16px; margin: 0 0 8px; }
section, .card { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
                 padding: 16px; margin: 14px 0; }
.muted { color: var(--muted); }
.seed { font-style: italic; }
.logline { font-size: 16px; }
table { border-collapse: collapse; width: 100%; margin: 6px 0; }
th, td { border: 1px solid var(--line); padding: 4px 6px; text-align: left; vertical-align: top; }
th { background: #eef0f4; font-weight: 600; font-size: 12px; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.chosen td { background: var(--chosen); }
.marker { color: #9a6700; font-weight: 700; white-space: nowrap; }
.swatch { display: inline-block; width: 14px; height: 14px; border: 1px solid #0004;
          border-radius: 3px; vertical-align: middle; margin-right: 3px; }
.chip { display: inline-block; margin: 1px 8px 1px 0; white-space: nowrap; }
.prompt { font-size: 12px; max-width: 420px; }
.action code { display: inline-block; font-size: 11px; background: #eef0f4; border-radius: 3px;
               padding: 0 3px; margin: 1px; }
.st { font-size: 11px; padding: 0 4px; border-radius: 3px; cursor: help; }
.st-unavailable { background: #eceef2; color: #555; }
.st-not_applicable { background: #eef6ee; color: #4a6a4a; }
.st-other { background: #fbeaea; color: #8a2a2a; }
.scene-head { display: flex; gap: 16px; align-items: flex-start; flex-wrap: wrap; }
.scene-head img { max-width: 320px; border-radius: 6px; border: 1px solid var(--line); }
video { width: 100%; max-height: 540px; background: #000; border-radius: 6px; }
svg text { font-size: 11px; fill: var(--muted); }
details summary { cursor: pointer; color: var(--muted); font-size: 12px; }
dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 0; }
dl.kv dt { color: var(--muted); }
dl.kv dd { margin: 0; }
"""


# ------------------------------------------------------------------------------------------
# small helpers


def _e(value: Any) -> str:
    """Escape any value for HTML text or a double/single-quoted attribute."""
    return html.escape("" if value is None else str(value), quote=True)


def _num(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def _fmt(value: Any, digits: int = 3) -> str:
    v = _num(value)
    if v is None:
        return "—" if value is None else _e(value)
    return f"{v:.{digits}f}"


def _d(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _l(value: Any) -> list:
    return value if isinstance(value, list) else []


def _rgb(value: Any) -> tuple[int, int, int] | None:
    if isinstance(value, (list, tuple)) and len(value) == 3:
        try:
            return tuple(max(0, min(255, int(c))) for c in value)  # type: ignore[return-value]
        except (TypeError, ValueError):
            return None
    return None


def _swatch(color: Any) -> str:
    """A colour chip: swatch + name. rgb values are coerced to ints so no CSS can be injected."""
    c = _d(color)
    rgb = _rgb(c.get("rgb"))
    name = c.get("name", "")
    if rgb is None:
        return f'<span class="chip">{_e(name)}</span>'
    css = "rgb({},{},{})".format(*rgb)
    return (
        f'<span class="chip"><span class="swatch" style="background:{css}" '
        f'title="{_e(name)} {css}"></span>{_e(name)}</span>'
    )


def _data_uri(path: Path) -> str | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    mime = _MIME.get(path.suffix.lower(), "application/octet-stream")
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _resolve(out_dir: Path, rel: Any) -> Path | None:
    if not rel or not isinstance(rel, str):
        return None
    p = Path(rel)
    return p if p.is_absolute() else out_dir / p


def _kv_table(rows: dict) -> str:
    if not rows:
        return '<p class="muted">none</p>'
    body = []
    for key, value in rows.items():
        if isinstance(value, (dict, list)):
            value = json.dumps(value, ensure_ascii=False, default=str)
        body.append(f"<tr><th>{_e(key)}</th><td>{_e(value)}</td></tr>")
    return "<table>" + "".join(body) + "</table>"


# ------------------------------------------------------------------------------------------
# sections


def _header(report: dict, bible: dict) -> str:
    title = report.get("title") or bible.get("title") or "CineRL film"
    seed_prompt = report.get("seed_prompt") or bible.get("seed_prompt") or ""
    meta = []
    for key in ("seed", "backend"):
        if key in report and report[key] is not None:
            meta.append(f"{key}: {_e(report[key])}")
    if bible.get("planner"):
        meta.append(f"planner: {_e(bible['planner'])}")
    parts = [f"<h1>{_e(title)}</h1>"]
    if seed_prompt:
        parts.append(f'<p class="seed">Prompt: “{_e(seed_prompt)}”</p>')
    if bible.get("logline"):
        parts.append(f'<p class="logline">{_e(bible["logline"])}</p>')
    if meta:
        parts.append(f'<p class="muted">{" · ".join(meta)}</p>')
    return "<header>" + "".join(parts) + "</header>"


def _characters(bible: dict) -> str:
    chars = [c for c in _l(bible.get("characters")) if isinstance(c, dict)]
    if not chars:
        return ""
    rows = []
    for c in chars:
        wardrobe = "".join(_swatch(w) for w in _l(c.get("wardrobe")))
        hair = _swatch(c["hair"]) if isinstance(c.get("hair"), dict) else "—"
        rows.append(
            "<tr>"
            f"<td><strong>{_e(c.get('name', c.get('id', '')))}</strong>"
            f'<br><span class="muted">{_e(c.get("id", ""))}</span></td>'
            f"<td>{_e(c.get('role', ''))}</td>"
            f'<td class="num">{_e(c.get("age", ""))}</td>'
            f"<td>{_e(c.get('gender', ''))}</td>"
            f"<td>{wardrobe or '—'}</td>"
            f"<td>{hair}</td>"
            f"<td>{_e(c.get('visual_description', ''))}</td>"
            "</tr>"
        )
    return (
        "<section><h2>Characters</h2><table><thead><tr><th>Name</th><th>Role</th>"
        '<th class="num">Age</th><th>Gender</th><th>Wardrobe</th><th>Hair</th>'
        "<th>Look</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table></section>"
    )


def _locations(bible: dict) -> str:
    locs = [loc for loc in _l(bible.get("locations")) if isinstance(loc, dict)]
    if not locs:
        return ""
    rows = []
    for loc in locs:
        palette = "".join(_swatch(p) for p in _l(loc.get("palette")))
        rows.append(
            "<tr>"
            f"<td><strong>{_e(loc.get('name', loc.get('id', '')))}</strong>"
            f'<br><span class="muted">{_e(loc.get("id", ""))}</span></td>'
            f"<td>{_e(loc.get('scenery_type', ''))}</td>"
            f"<td>{palette or '—'}</td>"
            f"<td>{_e(loc.get('visual_description', ''))}</td>"
            "</tr>"
        )
    return (
        "<section><h2>Locations</h2><table><thead><tr><th>Name</th><th>Scenery</th>"
        "<th>Palette</th><th>Look</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></section>"
    )


def _film(report: dict, out_dir: Path) -> str:
    film = _d(report.get("film"))
    rel = film.get("path") or "film.mp4"
    path = _resolve(out_dir, rel)
    src = None
    if path is not None and path.is_file() and path.stat().st_size < EMBED_VIDEO_MAX_BYTES:
        src = _data_uri(path)
    if src is None:
        src = str(rel)
    mime = _MIME.get(Path(str(rel)).suffix.lower(), "video/mp4")
    facts = []
    if _num(film.get("seconds")) is not None:
        facts.append(f"{_fmt(film['seconds'], 1)} s")
    if film.get("frames") is not None:
        facts.append(f"{_e(film['frames'])} frames")
    if film.get("transition"):
        facts.append(f"transition: {_e(film['transition'])}")
    if film.get("srt"):
        facts.append(f'subtitles: <a href="{_e(film["srt"])}">{_e(film["srt"])}</a>')
    facts.append(f'file: <a href="{_e(rel)}">{_e(rel)}</a>')
    return (
        '<section><h2>Film</h2><video controls preload="metadata">'
        f'<source src="{_e(src)}" type="{_e(mime)}">'
        "Your browser cannot play this video.</video>"
        f'<p class="muted">{" · ".join(facts)}</p></section>'
    )


def _attempts(scene: dict) -> list[dict]:
    atts = [a for a in _l(scene.get("attempts")) if isinstance(a, dict)]
    return atts


def _total(attempt: dict) -> float | None:
    return _num(_d(attempt.get("reward")).get("total"))


def _curve(scenes: list[dict]) -> str:
    """Inline SVG: attempt totals in shooting order (polyline + dots) and the running best."""
    points: list[tuple[int, int, float, bool]] = []  # (scene, attempt, total, chosen)
    bounds: list[tuple[int, int]] = []  # (first point index, scene number)
    for s in scenes:
        chosen = s.get("chosen")
        first = len(points)
        for a in _attempts(s):
            t = _total(a)
            if t is None:
                continue
            points.append((s.get("scene", 0), a.get("attempt", 0), t, a.get("attempt") == chosen))
        if len(points) > first:
            bounds.append((first, s.get("scene", 0)))
    if not points:
        return ""
    width, height = 760, 260
    left, right, top, bottom = 44, 16, 14, 34
    pw, ph = width - left - right, height - top - bottom
    n = len(points)

    def x(i: int) -> float:
        return left + (pw * i / (n - 1) if n > 1 else pw / 2)

    def y(v: float) -> float:
        return top + ph * (1.0 - max(0.0, min(1.0, v)))

    parts = [
        f'<svg viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-label="reward per attempt">'
    ]
    for v in (0.0, 0.25, 0.5, 0.75, 1.0):
        parts.append(
            f'<line x1="{left}" y1="{y(v):.1f}" x2="{width - right}" y2="{y(v):.1f}" '
            f'stroke="#e3e5ea" stroke-width="1" />'
            f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.2f}</text>'
        )
    for first, scene_no in bounds:
        bx = x(first) - (pw / (n - 1) / 2 if n > 1 and first > 0 else 0)
        parts.append(
            f'<line x1="{bx:.1f}" y1="{top}" x2="{bx:.1f}" y2="{top + ph}" stroke="#c5c9d2" '
            f'stroke-dasharray="3 3" />'
            f'<text x="{bx + 3:.1f}" y="{height - 18}">S{_e(int(scene_no) + 1 if isinstance(scene_no, int) else scene_no)}</text>'
        )
    totals = " ".join(f"{x(i):.1f},{y(p[2]):.1f}" for i, p in enumerate(points))
    best, best_pts = -1.0, []
    for i, p in enumerate(points):
        best = max(best, p[2])
        best_pts.append(f"{x(i):.1f},{y(best):.1f}")
    parts.append(
        f'<polyline points="{" ".join(best_pts)}" fill="none" stroke="#d9822b" '
        f'stroke-width="2" stroke-dasharray="6 3" />'
        f'<polyline points="{totals}" fill="none" stroke="#2f6fde" stroke-width="2" />'
    )
    for i, (sc, at, t, chosen) in enumerate(points):
        fill = "#d9822b" if chosen else "#2f6fde"
        r = 5 if chosen else 3.5
        sc_label = sc + 1 if isinstance(sc, int) and not isinstance(sc, bool) else sc
        label = f"scene {sc_label} attempt {at}: {t:.3f}" + (" (chosen)" if chosen else "")
        parts.append(
            f'<circle cx="{x(i):.1f}" cy="{y(t):.1f}" r="{r}" fill="{fill}">'
            f"<title>{_e(label)}</title></circle>"
        )
    parts.append(
        f'<text x="{left}" y="{height - 4}">attempts in shooting order · '
        "blue: total reward · orange dashed: running best · large dots: chosen</text>"
    )
    parts.append("</svg>")
    return "<section><h2>Reward per attempt</h2>" + "".join(parts) + "</section>"


def _component_cell(comp: Any) -> str:
    c = _d(comp)
    if not c:
        return '<td class="num muted">—</td>'
    status = c.get("status", "ok")
    if status == "ok":
        tip = f' title="{_e(c["reason"])}"' if c.get("reason") else ""
        return f'<td class="num"{tip}>{_fmt(c.get("value"))}</td>'
    cls = status if status in ("unavailable", "not_applicable") else "other"
    return (
        f'<td class="num"><span class="st st-{cls}" title="{_e(c.get("reason", ""))}">'
        f"{_e(status)}</span></td>"
    )


def _scene_section(scene: dict, bible_scenes: dict, chars: dict, locs: dict, out_dir: Path) -> str:
    idx = scene.get("scene", 0)
    chosen = scene.get("chosen")
    atts = _attempts(scene)
    bscene = _d(bible_scenes.get(idx))
    title = scene.get("title") or bscene.get("title") or ""
    number = idx + 1 if isinstance(idx, int) and not isinstance(idx, bool) else idx

    chosen_att = next((a for a in atts if a.get("attempt") == chosen), None)
    thumb_html = '<p class="muted">no thumbnail</p>'
    if chosen_att is not None:
        for key in ("thumbnail_path", "last_frame_path"):
            path = _resolve(out_dir, chosen_att.get(key))
            uri = _data_uri(path) if path is not None and path.is_file() else None
            if uri:
                thumb_html = (
                    f'<img src="{_e(uri)}" alt="scene {_e(number)} chosen attempt '
                    f'{_e(chosen)}">'
                )
                break

    facts = []
    if bscene:
        facts.append(f"<dt>beat</dt><dd>{_e(bscene.get('beat', ''))}</dd>")
        if bscene.get("duration_s") is not None:
            facts.append(f"<dt>duration</dt><dd>{_fmt(bscene.get('duration_s'), 1)} s</dd>")
        loc = bscene.get("location_id")
        if loc is not None:
            facts.append(f"<dt>location</dt><dd>{_e(locs.get(loc, loc))}</dd>")
        cids = _l(bscene.get("character_ids"))
        if cids:
            names = ", ".join(_e(chars.get(c, c)) for c in cids)
            facts.append(f"<dt>characters</dt><dd>{names}</dd>")
        if bscene.get("time_of_day"):
            facts.append(f"<dt>time of day</dt><dd>{_e(bscene['time_of_day'])}</dd>")
        if bscene.get("action"):
            facts.append(f"<dt>action</dt><dd>{_e(bscene['action'])}</dd>")
        if bscene.get("shot_notes"):
            facts.append(f"<dt>shot notes</dt><dd>{_e(bscene['shot_notes'])}</dd>")
    best = _total(chosen_att) if chosen_att else None
    facts.append(
        f"<dt>chosen</dt><dd>attempt {_e(chosen)} of {len(atts)}"
        + (f" (reward {_fmt(best)})" if best is not None else "")
        + "</dd>"
    )

    # columns: union of component and group names, in first-seen order
    comp_names: list[str] = []
    group_names: list[str] = []
    for a in atts:
        reward = _d(a.get("reward"))
        for name in _d(reward.get("components")):
            if name not in comp_names:
                comp_names.append(name)
        for name in _d(reward.get("groups")):
            if name not in group_names:
                group_names.append(name)

    head = (
        '<tr><th class="num">#</th><th></th><th class="num">seed</th><th>prompt</th>'
        '<th>action</th><th class="num">total</th>'
        + "".join(f'<th class="num" title="group">{_e(g)}</th>' for g in group_names)
        + "".join(f'<th class="num">{_e(c)}</th>' for c in comp_names)
        + '<th class="num">render s</th><th class="num">score s</th></tr>'
    )
    rows = []
    for a in atts:
        reward = _d(a.get("reward"))
        comps = _d(reward.get("components"))
        groups = _d(reward.get("groups"))
        timings = _d(a.get("timings"))
        is_chosen = a.get("attempt") == chosen
        marker = '<span class="marker">★ chosen</span>'
        action = _d(a.get("action"))
        action_html = "".join(f"<code>{_e(k)}={_e(v)}</code>" for k, v in action.items())
        neg = a.get("negative_prompt")
        prompt_html = _e(a.get("prompt", ""))
        if neg:
            prompt_html += (
                f"<details><summary>negative prompt</summary>{_e(neg)}</details>"
            )
        lp = _num(a.get("log_prob"))
        seed_tip = f' title="log_prob {lp:.3f}"' if lp is not None else ""
        rows.append(
            f'<tr class="{"chosen" if is_chosen else "attempt"}"'
            f' data-attempt="{_e(a.get("attempt", ""))}"'
            + (' data-chosen="true"' if is_chosen else "")
            + ">"
            f'<td class="num">{_e(a.get("attempt", ""))}</td>'
            f"<td>{marker if is_chosen else ''}</td>"
            f'<td class="num"{seed_tip}>{_e(a.get("seed", ""))}</td>'
            f'<td class="prompt">{prompt_html}</td>'
            f'<td class="action">{action_html or "—"}</td>'
            f'<td class="num"><strong>{_fmt(reward.get("total"))}</strong></td>'
            + "".join(f'<td class="num">{_fmt(groups.get(g))}</td>' for g in group_names)
            + "".join(_component_cell(comps.get(c)) for c in comp_names)
            + f'<td class="num">{_fmt(timings.get("render"), 2)}</td>'
            f'<td class="num">{_fmt(timings.get("score"), 2)}</td>'
            "</tr>"
        )
    table = (
        '<div style="overflow-x:auto"><table class="attempts"><thead>'
        + head
        + "</thead><tbody>"
        + "".join(rows)
        + "</tbody></table></div>"
        if atts
        else '<p class="muted">no attempts recorded</p>'
    )
    return (
        f'<section class="scene" id="scene-{_e(idx)}">'
        f"<h3>Scene {_e(number)}: {_e(title)}</h3>"
        f'<div class="scene-head">{thumb_html}<dl class="kv">{"".join(facts)}</dl></div>'
        f"{table}</section>"
    )


def _stages(report: dict) -> str:
    stages = {k: v for k, v in _d(report.get("stages")).items()}
    if not stages:
        return ""
    nums = [_num(v) for v in stages.values()]
    total = sum(v for v in nums if v is not None)
    rows = []
    for (name, value), v in zip(stages.items(), nums):
        share = f"{100.0 * v / total:.1f}%" if v is not None and total > 0 else "—"
        rows.append(
            f'<tr><td>{_e(name)}</td><td class="num">{_fmt(value, 2)}</td>'
            f'<td class="num">{share}</td></tr>'
        )
    rows.append(
        f'<tr><th>total</th><th class="num">{total:.2f}</th><th class="num">100%</th></tr>'
    )
    return (
        '<section><h2>Stage times</h2><table><thead><tr><th>stage</th><th class="num">seconds'
        '</th><th class="num">share</th></tr></thead><tbody>'
        + "".join(rows)
        + "</tbody></table></section>"
    )


def _policy(report: dict) -> str:
    policy = _d(report.get("policy"))
    settings = _d(report.get("settings"))
    if not policy and not settings:
        return ""
    items = []
    for key in ("mode", "algorithm", "path"):
        if key in policy:
            items.append(f"<dt>{key}</dt><dd>{_e(policy[key])}</dd>")
    if "version_start" in policy or "version_end" in policy:
        items.append(
            f"<dt>version</dt><dd>{_e(policy.get('version_start', '?'))} → "
            f"{_e(policy.get('version_end', '?'))}</dd>"
        )
    for key, value in policy.items():
        if key not in ("mode", "algorithm", "path", "version_start", "version_end"):
            items.append(f"<dt>{_e(key)}</dt><dd>{_e(value)}</dd>")
    out = "<section><h2>Policy</h2>"
    out += f'<dl class="kv">{"".join(items)}</dl>' if items else '<p class="muted">none</p>'
    if settings:
        out += "<h3 style=\"margin-top:14px\">Settings</h3>" + _kv_table(settings)
    return out + "</section>"


def _prompt_opt(report: dict) -> str:
    """What prompt optimisation (cinerl make --prompt-opt rapo) added to each scene."""
    opt = _d(report.get("prompt_opt"))
    rows = [r for r in _l(opt.get("scenes")) if isinstance(r, dict)]
    if not rows:
        return ""
    body = "".join(
        f"<tr><td class=\"num\">{_e(r.get('scene', ''))}</td><td>{_e(r.get('query', ''))}</td>"
        f"<td>{_e('; '.join(_l(r.get('added'))) or '—')}</td></tr>" for r in rows)
    return (f"<section><h2>Prompt optimisation: {_e(opt.get('method', ''))}</h2>"
            "<table><tr><th>scene</th><th>retrieval query</th><th>added to the action</th></tr>"
            f"{body}</table></section>")


# ------------------------------------------------------------------------------------------
# public API


def render_html(report: dict, out_dir: Path) -> str:
    """Render the report as one self-contained HTML page (see module docstring).

    Relative paths in ``report`` (film, thumbnails) are resolved against ``out_dir``.
    """
    out_dir = Path(out_dir)
    report = _d(report)
    bible = _d(report.get("bible"))
    chars = {c.get("id"): c.get("name", c.get("id")) for c in _l(bible.get("characters")) if isinstance(c, dict)}
    locs = {loc.get("id"): loc.get("name", loc.get("id")) for loc in _l(bible.get("locations")) if isinstance(loc, dict)}
    bible_scenes = {s.get("index"): s for s in _l(bible.get("scenes")) if isinstance(s, dict)}
    scenes = [s for s in _l(report.get("scenes")) if isinstance(s, dict)]
    title = report.get("title") or bible.get("title") or "CineRL film"

    body = [
        _header(report, bible),
        _film(report, out_dir),
        _characters(bible),
        _locations(bible),
        _curve(scenes),
    ]
    if scenes:
        body.append("<h2>Scenes</h2>")
        body.extend(_scene_section(s, bible_scenes, chars, locs, out_dir) for s in scenes)
    body.append(_prompt_opt(report))
    body.append(_stages(report))
    body.append(_policy(report))
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)} · CineRL report</title>"
        f"<style>{_CSS}</style></head>\n<body><main>\n"
        + "\n".join(part for part in body if part)
        + '\n<footer class="muted"><p>Generated by CineRL.</p></footer>'
        "\n</main></body></html>\n"
    )


def write_report(report: dict, out_dir: Path) -> tuple[Path, Path]:
    """Write ``out_dir/report.json`` (indent 2) and ``out_dir/report.html``, both atomically.

    Returns ``(json_path, html_path)``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "report.json"
    html_path = out_dir / "report.html"
    atomic_write_text(json_path, json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n")
    atomic_write_text(html_path, render_html(report, out_dir))
    return json_path, html_path
