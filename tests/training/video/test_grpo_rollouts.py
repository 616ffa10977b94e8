"""Flow-GRPO rollouts on a tiny random Wan (CPU): image to video from a run's first frame (the
condition the diffusers Wan image-to-video pipeline builds, held in latent frame 0, reaching the
model) and the out-of-memory fallback (a group that does not fit rolled out in halves, with the
same noise: the same clips, said once in the log and counted in the metrics)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from cinerl.core.media import save_png
from cinerl.training.video import grpo
from cinerl.training.video.grpo import PromptItem, VideoGRPOTrainer
from tests.training.video.test_grpo import config


def test_i2v_rollouts_start_from_the_runs_first_frame(model, tmp_path, monkeypatch):
    from diffusers import WanImageToVideoPipeline
    from PIL import Image

    frame = np.zeros((48, 80, 3), np.uint8)
    frame[:, :40] = (200, 30, 30)  # another size than the rollouts': resized as the pipeline does
    image = save_png(frame, tmp_path / "boundary_01.png")
    items = [PromptItem("a red boat", str(image)), PromptItem("a woman walks")]
    monkeypatch.setattr(grpo, "prompts_from_runs", lambda text: items)
    cfg = config(model, "", tmp_path / "out", from_runs="runs", steps=1, passes=1)
    tr = VideoGRPOTrainer(cfg)
    row = tr.train().metrics[0]
    assert row["first_pass_ratio_min"] == row["first_pass_ratio_max"] == 1.0
    assert row["first_pass_kl_max"] == 0.0 and row["clips_dropped"] == 0
    cond = tr.conditions[0]
    assert tr.conditions[1] is None  # a text-to-video scene stays text to video
    # the condition is the one diffusers' Wan image-to-video pipeline (the 5B's, expand_timesteps)
    # builds from the same image
    pipe = WanImageToVideoPipeline(None, None, tr.vae, None, expand_timesteps=True)
    pixels = pipe.video_processor.preprocess(Image.fromarray(frame), height=tr.height, width=tr.width)
    _, want, _ = pipe.prepare_latents(pixels, 1, tr.shape[0], tr.height, tr.width, tr.frames, torch.float32)
    torch.testing.assert_close(cond, want[0], rtol=1e-5, atol=1e-5)
    # the rollout holds frame 0 at the image and the image reaches the model
    window = range(cfg.train_steps)
    ro = tr.rollout(0, 5, window, 0)
    assert torch.equal(ro.latents[:, :, 0], cond[:, 0].expand_as(ro.latents[:, :, 0]))
    tr.conditions[0] = torch.zeros_like(cond)
    other = tr.rollout(0, 5, window, 0)
    assert (other.latents[:, :, 1:] - ro.latents[:, :, 1:]).abs().max() > 1e-4


def test_a_rollout_out_of_memory_splits_the_group_in_halves_with_the_same_clips(
    model, prompts, tmp_path, caplog
):
    tr = VideoGRPOTrainer(config(model, prompts, tmp_path / "out", steps=1, kl=0.0))
    real = tr.velocity
    seen = []

    def small_memory(x, *a, **kw):  # a rollout batch of more than one clip does not fit
        if not torch.is_grad_enabled() and x.shape[0] > 1 and tr.oom_injected:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (injected)")
        seen.append(x.shape[0])
        return real(x, *a, **kw)

    tr.velocity = small_memory
    tr.oom_injected = True
    with caplog.at_level(logging.WARNING, logger="cinerl.training.video.grpo"):
        row = tr.train().metrics[0]
    said = [r for r in caplog.records if "out of memory in a rollout" in r.getMessage()]
    assert len(said) == 1  # once, not at every split
    # 3 clips: [0] and [1, 2]; [1, 2] again: [1] and [2]. Two halvings, every clip scored
    assert row["rollout_oom_splits"] == 2 and row["clips"] == 3 and row["clips_dropped"] == 0
    assert row["first_pass_ratio_min"] == pytest.approx(1.0, abs=1e-4)  # trained as one batch of 3
    window = range(tr.cfg.train_steps)
    split = tr.rollout_group(0, 3, window, 0)
    tr.oom_injected = False
    whole = tr.rollout_group(0, 3, window, 0)
    assert split.splits == 2 and whole.splits == 0
    torch.testing.assert_close(split.latents, whole.latents, rtol=1e-4, atol=1e-5)
    for a, b in zip(split.old_logp, whole.old_logp):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    tr.velocity = lambda *a, **kw: (_ for _ in ()).throw(RuntimeError("a real bug"))
    with pytest.raises(RuntimeError, match="a real bug"):  # any other error is not retried
        tr.rollout_group(0, 3, window, 0)
