"""GRPO mechanics of the enhancer on a tiny random model (TRL's GRPOTrainer, CineRL's rewards):
the reward functions receive every completion, a failed render gives None (skipped by TRL), the
reward of each component reaches metrics.jsonl, and a run resumes from its checkpoint."""

from __future__ import annotations

import json

import pytest

from cinerl.training.enhancer.config import read_metrics
from cinerl.training.enhancer.grpo import EnhancerGRPOConfig, rewards_for, train
from cinerl.training.enhancer.model import INFO, Enhancer
from tests.training.enhancer.conftest import TINY_CLIPS

PROMPTS = ["A fox explores a snowy forest at dawn", "Two friends share tea in a red kitchen"]


@pytest.fixture
def prompts(tmp_path):
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in PROMPTS))
    return path


def test_grpo_rewards_every_completion_skips_failed_renders_and_logs_components(
    tiny_lm, prompts, tmp_path, monkeypatch
):
    cfg = EnhancerGRPOConfig(
        base=str(tiny_lm),
        prompts=str(prompts),
        out=str(tmp_path / "grpo"),
        steps=2,
        max_completion_length=8,
        save_steps=2,
        **TINY_CLIPS,
    )
    rewards = rewards_for(cfg)
    real, seen = rewards.backend.generate, []

    def every_fourth_fails(request):  # the first completion of each group fails to render
        seen.append(request.prompt)
        if len(seen) % 4 == 1:
            raise RuntimeError("renderer broke")
        return real(request)

    monkeypatch.setattr(rewards.backend, "generate", every_fourth_fails)
    out = train(cfg, rewards)
    assert rewards.calls == [4, 4]  # num_generations 4 x 1 prompt per step, each step
    assert len(seen) == 8
    assert sum(b is None for b in rewards.last) == 1
    rows = [m for m in read_metrics(out / "metrics.jsonl") if "reward" in m]
    assert [m["step"] for m in rows] == [1, 2]
    for m in rows:
        assert m["clip/failed"] == 1.0
        assert {
            "component/temporal_flicker",
            "group/temporal_stability",
            "rewards/clip/mean",
            "rewards/fmt/mean",
        } <= set(m)
        assert m["time/render_s"] > 0 and m["time/score_s"] > 0
    # TRL's clip mean is over the three rendered completions only (None is skipped, never 0)
    last = [b.total for b in rewards.last if b is not None]
    assert rows[-1]["rewards/clip/mean"] == pytest.approx(sum(last) / len(last), abs=1e-5)
    info = json.loads((out / INFO).read_text())
    assert info["kind"] == "grpo" and info["lineage"] == ["grpo"] and (out / "checkpoint-2").is_dir()

    # resume: a third step continues from checkpoint-2, the metrics go on from step 3
    monkeypatch.setattr(rewards.backend, "generate", real)
    train(EnhancerGRPOConfig(**{**cfg.__dict__, "steps": 3, "resume": True}), rewards)
    steps = [m["step"] for m in read_metrics(out / "metrics.jsonl") if "reward" in m]
    assert steps == [1, 2, 3]
    state = json.loads((out / "checkpoint-3" / "trainer_state.json").read_text())
    assert state["global_step"] == 3
    assert Enhancer(out).write(["Scene: a fox. Shot: image-to-video."], max_new_tokens=4)[0] is not None
