"""Editing a film: plan only, approve, retake one scene, choose another take; used by the CLI
(`cinerl make --plan-only`, `approve`, `retake`, `choose`) and the workbench (apps/web).

Every edit is a committed step of the run store (runtime/edit_log.py): a `pending` row, then
takes committed one by one as attempt rows, a policy snapshot, the scene's new choice, the film
re-cut, and the row `done`. Killed anywhere and run again, an edit finds the takes it finished
and shoots only the rest; a different edit is refused while one is pending.

Scenes are counted from 1 and so are takes (`--scene 2 --attempt 3` is the third take of the
second scene); folders keep the 0-based names `scenes/scene_01/attempt_02.mp4` that runs made
before the workbench have, so they still resume.

Continuity: in continuous mode a take starts from the previous scene's chosen last frame. When a
scene's choice changes, the next scene's chosen take started from a frame the film no longer
shows: it is `continuity stale` (edit_log.stale_scenes; the report and the workbench mark it,
and the join plays as a cut). `--cascade` reshoots each stale scene from the new frame, in order,
for as long as the choices keep changing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from cinerl.core.errors import UserError
from cinerl.core.inputs import slug
from cinerl.core.media import load_png
from cinerl.core.schema import AttemptRecord, Scene, StoryBible
from cinerl.core.settings import Settings, load_settings
from cinerl.core.store import RunStore, sha256_file
from cinerl.planning.bible import PROMPTS_FILE
from cinerl.planning.scene_prompts import ARTIFACT as PROMPTS_ARTIFACT
from cinerl.runtime import edit_log
from cinerl.runtime.budget import Budget
from cinerl.runtime.director import AWAITING_APPROVAL, Director, FilmResult, Prepared
from cinerl.runtime.estimate import estimate, lines, takes_per_scene, update_rates
from cinerl.runtime.faults import as_user_error
from cinerl.runtime.run_folder import store_path
from cinerl.training.policy.net import Transition
from cinerl.training.policy.state import state_vector

log = logging.getLogger(__name__)

BIBLE = Path("story") / "bible.json"


@dataclass
class Hooks:
    """Progress callbacks, the same the director takes (the CLI's bar, the workbench's worker)."""

    on_attempt: Callable[[AttemptRecord], None] | None = None
    on_plan: Callable[[StoryBible], None] | None = None
    on_event: Callable[[str], None] | None = None
    on_scene: Callable[[Scene, int], None] | None = None
    on_estimate: Callable[[list[str]], None] | None = None
    extra: dict = field(default_factory=dict)


# reading a run folder -----------------------------------------------------------------------
def run_info(out_dir: Path) -> dict | None:
    """A run folder's prompt, status, scenes shot, pending edit and stale joins; None when it
    holds no run. Opens the store read-only in spirit (nothing is written but the workbench's
    own empty tables)."""
    path = store_path(out_dir)
    if not path.is_file():
        return None
    store = RunStore(path)
    try:
        run = store.run()
        if not run:
            return None
        pending = edit_log.pending_edit(store)
        return {
            "prompt": run["prompt"],
            "status": run["status"],
            "scenes_shot": len(store.scenes()),
            "takes": len(store.attempts()),
            "pending_edit": pending,
            "continuity_stale": [i + 1 for i in edit_log.stale_scenes(store)],
            "estimate": edit_log.saved_estimate(store),
        }
    finally:
        store.close()


def run_view(out_dir: Path) -> dict:
    """What the workbench shows of a run, read from its store while it shoots or after: the
    plan, every take by scene (1-based numbers, files relative to the run folder) and the
    choices; None when the folder holds no run."""
    info = run_info(out_dir)
    if info is None:
        return {}
    store = RunStore(store_path(out_dir))
    try:
        scenes = store.scenes()
        takes: dict[int, list[dict]] = {}
        for rec, _ in store.attempts():
            takes.setdefault(rec.scene + 1, []).append(
                {
                    "take": rec.attempt + 1,
                    "reward": rec.reward.total,
                    "groups": rec.reward.groups,
                    "clip": rec.clip_path,
                    "thumb": rec.thumbnail_path,
                    "prompt": rec.prompt,
                    "chosen": rec.scene in scenes and scenes[rec.scene]["chosen"] == rec.attempt,
                }
            )
        refs = [a["path"] for a in store.artifacts() if a["kind"] in ("character", "location")]
    finally:
        store.close()
    bible_path = Path(out_dir) / BIBLE
    bible = None
    if bible_path.is_file():
        try:
            bible = StoryBible.model_validate_json(bible_path.read_text(encoding="utf-8"))
        except (ValidationError, OSError):
            bible = None  # being edited by hand: approve says what is wrong
    return {**info, "scene_takes": takes, "references": refs, "bible": bible}


def new_settings(overrides: dict) -> Settings:
    """Settings for a film started from the workbench, with the backend's own checks (the
    checks `cinerl make` runs before anything is written)."""
    from cinerl.assembly.audio.preflight import check_audio
    from cinerl.generation.registry import preflight

    settings, source = load_settings(None, overrides)
    settings = preflight(settings, source)
    check_audio(settings)
    return settings


def flatten(dump: dict) -> dict:
    """Settings.public_dump() -> {group.field: value}, the overrides load_settings takes."""
    out = {}
    for group, fields in dump.items():
        for name, value in (fields or {}).items():
            if group == "rewards" and name == "weights":
                out.update({f"rewards.weights.{g}": w for g, w in value.items()})
            else:
                out[f"{group}.{name}"] = value
    return out


def run_settings(out_dir: Path, sets: dict | None = None) -> tuple[str, Settings]:
    """The prompt and settings a run was made with (secrets from the environment again)."""
    info = run_info(out_dir)
    if info is None:
        raise UserError(f"{out_dir} holds no CineRL run (no {store_path(out_dir).name}); make one first")
    store = RunStore(store_path(out_dir))
    try:
        saved = edit_log.saved_settings(store)
    finally:
        store.close()
    if saved is None:
        report = Path(out_dir) / "report.json"
        if not report.is_file():
            raise UserError(f"{out_dir}: the run's settings are not recorded; finish it with cinerl make")
        saved = json.loads(report.read_text(encoding="utf-8")).get("settings") or {}
    settings, _ = load_settings(None, {**flatten(saved), **(sets or {})})
    return info["prompt"], settings


# make, plan only, approve -------------------------------------------------------------------
def make(
    prompt: str,
    out_dir: Path,
    settings: Settings,
    *,
    fresh: bool = False,
    plan_only: bool = False,
    approve: bool = False,
    budget_s: float | None = None,
    self_contained: bool = False,
    hooks: Hooks | None = None,
) -> FilmResult | None:
    """`cinerl make` with the workbench's flags: None when the run stops for approval."""
    hooks = hooks or Hooks()
    with as_user_error(Path(out_dir)):
        d = Director(
            prompt,
            out_dir,
            settings,
            fresh,
            hooks.on_attempt,
            None,
            on_event=hooks.on_event,
            on_scene=hooks.on_scene,
        )
        try:
            status = d.store.run()["status"]
            if status == AWAITING_APPROVAL and not (approve or plan_only):
                raise UserError(
                    f"{out_dir} holds a plan awaiting approval: `cinerl approve {out_dir}` shoots it "
                    "(edit story/bible.json first if you like), or pass --approve"
                )
            if status == AWAITING_APPROVAL and approve:
                accept_plan(d)
            d.plan_only = plan_only and status != "done" and not d.store.scenes()
            d.self_contained = self_contained
            if budget_s is not None:
                d.budget = Budget(budget_s, 0, takes_per_scene(settings))

            def on_plan(bible: StoryBible) -> None:
                if edit_log.planned_bible(d.store) is None:
                    edit_log.remember_bible(d.store, bible.model_dump_json())
                est = {**estimate(bible, settings), "budget_s": budget_s}
                edit_log.remember_estimate(d.store, est)
                if d.budget is not None:
                    d.budget.scenes = len(bible.scenes)
                if hooks.on_estimate:
                    hooks.on_estimate(lines(est))
                if hooks.on_plan:
                    hooks.on_plan(bible)

            d.on_plan = on_plan
            result = d.run()
            if result is not None:
                update_rates(d.store, result.report.bible, settings)
            return result
        finally:
            d.close()


