"""SSPO, RAPO++'s closed loop: generate, measure, rewrite, again.

Each iteration shoots the current prompt, reads the motion (Farneback flow 0.5 s apart, see
physics.py), asks a vision model for a 1-5 alignment score when one is configured (vision.py),
scores the clip, and rewrites the prompt from the evidence (through the LLM layer, or by rules
offline), keeping it under 120 words. Unlike the released RAPO++ script (Vchitect/RAPO
phyaware_wan2.1.py), every iteration's reward is kept and the BEST prompt is returned, not the
last. The backend, scorer, judge and LLM are built once per chain. Every finished iteration is
written to a CSV log (atomically, with its clip), so a killed chain resumes after the last
finished iteration with the same prompts.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from cinerl.core.inputs import UserError, check_out_dir, check_prompt
from cinerl.core.media import atomic_write_text, write_mp4
from cinerl.prompting.rapo import llm_bridge
from cinerl.training.sspo.physics import FlowStats, physics_conclusion, physics_score, sample_flows
from cinerl.prompting.rapo.retrieval import MAX_WORDS, limit_words
from cinerl.rewards.judges.vlm import Alignment
from cinerl.training.sspo.vision import VisionJudge
from cinerl.core.schema import ClipRequest, ComponentScore, RewardBreakdown

log = logging.getLogger(__name__)

LOG_NAME = "sspo_log.csv"
CHAIN_NAME = "chain.json"
# Shared by every iteration, as in RAPO++ (its NEGATIVE_PROMPT), so only the prompt changes.
NEGATIVE = "blurry, low quality, flicker, jitter, morphing, colour shift, deformed, watermark, text"
# Reward = weighted mean over the parts that could be measured (the reward suite's combine, with
# these three parts as its groups).
WEIGHTS = {"physics": 0.4, "clip_quality": 0.4, "alignment": 0.2}
LOG_COLUMNS = (
    "iteration",
    "prompt",
    "clip",
    "reward",
    "physics",
    "clip_quality",
    "alignment",
    "alignment_status",
    "physics_plausible",
    "physics_verdict",
    "physics_method",
    "flows",
    "rewrite_method",
    "next_prompt",
    "seconds",
)

PHYSICS_SYSTEM = (
    "You are an expert in physics and motion analysis. Judge whether the motion in a "
    "generated video is physically plausible (inertia, conservation of momentum, "
    "buoyancy, continuous force application). Answer with JSON "
    '{"plausible": bool, "conclusion": "one or two sentences"}.'
)
REWRITE_SYSTEM = (
    "You are a prompt engineering expert for diffusion-based text-to-video "
    "generation. Refine the prompt so that the next generated video better matches "
    "real-world physics and the intended semantics. Describe the expected video "
    "content directly; do not mention rules, analysis, or this instruction. Keep it "
    "under 120 words. Preserve the core intent but explicitly constrain motions, "
    "forces, object states, timings, and camera if helpful. Answer with JSON "
    '{"prompt": ...}.'
)


class SSPOConfig(BaseModel):
    prompt: str
    physics_law: str = ""
    iterations: int = Field(5, ge=1, le=50)
    backend: str = "previz"
    seed: int = 0
    width: int = Field(640, ge=32, le=4096)
    height: int = Field(360, ge=32, le=4096)
    fps: int = Field(24, ge=1, le=120)
    seconds: float = Field(5.0, gt=0, le=60)

    def chain_key(self) -> str:
        """What makes two chains the same chain (the iteration count may grow on resume)."""
        data = self.model_dump(exclude={"iterations"})
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


class Iteration(BaseModel):
    iteration: int
    prompt: str
    clip: str
    reward: float
    physics: float
    clip_quality: float | None
    alignment: float | None
    alignment_status: str
    physics_plausible: bool
    physics_verdict: str
    physics_method: str
    flows: list[tuple[float, float]]
    rewrite_method: str
    next_prompt: str
    seconds: float


class SSPOResult(BaseModel):
    prompt: str
    best_iteration: int
    best_prompt: str
    best_reward: float
    iterations: list[Iteration]
    log_csv: str
    resumed_from: int = Field(0, description="iterations found finished in the log at start")


# ---------------------------------------------------------------------------------------------
# rule-based rewrite

_STEADY = (  # (pattern, replacement): shaky or erratic wording -> steady wording
    (r"\b(?:fast |quick |rapid |shaky )?hand-?held(?: camera| cam)?", "steady tripod camera"),
    (r"\bshaky cam(?:era)?\b", "steady tripod camera"),
    (r"\bwhip pan\b", "slow pan"),
    (r"\bfrantic erratic motion\b", "smooth steady motion"),
    (r"\b(?:frantic|erratic|chaotic|jerky)\b", "steady"),
    (r"\bdynamic motion\b", "smooth continuous motion"),
)
_REVERSAL_FIX = "Motion continues smoothly in one direction, without sudden reversals."
_JUMP_FIX = "Speeds change gradually, with no sudden jumps."


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s.strip()]


def rule_rewrite(
    prompt: str,
    stats: FlowStats,
    physics_law: str = "",
    alignment: Alignment | None = None,
    limit: int = MAX_WORDS,
) -> str:
    """Rewrite from the evidence: calm shaky or erratic wording when motion reverses or jumps,
    then state the constraints the clip broke and the physical law. Idempotent once fixed."""
    text = " ".join(prompt.split())
    unsteady = stats.reversal_rate > 0.2 or stats.jump > 0.5
    if unsteady:
        for pat, rep in _STEADY:
            text = re.sub(pat, rep, text, flags=re.IGNORECASE)
    extra = []
    if stats.reversal_rate > 0.2 and _REVERSAL_FIX not in text:
        extra.append(_REVERSAL_FIX)
    if stats.jump > 0.5 and _JUMP_FIX not in text:
        extra.append(_JUMP_FIX)
    law = physics_law.strip().rstrip(".")
    if law and law.lower() not in text.lower():
        extra.append(f"The motion obeys {law[0].lower() + law[1:]}.")
    budget = limit - sum(len(e.split()) for e in extra)
    body = limit_words(text if text.endswith((".", "!", "?")) else text + ".", max(budget, 20))
    return limit_words(" ".join([body, *extra]), limit)


# ---------------------------------------------------------------------------------------------
# the loop


# The reward suite's components that need no story bible and measure what SSPO is about (steady,
# clean motion and a clean image); cheap enough to run every iteration.
CLIP_QUALITY = ("temporal_flicker", "flow_smoothness", "imaging_quality")


def _clip_quality_scorer():
    from cinerl.rewards import Scorer, registered_components

    registry = registered_components()
    names = [n for n in CLIP_QUALITY if n in registry]
    if not names:
        return None
    return Scorer(weights={registry[n].group: 1.0 for n in names}, components=names)


def clip_quality_components(scorer, clip, prompt: str) -> dict[str, ComponentScore]:
    """The reward suite's verdicts of the CLIP_QUALITY components on the clip."""
    if scorer is None:
        return {}
    from cinerl.rewards import ScoreContext

    return scorer.score(clip, ScoreContext(prompt=prompt)).components


