"""CineRL's rewards for the prompt enhancer, as plain callables for TRL's `GRPOTrainer`.

Each completion (a detailed prompt) is rendered by a video backend of the registry and scored by
the reward suite's `Scorer` in the context of a bible planned from the simple prompt (the offline
planner, one scene; reference stills from the image backend), so consistency and alignment
measure whether the detailed prompt kept the simple prompt's story: `clip`. A clip that fails to
render scores None, which TRL skips (never 0). `fmt` is the prompt audit's format rules: the word
range of the shot's mode and no invented cast member.

TRL calls each function with `prompts`, `completions` and every other dataset column as lists
(here `seed_prompt`), plus `log_metric`; `clip` logs the mean of every reward component and
group, and the seconds spent rendering and scoring, so they reach TRL's logs and metrics.jsonl.
A step's renders and scores are jobs on an executor (executor/, `score_completion`): `local`
runs them in this process on `workers` threads with this object's backend and scorer, `ray` on a
pool of Ray actors, each keeping its own backend and scorer (executor.worker_cache) loaded
between steps; the rewards are the same either way. Written by hand because this is CineRL's own
reward, not a trainer: the trainer is TRL's.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
import uuid
import weakref
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cinerl.core.schema import Clip, ClipRequest, RewardBreakdown, Scene, StoryBible
from cinerl.core.settings import Settings
from cinerl.executor import Executor, Job, worker_cache
from cinerl.planning.agents import Mode
from cinerl.planning.prompt_audit import WORDS, word_count
from cinerl.training.datasets.prompt_pairs import enhancer_brief

log = logging.getLogger(__name__)


@dataclass
class Episode:
    """What one simple prompt's rewards need, made once: its bible, scene, mode and references."""

    seed_prompt: str
    bible: StoryBible
    scene: Scene
    mode: Mode
    brief: str
    character_refs: dict[str, np.ndarray] = field(default_factory=dict)
    location_ref: np.ndarray | None = None


def text_of(completion: Any) -> str:
    """A completion's text, conversational ([{role, content}]) or plain."""
    if isinstance(completion, list):
        return " ".join(
            str(m.get("content", "")) for m in completion if m.get("role", "assistant") == "assistant"
        ).strip()
    return str(completion).strip()


def word_score(n: int, lo: int, hi: int) -> float:
    """1 inside [lo, hi]; a linear ramp up to lo and down to 0 at 2*hi."""
    if n < lo:
        return n / lo
    if n > hi:
        return max(0.0, 1.0 - (n - hi) / hi)
    return 1.0


_CAPITAL = re.compile(r"(?:^|(?<=[.!?]\s)|(?<=\s))([A-Z][a-z'-]+)(,?)")


def invented_cast(text: str, episode: Episode) -> list[str]:
    """Names the brief does not give: a capitalised word inside a sentence, or one that opens a
    sentence the way a name is introduced ("Gandalf, a wizard ..."), that is no word of the
    brief (its cast, place and action). A rule of thumb written here: the planner's reader
    (prompt_facts) is built for seed prompts and takes "Dawn," for a person."""
    known = {w.lower() for w in re.findall(r"[A-Za-z'-]+", episode.brief)}
    found = []
    for m in _CAPITAL.finditer(text):
        start = m.start(1)
        opens = start == 0 or text[:start].rstrip().endswith((".", "!", "?"))
        if (not opens or m.group(2)) and m.group(1).lower() not in known:
            found.append(m.group(1))
    return sorted(set(found))


def format_score(text: str, episode: Episode) -> float:
    """The word range of the shot's mode (word_score), halved for an invented cast member or a
    bible character who is not in this scene."""
    lo, hi = WORDS[episode.mode]
    score = word_score(word_count(text), lo, hi)
    others = [
        c.name
        for c in episode.bible.characters
        if c.id not in episode.scene.character_ids and c.name.lower() in text.lower()
    ]
    if others or invented_cast(text, episode):
        score *= 0.5
    return score