def approve(out_dir: Path, *, self_contained: bool = False, hooks: Hooks | None = None) -> FilmResult:
    """`cinerl approve DIR`: accept the (possibly edited) plan and shoot the film."""
    prompt, settings = run_settings(out_dir)
    est = None
    store = RunStore(store_path(out_dir))
    try:
        est = edit_log.saved_estimate(store)
    finally:
        store.close()
    result = make(
        prompt,
        out_dir,
        settings,
        approve=True,
        budget_s=(est or {}).get("budget_s"),
        self_contained=self_contained,
        hooks=hooks,
    )
    assert result is not None
    return result


def check_plan(text: str, prompt: str, path: Path) -> StoryBible:
    """A hand-edited bible, validated: the schema, then what the shoot relies on."""
    try:
        bible = StoryBible.model_validate_json(text)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(root)"
        raise UserError(f"{path}: {where}: {first['msg']} (the plan was not changed)") from None
    if bible.seed_prompt != prompt:
        raise UserError(
            f"{path}: seed_prompt differs from the run's prompt; a new prompt is a new run (--fresh)"
        )
    if [sc.index for sc in bible.scenes] != list(range(len(bible.scenes))):
        raise UserError(
            f"{path}: scenes must keep their index 0, 1, 2... in order (the folder names scene_00...)"
        )
    for kind, items in (("character", bible.characters), ("location", bible.locations)):
        ids = [it.id for it in items]
        bad = [i for i in ids if slug(i) != i]
        if bad:
            raise UserError(f"{path}: {kind} id {bad[0]!r} must be lowercase letters, digits and _")
        if len(set(ids)) != len(ids):
            raise UserError(f"{path}: two {kind}s share an id")
    chars, locs = {c.id for c in bible.characters}, {loc.id for loc in bible.locations}
    for sc in bible.scenes:
        missing = [c for c in sc.character_ids if c not in chars]
        if missing:
            raise UserError(f"{path}: scene {sc.index + 1} names an unknown character {missing[0]!r}")
        if sc.location_id not in locs:
            raise UserError(f"{path}: scene {sc.index + 1} names an unknown location {sc.location_id!r}")
    return bible


