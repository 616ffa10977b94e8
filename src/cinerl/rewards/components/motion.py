"""Motion over the whole clip, from the shared DIS optical flow: VBench dynamic degree (flow proxy),
loop-break (FFT periodicity of per-patch motion) and SSPO-style physics plausibility."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from cinerl.rewards.core.analysis import ClipAnalysis
from cinerl.rewards.core.context import ScoreContext
from cinerl.rewards.core.registry import not_applicable, ok, register

# ---- dynamic degree -----------------------------------------------------------------------------
VBENCH_FPS = 8  # VBench samples frames at ~8 fps (interval round(fps / 8))
VBENCH_TOP = 0.05  # mean of the top 5 % flow magnitudes per pair
VBENCH_THRESHOLD = 6.0  # pixels at a 256-px short side, scaled by min(H, W) / 256

# ---- loop-break -----------------------------------------------------------------------------------
LOOP_GRID = 4  # 4 x 4 patches
LOOP_MIN_SAMPLES = 8
LOOP_MIN_CYCLES = 2  # a loop repeats: only frequencies with >= 2 cycles in the clip count
LOOP_MIN_AC_STD = 0.05  # px/frame at 256 px: series flatter than this carry no periodicity
LOOP_MIN_PERIOD_S = 0.5  # faster "cycles" are shake or flicker, not a loop
LOOP_WORDS = re.compile(
    r"\b(loop(s|ed|ing)?|repeat(s|ed|ing)?|cycl(e|es|ic|ing)|back and forth|"
    r"over and over|seamless loop)\b",
    re.I,
)

# ---- physics plausibility -------------------------------------------------------------------------
PHYS_INTERVAL_S = 0.5
PHYS_GRID = 3
PHYS_MIN_SPEED = 0.25  # px/frame at 256 px: slower patches have no reliable direction
PHYS_SPEED_EPS = 0.25
PHYS_CHANGE_SCALE = 0.5


def _nearest_rows(analysis: ClipAnalysis, starts: np.ndarray) -> np.ndarray:
    """Rows of the shared flow whose start frame is nearest each requested start (deduplicated)."""
    pairs = analysis.flow_pairs
    k = np.clip(np.searchsorted(pairs, starts), 0, len(pairs) - 1)
    km = np.clip(k - 1, 0, len(pairs) - 1)
    pick = np.where(np.abs(pairs[km] - starts) <= np.abs(pairs[k] - starts), km, k)
    return np.unique(pick)


def _patch_means(flow: np.ndarray, grid: int) -> np.ndarray:
    """(P, h, w, C) -> (P, grid*grid, C) mean per patch of a grid x grid split (vectorised)."""
    p, h, w, c = flow.shape
    ys = np.linspace(0, h, grid + 1).astype(int)
    xs = np.linspace(0, w, grid + 1).astype(int)
    sums = np.add.reduceat(np.add.reduceat(flow, ys[:-1], axis=1), xs[:-1], axis=2)  # (P, g, g, C)
    area = np.outer(np.diff(ys), np.diff(xs)).astype(np.float32)[None, :, :, None]
    return (sums / area).reshape(p, grid * grid, c).astype(np.float32)


@register(name="dynamic_degree", group="visual_quality")
def dynamic_degree(analysis: ClipAnalysis, ctx: ScoreContext):
    """VBench dynamic degree with OpenCV DIS flow standing in for RAFT (a proxy).

    VBench (Huang et al. 2024, dynamic_degree.py): frames at ~8 fps; per consecutive pair, the mean
    of the top 5 % optical-flow magnitudes; threshold 6.0 * min(H, W) / 256; the video is dynamic
    when at least round(4 * n / 16) pairs (n = sampled frames, last two pairs not counted) exceed it.
    Here each 8-fps pair's displacement is the shared consecutive-frame DIS flow (nearest pair)
    times the sampling interval, at analysis resolution. value = 1 when VBench's rule says dynamic,
    else the share of the required pairs that moved (count / needed), so a frozen clip scores 0.
    """
    t = analysis.num_frames
    if t < 3 or len(analysis.flow_pairs) < 1:
        return not_applicable("need at least 3 frames")
    interval = max(1, round(analysis.fps / VBENCH_FPS))
    starts = np.arange(0, t - 1, interval)
    n_sampled = len(np.arange(0, t, interval))
    rows = _nearest_rows(analysis, starts)
    mags = np.linalg.norm(analysis.flow[rows], axis=-1).reshape(len(rows), -1)
    cut = max(1, int(mags.shape[1] * VBENCH_TOP))
    top = -np.sort(-mags, axis=1)[:, :cut].mean(axis=1) * interval
    # each row stands for len(starts) / len(rows) of VBench's pairs
    per_row = len(starts) / len(rows)
    thres = VBENCH_THRESHOLD * min(analysis.height, analysis.width) / 256.0
    counted = top[: max(1, len(top) - max(0, round(2 / per_row)))]
    count = float((counted > thres).sum() * per_row)
    needed = max(1, round(4 * n_sampled / 16))
    dynamic = count >= needed
    return ok(
        1.0 if dynamic else count / needed,
        vbench_dynamic=bool(dynamic),
        moving_pairs=count,
        needed_pairs=needed,
        threshold_px=thres,
        top5_mean_px=[round(float(x), 3) for x in top],
        interval=interval,
        proxy="OpenCV DIS flow at analysis resolution instead of RAFT",
        formula="1 if >= round(4*n/16) pairs have mean top-5% |flow| > 6*min(H,W)/256, else count/needed",
    )


def periodicity(series: np.ndarray, k_max: int | None = None) -> tuple[float, float, int]:
    """(normalised spectral peak share, AC std, peak frequency index) of one 1-D series.

    The series is linearly detrended; P_k = |rfft|^2 for k >= 1. share = max_{2 <= k <= k_max} P_k /
    sum P_k (k_max: the highest frequency whose period is still a loop, all when None),
    normalised against white noise: (share - E_noise) / (1 - E_noise), E_noise = H_n / n (the
    expected largest share of n exponential powers; H_n the n-th harmonic number), clipped to [0, 1].
    """
    n = len(series)
    x = np.arange(n, dtype=np.float64) - (n - 1) / 2.0
    y = series.astype(np.float64)
    y = y - y.mean() - x * (x @ (y - y.mean())) / max(float(x @ x), 1e-12)  # least-squares line removed
    std = float(y.std())
    p = np.abs(np.fft.rfft(y))[1:] ** 2
    hi = len(p) if k_max is None else min(len(p), int(k_max))
    if p.sum() <= 0 or hi < LOOP_MIN_CYCLES:
        return 0.0, std, 0
    k = int(np.argmax(p[LOOP_MIN_CYCLES - 1 : hi])) + LOOP_MIN_CYCLES - 1
    share = float(p[k] / p.sum())
    m = len(p)
    e_noise = float(np.sum(1.0 / np.arange(1, m + 1))) / m
    return float(min(1.0, max(0.0, (share - e_noise) / (1.0 - e_noise)))), std, k + 1


@register(name="loop_break", group="temporal_stability")
def loop_break(analysis: ClipAnalysis, ctx: ScoreContext):
    """Penalise near-periodic loops: FFT periodicity of per-patch motion, inverted when the prompt
    asks for a loop or repetition.

    Series: on a 4 x 4 patch grid, the mean flow u, v and magnitude |F| of each patch over evenly
    spaced flow pairs (px/frame at 256 px). Each series' periodicity (see :func:`periodicity`)
    is weighted by its detrended standard deviation; series flatter than 0.05 px/frame are left
    out (steady motion has no period). loopiness = weighted mean periodicity (0 when nothing
    moves); value = 1 - loopiness, or loopiness when the prompt says loop/repeat/cycle.
    """
    rows = analysis.uniform_flow_rows
    if len(rows) < LOOP_MIN_SAMPLES:
        return not_applicable(f"need at least {LOOP_MIN_SAMPLES} evenly spaced flow pairs, have {len(rows)}")
    flows = analysis.flow[rows] * analysis.flow_unit_scale
    pm = _patch_means(flows, LOOP_GRID)  # (M, G, 2)
    mag = _patch_means(np.linalg.norm(flows, axis=-1, keepdims=True), LOOP_GRID)[..., 0]  # (M, G)
    series = (
        [pm[:, g, 0] for g in range(pm.shape[1])]
        + [pm[:, g, 1] for g in range(pm.shape[1])]
        + [mag[:, g] for g in range(mag.shape[1])]
    )
    step_s = float(np.median(np.diff(analysis.flow_pairs[rows]))) / analysis.fps
    k_max = int(len(rows) * step_s / LOOP_MIN_PERIOD_S)
    num = den = 0.0
    peaks: dict[int, float] = {}
    for s in series:
        per, std, k = periodicity(s, k_max)
        if std < LOOP_MIN_AC_STD:
            continue
        num += per * std
        den += std
        peaks[k] = peaks.get(k, 0.0) + std
    loopiness = num / den if den > 0 else 0.0
    wants_loop = bool(LOOP_WORDS.search(ctx.prompt or ""))
    dominant = max(peaks, key=peaks.get) if peaks else 0
    seconds = len(rows) and (analysis.flow_pairs[rows[-1]] - analysis.flow_pairs[rows[0]]) / analysis.fps
    return ok(
        loopiness if wants_loop else 1.0 - loopiness,
        loopiness=loopiness,
        prompt_asks_loop=wants_loop,
        dominant_cycles=dominant,
        dominant_period_s=(seconds / dominant if dominant else None),
        samples=len(rows),
        moving_series=int(sum(1 for _ in peaks.values())),
        formula="loopiness = std-weighted mean over patch series (u, v, |F|) of normalised FFT peak "
        "share at >= 2 cycles; value = 1 - loopiness (loopiness if the prompt asks to loop)",
    )


@dataclass(frozen=True)
class MotionSteadiness:
    """What inertia says about a sequence of motion samples 0.5 s apart (see motion_steadiness)."""

    reversals: int  # consecutive reliable samples of a cell whose directions oppose
    reliable_steps: int  # consecutive samples of a cell where both speeds are reliable
    mean_speed_change: float
    mean_speed: float

    @property
    def reversal_rate(self) -> float:
        return self.reversals / self.reliable_steps if self.reliable_steps else 0.0

    @property
    def value(self) -> float:
        return plausibility(self.reversal_rate, self.mean_speed_change)


def plausibility(reversal_rate: float, speed_change: float) -> float:
    """The physics-plausibility value: (1 - reversal rate) * exp(-mean speed change / 0.5)."""
    return float((1.0 - reversal_rate) * math.exp(-speed_change / PHYS_CHANGE_SCALE))


def motion_steadiness(samples: np.ndarray) -> MotionSteadiness:
    """Reversals and speed changes of (S, G, 2) mean flow vectors, S samples 0.5 s apart of G
    cells (or one whole frame), in px/frame at a 256-px long side. For consecutive samples of a
    cell: a reversal when both speeds exceed 0.25 px/frame and the directions are more than 90
    degrees apart; a speed change of |s1 - s0| / (max(s0, s1) + 0.25). The one physics measure:
    the reward component below and SSPO (cinerl.training.sspo.physics) both read it."""
    m = np.asarray(samples)
    m = (m if np.issubdtype(m.dtype, np.floating) else m.astype(np.float64)).reshape(len(m), -1, 2)
    speed = np.linalg.norm(m, axis=-1)  # (S, G)
    if len(m) < 2:
        return MotionSteadiness(0, 0, 0.0, float(speed.mean()) if speed.size else 0.0)
    a, b = m[:-1], m[1:]
    sa, sb = speed[:-1], speed[1:]
    reliable = (sa > PHYS_MIN_SPEED) & (sb > PHYS_MIN_SPEED)
    reversals = int((((a * b).sum(-1) < 0) & reliable).sum())
    change = float(np.mean(np.abs(sb - sa) / (np.maximum(sa, sb) + PHYS_SPEED_EPS)))
    return MotionSteadiness(reversals, int(reliable.sum()), change, float(speed.mean()))


@register(name="physics_plausibility", group="temporal_stability")
def physics_plausibility(analysis: ClipAnalysis, ctx: ScoreContext):
    """Flow statistics at 0.5 s intervals, as RAPO++'s SSPO stage samples them, scored by rule.

    At every 0.5 s the mean flow vector of each cell of a 3 x 3 grid (px/frame at 256 px, the
    shared DIS flow nearest that time), read by :func:`motion_steadiness`. Inertia makes real
    motion change slowly over half a second, so
    value = (1 - reversal rate) * exp(-mean speed change / 0.5). (SSPO hands these statistics to
    an LLM; this is a deterministic rule over the same statistics.)
    """
    step = max(1, round(analysis.fps * PHYS_INTERVAL_S))
    starts = np.arange(0, analysis.num_frames - 1, step)
    if len(starts) < 3 or len(analysis.flow_pairs) < 1:
        return not_applicable(f"need at least 3 samples {PHYS_INTERVAL_S} s apart (clip too short)")
    rows = _nearest_rows(analysis, starts)
    if len(rows) < 3:
        return not_applicable("fewer than 3 distinct flow samples")
    m = _patch_means(analysis.flow[rows], PHYS_GRID) * analysis.flow_unit_scale  # (S, G, 2)
    st = motion_steadiness(m)
    return ok(
        st.value,
        reversal_rate=st.reversal_rate,
        reversals=st.reversals,
        reliable_steps=st.reliable_steps,
        mean_speed_change=st.mean_speed_change,
        samples=len(rows),
        interval_s=PHYS_INTERVAL_S,
        mean_speed=st.mean_speed,
        formula="(1 - reversal rate) * exp(-mean |s1-s0|/(max(s0,s1)+0.25) / 0.5), 3x3 cells, 0.5 s steps",
    )
