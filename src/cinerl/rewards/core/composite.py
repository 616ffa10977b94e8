"""The composite reward: run every component once per clip and combine them by group.

* group score = mean of the values of that group's components whose status is "ok";
  a group with no ok component has score None and drops out;
* total = sum_g w_g * group_g / sum_g w_g over the groups that have a score and a positive weight
  (the weights renormalise); ``RewardBreakdown.weights`` holds exactly those renormalised weights
  (they sum to 1), ``groups`` holds every group's score or None;
* if nothing at all can be scored (no group with both a score and a positive weight) the total is
  0.0, ``weights`` is empty, and every component's ``reason`` says why it did not score.

Weights given to ``Scorer`` replace the defaults entirely; a known group missing from them gets
weight 0 (it is still reported, it does not count). Unknown group names and negative or
non-finite weights raise ValueError.
"""

from __future__ import annotations

import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor

from cinerl.rewards.core.analysis import ClipAnalysis
from cinerl.rewards.core.context import ScoreContext
from cinerl.rewards.core.registry import registered_components, registered_groups, run_component
from cinerl.rewards.config import scoring_workers
from cinerl.core.schema import Clip, ComponentScore, RewardBreakdown

# the default group weights are defined once, with the settings (core/settings.py says why)
from cinerl.core.settings import DEFAULT_WEIGHTS, RewardSettings, env_settings

log = logging.getLogger(__name__)


class Scorer:
    """Scores clips with the registered reward components.

    weights: group name -> non-negative weight (default: config.weights).
    components: names of the components to run (default: every registered component).
    config: the `rewards` settings group: models, device, weights (default: from the
    environment, env_settings().rewards).
    analysis_kwargs: passed to ClipAnalysis (max_side, max_flow_pairs, flow_preset).
    """

    def __init__(
        self,
        weights: dict[str, float] | None = None,
        components: list[str] | None = None,
        config: RewardSettings | None = None,
        **analysis_kwargs,
    ):
        self.config = config if config is not None else env_settings().rewards
        registry = registered_components()
        if components is None:
            self.specs = list(registry.values())
        else:
            unknown = [c for c in components if c not in registry]
            if unknown:
                raise ValueError(f"unknown reward component(s) {unknown}; registered: {sorted(registry)}")
            self.specs = [registry[c] for c in dict.fromkeys(components)]
        known_groups = list(dict.fromkeys([*DEFAULT_WEIGHTS, *registered_groups()]))
        w = dict(self.config.weights if weights is None else weights)
        bad = [g for g in w if g not in known_groups]
        if bad:
            raise ValueError(f"unknown reward group(s) in weights: {bad}; known groups: {known_groups}")
        for g, v in w.items():
            try:
                fv = float(v)
            except (TypeError, ValueError):
                raise ValueError(f"weight for group {g!r} must be a number, got {v!r}") from None
            if not math.isfinite(fv) or fv < 0:
                raise ValueError(f"weight for group {g!r} must be a finite number >= 0, got {v!r}")
            w[g] = fv
        if sum(w.values()) <= 0:
            raise ValueError("at least one group weight must be positive")
        self.weights: dict[str, float] = w
        self.analysis_kwargs = analysis_kwargs
        # groups reported in every breakdown: those of the components run, then weighted ones
        self.groups = list(
            dict.fromkeys([*(s.group for s in self.specs), *(g for g, v in w.items() if v > 0)])
        )

    @property
    def component_names(self) -> list[str]:
        return [s.name for s in self.specs]

    def analyse(self, clip: Clip) -> ClipAnalysis:
        return ClipAnalysis(clip, config=self.config, **self.analysis_kwargs)

    def score(
        self,
        clip: Clip,
        ctx: ScoreContext | None = None,
        analysis: ClipAnalysis | None = None,
        timings: dict[str, float] | None = None,
    ) -> RewardBreakdown:
        """Score one clip. Never raises for a failing component (it is reported unavailable).

        Components run on ``scoring_workers(config)`` threads; the breakdown does not depend on
        the number. ``timings``, when given, receives each component's wall seconds (shared
        analysis work such as the flow or the frame features counts for whichever component
        asked first; with several workers the times overlap)."""
        t0 = time.perf_counter()
        ctx = ctx if ctx is not None else ScoreContext()
        if analysis is None:
            analysis = self.analyse(clip)
        if timings is not None:
            timings["analysis"] = time.perf_counter() - t0

        def timed(spec) -> tuple[ComponentScore, float]:
            t1 = time.perf_counter()
            return run_component(spec, analysis, ctx), time.perf_counter() - t1

        workers = min(scoring_workers(self.config), len(self.specs))
        if workers > 1:  # shared analysis data is computed once under its own lock (ClipAnalysis)
            with ThreadPoolExecutor(workers, thread_name_prefix="reward") as pool:
                results = list(pool.map(timed, self.specs))
        else:
            results = [timed(spec) for spec in self.specs]
        comps = {spec.name: res for spec, (res, _) in zip(self.specs, results)}
        if timings is not None:
            timings.update({spec.name: sec for spec, (_, sec) in zip(self.specs, results)})
        return combine(comps, self.weights, self.groups, seconds=time.perf_counter() - t0)


def combine(
    components: dict[str, ComponentScore],
    weights: dict[str, float],
    groups: list[str] | None = None,
    seconds: float = 0.0,
) -> RewardBreakdown:
    """Group means of ok components, then the renormalised weighted total (see module docstring)."""
    groups = list(dict.fromkeys([*(groups or []), *(c.group for c in components.values())]))
    group_scores: dict[str, float | None] = {}
    for g in groups:
        vals = [
            c.value for c in components.values() if c.group == g and c.status == "ok" and c.value is not None
        ]
        group_scores[g] = float(sum(vals) / len(vals)) if vals else None
    used = {
        g: weights.get(g, 0.0) for g, s in group_scores.items() if s is not None and weights.get(g, 0.0) > 0
    }
    wsum = sum(used.values())
    if wsum > 0:
        norm = {g: v / wsum for g, v in used.items()}
        total = sum(norm[g] * group_scores[g] for g in norm)  # type: ignore[operator]
    else:
        norm, total = {}, 0.0
        log.info(
            "no reward group could be scored; total = 0.0 (%s)",
            "; ".join(f"{n}: {c.status} ({c.reason})" for n, c in components.items()),
        )
    return RewardBreakdown(
        total=float(min(1.0, max(0.0, total))),
        components=components,
        groups=group_scores,
        weights=norm,
        seconds=float(seconds),
    )
