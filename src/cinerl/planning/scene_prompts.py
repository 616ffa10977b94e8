"""Each scene's base prompt for `cinerl make`, onto which the policy composes every attempt.

- `--llm` other than offline: PromptEnricher writes the scene's prompt, SelfCritic checks it
  against the bible and the previous scene and revises it; the revision is the base.
- `--from-plan DIR`: the plan's critique-revised prompts are the bases.
- offline: no base; the composer writes the whole prompt from the bible, as it always has.

A scene whose enrich or critique step still fails after its repairs has no base: it is shot with
the offline composition, and the report says so. The result is stored once per run (an artifact)
and every model call goes through the run store's cache, so a resumed run pays for nothing twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cinerl.core.settings import Settings
from cinerl.core.errors import UserError
from cinerl.core.media import atomic_write_text
from cinerl.core.store import RunStore
from cinerl.planning.agents import Mode, PromptEnricher, SelfCritic, offline_prompt
from cinerl.llm.types import LLMCache
from cinerl.planning.bible import PLAN_PROMPTS, PROMPTS_FILE, provider_for
from cinerl.core.schema import StoryBible
from cinerl.core.vocabulary import NEGATIVE_PRESETS

# (step key, step function returning (value, metas)) -> value
StepRunner = Callable[[str, Callable[[], tuple[Any, list[dict]]]], Any]

ARTIFACT = ("story", "scene_prompts")


def prompt_mode(index: int, shot_mode: str = "continuous") -> Mode:
    """Text-to-video where the clip starts from nothing (the first scene of a continuous film);
    image-to-video where it starts from a frame (the previous clip's last, or a keyframe)."""
    return "t2v" if index == 0 and shot_mode == "continuous" else "i2v"


def collect_step(metas: list[dict]) -> StepRunner:
    """The plain step runner: run it, keep its metas."""

    def run(key: str, fn: Callable[[], tuple[Any, list[dict]]]) -> Any:
        value, step_metas = fn()
        metas.extend(step_metas)
        return value

    return run


def write_prompts(
    bible: StoryBible,
    provider,
    cache: LLMCache | None,
    repairs: int = 2,
    shot_mode: str = "continuous",
    run_step: StepRunner | None = None,
    critique_fallbacks: bool = False,
    on_step: Callable[[str], None] | None = None,
) -> tuple[list[dict], list[dict]]:
    """The one enrich-and-critique loop (`cinerl make --llm` and `cinerl plan`): every scene's
    prompt in the mode its clip is shot in, checked and revised by the critic against the bible
    and the previous scene. `run_step(key, fn)` runs each model step (`cinerl plan` makes them
    resumable); `critique_fallbacks` also critiques an enrichment that fell back to the offline
    text (the plan keeps a revision for every scene). Returns (rows, step metas)."""
    metas: list[dict] = []
    run_step = run_step or collect_step(metas)
    enricher = PromptEnricher(provider, cache=cache, repairs=repairs)
    critic = SelfCritic(provider, cache=cache, repairs=repairs)
    rows: list[dict] = []
    previous = ""
    for sc in bible.scenes:
        mode = prompt_mode(sc.index, shot_mode)
        fell_back: dict[str, bool] = {}  # a step loaded from a saved plan did not fall back

        def enrich(sc=sc, mode=mode):
            text, meta = enricher.enrich(sc, bible, mode)
            fell_back["enrich"] = meta["fell_back"]
            return text, [meta]

        def critique(sc=sc, mode=mode, previous=previous):
            crit, meta = critic.critique(row["enriched"], sc, bible, mode, previous)
            fell_back["critique"] = meta["fell_back"]
            return crit.model_dump(mode="json"), [meta]

        row = {
            "scene": sc.index,
            "title": sc.title,
            "mode": mode,
            "enriched": "",
            "issues": [],
            "revised_prompt": "",
            "base_prompt": None,
            "warning": "",
            "negative_prompt": NEGATIVE_PRESETS["full"],
        }
        text = run_step(f"enrich_{sc.index:02d}", enrich)
        if on_step:
            on_step(f"scene {sc.index + 1} prompt")
        if critique_fallbacks or not fell_back.get("enrich"):  # else critiquing buys nothing
            row["enriched"] = text
            crit = run_step(f"critique_{sc.index:02d}", critique)
            row.update(issues=crit["issues"], revised_prompt=crit["revised_prompt"])
            if not (fell_back.get("enrich") or fell_back.get("critique")):
                row["base_prompt"] = crit["revised_prompt"]
            if on_step:
                on_step(f"scene {sc.index + 1} critique")
        if row["base_prompt"] is None:
            row["warning"] = (
                f"scene {sc.index + 1}: no usable {provider.name} prompt; shot with the offline composition"
            )
        # the critic's continuity check needs the previous scene as it will be described
        if critique_fallbacks:
            previous = row["revised_prompt"]
        else:
            previous = row["base_prompt"] or offline_prompt(sc, bible, mode).text(mode)
        rows.append(row)
    return rows, metas


def plan_prompts(plan_dir: str | Path, bible: StoryBible, shot_mode: str = "continuous") -> list[dict]:
    """The critique-revised prompts of a saved plan, one row per scene of its bible. A plan
    written for another shot mode is refused: its first prompt is text-to-video where the clip
    starts from a keyframe, or the other way round."""
    path = Path(plan_dir).expanduser() / PLAN_PROMPTS
    rows = []
    try:
        saved = {int(r["scene"]): r for r in json.loads(path.read_text(encoding="utf-8"))}
        for sc in bible.scenes:
            r = saved[sc.index]
            want = prompt_mode(sc.index, shot_mode)
            if r["mode"] != want:
                raise UserError(
                    f"--from-plan {plan_dir}: scene {sc.index + 1}'s prompt was written "
                    f"{r['mode']} but --mode {shot_mode} shoots it {want}; run `cinerl plan` "
                    f"with --mode {shot_mode}"
                )
            rows.append(
                {
                    "scene": sc.index,
                    "mode": r["mode"],
                    "enriched": r["prompt"],
                    "issues": r["issues"],
                    "revised_prompt": r["revised_prompt"],
                    "base_prompt": r["revised_prompt"],
                    "warning": "",
                }
            )
    except UserError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(
            f"--from-plan {plan_dir}: {PLAN_PROMPTS} does not match the plan's "
            f"scenes ({type(e).__name__}: {e})"
        ) from None
    return rows


def scene_prompts(bible: StoryBible, settings: Settings, store: RunStore, out_dir: Path) -> dict[int, str]:
    """Scene index -> base prompt (empty offline), computed once per run and stored."""
    path = store.artifact(*ARTIFACT, out_dir)
    if path is None:
        s = settings
        if s.plan.from_plan:
            saved = {
                "source": f"plan {s.plan.from_plan}",
                "scenes": plan_prompts(s.plan.from_plan, bible, s.run.shot_mode),
                "steps": [],
            }
        else:
            provider = provider_for(s, store)
            if provider.name == "offline":
                return {}
            rows, steps = write_prompts(bible, provider, store, s.llm.repairs, s.run.shot_mode)
            saved = {"source": f"{provider.name}:{provider.model}", "scenes": rows, "steps": steps}
        path = Path(out_dir) / PROMPTS_FILE
        atomic_write_text(path, json.dumps(saved, indent=2))
        store.record_artifact(*ARTIFACT, path, out_dir)
    saved = json.loads(path.read_text(encoding="utf-8"))
    return {r["scene"]: r["base_prompt"] for r in saved["scenes"] if r["base_prompt"]}
