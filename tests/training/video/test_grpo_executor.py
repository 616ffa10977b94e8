"""Flow-GRPO's scoring jobs on the run's executor (executor/): on a local 2-CPU Ray cluster
(127.0.0.1, started and stopped here) the decoded rollout clips are scored on Ray actors, each
building its scorer on its first job, and two GRPO steps give the metrics and the LoRA of the
local executor exactly (the scores are the same functions of the same clips)."""

from __future__ import annotations

import os

import pytest
import torch
from safetensors.torch import load_file

from cinerl.training.video.grpo import VideoGRPOTrainer
from tests.training.video.test_grpo import config

pytestmark = pytest.mark.heavy  # a Ray cluster's start and two actors importing the reward suite: ~40 s


KEYS = ("reward_mean", "reward_std", "group_reward_mean", "reward/temporal_flicker", "grad_norm", "clips")


def test_ray_scoring_gives_the_local_metrics_and_lora(ray_cluster, model, prompts, tmp_path):
    kw = dict(steps=2, learning_rate=1e-2, score_workers=2, prompts_per_step=2, kl=0.0)
    local = VideoGRPOTrainer(config(model, prompts, tmp_path / "local", **kw))
    a = local.train()
    remote = VideoGRPOTrainer(config(model, prompts, tmp_path / "ray", executor="ray", ray_workers=2, **kw))
    b = remote.train()
    assert [{k: m[k] for k in KEYS} for m in a.metrics] == [{k: m[k] for k in KEYS} for m in b.metrics]
    assert [m["score_processes"] for m in a.metrics] == [1, 1]  # the driver's own process
    ran = remote.executor.history
    assert len(ran) == 2 * 2 * 3  # every clip of both steps was a job
    pids = {r.worker.split(":")[-1] for r in ran}
    assert str(os.getpid()) not in pids and len(pids) == 2  # on the two actors, not the driver
    assert sum(m["score_processes"] for m in b.metrics) >= 3
    wa = load_file(str(tmp_path / "local" / "pytorch_lora_weights.safetensors"))
    wb = load_file(str(tmp_path / "ray" / "pytorch_lora_weights.safetensors"))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert any(float(v.abs().max()) > 0 for k, v in wa.items() if "lora_B" in k)  # it trained