def check_prompts(path: Path, n_scenes: int) -> None:
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        rows = saved["scenes"]
        assert all(0 <= int(r["scene"]) < n_scenes for r in rows)
        assert all(r.get("base_prompt") is None or isinstance(r["base_prompt"], str) for r in rows)
    except (OSError, ValueError, KeyError, TypeError, AssertionError):
        raise UserError(
            f"{path}: not the scene prompts file cinerl wrote (scenes: [{{scene, base_prompt}}...])"
        ) from None


def accept_plan(d: Director) -> list[str]:
    """Approve: a hand edit of story/bible.json or story/scene_prompts.json is validated, the
    store's record of the plan is moved to the edited file on purpose (so the director shoots it
    rather than refusing it), and what the edit invalidates (the references of changed
    characters and locations, the keyframes, the scene prompts of changed scenes) is made again.
    Returns one line per accepted change."""
    store, out = d.store, d.out_dir
    changed: list[str] = []
    path = out / BIBLE
    recorded = store.recorded_sha256("story", "bible")
    if recorded and path.is_file() and sha256_file(path) != recorded:
        if store.scenes() or store.attempts():
            raise UserError(f"{path} was edited after shooting started; use `cinerl retake` instead")
        new = check_plan(path.read_text(encoding="utf-8"), d.prompt, path)
        old_text = edit_log.planned_bible(store)
        old = StoryBible.model_validate_json(old_text) if old_text else None
        changed += drop_invalidated(store, old, new)
        store.record_artifact("story", "bible", path, out)
        edit_log.remember_bible(store, new.model_dump_json())
        changed.append(f"story/bible.json: sha256 {recorded[:12]} -> {sha256_file(path)[:12]}")
    prompts = out / PROMPTS_FILE
    recorded_p = store.recorded_sha256(*PROMPTS_ARTIFACT)
    if recorded_p and prompts.is_file() and sha256_file(prompts) != recorded_p:
        bible = StoryBible.model_validate_json(path.read_text(encoding="utf-8"))
        check_prompts(prompts, len(bible.scenes))
        store.record_artifact(*PROMPTS_ARTIFACT, prompts, out)
        changed.append(f"{PROMPTS_FILE}: edited prompts accepted")
    edit_id = edit_log.begin_edit(store, "approve", {"changes": changed})
    store.set_status("running")
    edit_log.finish_edit(store, edit_id, {"changes": changed})
    for line in changed:
        log.info("approve: %s", line)
    return changed


