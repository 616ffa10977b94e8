"""How `cinerl make` gets its StoryBible: the offline planner (default), a language model through
the DirectorAgent, or a plan saved by `cinerl plan` (`--from-plan`). The step records (which
provider and model ran, tokens, time, fallbacks) go to story/llm_steps.json for the report, next
to story/scene_prompts.json (the scenes' base prompts, planning/scene_prompts.py)."""

from __future__ import annotations

import json
import weakref
from pathlib import Path

from cinerl.core.settings import Settings
from cinerl.core.errors import UserError
from cinerl.core.media import atomic_write_text
from cinerl.planning.agents import DirectorAgent
from cinerl.llm.guard import GuardedProvider
from cinerl.llm.providers import get_provider
from cinerl.llm.types import LLMCache
from cinerl.core.schema import StoryBible

STEPS_FILE = Path("story") / "llm_steps.json"
PROMPTS_FILE = Path("story") / "scene_prompts.json"
PLAN_BIBLE = "creative_document.json"
PLAN_PROMPTS = "scene_prompts.json"


# one guarded provider per run store, so the breaker and the deadline span the whole plan (the
# bible, then every scene's prompts), however many times a stage asks for the provider
_GUARDED: "weakref.WeakKeyDictionary[object, GuardedProvider]" = weakref.WeakKeyDictionary()


def provider_for(settings: Settings, run: object | None = None):
    """The settings' provider behind a circuit breaker and the plan's deadline (llm/guard.py);
    `run` (the run store) shares one across the stages of a run."""
    if run is not None and run in _GUARDED:
        return _GUARDED[run]
    provider = _provider(settings)
    if provider.name != "offline":
        provider = GuardedProvider(provider, settings.llm.max_failures, settings.llm.deadline)
        if run is not None:
            _GUARDED[run] = provider
    return provider


def _provider(settings: Settings):
    llm = settings.llm
    return get_provider(
        llm.provider,
        model=llm.model,
        base_url=llm.base_url,
        timeout=llm.timeout,
        retries=llm.retries,
        seed=settings.run.seed,
        api_key=llm.api_key,
        threads=llm.threads,
    )


def load_plan(plan_dir: str | Path) -> StoryBible:
    """The bible of a finished saved plan, or a UserError that says what is missing."""
    path = Path(plan_dir).expanduser() / PLAN_BIBLE
    if not path.exists():
        raise UserError(f"--from-plan {plan_dir}: no {PLAN_BIBLE} there (run `cinerl plan` first)")
    if not (path.parent / PLAN_PROMPTS).exists():
        raise UserError(
            f"--from-plan {plan_dir}: no {PLAN_PROMPTS} there (the plan did not "
            "finish: run the same `cinerl plan` command with --resume)"
        )
    try:
        return StoryBible.model_validate_json(path.read_text(encoding="utf-8"))
    except UserError as e:  # an unsafe id (core/schema.safe_id): name the file it came from
        raise UserError(f"--from-plan {plan_dir}: {PLAN_BIBLE}: {e}") from None
    except ValueError as e:
        raise UserError(
            f"--from-plan {plan_dir}: {PLAN_BIBLE} is not a valid story bible ({str(e).splitlines()[0]})"
        ) from None


def plan_bible(prompt: str, settings: Settings, cache: LLMCache | None, out_dir: Path) -> StoryBible:
    """Plan the film's bible as the settings say, and record each step for the report."""
    s = settings
    if s.plan.from_plan:
        bible = load_plan(s.plan.from_plan)
        steps = [
            {
                "step": "plan",
                "provider": "plan",
                "model": str(Path(s.plan.from_plan)),
                "calls": [],
                "prompt_tokens": 0,
                "completion_tokens": 0,
                "seconds": 0.0,
                "repairs": 0,
                "fell_back": False,
                "warning": "",
            }
        ]
    else:
        p = s.plan
        agent = DirectorAgent(provider_for(s, cache), cache=cache, repairs=s.llm.repairs)
        bible, steps = agent.plan(
            prompt,
            seed=s.run.seed,
            scenes=p.scenes,
            min_scenes=p.min_scenes,
            max_scenes=p.max_scenes,
            seconds=(p.scene_seconds_min, p.scene_seconds_max),
        )
    atomic_write_text(Path(out_dir) / STEPS_FILE, json.dumps(steps, indent=2))
    return bible


def llm_report(out_dir: Path) -> dict:
    """The report's LLM section: every step (plan, then each scene's enrich and critique) with
    its provider, model, tokens and time, and each scene's prompts before and after the critic."""
    path = Path(out_dir) / STEPS_FILE
    steps = json.loads(path.read_text(encoding="utf-8")) if path.exists() else []
    path = Path(out_dir) / PROMPTS_FILE
    prompts = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    steps = steps + prompts.get("steps", [])
    rows = prompts.get("scenes", [])
    return {
        "steps": steps,
        "prompt_tokens": sum(s.get("prompt_tokens", 0) for s in steps),
        "completion_tokens": sum(s.get("completion_tokens", 0) for s in steps),
        "seconds": round(sum(s.get("seconds", 0.0) for s in steps), 3),
        "scene_prompts": {"source": prompts.get("source", ""), "scenes": rows},
        "warnings": [s["warning"] for s in steps + rows if s.get("warning")],
    }