class CineRLRewards:
    """The reward functions of one training run: `clip` and `fmt` (TRL names them by __name__)."""

    def __init__(
        self,
        backend: str = "previz",
        settings: Settings | None = None,
        width: int = 160,
        height: int = 90,
        fps: int = 8,
        seconds: float = 2.0,
        mode: Mode = "t2v",
        brief_level: str = "full",
        seed: int = 0,
        workers: int = 2,
        weights: dict[str, float] | None = None,
        components: list[str] | None = None,
        executor: Executor | None = None,
    ):
        from cinerl.generation.registry import get_image_backend, get_video_backend
        from cinerl.rewards import Scorer

        # what a worker in another process builds its own copy from (score_completion)
        self.spec = dict(
            backend=backend,
            settings=settings,
            width=width,
            height=height,
            fps=fps,
            seconds=seconds,
            mode=mode,
            brief_level=brief_level,
            seed=seed,
            workers=1,
            weights=weights,
            components=components,
        )
        self.settings = settings or Settings()
        self.backend = get_video_backend(backend, self.settings)
        self.image_backend = get_image_backend(self.settings.run.image_backend, self.settings)
        self.scorer = Scorer(weights=weights, components=components, config=self.settings.rewards)
        self.width, self.height, self.fps, self.seconds = width, height, fps, seconds
        self.mode, self.brief_level, self.seed, self.workers = mode, brief_level, seed, max(1, workers)
        self._episodes: dict[str, Episode] = {}
        self._lock = threading.Lock()
        self.calls: list[int] = []  # completions received per call (tests read it)
        self.last: list[RewardBreakdown | None] = []
        if executor is None:
            from cinerl.executor.local import LocalExecutor

            executor = LocalExecutor()
        self.executor = executor
        self.token = uuid.uuid4().hex  # how a job in this process finds this object
        _IN_PROCESS[self.token] = self

    def close(self) -> None:
        """Release the executor's workers (a Ray pool; nothing for the local one)."""
        self.executor.shutdown()

    @classmethod
    def from_config(cls, config, executor: Executor | None = None) -> "CineRLRewards":
        """From a trainer's or the evaluation's Config (the fields they share)."""
        return cls(
            executor=executor,
            backend=config.backend,
            width=config.width,
            height=config.height,
            fps=config.fps,
            seconds=config.seconds,
            mode=config.mode,
            brief_level=config.brief_level,
            seed=config.seed,
            workers=config.workers,
        )

    # -- the episode of a simple prompt --------------------------------------------------------
    def episode(self, seed_prompt: str) -> Episode:
        with self._lock:
            if seed_prompt not in self._episodes:
                with policy_rng_kept():
                    self._episodes[seed_prompt] = self._plan(seed_prompt)
            return self._episodes[seed_prompt]

    def _plan(self, seed_prompt: str) -> Episode:
        from cinerl.planning.offline import plan_story
        from cinerl.prompting.composer import reference_prompt_character, reference_prompt_location

        bible = plan_story(seed_prompt, seed=self.seed, scenes=1)
        scene = bible.scenes[0]
        size = (self.width, self.height)
        chars = {
            c: self.image_backend.generate_image(
                reference_prompt_character(bible.character(c)), *size, self.seed
            )
            for c in scene.character_ids
        }
        loc = self.image_backend.generate_image(
            reference_prompt_location(bible.location(scene.location_id)), *size, self.seed
        )
        brief = enhancer_brief(scene, bible, self.mode, self.brief_level)
        return Episode(seed_prompt, bible, scene, self.mode, brief, chars, loc)

    # -- one completion ------------------------------------------------------------------------
    def render(self, text: str, episode: Episode) -> Clip | None:
        """The clip of a detailed prompt (same seed for every completion), None when it fails."""
        if not text.strip():
            return None
        try:
            return self.backend.generate(
                ClipRequest(
                    prompt=text,
                    width=self.width,
                    height=self.height,
                    fps=self.fps,
                    num_frames=max(2, round(self.seconds * self.fps)),
                    seed=self.seed,
                    reference_image=episode.location_ref,
                )
            )
        except Exception as e:  # a render that fails is skipped by TRL, not scored 0
            log.warning("render failed (%s: %s); reward None", type(e).__name__, e)
            return None

    def score(self, clip: Clip, text: str, episode: Episode) -> RewardBreakdown:
        from cinerl.rewards import ScoreContext

        ctx = ScoreContext(
            prompt=text,
            scene=episode.scene,
            bible=episode.bible,
            character_refs=episode.character_refs,
            location_ref=episode.location_ref,
        )
        return self.scorer.score(clip, ctx)

    def one(self, text: str, episode: Episode) -> tuple[RewardBreakdown | None, float, float]:
        t0 = time.perf_counter()
        clip = self.render(text, episode)
        t1 = time.perf_counter()
        if clip is None:
            return None, t1 - t0, 0.0
        return self.score(clip, text, episode), t1 - t0, time.perf_counter() - t1

    def breakdowns(
        self, texts: list[str], seed_prompts: list[str]
    ) -> tuple[list[RewardBreakdown | None], float, float]:
        episodes = [self.episode(p) for p in seed_prompts]
        jobs = [
            Job(
                SCORE_COMPLETION,
                kwargs=dict(token=self.token, spec=self.spec, text=t, episode=e),
                key=f"completion_{i:03d}",
            )
            for i, (t, e) in enumerate(zip(texts, episodes))
        ]
        # the local executor runs a job on the thread that submits it: `workers` threads submit;
        # the Ray executor returns at once and its actors are the parallelism
        with (
            policy_rng_kept(),
            scoring_threads(self.settings),
            ThreadPoolExecutor(self.workers, thread_name_prefix="enhancer-reward") as pool,
        ):
            futures = list(pool.map(self.executor.submit, jobs))
        results = [f.result().value for f in futures]
        return [r[0] for r in results], sum(r[1] for r in results), sum(r[2] for r in results)

    # -- TRL's reward functions ---------------------------------------------------------------
    def clip(self, prompts, completions, seed_prompt, log_metric=None, **_) -> list[float | None]:
        """The reward suite's total of each completion's clip; None where it failed to render."""
        texts = [text_of(c) for c in completions]
        t0 = time.perf_counter()
        found, render_s, score_s = self.breakdowns(texts, list(seed_prompt))
        self.calls.append(len(completions))
        self.last = found
        if log_metric is not None:
            log_metric("time/reward_s", time.perf_counter() - t0)
            log_metric("time/render_s", render_s)
            log_metric("time/score_s", score_s)
            log_metric("clip/failed", float(sum(b is None for b in found)))
            for name, value in component_means(found).items():
                log_metric(name, value)
        return [None if b is None else b.total for b in found]

    def fmt(self, prompts, completions, seed_prompt, **_) -> list[float]:
        """The format reward: word range of the mode, no invented cast member."""
        return [format_score(text_of(c), self.episode(p)) for c, p in zip(completions, seed_prompt)]


