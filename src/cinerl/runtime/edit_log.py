"""The workbench's rows in the run store (state.db): the settings a run was made with, the make's
estimate, the edits (approve, retake, choose) as committed steps, where each take's first frame
came from, and where a time budget cut attempts.

They live in tables of their own beside the run store's (core/store.py), created on first use,
so a run folder made before the workbench opens unchanged. An edit is a row that starts
`pending` and becomes `done` after its last file is written; every take it shoots is an attempt
row of the store like any other, so an edit killed at any point and run again finds its finished
takes and shoots only the rest.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from cinerl.core.schema import AttemptRecord
from cinerl.core.settings import Settings
from cinerl.core.store import RunStore
from cinerl.runtime.heal import take_key

SCHEMA = """
CREATE TABLE IF NOT EXISTS run_settings (id INTEGER PRIMARY KEY CHECK (id = 1), settings TEXT);
CREATE TABLE IF NOT EXISTS plans (id INTEGER PRIMARY KEY CHECK (id = 1), bible TEXT);
CREATE TABLE IF NOT EXISTS estimates (id INTEGER PRIMARY KEY CHECK (id = 1), estimate TEXT);
CREATE TABLE IF NOT EXISTS edits (
    id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT, params TEXT, status TEXT, created REAL,
    finished REAL, result TEXT);
CREATE TABLE IF NOT EXISTS take_origins (
    scene INTEGER, attempt INTEGER, origin TEXT, PRIMARY KEY (scene, attempt));
CREATE TABLE IF NOT EXISTS budget (
    scene INTEGER PRIMARY KEY, kept INTEGER, planned INTEGER, spent REAL, budget REAL);
"""
START = "start"  # the first scene's takes start from no frame
KEYFRAME = "keyframe"  # --mode keyframes: a take starts on its scene's keyframe, never stale


def ensure(store: RunStore) -> RunStore:
    store.db.executescript(SCHEMA)
    return store


# settings and the estimate ------------------------------------------------------------------
def remember_settings(store: RunStore, settings: Settings) -> None:
    """Every setting but the secrets (which come back from the environment when reopened)."""
    ensure(store).db.execute(
        "INSERT OR REPLACE INTO run_settings VALUES (1, ?)", (json.dumps(settings.public_dump()),)
    )


def saved_settings(store: RunStore) -> dict | None:
    row = ensure(store).db.execute("SELECT settings FROM run_settings").fetchone()
    return json.loads(row[0]) if row else None


def remember_estimate(store: RunStore, estimate: dict) -> None:
    ensure(store).db.execute("INSERT OR REPLACE INTO estimates VALUES (1, ?)", (json.dumps(estimate),))


def saved_estimate(store: RunStore) -> dict | None:
    row = ensure(store).db.execute("SELECT estimate FROM estimates").fetchone()
    return json.loads(row[0]) if row else None


def remember_bible(store: RunStore, bible_json: str) -> None:
    """The plan as last planned or approved: approve compares an edited bible with it."""
    ensure(store).db.execute("INSERT OR REPLACE INTO plans VALUES (1, ?)", (bible_json,))


def planned_bible(store: RunStore) -> str | None:
    row = ensure(store).db.execute("SELECT bible FROM plans").fetchone()
    return row[0] if row else None


# edits --------------------------------------------------------------------------------------
def edit_params(store: RunStore, edit_id: int) -> dict:
    row = store.db.execute("SELECT params FROM edits WHERE id = ?", (edit_id,)).fetchone()
    return json.loads(row[0])


def latest_edit_snapshot(store: RunStore, out_dir: Path) -> Path | None:
    """The policy as the last edit left it (its newest intact snapshot), or None."""
    keys = [a["key"] for a in store.artifacts() if a["kind"] == "policy" and a["key"].startswith("edit_")]
    for key in sorted(keys, reverse=True):
        path = store.artifact("policy", key, out_dir)
        if path is not None:
            return path
    return None


def pending_edit(store: RunStore) -> dict | None:
    row = (
        ensure(store)
        .db.execute("SELECT id, kind, params FROM edits WHERE status = 'pending' ORDER BY id DESC")
        .fetchone()
    )
    return {"id": row[0], "kind": row[1], "params": json.loads(row[2])} if row else None


def begin_edit(store: RunStore, kind: str, params: dict) -> int:
    cur = ensure(store).db.execute(
        "INSERT INTO edits (kind, params, status, created) VALUES (?, ?, 'pending', ?)",
        (kind, json.dumps(params, sort_keys=True), time.time()),
    )
    return int(cur.lastrowid)


def finish_edit(store: RunStore, edit_id: int, result: dict) -> None:
    store.db.execute(
        "UPDATE edits SET status = 'done', finished = ?, result = ? WHERE id = ?",
        (time.time(), json.dumps(result), edit_id),
    )


def edits(store: RunStore) -> list[dict]:
    rows = ensure(store).db.execute("SELECT id, kind, params, status, result FROM edits ORDER BY id")
    return [
        {
            "id": r[0],
            "kind": r[1],
            "params": json.loads(r[2]),
            "status": r[3],
            "result": json.loads(r[4]) if r[4] else {},
        }
        for r in rows
    ]


# where a take's first frame came from -------------------------------------------------------
def last_frame_sha(store: RunStore, rec: AttemptRecord) -> str:
    """The recorded sha256 of a take's lossless last frame: what the next scene starts from."""
    return store.recorded_sha256("take", take_key(rec, "last")) or f"scene {rec.scene} take {rec.attempt}"