def sspo_reward(
    physics: float, quality: dict[str, ComponentScore], alignment: float | None
) -> RewardBreakdown:
    """SSPO's reward, combined by the reward suite (cinerl.rewards.combine) over three groups:
    physics, clip_quality (the mean of the measured CLIP_QUALITY components) and alignment
    ((rating - 1) / 4), weighted by WEIGHTS and renormalised over the groups that were measured."""
    from cinerl.rewards import combine

    parts = {"physics": ComponentScore(name="physics", group="physics", status="ok", value=physics)}
    parts.update({n: c.model_copy(update={"group": "clip_quality"}) for n, c in quality.items()})
    if alignment is not None:
        parts["alignment"] = ComponentScore(name="alignment", group="alignment", status="ok", value=alignment)
    return combine(parts, WEIGHTS, groups=list(WEIGHTS))


def _write_log(path: Path, rows: list[Iteration]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(LOG_COLUMNS)
    for r in rows:
        d = r.model_dump()
        d["flows"] = json.dumps(d["flows"])
        w.writerow(["" if d[c] is None else d[c] for c in LOG_COLUMNS])
    atomic_write_text(path, buf.getvalue())


def read_log(path: Path) -> list[Iteration]:
    """The finished iterations of a chain, in order."""
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    out = []
    for r in rows:
        r = {k: (None if v == "" and k in ("clip_quality", "alignment") else v) for k, v in r.items()}
        r["flows"] = json.loads(r["flows"] or "[]")
        r["physics_plausible"] = r["physics_plausible"] == "True"
        out.append(Iteration.model_validate(r))
    return out


class SSPO:
    """One chain. Models (backend, scorer, vision judge, LLM) are built here, once."""

    def __init__(
        self,
        config: SSPOConfig,
        out_dir: Path,
        backend: Any = None,
        llm: Any = None,
        judge: VisionJudge | None = None,
    ):
        self.config = config
        self.out_dir = Path(out_dir)
        if backend is None or isinstance(backend, str):
            from cinerl.generation.registry import get_video_backend

            backend = get_video_backend(backend or config.backend)
        self.backend = backend
        self.scorer = _clip_quality_scorer()
        self.judge = judge or VisionJudge()
        self.llm = llm_bridge.resolve_llm(llm)

    def request(self, prompt: str) -> ClipRequest:
        c = self.config
        return ClipRequest(
            prompt=prompt,
            negative_prompt=NEGATIVE,
            width=c.width,
            height=c.height,
            fps=c.fps,
            num_frames=max(2, round(c.seconds * c.fps)),
            seed=c.seed,
        )

    def physics(self, prompt: str, stats: FlowStats) -> tuple[bool, str, str]:
        plausible, conclusion = physics_conclusion(stats)
        if self.llm is None:
            return plausible, conclusion, "rule"
        user = (
            f"Prompt for the video: {prompt}\nSequence of average optical flow vectors (x, y) "
            f"per 0.5 s sample: {stats.flows}"
        )
        out, method = llm_bridge.call(
            self.llm,
            PHYSICS_SYSTEM,
            user,
            llm_bridge.PhysicsVerdict,
            llm_bridge.PhysicsVerdict(plausible=plausible, conclusion=conclusion),
        )
        return out.plausible, out.conclusion, method

    def rewrite(self, prompt: str, stats: FlowStats, verdict: str, align: Alignment) -> tuple[str, str]:
        c = self.config
        ruled = rule_rewrite(prompt, stats, c.physics_law, align)
        if self.llm is None:
            return ruled, "rule"
        vlm = (
            f"score {align.score:.0f}/5. {align.explanation}"
            if align.status == "ok"
            else f"unavailable ({align.reason})"
        )
        user = (
            f"Related physical rule to obey: {c.physics_law or '(none given)'}\n"
            f"Original prompt: {c.prompt}\nCurrent prompt: {prompt}\nDetected mismatches:\n"
            f"- Optical-flow-based physics analysis: {verdict}\n"
            f"- VLM alignment assessment: {vlm}"
        )
        out, method = llm_bridge.call(
            self.llm,
            REWRITE_SYSTEM,
            user,
            llm_bridge.RewrittenPrompt,
            llm_bridge.RewrittenPrompt(prompt=ruled),
        )
        return limit_words(" ".join(out.prompt.split()), MAX_WORDS), method

    def iterate(self, i: int, prompt: str) -> Iteration:
        t0 = time.perf_counter()
        clip = self.backend.generate(self.request(prompt))
        clip_path = self.out_dir / f"iter_{i:02d}.mp4"
        write_mp4(clip.frames, clip.fps, clip_path)
        stats = sample_flows(clip.frames, clip.fps)
        phys = physics_score(stats)
        align = self.judge.assess(clip.frames, self.config.prompt)
        scored = sspo_reward(phys, clip_quality_components(self.scorer, clip, prompt), align.value)
        reward, vq = scored.total, scored.groups["clip_quality"]
        plausible, verdict, phys_method = self.physics(prompt, stats)
        next_prompt, method = self.rewrite(prompt, stats, verdict, align)
        return Iteration(
            iteration=i,
            prompt=prompt,
            clip=clip_path.name,
            reward=round(reward, 6),
            physics=round(phys, 6),
            clip_quality=None if vq is None else round(vq, 6),
            alignment=align.score,
            alignment_status=align.status if align.status == "ok" else f"unavailable: {align.reason}",
            physics_plausible=plausible,
            physics_verdict=verdict,
            physics_method=phys_method,
            flows=stats.flows,
            rewrite_method=method,
            next_prompt=next_prompt,
            seconds=round(time.perf_counter() - t0, 3),
        )

    def run(self, fresh: bool = False, on_iteration: Callable[[Iteration], None] | None = None) -> SSPOResult:
        c = self.config
        log_path, chain_path = self.out_dir / LOG_NAME, self.out_dir / CHAIN_NAME
        if fresh:
            for p in [log_path, chain_path, *self.out_dir.glob("iter_*.mp4")]:
                p.unlink(missing_ok=True)
        done: list[Iteration] = []
        if chain_path.exists():
            chain = json.loads(chain_path.read_text(encoding="utf-8"))
            if chain.get("key") != c.chain_key():
                raise UserError(
                    f"{self.out_dir} holds an SSPO chain of another prompt or other "
                    "settings; pass --fresh to replace it or choose another --out"
                )
            if log_path.exists():
                done = read_log(log_path)[: c.iterations]
        else:
            atomic_write_text(
                chain_path, json.dumps({"key": c.chain_key(), "config": c.model_dump()}, indent=2)
            )
        resumed = len(done)
        prompt = done[-1].next_prompt if done else c.prompt
        for i in range(len(done) + 1, c.iterations + 1):
            rec = self.iterate(i, prompt)
            done.append(rec)
            _write_log(log_path, done)
            if on_iteration:
                on_iteration(rec)
            prompt = rec.next_prompt
        best = max(done, key=lambda r: (r.reward, -r.iteration))
        return SSPOResult(
            prompt=c.prompt,
            best_iteration=best.iteration,
            best_prompt=best.prompt,
            best_reward=best.reward,
            iterations=done,
            log_csv=str(log_path),
            resumed_from=resumed,
        )


def run_sspo(
    config: SSPOConfig,
    out_dir: Path,
    fresh: bool = False,
    backend: Any = None,
    llm: Any = None,
    judge: VisionJudge | None = None,
    on_iteration: Callable[[Iteration], None] | None = None,
) -> SSPOResult:
    """Check the input, then run (or resume) one chain in out_dir."""
    config = config.model_copy(update={"prompt": check_prompt(config.prompt)})
    out_dir = check_out_dir(Path(out_dir))
    return SSPO(config, out_dir, backend=backend, llm=llm, judge=judge).run(
        fresh=fresh, on_iteration=on_iteration
    )