def drop_invalidated(store: RunStore, old: StoryBible | None, new: StoryBible) -> list[str]:
    """Forget the stored references/keyframes/prompts an edited plan makes wrong."""
    lines_: list[str] = []

    def forget(kind: str, key: str | None = None) -> None:
        q, args = "DELETE FROM artifacts WHERE kind = ?", [kind]
        if key is not None:
            q += " AND key = ?"
            args.append(key)
        store.db.execute(q, args)

    before = {("character", c.id): c for c in old.characters} if old else {}
    before |= {("location", loc.id): loc for loc in old.locations} if old else {}
    after = {("character", c.id): c for c in new.characters} | {("location", x.id): x for x in new.locations}
    for (kind, key), item in after.items():
        if old is None or before.get((kind, key)) != item:
            forget(kind, key)
            lines_.append(f"{kind} {key}: reference made again")
    scenes_changed = old is None or old.scenes != new.scenes or len(lines_) > 0
    if scenes_changed:
        forget("keyframe")
        forget(*("prompt_opt",))
        if (
            store.recorded_sha256(*PROMPTS_ARTIFACT) is not None
            and old is not None
            and old.scenes != new.scenes
        ):
            forget(*PROMPTS_ARTIFACT)
            lines_.append("scene prompts: written again for the edited scenes")
    return lines_


