"""The prompt enhancer's GRPO reward (training/enhancer/reward.py) maps its render-and-score jobs
over the executor: on a local 2-CPU Ray cluster (127.0.0.1) every completion is rendered and
scored on the actors, each keeping its backend and scorer between steps, and the rewards are the
ones the local executor gives, completion for completion.

Heavy: each actor imports the renderer and the reward suite and builds them on its first job
(about 20 s on this 2-core machine, beside the cluster's own start); `make test-heavy` runs it."""

import pytest

from cinerl.executor.ray import RayExecutor
from cinerl.training.enhancer.reward import CineRLRewards

pytestmark = pytest.mark.heavy

SEED = "A knight rides through a misty forest to find a lost dragon"
OTHER = "Two friends share tea in a red kitchen"
SIZE = dict(width=64, height=48, fps=4, seconds=1.0, mode="i2v", brief_level="brief", workers=2)


def completions(rewards: CineRLRewards) -> tuple[list, list[str]]:
    from cinerl.planning.agents import offline_prompt

    texts, seeds = [], []
    for seed in (SEED, OTHER):
        ep = rewards.episode(seed)
        faithful = offline_prompt(ep.scene, ep.bible, "i2v").text("i2v")
        texts += [faithful, "A bright sunny beach, fast handheld camera, neon pink sky.", ""]
        seeds += [seed] * 3
    return [[{"role": "assistant", "content": t}] for t in texts], seeds


def test_grpo_rewards_on_ray_actors_are_the_local_rewards(ray_cluster):
    local = CineRLRewards(**SIZE)
    batch, seeds = completions(local)
    expected = local.clip(prompts=[None] * len(batch), completions=batch, seed_prompt=seeds)
    assert expected[2] is None and expected[5] is None  # an empty completion renders nothing
    assert expected[0] > expected[1] and expected[3] > expected[4]
    pool = RayExecutor(workers=2)
    try:
        remote = CineRLRewards(**SIZE, executor=pool)
        for _ in range(2):  # two GRPO steps: the actors keep what they built on the first
            got = remote.clip(prompts=[None] * len(batch), completions=batch, seed_prompt=seeds)
            assert got == expected
        ran = pool.history
        assert len(ran) == 12 and len({r.worker for r in ran}) == 2  # both actors rendered
        assert all(r.worker.split(":")[-1] in {str(p) for p in pool.worker_pids()} for r in ran)
    finally:
        pool.shutdown()
