"""The flow-matching maths every Wan trainer shares (DPO here, online GRPO later).

Wan2.2 is a rectified-flow model: a clean latent x0 and Gaussian noise eps are joined on a
straight line, x_t = (1 - t) x0 + t eps for t in [0, 1], and the transformer predicts the
velocity along it, v = eps - x0, given `timestep = 1000 t` (diffusers' Wan pipelines pass the
flow scheduler's sigma times num_train_timesteps). Training timesteps are logit-normal
(Esser et al. 2024, "Scaling Rectified Flow Transformers", SD3: t = sigmoid(n), n ~ N(m, s),
m = 0, s = 1), which puts most of the samples at middle noise levels.

The model's input per conditioning kind, exactly as diffusers' pipelines build it:
- "none" (text to video): the noisy latent, one timestep per sample;
- "first_frame" (TI2V-5B from an image): latent frame 0 replaced by the image's latent and its
  tokens given timestep 0 (one timestep per token), the loss on the other frames only;
- "concat" (I2V-A14B): the noisy latent with mask and image latents concatenated on channels.
"""

from __future__ import annotations

import math

import torch

NUM_TRAIN_TIMESTEPS = 1000  # diffusers' Wan schedulers (num_train_timesteps=1000)


def logit_normal_cdf(t: float, mean: float = 0.0, std: float = 1.0) -> float:
    """P(T <= t) for T = sigmoid(N(mean, std))."""
    if t <= 0:
        return 0.0
    if t >= 1:
        return 1.0
    z = (math.log(t / (1 - t)) - mean) / std
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


def logit_normal(
    n: int, generator: torch.Generator, mean: float = 0.0, std: float = 1.0, lo: float = 0.0, hi: float = 1.0
) -> torch.Tensor:
    """n timesteps t = sigmoid(N(mean, std)) in fp32 on the CPU; with [lo, hi] (an A14B expert's
    range) the same law truncated to the range (drawn by its inverse CDF)."""
    if lo <= 0.0 and hi >= 1.0:
        return torch.sigmoid(torch.randn(n, generator=generator, dtype=torch.float32) * std + mean)
    a, b = logit_normal_cdf(lo, mean, std), logit_normal_cdf(hi, mean, std)
    u = a + (b - a) * torch.rand(n, generator=generator, dtype=torch.float64)
    z = torch.special.ndtri(u.clamp(1e-12, 1 - 1e-12))
    return torch.sigmoid(z * std + mean).float().clamp(lo, hi)


def logit_normal_mass(lo: float, hi: float, mean: float = 0.0, std: float = 1.0) -> float:
    """P(lo <= t < hi) for t = sigmoid(N(mean, std))."""
    return logit_normal_cdf(hi, mean, std) - logit_normal_cdf(lo, mean, std)


def _bcast(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return t.to(like.dtype).view(-1, *([1] * (like.ndim - 1)))


def noisy(x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """x_t = (1 - t) x0 + t eps, t one value per sample."""
    tt = _bcast(t, x0)
    return (1 - tt) * x0 + tt * noise


def velocity_target(x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """What the transformer predicts: eps - x0."""
    return noise - x0


def per_sample_mse(
    pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean squared error per sample in fp32; `weight` (broadcastable, 0/1) masks positions out."""
    err = (pred.float() - target.float()) ** 2
    dims = tuple(range(1, err.ndim))
    if weight is None:
        return err.mean(dim=dims)
    w = weight.float().expand_as(err)
    return (err * w).sum(dim=dims) / w.sum(dim=dims).clamp_min(1.0)


def first_frame_mask(shape: tuple[int, ...], device=None, dtype=torch.float32) -> torch.Tensor:
    """(1, 1, T, H, W): 0 on latent frame 0 (the conditioning image), 1 elsewhere."""
    _, _, f, h, w = shape
    mask = torch.ones(1, 1, f, h, w, device=device, dtype=dtype)
    mask[:, :, 0] = 0
    return mask


def model_inputs(
    x_t: torch.Tensor,
    t: torch.Tensor,
    kind: str = "none",
    condition: torch.Tensor | None = None,
    patch: tuple[int, int, int] = (1, 2, 2),
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(hidden_states, timestep, loss weight) for the transformer, as the Wan pipelines build
    them (see the module doc); `condition` is batched like x_t."""
    ts = t.float() * NUM_TRAIN_TIMESTEPS
    if kind == "none" or condition is None:
        return x_t, ts, None
    if kind == "first_frame":
        mask = first_frame_mask(x_t.shape, x_t.device, x_t.dtype)
        hidden = (1 - mask) * condition.to(x_t.dtype) + mask * x_t
        per_token = mask[0, 0][:, :: patch[1], :: patch[2]].flatten()  # (seq,)
        timestep = per_token.unsqueeze(0).float() * ts.unsqueeze(1)  # (B, seq)
        return hidden, timestep, mask
    if kind == "concat":
        return torch.cat([x_t, condition.to(x_t.dtype)], dim=1), ts, None
    raise ValueError(f"unknown conditioning kind {kind!r}")


def sample_noise(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """Gaussian noise from its own seeded generator (CPU, fp32): the same for the same seed on
    any process, device or resume."""
    g = torch.Generator().manual_seed(int(seed) % (2**63))
    return torch.randn(shape, generator=g, dtype=torch.float32)


def sample_seed(seed: int, step: int, index: int) -> int:
    """One seed per (run seed, step, sample in the global batch): rank- and resume-independent."""
    import hashlib

    h = hashlib.sha256(f"{seed}:{step}:{index}".encode()).digest()
    return int.from_bytes(h[:8], "little") & ((1 << 63) - 1)
