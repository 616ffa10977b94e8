"""Speed and memory of the Flow-GRPO trainer on a tiny random Wan (CPU): `--compile/--no-compile`
reaching the trainer (regional compile, speed.compile_blocks; off on the CPU without the flag),
the training attention kernel logged, and the optimisation pass's out-of-memory fallback (the
clip batch halved and accumulated: the same gradients, said once, counted in metrics.jsonl)."""

from __future__ import annotations

import json
import logging

import pytest
import torch

from cinerl.training.video import speed
from cinerl.training.video.grpo import VideoGRPOTrainer
from tests.training.video.test_grpo import config


def test_compile_flag_reaches_the_trainer_and_is_off_on_the_cpu_by_default(
    model, prompts, tmp_path, monkeypatch, caplog
):
    import typer
    from typer.testing import CliRunner

    from cinerl.apps.cli.train_video import config_command
    from cinerl.training.video.grpo_config import VideoGRPOConfig
    from cinerl.training.video.strategy import accelerator

    seen = []
    app = typer.Typer()
    app.command()(config_command(VideoGRPOConfig, "video_grpo", seen.append, "test"))
    for flags, want in (([], None), (["--compile"], True), (["--no-compile"], False)):
        res = CliRunner().invoke(app, ["--model-dir", str(model), "--prompts", str(prompts), *flags])
        assert res.exit_code == 0, res.output
        assert (
            seen[-1].compile is want
            and seen[-1].compile_choice() == {None: "auto", True: "on", False: "off"}[want]
        )
    assert speed.compile_wanted("auto", torch.device("cuda")) and not speed.compile_wanted(
        "auto", torch.device("cpu")
    )

    calls = []
    monkeypatch.setattr(speed, "compile_blocks", lambda modules, mode=None: calls.append(list(modules)) or 7)
    with caplog.at_level(logging.INFO):
        tr = VideoGRPOTrainer(config(model, prompts, tmp_path / "auto"))
        tr._setup(accelerator(1), "single")
    assert calls == [] and tr.speed["compiled_blocks"] == 0 and tr.speed["compile"] == "auto"
    said = [r.getMessage() for r in caplog.records]
    assert "regional compile off (no flag: off on cpu)" in said
    # the training kernel (one with a backward; on the CPU native SDPA), logged and reported
    assert (
        tr.speed["attention"].startswith("attention for training: native SDPA")
        and tr.speed["attention"] in said
    )
    tr = VideoGRPOTrainer(config(model, prompts, tmp_path / "on", compile=True))
    tr._setup(accelerator(1), "single")
    assert calls == [[tr.experts.experts["transformer"]]] and tr.speed["compiled_blocks"] == 7
    assert tr.speed["compile"] == "on"


@pytest.mark.heavy  # two one-step runs, one through dynamo (eager backend): 18 CPU-s, 35 s loaded
def test_a_regionally_compiled_step_gives_the_uncompiled_figures(model, prompts, tmp_path, monkeypatch):
    from diffusers import WanTransformer3DModel
    from torch._dynamo.utils import counters

    real = WanTransformer3DModel.compile_repeated_blocks
    # dynamo traces each block for real; the eager backend skips inductor's C++ build on the CPU
    monkeypatch.setattr(
        WanTransformer3DModel, "compile_repeated_blocks", lambda self, **kw: real(self, backend="eager", **kw)
    )
    counters.clear()
    plain = VideoGRPOTrainer(config(model, prompts, tmp_path / "plain", steps=1, compile=False)).train()
    assert not counters["stats"]["unique_graphs"]
    compiled = VideoGRPOTrainer(config(model, prompts, tmp_path / "compiled", steps=1, compile=True)).train()
    assert counters["stats"]["unique_graphs"] > 0 and compiled.speed["compiled_blocks"] == 2
    for k in ("reward_mean", "grad_norm", "first_pass_ratio_min", "first_pass_kl_max"):
        assert compiled.metrics[0][k] == pytest.approx(plain.metrics[0][k], rel=1e-5), k


def test_an_out_of_memory_train_step_is_halved_and_accumulates_the_same_gradients(
    model, prompts, tmp_path, caplog
):
    tr = VideoGRPOTrainer(config(model, prompts, tmp_path / "split", steps=1, learning_rate=1e-2))
    real = tr.velocity
    sizes = []

    def small_memory(x, *a, **k):  # a training forward of more than one clip does not fit
        if torch.is_grad_enabled() and x.shape[0] > 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (injected)")
        if torch.is_grad_enabled():
            sizes.append(x.shape[0])
        return real(x, *a, **k)

    tr.velocity = small_memory
    with caplog.at_level(logging.WARNING, logger="cinerl.training.video.grpo"):
        split = tr.train()
    said = [r for r in caplog.records if "out of memory in an optimisation pass" in r.getMessage()]
    assert len(said) == 1  # once, not at every halving
    # 3 clips a forward -> 2 -> 1, and 1 it stays (the trainer's, and the checkpoint's for a resume)
    (a,) = split.metrics
    assert (a["train_oom_splits"], a["train_chunk"], tr.train_chunk) == (2, 1, 1)
    assert set(sizes) == {1} and a["groups_trained"] == 1 and a["first_pass_ratio_min"] == pytest.approx(1.0)
    rows = [json.loads(x) for x in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    assert [(r["train_oom_splits"], r["train_chunk"]) for r in rows] == [(2, 1)]
    state = json.loads((tmp_path / "split" / "checkpoints" / "step_000001" / "state.json").read_text())
    assert state["train_chunk"] == 1

    # the parts accumulate the whole batch's gradients (the trained LoRA, the PPO and KL terms,
    # a dropped clip masked out)
    ro = tr.rollout_group(0, 9, range(1, 2), 0)  # one trained step
    params = [p for p in tr.experts.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.0)
    grads, figures = [], []
    for velocity, halved in ((real, 0), (small_memory, 2)):
        tr.velocity, tr.train_chunk = velocity, 3
        stats, extremes, n = tr._fitting_pass(opt, [(ro, [1.2, None, -0.7])], 1, 1, True)
        assert n == halved and tr.train_chunk == (3 if not halved else 1)
        grads.append(torch.cat([p.grad.flatten() for p in params]))
        figures.append({k: v for k, v in stats.items() if v})
    assert grads[0].abs().max() > 0
    # float sums in another order: equal to 1e-4 of the largest gradient
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-4, atol=1e-4 * float(grads[0].abs().max()))
    for k in figures[0]:
        assert figures[1][k] == pytest.approx(figures[0][k], rel=1e-4, abs=1e-9), k
    # any other error, and an out-of-memory error at one clip, is raised, not retried
    for err in (RuntimeError("a real bug"), torch.OutOfMemoryError("CUDA out of memory (injected)")):

        def broken(x, *a, err=err, **k):
            if torch.is_grad_enabled():
                raise err
            return real(x, *a, **k)

        tr.velocity, tr.train_chunk = broken, 1
        with pytest.raises(type(err), match=str(err)[:8]):
            tr._fitting_pass(opt, [(ro, [1.0, -1.0, 0.0])], 1, 1, True)
