"""The Flow-DPO loss on one batch (see dpo.py's doc), kept apart from the trainer's files and
processes so the benchmark (benchmarks/train_video.py) and online trainers import the same maths
with only torch, diffusers and peft."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cinerl.training.video import flow_matching as fm
from cinerl.training.video.model import Experts, reference


# ---- the loss -------------------------------------------------------------------------------
def flow_dpo_loss(
    mse_w: torch.Tensor, mse_l: torch.Tensor, ref_w: torch.Tensor, ref_l: torch.Tensor, beta: float
) -> dict[str, torch.Tensor]:
    """Per-pair Flow-DPO loss, implicit reward margin and accuracy (all fp32)."""
    margin = -0.5 * beta * ((mse_w - ref_w) - (mse_l - ref_l))
    return {"loss": -F.logsigmoid(margin), "margin": margin, "accuracy": (margin > 0).float()}


def pair_inputs(x_w, x_l, noise, t):
    """The batch of 2B samples, chosen then rejected, sharing noise and timestep (asserted)."""
    b = x_w.shape[0]
    x0 = torch.cat([x_w, x_l])
    eps = torch.cat([noise, noise])
    tt = torch.cat([t, t])
    assert torch.equal(eps[:b], eps[b:]) and torch.equal(tt[:b], tt[b:]), "a pair must share noise and t"
    return x0, eps, tt


def dpo_losses(model, unwrapped: Experts, expert: str, batch: dict, noise, t, beta: float, dtype, autocast):
    """Reference and trained forward passes on one batch; the per-pair loss terms."""
    x0, eps, tt = pair_inputs(batch["x_w"], batch["x_l"], noise, t)
    dev = next(unwrapped.parameters()).device
    x0, eps, tt = x0.to(dev), eps.to(dev), tt.to(dev)
    emb = torch.cat([batch["prompt_embeds"]] * 2).to(dev, dtype)
    cond = batch["condition"]
    cond = torch.cat([cond, cond]).to(dev) if cond is not None else None
    x_t = fm.noisy(x0, eps, tt)
    target = fm.velocity_target(x0, eps)
    mod = unwrapped.experts[expert]
    hidden, timestep, weight = fm.model_inputs(x_t, tt, batch["condition_kind"], cond, mod.config.patch_size)
    kw = dict(hidden_states=hidden.to(dtype), timestep=timestep, encoder_hidden_states=emb)
    with torch.no_grad(), reference(mod), autocast():
        ref = fm.per_sample_mse(unwrapped(expert, **kw), target, weight)
    with autocast():
        pred = model(expert, **kw)
    mse = fm.per_sample_mse(pred, target, weight)
    b = batch["x_w"].shape[0]
    out = flow_dpo_loss(mse[:b], mse[b:], ref[:b], ref[b:], beta)
    out.update(mse_w=mse[:b].detach(), mse_l=mse[b:].detach(), ref_w=ref[:b], ref_l=ref[b:])
    return out


def sample_noise_and_t(shape, seeds: list[int], lo: float, hi: float, mean: float, std: float):
    noise = torch.stack([fm.sample_noise(shape, s) for s in seeds])
    t = torch.cat(
        [fm.logit_normal(1, torch.Generator().manual_seed(s ^ 0x5EED), mean, std, lo, hi) for s in seeds]
    )
    return noise, t
