"""SSPO's motion evidence: Farneback optical flow between frames 0.5 s apart, and a rule-based
reading of it (the LLM reads the same numbers when one is configured).

Sampling and Farneback parameters are RAPO++'s (Vchitect/RAPO phyaware_wan2.1.py,
extract_optical_flow: every int(fps * 0.5) frames; pyr_scale 0.5, levels 3, winsize 15,
iterations 3, poly_n 5, poly_sigma 1.2, flags 0), which records the mean (x, y) flow per pair.
The same script's physics prompt names what to look for: sudden reversals without an external
force (inertia) and inconsistent magnitudes. We measure exactly those two.
"""

from __future__ import annotations

import cv2
import numpy as np
from pydantic import BaseModel, Field

SAMPLE_INTERVAL_S = 0.5
FARNEBACK = dict(pyr_scale=0.5, levels=3, winsize=15, iterations=3, poly_n=5, poly_sigma=1.2, flags=0)
# Mean flow shorter than this share of the frame width per 0.5 s has no reliable direction
# (0.4 % of 640 px is 2.6 px).
MIN_DIRECTION = 0.004


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
    """RAPO++'s flow statistics on (T, H, W, 3) uint8 RGB frames."""
    step = max(1, int(fps * interval_s))
    picked = frames[::step]
    grays = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in picked]
    width = frames.shape[2]
    flows: list[tuple[float, float]] = []
    for a, b in zip(grays, grays[1:]):
        f = cv2.calcOpticalFlowFarneback(a, b, None, **FARNEBACK)
        flows.append((float(np.mean(f[..., 0])), float(np.mean(f[..., 1]))))
    vec = np.asarray(flows, dtype=np.float64).reshape(-1, 2) / width
    mags = np.linalg.norm(vec, axis=1)
    reversals = directed = 0
    jumps = []
    for k in range(len(vec) - 1):
        big = max(mags[k], mags[k + 1])
        if big > MIN_DIRECTION:
            jumps.append(abs(mags[k + 1] - mags[k]) / big)
        if mags[k] > MIN_DIRECTION and mags[k + 1] > MIN_DIRECTION:
            directed += 1
            reversals += int(float(vec[k] @ vec[k + 1]) < 0)
    return FlowStats(interval_frames=step, flows=[(round(x, 4), round(y, 4)) for x, y in flows],
                     mean_magnitude=float(mags.mean()) if len(mags) else 0.0, reversals=reversals,
                     directed_pairs=directed, jump=float(np.mean(jumps)) if jumps else 0.0)


def physics_score(stats: FlowStats) -> float:
    """1 for steady motion; each of reversals and magnitude jumps can take off up to half."""
    return float(np.clip(1.0 - 0.5 * stats.reversal_rate - 0.5 * min(stats.jump, 1.0), 0.0, 1.0))


def physics_conclusion(stats: FlowStats) -> tuple[bool, str]:
    """The rule-based verdict, worded like RAPO++'s examples."""
    problems = []
    if stats.reversal_rate > 0.2:
        problems.append(f"the overall motion reverses direction in {stats.reversals} of "
                        f"{stats.directed_pairs} consecutive samples without an external force, "
                        "which violates inertia")
    if stats.jump > 0.5:
        problems.append(f"motion magnitude jumps by {stats.jump:.0%} between samples on average, "
                        "an inconsistent force application")
    if not problems:
        return True, ("No obvious physical inconsistency: the motion is smooth and directional, "
                      "with no sudden reversals or unrealistic oscillations.")
    return False, "; ".join(problems).capitalize() + "."