# retake and choose --------------------------------------------------------------------------
class Editor:
    """A finished run opened for an edit: the director under the run lock, its prepared stages
    (all read back from the store), and the policy as the last edit left it."""

    def __init__(
        self, out_dir: Path, hooks: Hooks | None = None, self_contained: bool = False, shoot: bool = True
    ):
        self.hooks = hooks or Hooks()
        prompt, settings = run_settings(out_dir)
        self.d = Director(
            prompt, out_dir, settings, on_attempt=self.hooks.on_attempt, on_event=self.hooks.on_event
        )
        self.d.self_contained = self_contained
        self.store = self.d.store
        edit_log.ensure(self.store)
        try:
            self.p: Prepared = self.d.prepare(shoot=shoot)  # choose renders nothing: no backend
            self.check_finished()
            self.keyframes = settings.run.shot_mode == "keyframes"
            edit_log.fill_origins(self.store, self.keyframes)
            latest = edit_log.latest_edit_snapshot(self.store, self.d.out_dir)
            if latest is not None:
                self.p.policy.load(latest)
        except BaseException:
            self.d.close()
            raise

    def __enter__(self) -> "Editor":
        return self

    def __exit__(self, *exc) -> None:
        self.d.close()

    @property
    def n_scenes(self) -> int:
        return len(self.p.bible.scenes)

    def check_finished(self) -> None:
        shot = self.store.scenes()
        missing = [sc.index + 1 for sc in self.p.bible.scenes if sc.index not in shot]
        if missing:
            raise UserError(
                f"{self.d.out_dir}: scene {missing[0]} is not shot yet; finish the film first "
                f"(cinerl approve {self.d.out_dir}, or the same cinerl make again)"
            )

    def scene(self, number: int) -> Scene:
        if not 1 <= number <= self.n_scenes:
            raise UserError(f"--scene must be between 1 and {self.n_scenes} (got {number})")
        return self.p.bible.scenes[number - 1]

    def begin(self, kind: str, params: dict, filled: dict | None = None) -> int:
        """The edit's row: the unfinished one of the same command when there is one (an edit run
        again after a kill), else a new one with `params` and the values `filled` in now."""
        pending = edit_log.pending_edit(self.store)
        if pending is not None:
            if pending["kind"] == kind and {k: pending["params"].get(k) for k in params} == params:
                log.warning("resuming the unfinished %s of scene %s", kind, params.get("scene"))
                return pending["id"]
            raise UserError(
                f"{self.d.out_dir} has an unfinished {pending['kind']} ({describe(pending)}): "
                "run that command again to finish it first"
            )
        return edit_log.begin_edit(self.store, kind, {**params, **(filled or {})})

    # shooting ------------------------------------------------------------------------------
    def prev_last(self, scene: Scene) -> np.ndarray | None:
        if scene.index == 0:
            return None
        prev = edit_log.chosen_records(self.store)[scene.index - 1]
        return load_png(self.d.out_dir / prev.last_frame_path)

    def shoot(self, scene: Scene, numbers: list[int], prompt: str | None) -> list[AttemptRecord]:
        """Takes `numbers` (0-based) of `scene`; those already committed are read back, not shot."""
        p, d = self.p, self.d
        done = {rec.attempt: rec for rec, _ in self.store.attempts(scene.index)}
        prev = self.prev_last(scene)
        origin = edit_log.expected_origin(self.store, scene.index, self.keyframes)
        ctx = d.context(scene, p.bible, p.refs, prev)
        recent = [r.reward.total for r, _ in self.store.attempts() if r.scene < scene.index]
        if prompt is not None:
            d.base_prompts[scene.index] = prompt
        out = []
        for k in numbers:
            if k in done:
                rec = done[k]
            else:
                mine = [r.reward.total for r in out]
                state = state_vector(scene, p.bible, recent + mine)
                rec = d.attempt(scene, k, p.bible, p.policy, p.backend, p.scorer, ctx, state, prev)
                edit_log.set_origin(self.store, scene.index, k, origin)
            out.append(rec)
            if self.hooks.on_attempt:
                self.hooks.on_attempt(rec)
        return out

    def learn(self, edit_id: int, scene: Scene, takes: list[AttemptRecord]) -> dict:
        """The policy's update on the edit's takes, once: its snapshot is committed, so a rerun
        loads it instead of updating twice."""
        key = f"edit_{edit_id:04d}_scene_{scene.index:02d}"
        snap = self.store.artifact("policy", key, self.d.out_dir)
        if snap is not None:
            self.p.policy.load(snap)
            return {}
        states = {rec.attempt: st for rec, st in self.store.attempts(scene.index)}
        batch = [
            Transition(np.asarray(states[r.attempt], np.float32), r.action, r.reward.total) for r in takes
        ]
        with self.d.timer.stage("learn"):
            info = self.p.policy.update(batch)
            s = self.d.settings
            if s.policy.mode not in ("random", "template"):
                path = self.p.policy.save(self.d.out_dir / "policy" / f"{key}.pt")
                self.store.record_artifact("policy", key, path, self.d.out_dir)
                if s.policy.mode == "learn":
                    self.d.shared.publish(self.p.policy, batch)
        return info

    def set_choice(self, scene: int, attempt: int) -> int:
        """Commit `attempt` as the scene's take; returns the previous choice."""
        row = self.store.scenes()[scene]
        if row["chosen"] != attempt:
            self.store.commit_scene(scene, attempt, row["policy_version"], row["policy_path"], row["learn"])
        return row["chosen"]

    def recut(self) -> FilmResult:
        return self.d.assemble(self.p.bible, self.p.refs, self.p.version_start, self.p.policy.version)


def describe(edit: dict) -> str:
    p = edit["params"]
    parts = [f"scene {p.get('scene')}"]
    if "attempts" in p:
        parts.append(f"{p['attempts']} takes")
    if p.get("attempt"):
        parts.append(f"take {p['attempt']}")
    if p.get("prompt"):
        parts.append(f"prompt {p['prompt']!r}")
    if p.get("cascade"):
        parts.append("cascade")
    return ", ".join(parts)


def best(takes: list[AttemptRecord]) -> AttemptRecord:
    return max(takes, key=lambda r: (r.reward.total, -r.attempt))


