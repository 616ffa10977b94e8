"""SSPO's motion evidence: Farneback optical flow between frames 0.5 s apart, read by the reward
suite's physics measure, and a rule-based verdict on it (the LLM reads the same numbers when one
is configured).

Sampling and Farneback parameters are RAPO++'s (Vchitect/RAPO phyaware_wan2.1.py,
extract_optical_flow: every int(fps * 0.5) frames; pyr_scale 0.5, levels 3, winsize 15,
iterations 3, poly_n 5, poly_sigma 1.2, flags 0), which records the mean (x, y) flow per pair;
those vectors are what the LLM and the log see. The same script's physics prompt names what to
look for: sudden reversals without an external force (inertia) and inconsistent magnitudes.
Both are measured, and scored, by the reward suite's physics-plausibility measure
(cinerl.rewards.components.motion.motion_steadiness and plausibility) on these vectors taken as
one whole-frame cell, so SSPO and the reward component count reversals and speed changes alike.
"""

from __future__ import annotations

import cv2
import numpy as np
from pydantic import BaseModel, Field

from cinerl.rewards.components.motion import motion_steadiness, plausibility
from cinerl.rewards.core.analysis import DEFAULT_MAX_SIDE

SAMPLE_INTERVAL_S = 0.5
FARNEBACK = dict(pyr_scale=0.5, levels=3, winsize=15, iterations=3, poly_n=5, poly_sigma=1.2, flags=0)


class FlowStats(BaseModel):
    interval_frames: int
    flows: list[tuple[float, float]] = Field(description="mean (x, y) flow per sampled pair, pixels")
    mean_magnitude: float = Field(description="mean |flow| as a share of the frame width")
    reversals: int = Field(description="consecutive pairs whose mean directions oppose")
    directed_pairs: int = Field(description="consecutive pairs where both flows have a direction")
    jump: float = Field(description="mean relative change of flow magnitude between samples")

    @property
    def reversal_rate(self) -> float:
        return self.reversals / self.directed_pairs if self.directed_pairs else 0.0


def sample_flows(frames: np.ndarray, fps: int, interval_s: float = SAMPLE_INTERVAL_S) -> FlowStats:
    """RAPO++'s flow vectors on (T, H, W, 3) uint8 RGB frames, with the reward suite's reversal
    and speed-change statistics of them (in px/frame at a 256-px long side)."""
    step = max(1, int(fps * interval_s))
    picked = frames[::step]
    grays = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in picked]
    height, width = frames.shape[1:3]
    flows: list[tuple[float, float]] = []
    for a, b in zip(grays, grays[1:]):
        f = cv2.calcOpticalFlowFarneback(a, b, None, **FARNEBACK)
        flows.append((float(np.mean(f[..., 0])), float(np.mean(f[..., 1]))))
    vec = np.asarray(flows, dtype=np.float64).reshape(-1, 2)
    steady = motion_steadiness(vec[:, None, :] * (DEFAULT_MAX_SIDE / max(height, width) / step))
    mags = np.linalg.norm(vec / width, axis=1)
    return FlowStats(
        interval_frames=step,
        flows=[(round(x, 4), round(y, 4)) for x, y in flows],
        mean_magnitude=float(mags.mean()) if len(mags) else 0.0,
        reversals=steady.reversals,
        directed_pairs=steady.reliable_steps,
        jump=steady.mean_speed_change,
    )


def physics_score(stats: FlowStats) -> float:
    """The reward suite's plausibility value of these statistics (motion.plausibility)."""
    return plausibility(stats.reversal_rate, stats.jump)


def physics_conclusion(stats: FlowStats) -> tuple[bool, str]:
    """The rule-based verdict, worded like RAPO++'s examples."""
    problems = []
    if stats.reversal_rate > 0.2:
        problems.append(
            f"the overall motion reverses direction in {stats.reversals} of "
            f"{stats.directed_pairs} consecutive samples without an external force, "
            "which violates inertia"
        )
    if stats.jump > 0.5:
        problems.append(
            f"motion magnitude jumps by {stats.jump:.0%} between samples on average, "
            "an inconsistent force application"
        )
    if not problems:
        return True, (
            "No obvious physical inconsistency: the motion is smooth and directional, "
            "with no sudden reversals or unrealistic oscillations."
        )
    return False, "; ".join(problems).capitalize() + "."
