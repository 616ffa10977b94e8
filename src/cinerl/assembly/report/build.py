"""The run report: ``report.json`` (a :class:`~cinerl.core.schema.FilmReport` as JSON) and
``report.html`` (drawn by :mod:`cinerl.assembly.report.html` from its template).

Both take the typed report or a plain dict of the same shape: old run folders and tests hand in
dicts, and the page tolerates missing optional keys (no bible, no scenes, no film).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cinerl.assembly.report import html
from cinerl.core.media import atomic_write_text
from cinerl.core.schema import FilmReport

__all__ = ["EMBED_VIDEO_MAX_BYTES", "render_html", "write_report"]

#: A film at most this large is embedded in the page; a larger one is linked relatively.
EMBED_VIDEO_MAX_BYTES = 20 * 1024 * 1024


def render_html(report: FilmReport | Mapping[str, Any], out_dir: Path, self_contained: bool = False) -> str:
    """The report as an HTML page; relative paths in it (film, takes, stills) resolve against
    ``out_dir``. By default the film and the takes are linked (the page stays small and plays
    them from the run folder); ``self_contained`` embeds them, and every image, as ``data:``
    URIs, a film under EMBED_VIDEO_MAX_BYTES included."""
    return html.render(report, Path(out_dir), EMBED_VIDEO_MAX_BYTES, self_contained=self_contained)


def write_report(
    report: FilmReport | Mapping[str, Any], out_dir: Path, self_contained: bool = False
) -> tuple[Path, Path]:
    """Write ``out_dir/report.json`` (indent 2) and ``out_dir/report.html``, both atomically.

    A dict is written verbatim; a FilmReport as ``model_dump(mode="json")``, which is the same
    JSON the director has always written. Returns ``(json_path, html_path)``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = report.to_json() if isinstance(report, FilmReport) else report
    json_path = out_dir / "report.json"
    html_path = out_dir / "report.html"
    atomic_write_text(json_path, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
    atomic_write_text(html_path, render_html(data, out_dir, self_contained))
    return json_path, html_path