def set_origin(store: RunStore, scene: int, attempt: int, origin: str) -> None:
    ensure(store).db.execute("INSERT OR REPLACE INTO take_origins VALUES (?, ?, ?)", (scene, attempt, origin))


def origins(store: RunStore) -> dict[tuple[int, int], str]:
    rows = ensure(store).db.execute("SELECT scene, attempt, origin FROM take_origins")
    return {(r[0], r[1]): r[2] for r in rows}


def chosen_records(store: RunStore) -> dict[int, AttemptRecord]:
    scenes = store.scenes()
    return {
        rec.scene: rec
        for rec, _ in store.attempts()
        if rec.scene in scenes and rec.attempt == scenes[rec.scene]["chosen"]
    }


def fill_origins(store: RunStore, keyframes: bool) -> None:
    """Give every take shot by `make` its origin: the previous scene's choice as it stands. Called
    before the first choice changes, so it records what make started each take from."""
    known = origins(store)
    chosen = chosen_records(store)
    for rec, _ in store.attempts():
        if (rec.scene, rec.attempt) in known:
            continue
        if keyframes:
            origin = KEYFRAME
        elif rec.scene == 0:
            origin = START
        elif rec.scene - 1 in chosen:
            origin = last_frame_sha(store, chosen[rec.scene - 1])
        else:
            continue
        set_origin(store, rec.scene, rec.attempt, origin)


def expected_origin(store: RunStore, scene: int, keyframes: bool) -> str:
    """The origin a take of `scene` shot now would have."""
    if keyframes:
        return KEYFRAME
    if scene == 0:
        return START
    prev = chosen_records(store).get(scene - 1)
    return last_frame_sha(store, prev) if prev is not None else START


def stale_scenes(store: RunStore) -> list[int]:
    """Scenes (0-based) whose chosen take starts from a frame the previous scene no longer ends
    on: the previous scene's choice changed and this one was not reshot (`continuity stale`; in
    the film the join is a cut)."""
    known = origins(store)
    chosen = chosen_records(store)
    stale = []
    for idx, rec in sorted(chosen.items()):
        origin = known.get((idx, rec.attempt))
        if origin in (None, START, KEYFRAME) or idx - 1 not in chosen:
            continue
        if origin != last_frame_sha(store, chosen[idx - 1]):
            stale.append(idx)
    return stale


# the time budget ----------------------------------------------------------------------------
def record_budget_cut(store: RunStore, scene: int, kept: int, planned: int, spent: float, budget: float):
    ensure(store).db.execute(
        "INSERT OR REPLACE INTO budget VALUES (?, ?, ?, ?, ?)", (scene, kept, planned, spent, budget)
    )


def budget_cuts(store: RunStore) -> list[dict]:
    rows = ensure(store).db.execute("SELECT scene, kept, planned, spent, budget FROM budget ORDER BY scene")
    return [dict(zip(("scene", "kept", "planned", "spent", "budget"), r)) for r in rows]


# what the report adds -----------------------------------------------------------------------
TAKE_STAGES = ("render", "save", "score", "learn")  # what the estimate and the budget count


def run_notes(store: RunStore) -> dict:
    """The report's workbench sections: the estimate against what the run measured, the budget,
    the edits and the stale joins (extra keys of FilmReport)."""
    notes: dict = {}
    stages = store.stage_times()
    measured = sum(stages.get(k, 0.0) for k in TAKE_STAGES)
    estimate = saved_estimate(store)
    if estimate:
        takes = [rec for rec, _ in store.attempts()]
        frames = estimate.get("scene_frames") or []
        notes["estimate"] = {
            **estimate,
            "measured": {
                "clips": len(takes),
                "frames": sum(frames[r.scene] for r in takes if r.scene < len(frames)),
                "steps": len(takes) * int(estimate.get("steps_per_take") or 0),
                "seconds": measured,
            },
        }
    budget = (estimate or {}).get("budget_s")
    cuts = budget_cuts(store)
    if budget is not None or cuts:
        notes["budget"] = {
            "budget_s": budget if budget is not None else (cuts[0]["budget"] if cuts else None),
            "spent_s": measured,
            "cuts": cuts,
        }
    made = edits(store)  # the edit being re-cut right now is still `pending` here
    if made:
        notes["edits"] = made
    notes["continuity_stale"] = stale_scenes(store)
    return notes