@contextmanager
def policy_rng_kept():
    """Torch's global random state as it was before, after the rewards ran (torch.random.fork_rng).

    Why: TRL samples the completions from torch's global generator, and the reward suite's first
    clip loads its backbones, whose construction draws from it; so a run in a fresh process and
    one after another trainer (a test suite, a second run) sampled different completions from
    step 2 on and trained differently from the same seed. Kept, the policy's sampling depends on
    its seed alone."""
    import torch

    with torch.random.fork_rng():
        yield


def scoring_threads(settings: Settings):
    """Torch's CPU thread count held, for one step's renders and scores, at the count the reward
    backbones run on: models.cache.cpu_threads entered once around the whole step, so the jobs
    inside it join it and none restores the count until the step ends.

    Why: cpu_threads lowers the count for the first job in and restores it when the last leaves,
    so with the trainer on more threads than the rewards (torch's default on a 2-core box is 2)
    a job started while another is running, or between two, embeds its frames on a different
    thread count, and the image features differ in the 7th digit from run to run (measured:
    location_features 0.3336166 against 0.3336165 for the same clip in two processes with torch
    on 2 threads; bit-identical once pinned). GRPO divides each group's rewards by their spread
    and Adam each gradient by its size, so noise that small is enough to part two runs. "cpu":
    the count is torch's CPU threads, whatever device the backbones are on."""
    from cinerl.models.cache import cpu_threads

    return cpu_threads("cpu", settings.rewards.threads)


SCORE_COMPLETION = "cinerl.training.enhancer.reward:score_completion"
# the rewards objects of this process, by token: a job the local executor runs uses the driver's own
_IN_PROCESS: weakref.WeakValueDictionary[str, CineRLRewards] = weakref.WeakValueDictionary()


def score_completion(
    token: str, spec: dict, text: str, episode: Episode
) -> tuple[RewardBreakdown | None, float, float]:
    """The job of one completion: render and score it (CineRLRewards.one). In the driver's
    process it is the driver's rewards object; in a worker (a Ray actor) one built from `spec`
    once and kept for the actor's life (executor.worker_cache: the backend loads once)."""
    rewards = _IN_PROCESS.get(token)
    if rewards is None:
        key = ("enhancer-rewards", repr(sorted((k, repr(v)) for k, v in spec.items())))
        rewards = worker_cache(key, lambda: CineRLRewards(**spec))
    return rewards.one(text, episode)


def component_means(found: list[RewardBreakdown | None]) -> dict[str, float]:
    """The mean of each ok component ("component/<name>") and each scored group ("group/<name>")
    over the breakdowns that exist."""
    sums: dict[str, list[float]] = {}
    for b in found:
        if b is None:
            continue
        for name, c in b.components.items():
            if c.status == "ok" and c.value is not None and math.isfinite(c.value):
                sums.setdefault(f"component/{name}", []).append(float(c.value))
        for g, v in b.groups.items():
            if v is not None:
                sums.setdefault(f"group/{g}", []).append(float(v))
    return {k: sum(v) / len(v) for k, v in sums.items()}
