"""The Flow-GRPO SDE sampler step: a rectified-flow ODE step turned into a Gaussian policy step.

Flow-matching models sample with the ODE dx = v dt, which has no log-probability. Flow-GRPO
(Liu et al. 2025, "Flow-GRPO: Training Flow Matching Models via Online RL", eq. 8-9; the
reference implementation is flow_grpo's `diffusers_patch/sd3_sde_with_logprob.py`) replaces it
by an SDE with the same marginals,

    dx = [v + sigma_t^2 / (2 s) * (x + (1 - s) v)] ds + sigma_t dw,   sigma_t = a * sqrt(s / (1 - s))

with s the flow sigma (noise share: x_s = (1 - s) x0 + s eps), v the model's velocity and
a the noise level (0.7 in Flow-GRPO's Wan config). Its Euler-Maruyama step from s to s_next
(dt = s_next - s < 0) is a Gaussian:

    mean = x * (1 + sigma_t^2 dt / (2 s)) + v * (1 + sigma_t^2 (1 - s) / (2 s)) * dt
    std  = sigma_t * sqrt(-dt)
    log p(x' | x) = mean over elements of [-(x' - mean)^2 / (2 std^2) - log std - log(2 pi) / 2]

computed in fp32 (bf16 overflows the square). At s = 1 (the first step) sigma_t is infinite;
Flow-GRPO evaluates it at the next sigma of the schedule instead (its `sigma_max`), and so does
this module. With a = 0 the step is exactly the ODE's Euler step x + v dt (diffusers'
FlowMatchEulerDiscreteScheduler), with no log-probability.

The KL between the trained model's step and the reference's (same x, same std) is the Gaussian
KL ||mean_theta - mean_ref||^2 / (2 std^2), averaged over elements (flow_grpo's Wan script:
divided by 2 sigma_t^2 dt, the same quantity).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def flow_sigmas(steps: int, shift: float) -> torch.Tensor:
    """The Euler flow sampler's sigmas (steps + 1 values, 1 -> 0) at a flow shift, exactly as
    diffusers' FlowMatchEulerDiscreteScheduler sets them (the Wan pipelines' shifted schedule)."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    sched = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=shift)
    sched.set_timesteps(steps)
    return sched.sigmas.float().cpu()


def step_std(sigmas: torch.Tensor, i: int, noise_level: float) -> tuple[float, float]:
    """(sigma_t, std) of step i (sigmas[i] -> sigmas[i + 1]); see the module doc."""
    s, s_next = float(sigmas[i]), float(sigmas[i + 1])
    s_for = float(sigmas[1]) if s >= 1.0 else s  # Flow-GRPO's sigma_max at s = 1
    sigma_t = noise_level * math.sqrt(s_for / (1.0 - s_for)) if noise_level > 0 else 0.0
    return sigma_t, sigma_t * math.sqrt(max(s - s_next, 0.0))


@dataclass
class Step:
    mean: torch.Tensor  # fp32, like x
    std: float
    sigma_t: float


def sde_mean(x: torch.Tensor, v: torch.Tensor, sigmas: torch.Tensor, i: int, noise_level: float) -> Step:
    """The Gaussian's mean and std of step i (fp32); noise level 0: the Euler ODE step."""
    s, s_next = float(sigmas[i]), float(sigmas[i + 1])
    dt = s_next - s
    sigma_t, std = step_std(sigmas, i, noise_level)
    x, v = x.float(), v.float()
    if noise_level <= 0:
        return Step(x + v * dt, 0.0, 0.0)
    mean = x * (1 + sigma_t**2 / (2 * s) * dt) + v * (1 + sigma_t**2 * (1 - s) / (2 * s)) * dt
    return Step(mean, std, sigma_t)


def log_prob(x_next: torch.Tensor, mean: torch.Tensor, std: float) -> torch.Tensor:
    """The Gaussian log-density of x_next per sample, averaged over its elements (fp32)."""
    if std <= 0:
        raise ValueError("the ODE step (noise level 0) has no log-probability")
    d = x_next.float() - mean
    lp = -(d**2) / (2 * std**2) - math.log(std) - LOG_SQRT_2PI
    return lp.mean(dim=tuple(range(1, lp.ndim)))


def kl_to_reference(mean: torch.Tensor, ref_mean: torch.Tensor, std: float) -> torch.Tensor:
    """KL(policy step || reference step) per sample, averaged over elements."""
    d = mean.float() - ref_mean.float()
    kl = d**2 / (2 * std**2)
    return kl.mean(dim=tuple(range(1, kl.ndim)))


def sde_step(
    x: torch.Tensor,
    v: torch.Tensor,
    sigmas: torch.Tensor,
    i: int,
    noise_level: float,
    generator: torch.Generator | None = None,
    noise: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One sampler step: (x_next, log p(x_next | x) per sample, None for the ODE step). The noise
    is drawn on the CPU from `generator` (fp32), so the same seed gives the same step anywhere;
    or given (`noise`, like x: a part of a batch drawn whole, as a split rollout uses it)."""
    st = sde_mean(x, v, sigmas, i, noise_level)
    if st.std <= 0:
        return st.mean, None
    if noise is None:
        noise = torch.randn(tuple(x.shape), generator=generator, dtype=torch.float32)
    eps = noise.to(x.device, torch.float32)
    x_next = st.mean + st.std * eps
    return x_next, log_prob(x_next, st.mean, st.std)
