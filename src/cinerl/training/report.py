"""`training_report.html`: one self-contained page per training run, for every CineRL trainer
(video DPO and GRPO, the prompt enhancer, the character LoRA), so a user looks instead of
reading logs: a line chart per metric over the steps (inline SVG, no script, no network), the
curriculum's decisions, evaluation clips where the trainer made them, and the config.

    write_training_report(out_dir, "Flow-DPO video LoRA", metrics_rows, config_dict)

`metrics_rows` are the trainer's metrics.jsonl rows (dicts with `step` and numbers).
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

from cinerl.core.media import atomic_write_text

REPORT = "training_report.html"
DEFAULT_SERIES = ("loss", "accuracy", "margin", "lr", "grad_norm")


def _smooth(ys: list[float], k: int) -> list[float]:
    if k <= 1:
        return ys
    out, acc = [], 0.0
    for i, y in enumerate(ys):
        acc += y
        if i >= k:
            acc -= ys[i - k]
        out.append(acc / min(i + 1, k))
    return out


def _finite(xs, ys) -> list[tuple[float, float]]:
    return [(x, y) for x, y in zip(xs, ys) if isinstance(y, (int, float)) and math.isfinite(y)]


def svg_chart(
    name: str,
    xs: list[float],
    ys: list[float],
    width: int = 520,
    height: int = 180,
    base: list[tuple[float, float]] | None = None,
) -> str:
    """A line chart of one series (raw in light grey, a running mean on top), with its range;
    `base` (step, value) points are drawn dashed in orange on the same axes (an evaluation
    metric of the untrained model beside the LoRA's)."""
    pts = _finite(xs, ys)
    if not pts:
        return f"<figure><figcaption>{html.escape(name)}: no data</figcaption></figure>"
    bpts = _finite([b[0] for b in base or []], [b[1] for b in base or []])
    px, py = [p[0] for p in pts], [p[1] for p in pts]
    x0, x1 = min(px + [b[0] for b in bpts]), max(px + [b[0] for b in bpts])
    y0, y1 = min(py + [b[1] for b in bpts]), max(py + [b[1] for b in bpts])
    if y1 == y0:  # a flat series: a band around it of a tenth of its size
        band = abs(y0) * 0.1 or 0.5
        y0, y1 = y0 - band, y1 + band
    if x1 == x0:
        x1 = x0 + 1
    pad = 36

    def pos(x, y):
        return (
            pad + (x - x0) / (x1 - x0) * (width - pad - 8),
            8 + (1 - (y - y0) / (y1 - y0)) * (height - pad - 8),
        )

    def path(vals, xs_=None):
        return " ".join(f"{a:.1f},{b:.1f}" for a, b in (pos(x, y) for x, y in zip(xs_ or px, vals)))

    smooth = _smooth(py, max(1, len(py) // 20))
    base_line, base_note = "", ""
    if bpts:
        base_line = (
            f'<polyline fill="none" stroke="#d9822b" stroke-width="2" stroke-dasharray="5,3" '
            f'points="{path([b[1] for b in bpts], [b[0] for b in bpts])}"/>'
        )
        base_note = f"; untrained model (dashed) {bpts[-1][1]:.4g}"
    return (
        f"<figure><figcaption>{html.escape(name)} (last {py[-1]:.4g}, min {min(py):.4g}, "
        f"max {max(py):.4g}{base_note})</figcaption>"
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{html.escape(name)}">'
        f'<rect x="{pad}" y="8" width="{width - pad - 8}" height="{height - pad - 8}" fill="#fafafa" '
        f'stroke="#ccc"/>'
        f'<polyline fill="none" stroke="#bbb" stroke-width="1" points="{path(py)}"/>'
        f'<polyline fill="none" stroke="#1f5fa8" stroke-width="2" points="{path(smooth)}"/>'
        f"{base_line}"
        f'<text x="2" y="16" font-size="10">{y1:.3g}</text>'
        f'<text x="2" y="{height - pad}" font-size="10">{y0:.3g}</text>'
        f'<text x="{pad}" y="{height - 14}" font-size="10">step {x0:g}</text>'
        f'<text x="{width - 80}" y="{height - 14}" font-size="10">step {x1:g}</text>'
        "</svg></figure>"
    )


def build_training_report(
    title: str,
    metrics: list[dict],
    config: dict,
    series: tuple[str, ...] = DEFAULT_SERIES,
    curriculum: dict | None = None,
    evaluations: list[dict] | None = None,
    clips: list[str] | None = None,
    notes: list[str] | None = None,
    images: list[str] | None = None,
) -> str:
    """The page's HTML. `evaluations` are rows of {step, metric: value...} (each metric charted
    as eval/<metric>, with `base/<metric>`, the untrained model's value, dashed on the same
    chart); `clips` are paths relative to the report's folder, shown as videos; `images` the
    same, shown as pictures (a character LoRA's samples, step by step)."""
    xs = [m.get("step", i + 1) for i, m in enumerate(metrics)]
    charts = [svg_chart(s, xs, [m.get(s) for m in metrics]) for s in series if any(s in m for m in metrics)]
    evaluations = evaluations or []
    for key in sorted({k for e in evaluations for k in e if k != "step" and not k.startswith("base/")}):
        ex = [e["step"] for e in evaluations if key in e]
        base = [(e["step"], e[f"base/{key}"]) for e in evaluations if f"base/{key}" in e]
        charts.append(svg_chart(f"eval/{key}", ex, [e[key] for e in evaluations if key in e], base=base))
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1150px}"
        "figure{display:inline-block;margin:0 1em 1em 0}figcaption{font-size:13px}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:3px 6px}"
        "pre{background:#f4f4f4;padding:1em;font-size:12px;overflow:auto}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{len(metrics)} steps logged"
        + (f", last step {xs[-1]}" if xs else "")
        + (
            f"; final loss {metrics[-1]['loss']:.4f}, "
            f"accuracy {metrics[-1].get('accuracy', float('nan')):.2f}"
            if metrics and "loss" in metrics[-1]
            else ""
        )
        + "</p>",
        "<h2>Curves</h2>",
        *charts,
    ]
    if curriculum:
        parts += [
            "<h2>Length curriculum</h2>",
            f"<p>stages {curriculum.get('stages')} frames; "
            f"status <b>{html.escape(curriculum.get('status', ''))}</b>"
            f" {html.escape(curriculum.get('reason', ''))}</p>",
            "<table><tr><th>step</th><th>frames</th><th>round</th><th>decision</th><th>metrics now</th>"
            "<th>at next length</th><th>reason</th></tr>",
        ]
        for h in curriculum.get("history", []):
            parts.append(
                "<tr>"
                + "".join(
                    f"<td>{html.escape(str(v))}</td>"
                    for v in (
                        h.get("step"),
                        f"{h.get('frames', '')} -> {h.get('next_frames', '')}",
                        h.get("round", ""),
                        h.get("decision") + (f" ({h['gate']} gate)" if h.get("gate") else ""),
                        _fmt(h.get("metrics")),
                        _fmt(h.get("next_metrics")),
                        h.get("reason", ""),
                    )
                )
                + "</tr>"
            )
        parts.append("</table>")
    if clips:
        parts.append("<h2>Evaluation clips</h2>")
        for c in clips:
            parts.append(
                f"<figure><video src='{html.escape(c)}' controls loop muted width='320'></video>"
                f"<figcaption>{html.escape(c)}</figcaption></figure>"
            )
    if images:
        parts.append("<h2>Samples</h2>")
        for im in images:
            parts.append(
                f"<figure><img src='{html.escape(im)}' width='220' alt='{html.escape(im)}'>"
                f"<figcaption>{html.escape(im)}</figcaption></figure>"
            )
    if notes:
        parts += ["<h2>Notes</h2><ul>", *(f"<li>{html.escape(n)}</li>" for n in notes), "</ul>"]
    parts += [
        "<h2>Config</h2>",
        f"<pre>{html.escape(json.dumps(config, indent=2, default=str))}</pre>",
        "</body></html>",
    ]
    return "\n".join(parts)


def _fmt(d) -> str:
    if not d:
        return ""
    return ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in d.items())


def write_training_report(out_dir: Path, title: str, metrics: list[dict], config: dict, **kw) -> Path:
    """Write `out_dir/training_report.html` atomically; returns its path."""
    return atomic_write_text(Path(out_dir) / REPORT, build_training_report(title, metrics, config, **kw))
