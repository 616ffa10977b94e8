"""The Flow-GRPO trainer's training_report.html (training/report.py, as the Flow-DPO trainer's):
written at the end of a run with its curves and evaluation rows, and again on resume."""

from __future__ import annotations

import json
import re


from cinerl.training.report import REPORT
from cinerl.training.video.grpo import VideoGRPOTrainer
from tests.training.video.test_grpo import config


def captions(page: str) -> dict[str, str]:
    """Each chart's name -> its caption's figures (`last ..., min ..., max ...`)."""
    return dict(re.findall(r"<figcaption>([^<(]+?) \((.*?)\)</figcaption><svg", page))


def test_the_report_has_the_runs_curves_and_evaluations_and_is_rewritten_on_resume(
    model, prompts, tmp_path, monkeypatch
):
    out = tmp_path / "out"
    kw = dict(eval_every=1, eval_steps=2, eval_prompts=1, learning_rate=1e-2)
    res = VideoGRPOTrainer(config(model, prompts, out, steps=1, **kw)).train()
    page = (out / REPORT).read_text()
    assert "<title>Flow-GRPO video LoRA</title>" in page and "1 steps logged, last step 1" in page
    charts = captions(page)
    for name in (
        "reward_mean",
        "reward/temporal_flicker",
        "approx_kl",
        "clip_fraction",
        "rollout_s",
        "train_s",
        "eval/temporal_flicker",
    ):
        assert name in charts, (name, sorted(charts))
    last = res.metrics[-1]
    assert charts["reward/temporal_flicker"].startswith(f"last {last['reward/temporal_flicker']:.4g},")
    assert charts["train_s"].startswith(f"last {last['train_s']:.4g},")
    # the evaluation chart: the LoRA's value and the untrained model's, dashed, on the same seeds
    ev = res.evaluations[-1]
    assert charts["eval/temporal_flicker"] == (
        f"last {ev['eval/temporal_flicker']:.4g}, min {ev['eval/temporal_flicker']:.4g}, max "
        f"{ev['eval/temporal_flicker']:.4g}; untrained model (dashed) {ev['base/temporal_flicker']:.4g}"
    )
    assert "attention: attention for training: native SDPA" in page  # the speed notes
    assert json.loads(re.search(r"<pre>(.*)</pre>", page, re.S).group(1).replace("&quot;", '"'))["steps"] == 1

    # on resume: the interrupted run's report is written before the resumed run trains
    (out / REPORT).unlink()
    kw["eval_every"] = 0  # neutral: the resumed run may leave evaluation out
    tr = VideoGRPOTrainer(config(model, prompts, out, steps=2, **kw))
    real, at_resume = tr.step, []

    def step(*a, **k):
        at_resume.append((out / REPORT).read_text())
        return real(*a, **k)

    monkeypatch.setattr(tr, "step", step)
    res = tr.train()
    assert "1 steps logged, last step 1" in at_resume[0] and "eval/temporal_flicker" in captions(at_resume[0])
    page = (out / REPORT).read_text()
    assert "2 steps logged, last step 2" in page and [m["step"] for m in res.metrics] == [1, 2]
    assert "eval/temporal_flicker" in captions(page)  # the first run's evaluation kept
