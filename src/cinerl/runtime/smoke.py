"""`cinerl smoke`: a quick check of planner, policy update and run store before spending GPU time."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np

from cinerl.core.media import atomic_write_text
from cinerl.core.store import RunStore
from cinerl.planning.offline import plan_story
from cinerl.training.policy.state import state_vector
from cinerl.training.policy.net import PromptPolicy, Transition
from cinerl.core.schema import AttemptRecord, RewardBreakdown

SMOKE_PROMPT = "A young pilot and her old mentor cross the desert to reach the mountain observatory."


def _check(name: str, fn) -> dict:
    t0 = time.perf_counter()
    try:
        detail = fn()
        ok = True
    except Exception as e:  # the report must say what broke, not crash
        detail, ok = f"{type(e).__name__}: {e}", False
    return {"check": name, "ok": ok, "seconds": round(time.perf_counter() - t0, 3), "detail": detail}


def run_smoke(out_path: Path, seed: int = 0) -> dict:
    checks = []
    bible_box: dict = {}

    def planner():
        bible = plan_story(SMOKE_PROMPT, seed=seed)
        again = plan_story(SMOKE_PROMPT, seed=seed)
        assert bible == again, "the planner is not deterministic for a seed"
        bible_box["bible"] = bible
        return {
            "characters": len(bible.characters),
            "locations": len(bible.locations),
            "scenes": len(bible.scenes),
        }

    def policy_update():
        bible = bible_box["bible"]
        policy = PromptPolicy(seed=seed)
        state = state_vector(bible.scenes[0], bible, [])
        before = policy.net.heads["identity_lock"].weight.detach().clone()
        batch = []
        for k in range(4):
            action, _ = policy.act(state, seed * 100 + k)
            batch.append(Transition(state, action, reward=float(k) / 4))
        info = policy.update(batch)
        changed = float((policy.net.heads["identity_lock"].weight - before).abs().sum())
        assert changed > 0, "a policy update changed no weight"
        return {"version": policy.version, "weight_change": changed, **info}

    def run_store():
        with tempfile.TemporaryDirectory() as tmp:
            store = RunStore(Path(tmp) / "state.db")
            rec = AttemptRecord(
                scene=0,
                attempt=0,
                seed=1,
                prompt="p",
                negative_prompt="",
                action={},
                log_prob=0.0,
                reward=RewardBreakdown(total=0.5, components={}, groups={}, weights={}),
                clip_path="c.mp4",
                last_frame_path="l.png",
                thumbnail_path="t.jpg",
            )
            store.commit_attempt(rec, list(np.zeros(3)))
            store.close()
            again = RunStore(Path(tmp) / "state.db")
            got = again.attempts(0)
            again.close()
            assert got and got[0][0] == rec, "the run store lost a committed attempt"
        return {"round_trip": True}

    checks = [_check("planner", planner)]
    if checks[0]["ok"]:
        checks.append(_check("policy_update", policy_update))
    else:
        checks.append(
            {
                "check": "policy_update",
                "ok": False,
                "seconds": 0.0,
                "detail": "not run: the planner check failed",
            }
        )
    checks.append(_check("run_store", run_store))
    report = {"ok": all(c["ok"] for c in checks), "checks": checks}
    atomic_write_text(Path(out_path), json.dumps(report, indent=2))
    return report
