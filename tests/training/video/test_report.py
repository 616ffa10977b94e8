"""training_report.html (cinerl.training.report, shared by the trainers): one chart per series,
the curriculum's decisions, evaluation series and clips, escaped text, written atomically."""

from __future__ import annotations

from cinerl.training.report import build_training_report, svg_chart, write_training_report


def test_the_page_charts_each_series_and_lists_the_curriculum(tmp_path):
    metrics = [
        {"step": i, "loss": 0.69 - 0.01 * i, "accuracy": min(1.0, i / 5), "lr": 1e-4} for i in range(1, 11)
    ]
    curriculum = {
        "stages": [33, 49],
        "status": "stopped",
        "reason": "accuracy <fell>",
        "history": [{"step": 5, "frames": 33, "next_frames": 49, "round": 0, "decision": "retry",
                     "metrics": {"accuracy": 0.9}, "next_metrics": {"accuracy": 0.5}, "reason": "fell"}],
    }  # fmt: skip
    page = build_training_report(
        "Flow-DPO <test>",
        metrics,
        {"beta": 100},
        curriculum=curriculum,
        evaluations=[{"step": 5, "seam": 0.7}, {"step": 10, "seam": 0.8}],
        clips=["eval/step_10.mp4"],
        notes=["pair 3 left out"],
    )
    assert page.count("<svg") == 4  # loss, accuracy, lr, eval/seam
    assert "eval/seam" in page and "<video src='eval/step_10.mp4'" in page
    assert "Flow-DPO &lt;test&gt;" in page and "accuracy &lt;fell&gt;" in page and "<fell>" not in page
    assert "retry" in page and "33 -&gt; 49" in page and "pair 3 left out" in page
    path = write_training_report(tmp_path, "t", metrics, {})
    assert path.name == "training_report.html" and path.read_text().startswith("<!doctype html>")
    assert not list(tmp_path.glob(".*tmp*"))


def test_a_flat_or_empty_series_still_draws():
    assert "no data" in svg_chart("x", [], [])
    flat = svg_chart("lr", [1, 2, 3], [1e-4, 1e-4, 1e-4])
    assert "<polyline" in flat and "nan" not in flat.lower()
