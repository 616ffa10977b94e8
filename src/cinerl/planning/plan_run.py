"""`cinerl plan`: the LLM-only pipeline. Plan the creative document (the StoryBible), enrich each
scene into a video prompt, critique and revise it, and save it all for `cinerl make --from-plan`.

Every step's result is written to steps/<step>.json and committed to the run store; a resumed
run loads finished steps and re-asks nothing. A step cut off half-way re-runs, but each model call
it had finished comes back from the run store's LLM cache, so no call is paid for twice.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from cinerl.core.settings import Settings
from cinerl.core.inputs import check_out_dir, check_prompt
from cinerl.core.media import atomic_write_text
from cinerl.core.store import RunStore
from cinerl.core.urls import redact_url
from cinerl.planning.agents import DirectorAgent
from cinerl.planning.scene_prompts import write_prompts
from cinerl.planning.bible import PLAN_BIBLE, PLAN_PROMPTS, provider_for
from cinerl.core.schema import StoryBible

SCENE_PROMPTS = PLAN_PROMPTS
PLAN_REPORT = "plan_report.json"
PLAN_ENTRIES = ("state.db", "state.db-wal", "state.db-shm", "steps", PLAN_BIBLE, SCENE_PROMPTS, PLAN_REPORT)
# what makes a plan this plan (0.1 flat names, so plans started before the groups resume)
PLAN_SETTINGS = {
    "seed": "run.seed",
    "scenes": "plan.scenes",
    "min_scenes": "plan.min_scenes",
    "max_scenes": "plan.max_scenes",
    "scene_seconds_min": "plan.scene_seconds_min",
    "scene_seconds_max": "plan.scene_seconds_max",
    "llm": "llm.provider",
    "llm_model": "llm.model",
    "llm_base_url": "llm.base_url",
    "llm_repairs": "llm.repairs",
}


def plan_settings(settings: Settings) -> dict:
    view = {k: settings.get(dotted) for k, dotted in PLAN_SETTINGS.items()}
    view["llm_base_url"] = redact_url(view["llm_base_url"])  # state.db never holds a password
    if settings.run.shot_mode != "continuous":  # plans before --mode were all continuous
        view["shot_mode"] = settings.run.shot_mode
    return view


def existing_plan(out_dir: Path) -> bool:
    return (Path(out_dir) / "state.db").exists()


def clear_plan(out_dir: Path) -> None:
    for name in PLAN_ENTRIES:
        p = Path(out_dir) / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


class PlanRun:
    def __init__(
        self,
        prompt: str,
        out_dir: Path,
        settings: Settings,
        fresh: bool = False,
        on_step: Callable[[str, int, int], None] | None = None,
    ):
        self.prompt = check_prompt(prompt)
        self.out_dir = check_out_dir(Path(out_dir))
        self.settings = settings
        self.on_step = on_step
        if fresh:
            clear_plan(self.out_dir)
        self.store = RunStore.open_run(self.out_dir, self.prompt, plan_settings(settings), "plan")
        self.metas: list[dict] = []
        self.resumed: list[str] = []

    def step(self, key: str, fn: Callable[[], tuple[object, list[dict]]]):
        """Run one step, or load it if a previous run finished it. Returns the step's value."""
        path = self.store.artifact("plan_step", key, self.out_dir)
        if path is not None:
            saved = json.loads(path.read_text(encoding="utf-8"))
            self.resumed.append(key)
            self.metas.extend({**m, "resumed": True} for m in saved["meta"])
            return saved["value"]
        value, metas = fn()
        path = self.out_dir / "steps" / f"{key}.json"
        atomic_write_text(path, json.dumps({"value": value, "meta": metas}, indent=2))
        self.store.record_artifact("plan_step", key, path, self.out_dir)
        self.metas.extend(metas)
        return value

    def run(self) -> dict:
        s = self.settings
        t0 = time.perf_counter()
        provider = provider_for(s)
        director = DirectorAgent(provider, cache=self.store, repairs=s.llm.repairs)

        def plan():
            p = s.plan
            bible, metas = director.plan(
                self.prompt,
                seed=s.run.seed,
                scenes=p.scenes,
                min_scenes=p.min_scenes,
                max_scenes=p.max_scenes,
                seconds=(p.scene_seconds_min, p.scene_seconds_max),
            )
            return bible.model_dump(mode="json"), metas

        bible = StoryBible.model_validate(self.step("bible", plan))
        atomic_write_text(self.out_dir / PLAN_BIBLE, bible.model_dump_json(indent=2))
        total = 1 + 2 * len(bible.scenes)
        done = [1]
        if self.on_step:
            self.on_step("creative document", 1, total)

        def on_step(name: str) -> None:
            done[0] += 1
            if self.on_step:
                self.on_step(name, done[0], total)

        made, _ = write_prompts(
            bible,
            provider,
            self.store,
            s.llm.repairs,
            s.run.shot_mode,
            run_step=self.step,
            critique_fallbacks=True,
            on_step=on_step,
        )
        rows = [
            {
                "scene": r["scene"],
                "title": r["title"],
                "mode": r["mode"],
                "prompt": r["enriched"],
                "issues": r["issues"],
                "revised_prompt": r["revised_prompt"],
                "negative_prompt": r["negative_prompt"],
            }
            for r in made
        ]
        atomic_write_text(self.out_dir / SCENE_PROMPTS, json.dumps(rows, indent=2))
        report = self.report(provider, bible, time.perf_counter() - t0)
        atomic_write_text(self.out_dir / PLAN_REPORT, json.dumps(report, indent=2))
        self.store.set_status("done")
        return report

    def report(self, provider, bible: StoryBible, seconds: float) -> dict:
        calls = [c for m in self.metas if not m.get("resumed") for c in m.get("calls", [])]
        hits = sum(1 for c in calls if c["cached"])
        fresh = [m for m in self.metas if not m.get("resumed")]
        return {
            "seed_prompt": self.prompt,
            "title": bible.title,
            "planner": bible.planner,
            "provider": provider.name,
            "model": provider.model,
            "files": {"creative_document": PLAN_BIBLE, "scene_prompts": SCENE_PROMPTS, "state": "state.db"},
            "steps": self.metas,
            "resumed_steps": self.resumed,
            "calls": len(calls),
            "cache_hits": hits,
            "cache_hit_rate": round(hits / len(calls), 4) if calls else None,
            "prompt_tokens": sum(m.get("prompt_tokens", 0) for m in fresh),
            "completion_tokens": sum(m.get("completion_tokens", 0) for m in fresh),
            "llm_seconds": round(sum(m.get("seconds", 0.0) for m in fresh), 3),
            "seconds": round(seconds, 3),
            "warnings": [m["warning"] for m in self.metas if m.get("warning")],
        }

    def close(self) -> None:
        self.store.close()


def make_plan(
    prompt: str,
    out_dir: Path,
    settings: Settings,
    fresh: bool = False,
    on_step: Callable[[str, int, int], None] | None = None,
) -> dict:
    run = PlanRun(prompt, out_dir, settings, fresh=fresh, on_step=on_step)
    try:
        return run.run()
    finally:
        run.close()
