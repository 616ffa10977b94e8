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
from pathlib import Path

from cinerl.config import Settings
from cinerl.inputs import UserError
from cinerl.media import atomic_write_text
from cinerl.memory import RunStore
from cinerl.planning.agents import Mode, PromptEnricher, SelfCritic, offline_prompt
from cinerl.planning.llm import LLMCache
from cinerl.planning.story import PLAN_PROMPTS, PROMPTS_FILE, provider_for
from cinerl.schema import StoryBible

ARTIFACT = ("story", "scene_prompts")


def prompt_mode(index: int, shot_mode: str = "continuous") -> Mode:
    """Text-to-video where the clip starts from nothing (the first scene of a continuous film);
    image-to-video where it starts from a frame (the previous clip's last, or a keyframe)."""
    return "t2v" if index == 0 and shot_mode == "continuous" else "i2v"


def write_prompts(bible: StoryBible, provider, cache: LLMCache | None, repairs: int = 2,
                  shot_mode: str = "continuous") -> tuple[list[dict], list[dict]]:
    """Enrich, critique and revise every scene's prompt. Returns (rows, step metas)."""
    enricher = PromptEnricher(provider, cache=cache, repairs=repairs)
    critic = SelfCritic(provider, cache=cache, repairs=repairs)
    rows: list[dict] = []
    steps: list[dict] = []
    previous = ""
    for sc in bible.scenes:
        mode = prompt_mode(sc.index, shot_mode)
        enriched, m1 = enricher.enrich(sc, bible, mode)
        steps.append(m1)
        row = {"scene": sc.index, "mode": mode, "enriched": "", "issues": [],
               "revised_prompt": "", "base_prompt": None, "warning": ""}
        if not m1["fell_back"]:  # critiquing the offline stand-in would buy nothing
            row["enriched"] = enriched
            crit, m2 = critic.critique(enriched, sc, bible, mode, previous)
            steps.append(m2)
            row.update(issues=crit.issues, revised_prompt=crit.revised_prompt)
            if not m2["fell_back"]:
                row["base_prompt"] = crit.revised_prompt
        if row["base_prompt"] is None:
            row["warning"] = (f"scene {sc.index + 1}: no usable {provider.name} prompt; shot with "
                              "the offline composition")
        # the critic's continuity check needs the previous scene as it will be described
        previous = row["base_prompt"] or offline_prompt(sc, bible, mode).text(mode)
        rows.append(row)
    return rows, steps


def plan_prompts(plan_dir: str | Path, bible: StoryBible) -> list[dict]:
    """The critique-revised prompts of a saved plan, one row per scene of its bible."""
    path = Path(plan_dir).expanduser() / PLAN_PROMPTS
    rows = []
    try:
        saved = {int(r["scene"]): r for r in json.loads(path.read_text(encoding="utf-8"))}
        for sc in bible.scenes:
            r = saved[sc.index]
            rows.append({"scene": sc.index, "mode": r["mode"], "enriched": r["prompt"],
                         "issues": r["issues"], "revised_prompt": r["revised_prompt"],
                         "base_prompt": r["revised_prompt"], "warning": ""})
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"--from-plan {plan_dir}: {PLAN_PROMPTS} does not match the plan's "
                        f"scenes ({type(e).__name__}: {e})") from None
    return rows


def scene_prompts(bible: StoryBible, settings: Settings, store: RunStore,
                  out_dir: Path) -> dict[int, str]:
    """Scene index -> base prompt (empty offline), computed once per run and stored."""
    path = store.artifact(*ARTIFACT, out_dir)
    if path is None:
        s = settings
        if s.from_plan:
            saved = {"source": f"plan {s.from_plan}", "scenes": plan_prompts(s.from_plan, bible),
                     "steps": []}
        else:
            provider = provider_for(s)
            if provider.name == "offline":
                return {}
            rows, steps = write_prompts(bible, provider, store, s.llm_repairs, s.shot_mode)
            saved = {"source": f"{provider.name}:{provider.model}", "scenes": rows,
                     "steps": steps}
        path = Path(out_dir) / PROMPTS_FILE
        atomic_write_text(path, json.dumps(saved, indent=2))
        store.record_artifact(*ARTIFACT, path, out_dir)
    saved = json.loads(path.read_text(encoding="utf-8"))
    return {r["scene"]: r["base_prompt"] for r in saved["scenes"] if r["base_prompt"]}