def retake(
    out_dir: Path,
    scene: int,
    attempts: int | None = None,
    prompt: str | None = None,
    cascade: bool = False,
    *,
    self_contained: bool = False,
    hooks: Hooks | None = None,
) -> tuple[FilmResult, dict]:
    """`cinerl retake DIR --scene N`: `attempts` more takes of scene N (1-based), every earlier
    take kept; the best of the new takes and the take the film has now becomes the choice (an
    earlier `choose` is not overridden by an older take), and the film is re-cut. With
    `cascade`, each scene left stale by a changed choice is reshot (the same number of takes)
    from the new frame. Returns the result and {scene: [new take numbers]} (1-based)."""
    if prompt is not None and not prompt.strip():
        raise UserError("--prompt must not be empty")
    if attempts is not None and not 1 <= attempts <= 64:
        raise UserError(f"--attempts must be between 1 and 64 (got {attempts})")
    if scene < 1:
        raise UserError(f"--scene counts from 1 (got {scene})")
    with as_user_error(Path(out_dir)), Editor(out_dir, hooks, self_contained) as ed:
        sc = ed.scene(scene)
        k = takes_per_scene(ed.d.settings) if attempts is None else attempts
        asked = {"scene": scene, "attempts": k, "prompt": prompt, "cascade": cascade}
        existing = [rec.attempt for rec, _ in ed.store.attempts(sc.index)]
        current = ed.store.scenes()[sc.index]["chosen"]
        edit_id = ed.begin("retake", asked, {"first": max(existing) + 1, "current": current})
        params = edit_log.edit_params(ed.store, edit_id)
        numbers = list(range(params["first"], params["first"] + k))
        takes = ed.shoot(sc, numbers, prompt)
        ed.learn(edit_id, sc, takes)
        # the new takes against the take the film has now (which a `choose` may have set)
        current = params["current"]
        held = next(r for r, _ in ed.store.attempts(sc.index) if r.attempt == current)
        pick_ = best([held, *takes])
        ed.set_choice(sc.index, pick_.attempt)
        shot = {scene: [n + 1 for n in numbers]}
        log.info("scene %d: take %d -> %d", scene, current + 1, pick_.attempt + 1)
        nxt = sc.index + 1
        while cascade and nxt < ed.n_scenes and nxt in edit_log.stale_scenes(ed.store):
            later = ed.p.bible.scenes[nxt]
            origin = edit_log.expected_origin(ed.store, nxt, ed.keyframes)
            fitting = [
                r.attempt
                for r, _ in ed.store.attempts(nxt)
                if edit_log.origins(ed.store).get((nxt, r.attempt)) == origin
            ]
            top = max(r.attempt for r, _ in ed.store.attempts(nxt))
            numbers = fitting + list(range(top + 1, top + 1 + k - len(fitting)))
            fresh = ed.shoot(later, numbers, None)
            ed.learn(edit_id, later, fresh)
            ed.set_choice(nxt, best(fresh).attempt)
            shot[nxt + 1] = [n + 1 for n in numbers]
            nxt += 1
        result = ed.recut()
        summary = {"shot": shot, "continuity_stale": [i + 1 for i in edit_log.stale_scenes(ed.store)]}
        edit_log.finish_edit(ed.store, edit_id, summary)
        return result, summary


def choose(
    out_dir: Path, scene: int, attempt: int, *, self_contained: bool = False, hooks: Hooks | None = None
) -> tuple[FilmResult, dict]:
    """`cinerl choose DIR --scene N --attempt K` (both 1-based): that take in the film, re-cut."""
    if scene < 1 or attempt < 1:
        raise UserError(f"--scene and --attempt count from 1 (got {scene} and {attempt})")
    with as_user_error(Path(out_dir)), Editor(out_dir, hooks, self_contained, shoot=False) as ed:
        sc = ed.scene(scene)
        takes = {rec.attempt for rec, _ in ed.store.attempts(sc.index)}
        if attempt - 1 not in takes:
            raise UserError(f"scene {scene} has takes 1 to {max(takes) + 1}; --attempt {attempt} is not one")
        current = ed.store.scenes()[sc.index]["chosen"]
        edit_id = ed.begin("choose", {"scene": scene, "attempt": attempt}, {"previous": current + 1})
        previous = edit_log.edit_params(ed.store, edit_id)["previous"]
        ed.set_choice(sc.index, attempt - 1)
        result = ed.recut()
        summary = {
            "previous": previous,
            "continuity_stale": [i + 1 for i in edit_log.stale_scenes(ed.store)],
        }
        edit_log.finish_edit(ed.store, edit_id, summary)
        return result, summary
