"""The production loop: plan, preproduce, shoot every scene with a learning prompt policy, stitch,
report. Every finished step is committed to the run store, so a killed run resumes where it
stopped and makes the same film an uninterrupted run makes."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import replace as with_fields
from pathlib import Path
from typing import NamedTuple

import numpy as np

from cinerl.assembly.report.build import write_report
from cinerl.assembly.audio.soundtrack import finish_film
from cinerl.assembly.stitch import stitch
from cinerl.assembly.subtitles import scene_subtitles, write_srt
from cinerl.core.settings import RunSettings, Settings
from cinerl.generation.registry import all_frame_neutral, get_image_backend, get_video_backend
from cinerl.generation.keyframes import scene_keyframes
from cinerl.core.inputs import check_out_dir, check_prompt
from cinerl.core.errors import UserError
from cinerl.core.locks import run_lock
from cinerl.core.media import (
    atomic_write_text,
    load_png,
)
from cinerl.core.store import RunStore, fingerprint, sha256_file
from cinerl.runtime import fingerprint as fpcheck
from cinerl.runtime.budget import Budget
from cinerl.runtime.edit_log import remember_settings, run_notes
from cinerl.runtime.faults import as_user_error
from cinerl.runtime.heal import heal_snapshots, record_take, take_damage, take_key
from cinerl.runtime.rescore import rescore
from cinerl.runtime.run_folder import clear_run, open_store, remove_stale_temps
from cinerl.runtime.shared_policy import SharedPolicy
from cinerl.runtime.takes import SHOOT_TAKE, commit_files, discard_files, save_take
from cinerl.training.character.cast import dress_take
from cinerl.executor import Executor, Job, make_executor
from cinerl.planning.scene_prompts import scene_prompts
from cinerl.planning.bible import llm_report, plan_bible
from cinerl.prompting.composer import compose, compose_onto
from cinerl.references.preproduce import References, preproduce
from cinerl.rewards import ScoreContext, Scorer
from cinerl.core.schema import Clip
from cinerl.training.character.cast import (
    add_triggers,
    cast_references,
    cast_report,
    resolve_cast,
    warn_faceless,
)
from cinerl.training.policy.state import state_vector
from cinerl.training.policy.net import PromptPolicy, Transition
from cinerl.core.schema import (
    AttemptRecord,
    ClipRequest,
    FilmInfo,
    FilmReport,
    LLMReport,
    PolicyReport,
    PromptOptReport,
    Scene,
    SceneReport,
    StoryBible,
)

log = logging.getLogger(__name__)


AWAITING_APPROVAL = "awaiting approval"


class Prepared(NamedTuple):
    bible: StoryBible
    refs: References
    policy: PromptPolicy
    version_start: int
    backend: object
    scorer: Scorer


@dataclass
class FilmResult:
    out_dir: Path
    film: Path
    report_json: Path
    report_html: Path
    report: FilmReport


REDO = {
    "restitch": "the film is stitched and reported again",
    "rescore": "stored takes are re-totalled from their components, re-chosen, re-stitched",
    "attempts": "the new attempt rule applies to the scenes not finished yet",
}


def attempt_seed(seed: int, scene: int, attempt: int) -> int:
    """A seed per attempt derived from the run seed, so any attempt can be redone on its own."""
    return int(np.random.SeedSequence([seed, scene, attempt]).generate_state(1)[0])


def existing_run(out_dir: Path) -> bool:
    return (Path(out_dir) / "state.db").exists()


def enough_attempts(k: int, best: float, s: RunSettings) -> bool:
    """The attempt rule. Without a threshold: exactly `attempts`. With one: stop as soon as the
    best reward reaches it, keep going while it does not, never past `max_attempts`."""
    if k >= s.max_attempts:
        return True
    if s.consistency_threshold is None:
        return k >= s.attempts
    return best >= s.consistency_threshold


class Timer:
    def __init__(self, store: RunStore):
        self.store = store

    @contextmanager
    def stage(self, name: str, sink: dict[str, float] | None = None):
        t0 = time.perf_counter()
        yield
        dt = time.perf_counter() - t0
        self.store.add_stage_time(name, dt)
        if sink is not None:
            sink[name] = sink.get(name, 0.0) + dt


class Director:
    def __init__(
        self,
        prompt: str,
        out_dir: Path,
        settings: Settings,
        fresh: bool = False,
        on_attempt: Callable[[AttemptRecord], None] | None = None,
        on_plan: Callable[[StoryBible], None] | None = None,
        on_event: Callable[[str], None] | None = None,
        on_scene: Callable[[Scene, int], None] | None = None,
    ):
        self.prompt = check_prompt(prompt)
        self.out_dir = check_out_dir(out_dir)
        self.settings = settings
        self.on_attempt, self.on_plan = on_attempt, on_plan
        self.on_event = on_event or (lambda line: None)
        self.on_scene = on_scene or (lambda scene, takes: None)
        self.lock = run_lock(self.out_dir)  # before anything in the folder is read or removed
        try:
            if fresh:
                clear_run(self.out_dir)
            removed = remove_stale_temps(self.out_dir)
            if removed:
                log.warning("removed %d stale temp file(s) of an earlier run in %s", removed, self.out_dir)
            self.store = open_store(self.out_dir)
            self.resume_changes = self.open_run()
            remember_settings(self.store, settings)  # what `cinerl approve/retake/choose` reopen it with
        except BaseException:
            self.lock.release()
            raise
        self.timer = Timer(self.store)
        self.keyframes: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # --mode keyframes
        self.prompt_scenes: dict[int, Scene] = {}  # --prompt-opt: scenes as the composer sees them
        self.prompt_opt: dict = {}  # --prompt-opt: what it added, for the report
        self.base_prompts: dict[int, str] = {}  # --llm, --from-plan: each scene's base prompt
        self.plan_only = False  # make --plan-only: stop before the first take (runtime/edits.py)
        self.budget: Budget | None = None  # make --budget: retries stop when the rest would not fit
        self.self_contained = False  # --self-contained: the report embeds film, takes and stills
        self.executor: Executor | None = None  # where takes run (--executor; made on the first take)
        self.own_executor = False
        self.ahead: dict[tuple[int, int], tuple] = {}  # (scene, take) submitted, not committed yet
        self.acting: PromptPolicy | None = None  # --parallel-scenes: the policy at the film's start
        self.cast: list = []  # --cast: bible characters played by a portrait (training/character/cast.py)

    def open_run(self) -> fpcheck.Changes:
        """Start the run, or resume it: settings compared one by one with the stored view
        (runtime/fingerprint.py); a setting that changes frames is refused by name."""
        neutral = all_frame_neutral()
        view = self.settings.film_fingerprint_view(neutral)
        fp = fingerprint(self.prompt, view)
        run = self.store.run()
        if not run:
            self.store.start_run(self.prompt, fp, view)
            return fpcheck.Changes()
        if run["prompt"] != self.prompt:
            self.store.close()
            raise UserError(
                f"{self.out_dir} holds a run of another prompt; "
                "pass --fresh to replace it or choose another --out"
            )
        changes = fpcheck.compare(run["settings"], view, neutral)
        if changes.refuse:
            self.store.close()
            raise UserError(
                f"{self.out_dir} holds a run made with other settings ({'; '.join(changes.refuse)}); "
                "use the run's settings to resume, --fresh to replace it, or another --out"
            )
        if changes.any:
            for kind, lines in changes.redo.items():
                log.warning("resuming with %s: %s", "; ".join(lines), REDO[kind])
            if changes.accepted:
                log.info("resuming with %s (changes no frame)", "; ".join(changes.accepted))
            if "rescore" in changes.redo:
                for line in rescore(self.store, self.settings.rewards.weights):
                    log.warning("new reward weights: %s", line)
            self.store.update_settings(fp, view)
        return changes

    # stages -------------------------------------------------------------------------------
    def plan(self) -> StoryBible:
        def make() -> StoryBible:
            with self.timer.stage("plan"):
                # offline planner by default; --llm: DirectorAgent; --from-plan: a saved plan
                return plan_bible(self.prompt, self.settings, self.store, self.out_dir)

        def write(bible: StoryBible) -> Path:
            return atomic_write_text(self.out_dir / "story" / "bible.json", bible.model_dump_json(indent=2))

        def read(path: Path) -> StoryBible:
            return StoryBible.model_validate_json(path.read_text(encoding="utf-8"))

        self.check_bible()
        return self.store.cached("story", "bible", make, write, read)

    def check_bible(self) -> None:
        """A hand-edited story/bible.json is neither reverted nor used: the run says so."""
        recorded = self.store.recorded_sha256("story", "bible")
        path = self.out_dir / "story" / "bible.json"
        if recorded and path.is_file() and sha256_file(path) != recorded:
            raise UserError(
                f"{path} was edited after the run planned it; this run will not shoot an edited plan: "
                "pass --fresh to plan again, or shoot your own plan with `cinerl make --from-plan`"
            )

    def references(self, bible: StoryBible) -> References:
        with self.timer.stage("references"):
            s = self.settings
            backend = get_image_backend(s.run.image_backend, s, model_path=s.run.image_model_path)
            refs = preproduce(
                bible, backend, self.out_dir, self.store, (s.run.width, s.run.height), s.run.seed
            )
            if s.run.cast:  # --cast: the portrait is the character's reference
                self.cast = resolve_cast(s.run.cast, bible)
                warn_faceless(self.cast)
                cast_references(refs, self.cast, self.out_dir)
            return refs

    def new_policy(self) -> PromptPolicy:
        return PromptPolicy.from_settings(self.settings.policy, seed=self.settings.run.seed)

    def load_policy(self) -> tuple[PromptPolicy, int]:
        """The run's own policy snapshot (start, or after the last finished scene, recomputed
        when damaged) and the version the run started from (start.pt's, also on a resume)."""
        s = self.settings
        policy = self.new_policy()
        if s.policy.mode in ("random", "template"):  # no network to load
            return policy, 0
        # the shared policy file as this run found it; other runs may change the file later
        start = self.store.cached(
            "policy",
            "start",
            make=lambda: policy.load(s.resolved_policy_path()),
            write=lambda _: policy.save(self.out_dir / "policy" / "start.pt"),
            read=lambda path: path,
        )
        policy.load(start)
        self.start_snapshot = start  # --parallel-scenes acts from it (film_start_policy)
        version_start = policy.version
        latest = heal_snapshots(self.store, self.out_dir, self.new_policy) or start
        policy.load(latest)
        if s.policy.mode == "learn":
            self.shared = SharedPolicy(s.resolved_policy_path(), self.new_policy)
        return policy, version_start

    def shoot_scene(
        self,
        scene: Scene,
        bible: StoryBible,
        refs: References,
        policy: PromptPolicy,
        backend,
        scorer: Scorer,
        prev_last: np.ndarray | None,
        recent: list[float],
    ) -> int:
        """All attempts at one scene, the policy update, and the scene's commit. Returns chosen."""
        s = self.settings
        done = {rec.attempt: (rec, st) for rec, st in self.store.attempts(scene.index)}
        batch: list[Transition] = []
        records: list[AttemptRecord] = []
        ctx = self.context(scene, bible, refs, prev_last)
        # --parallel-takes: every take acts from the state at the scene's start (takes shot at once
        # cannot see each other's rewards), so a take is the same whichever worker shoots it;
        # --parallel-scenes: from the state at the film's start, with the film's first policy
        start = state_vector(scene, bible, recent) if s.run.parallel_takes else None
        acting = policy
        if s.run.parallel_scenes:
            start, acting = self.film_start_state(scene, bible), self.film_start_policy()
        k = 0
        while True:
            if k in done:
                rec, st = done[k]
                rec = self.heal_take(rec, scene, bible, backend, scorer, ctx, prev_last)
                state = np.asarray(st, dtype=np.float32)
            else:
                state = start if start is not None else state_vector(scene, bible, recent)
                rec = self.attempt(scene, k, bible, acting, backend, scorer, ctx, state, prev_last)
            records.append(rec)
            batch.append(Transition(state, rec.action, rec.reward.total))
            recent = recent + [rec.reward.total]
            if self.on_attempt:
                self.on_attempt(rec)
            k += 1
            if enough_attempts(k, max(r.reward.total for r in records), s.run):
                break
            if self.budget is not None and not self.budget.allows_another(self.store, scene.index, k):
                break
        self.drop_ahead(scene)
        self.on_scene(scene, k)
        chosen = max(records, key=lambda r: (r.reward.total, -r.attempt)).attempt
        learn_t: dict[str, float] = {}
        with self.timer.stage("learn", learn_t):
            info = policy.update(batch)
            snap_path = ""
            if s.policy.mode not in ("random", "template"):
                snap = policy.save(self.out_dir / "policy" / f"after_scene_{scene.index:02d}.pt")
                self.store.record_artifact("policy", f"scene_{scene.index:02d}", snap, self.out_dir)
                snap_path = str(snap.relative_to(self.out_dir))
                if s.policy.mode == "learn":
                    self.shared.publish(policy, batch)
        self.store.commit_scene(scene.index, chosen, policy.version, snap_path, info)
        return chosen

    def context(self, scene: Scene, bible: StoryBible, refs: References, prev_last) -> ScoreContext:
        return ScoreContext(
            scene=scene,
            bible=bible,
            character_refs={cid: refs.characters[cid] for cid in scene.character_ids},
            location_ref=refs.locations[scene.location_id],
            previous_last_frame=prev_last,
        )

    def attempt(
        self,
        scene: Scene,
        k: int,
        bible: StoryBible,
        policy: PromptPolicy,
        backend,
        scorer: Scorer,
        ctx: ScoreContext,
        state: np.ndarray,
        prev_last: np.ndarray | None,
    ) -> AttemptRecord:
        """One take: the policy acts and the prompt is composed here, the take is rendered, saved
        and scored as a job on the executor (runtime/takes.py; in this process by default), and
        its files and record are committed here, in take order. `backend` and `scorer` are the
        run's; the job's worker keeps its own (the same ones, in the local executor's process)."""
        if (scene.index, k) not in self.ahead:
            self.submit_takes(scene, k, bible, policy, ctx, state, prev_last)
        seed, action, log_prob, prompt, negative, future = self.ahead.pop((scene.index, k))
        take = future.result().value
        folder = self.out_dir / "scenes" / f"scene_{scene.index:02d}"
        stem = f"attempt_{k:02d}"
        commit_files(folder, take["files"])
        for name, dt in take["timings"].items():
            self.store.add_stage_time(name, dt)

        def rel(name: str) -> str:
            return str((folder / name).relative_to(self.out_dir))

        record = AttemptRecord(
            scene=scene.index,
            attempt=k,
            seed=seed,
            prompt=prompt,
            negative_prompt=negative,
            action=action,
            log_prob=log_prob,
            reward=take["reward"],
            clip_path=rel(f"{stem}.mp4"),
            last_frame_path=rel(f"{stem}_last.png"),
            thumbnail_path=rel(f"{stem}_thumb.jpg"),
            timings=take["timings"],
            backend_info=take["backend_info"],
        )
        record_take(self.store, record, self.out_dir)
        self.store.commit_attempt(record, state.tolist())
        return record

    def submit_takes(self, scene: Scene, k: int, bible, policy: PromptPolicy, ctx, state, prev_last) -> None:
        """Act, compose and submit take k; with --parallel-takes, every take the scene may still
        need (up to the executor's workers when a threshold may stop it early), all from the same
        policy snapshot and state."""
        s = self.settings
        if self.executor is None:
            self.executor, self.own_executor = make_executor(s.executor), True
        last = k + 1
        if s.run.parallel_takes or s.run.parallel_scenes:
            limit = s.run.max_attempts if s.run.consistency_threshold is not None else s.run.attempts
            wave = limit - k if s.run.consistency_threshold is None else self.executor.workers
            last = max(k + 1, min(limit, k + wave))
        folder = self.out_dir / "scenes" / f"scene_{scene.index:02d}"
        for j in range(k, last):
            seed = attempt_seed(s.run.seed, scene.index, j)
            action, log_prob = policy.act(state, seed, greedy=j == 0 and s.policy.greedy_first)
            composed = self.prompt_scenes.get(scene.index, scene)
            if scene.index in self.base_prompts:
                prompt, negative = compose_onto(self.base_prompts[scene.index], composed, bible, action)
            else:
                prompt, negative = compose(composed, bible, action)
            prompt = add_triggers(prompt, scene.character_ids, bible, self.cast)  # --cast LoRAs
            request = self.request(scene, seed, prompt, negative, prev_last, ctx)
            job = Job(
                SHOOT_TAKE,
                kwargs=dict(
                    settings=s,
                    request=request,
                    ctx=with_fields(ctx, prompt=prompt),
                    folder=str(folder),
                    stem=f"attempt_{j:02d}",
                ),
                out=str(folder),
                key=f"scene_{scene.index:02d}/attempt_{j:02d}",
            )
            self.ahead[scene.index, j] = (seed, action, log_prob, prompt, negative, self.executor.submit(job))

    def drop_ahead(self, scene: Scene) -> None:
        """Takes shot ahead that the scene did not need (it stopped at its threshold or budget)."""
        folder = self.out_dir / "scenes" / f"scene_{scene.index:02d}"
        for key in [key for key in self.ahead if key[0] == scene.index]:
            *_, future = self.ahead.pop(key)
            if not self.executor.cancel(future):
                try:
                    discard_files(folder, future.result().value["files"])
                except Exception as e:  # noqa: BLE001 - a take nobody needs may fail quietly
                    log.info("a take shot ahead and not needed failed: %s", e)

    # --parallel-scenes (keyframes mode) -----------------------------------------------------
    def film_start_policy(self) -> PromptPolicy:
        """The policy every take of a --parallel-scenes film acts with: the run's start snapshot
        (policy/start.pt, also on a resume), never the updated one, so no scene waits for the
        update of the scene before it. The updates still happen, on the driver in scene order."""
        if self.acting is None:
            self.acting = self.new_policy()
            if self.settings.policy.mode not in ("random", "template"):
                self.acting.load(self.start_snapshot)
        return self.acting

    def film_start_state(self, scene: Scene, bible: StoryBible) -> np.ndarray:
        """The state of a scene at the film's start: its own features, no rewards seen yet."""
        return state_vector(scene, bible, [])

    def previous_frame(self, scene: Scene, prev_last: np.ndarray | None) -> np.ndarray | None:
        """The frame a scene's takes continue from, for their score: the previous scene's chosen
        take's last frame; with --parallel-scenes the keyframe the scene starts on (the frame
        the scene before was shot to end on), since no take is chosen when the takes are shot."""
        if not self.settings.run.parallel_scenes:
            return prev_last
        return self.keyframes[scene.index][0] if scene.index > 0 else None

    def shoot_ahead(self, bible: StoryBible, refs: References) -> None:
        """--parallel-scenes: submit the takes of every scene not finished yet, all at once, in
        scene order (the first wave of each: every take without a threshold, `workers` with
        one); the driver then commits and learns scene by scene as the takes come back."""
        committed = self.store.scenes()
        for scene in bible.scenes:
            if scene.index in committed:
                continue
            done = [rec for rec, _ in self.store.attempts(scene.index)]
            if done and enough_attempts(len(done), max(r.reward.total for r in done), self.settings.run):
                continue  # every take is in; only the scene's commit is left
            ctx = self.context(scene, bible, refs, self.previous_frame(scene, None))
            state = self.film_start_state(scene, bible)
            self.submit_takes(
                scene, len(done), bible, self.film_start_policy(), ctx, state, ctx.previous_last_frame
            )

    def request(self, scene: Scene, seed: int, prompt: str, negative: str, prev_last, ctx) -> ClipRequest:
        r = self.settings.run
        request = ClipRequest(
            prompt=prompt,
            negative_prompt=negative,
            width=r.width,
            height=r.height,
            fps=r.fps,
            num_frames=max(1, round(scene.duration_s * r.fps)),
            seed=seed,
            init_image=prev_last,
            reference_image=ctx.location_ref,
        )
        if scene.index in self.keyframes:
            request.init_image, request.last_image = self.keyframes[scene.index]
        return request

    def save_take(self, clip, folder: Path, stem: str, expected: int) -> Clip:
        """Write the take's files in place (runtime/takes.save_take, which a take job also uses)
        and return the mp4 decoded."""
        return save_take(clip, folder, stem, expected, self.settings.assembly)[0]

    def heal_take(
        self, rec: AttemptRecord, scene: Scene, bible, backend, scorer, ctx, prev_last
    ) -> AttemptRecord:
        """Re-render a take whose files are missing or damaged, from its stored seed and prompt."""
        bad = take_damage(self.store, rec, self.out_dir)
        if not bad:
            return rec
        old = self.store.recorded_sha256("take", take_key(rec, "mp4"))
        request = self.request(scene, rec.seed, rec.prompt, rec.negative_prompt, prev_last, ctx)
        clip = dress_take(backend.generate(request), request, ctx, self.settings)
        folder = self.out_dir / "scenes" / f"scene_{scene.index:02d}"
        saved = self.save_take(clip, folder, f"attempt_{rec.attempt:02d}", request.num_frames)
        how = "re-rendered from its stored seed"
        if old is None or sha256_file(self.out_dir / rec.clip_path) != old:
            ctx.prompt = rec.prompt
            rec.reward = scorer.score(saved, ctx)
            how += " and re-scored"
        record_take(self.store, rec, self.out_dir)
        state = next(st for r, st in self.store.attempts(scene.index) if r.attempt == rec.attempt)
        self.store.commit_attempt(rec, state)
        log.warning(
            "healed scene %d take %d (%s missing or damaged): %s",
            scene.index + 1,
            rec.attempt + 1,
            ", ".join(bad),
            how,
        )
        return rec

    # the whole film -----------------------------------------------------------------------
    def prepare(self, shoot: bool = True) -> Prepared:
        """Everything before the first take (plan, references, prompts, policy, backend,
        keyframes), each read back from the store once committed: run() and the edits of
        runtime/edits.py (approve, retake, choose) start from it. `shoot=False` (choose: a
        re-cut, nothing rendered) leaves the video backend unloaded and the keyframes unread."""
        s = self.settings
        self.on_event("planning")
        bible = self.plan()
        if self.on_plan:
            self.on_plan(bible)
        self.on_event("reference stills")
        refs = self.references(bible)
        if s.plan.prompt_opt != "none":
            from cinerl.prompting.rapo.film import prompt_scenes

            with self.timer.stage("prompt_opt"):
                self.prompt_scenes, self.prompt_opt = prompt_scenes(bible, s, self.out_dir, self.store)
        if s.llm.provider != "offline" or s.plan.from_plan:  # --llm: enriched and revised; --from-plan: saved
            with self.timer.stage("prompts"):
                seen = bible.model_copy(
                    update={"scenes": [self.prompt_scenes.get(sc.index, sc) for sc in bible.scenes]}
                )
                self.base_prompts = scene_prompts(seen, s, self.store, self.out_dir)
        policy, version_start = self.load_policy()
        backend = get_video_backend(s.run.backend, s) if shoot else None
        if s.run.shot_mode == "keyframes" and shoot:
            with self.timer.stage("keyframes"):
                self.keyframes = scene_keyframes(
                    bible,
                    backend,
                    get_image_backend("previz"),
                    self.out_dir,
                    self.store,
                    (s.run.width, s.run.height),
                    s.run.seed,
                )
        return Prepared(bible, refs, policy, version_start, backend, Scorer(config=s.rewards))

    def run(self) -> FilmResult | None:
        s = self.settings
        if self.executor is None and s.executor.kind != "local" and not self.plan_only:
            # joined (or started) before planning: a cluster that does not answer fails here
            self.executor, self.own_executor = make_executor(s.executor), True
        bible, refs, policy, version_start, backend, scorer = self.prepare()
        if self.plan_only:  # `make --plan-only`: the storyboard waits for `cinerl approve`
            self.store.set_status(AWAITING_APPROVAL)
            return None
        if s.run.parallel_scenes:  # every scene's takes at once, after the keyframes
            self.shoot_ahead(bible, refs)
        committed = self.store.scenes()
        prev_last: np.ndarray | None = None
        recent: list[float] = []
        for scene in bible.scenes:
            self.on_event(f"scene {scene.index + 1}/{len(bible.scenes)}: {scene.title}")
            prev = self.previous_frame(scene, prev_last)
            if scene.index not in committed:
                self.shoot_scene(scene, bible, refs, policy, backend, scorer, prev, recent)
                committed = self.store.scenes()
            else:
                ctx = self.context(scene, bible, refs, prev)
                for rec, _ in self.store.attempts(scene.index):
                    self.heal_take(rec, scene, bible, backend, scorer, ctx, prev)
                    if self.on_attempt:
                        self.on_attempt(rec)
                self.on_scene(scene, len(self.store.attempts(scene.index)))
            chosen = committed[scene.index]["chosen"]
            records = [r for r, _ in self.store.attempts(scene.index)]
            rec = next(r for r in records if r.attempt == chosen)
            # the last frame always comes back from its lossless PNG, resumed or not
            prev_last = load_png(self.out_dir / rec.last_frame_path)
            recent = recent + [r.reward.total for r in records]
        return self.assemble(bible, refs, version_start, policy.version)

    def assemble(
        self, bible: StoryBible, refs: References, version_start: int, version_end: int
    ) -> FilmResult:
        s = self.settings
        scenes = self.store.scenes()
        attempts = self.store.attempts()
        chosen = [
            next(r for r, _ in attempts if r.scene == i and r.attempt == scenes[i]["chosen"])
            for i in sorted(scenes)
        ]
        film_path = self.out_dir / "film.mp4"
        self.on_event("stitching the film")
        with self.timer.stage("stitch"):
            info = stitch(
                [self.out_dir / r.clip_path for r in chosen],
                film_path,
                transition=s.assembly.transition,
                crossfade_frames=s.assembly.crossfade_frames,
            )
            durations = [
                b - a for a, b in zip(info["scene_offsets"], info["scene_offsets"][1:] + [info["seconds"]])
            ]
            cues = scene_subtitles(bible, info["scene_offsets"], durations)
        self.on_event("adding the soundtrack")
        with self.timer.stage("audio"):  # narration, cards, music, mix (assembly/audio/soundtrack.py)
            info, self.sound, cues = finish_film(
                film_path, bible, info, durations, s, self.store, self.out_dir, cues
            )
        write_srt(cues, self.out_dir / "film.srt")
        self.on_event("writing the report")
        with self.timer.stage("report"):
            report = self.build_report(bible, refs, attempts, scenes, info, version_start, version_end)
            if self.cast:  # --cast: portrait, LoRA, trigger, identity lock per scene
                report.cast = cast_report(self.cast, report)
            for key, value in run_notes(self.store).items():  # estimate, budget, edits, stale joins
                setattr(report, key, value)
            json_path, html_path = write_report(report, self.out_dir, self.self_contained)
        self.store.set_status("done")
        # written again so the report's stage table includes the report stage itself
        report.stages = self.store.stage_times()
        json_path, html_path = write_report(report, self.out_dir, self.self_contained)
        return FilmResult(self.out_dir, film_path, json_path, html_path, report)

    def build_report(
        self,
        bible: StoryBible,
        refs: References,
        attempts: list[tuple[AttemptRecord, list[float]]],
        scenes: dict[int, dict],
        film_info: dict,
        version_start: int,
        version_end: int,
    ) -> FilmReport:
        """The run as report.json holds it, built from the store (so a resumed run matches)."""
        s = self.settings
        scene_rows = [
            SceneReport(
                scene=sc.index,
                title=sc.title,
                beat=sc.beat,
                chosen=scenes[sc.index]["chosen"],
                policy_version=scenes[sc.index]["policy_version"],
                learn=scenes[sc.index]["learn"],
                attempts=[r for r, _ in attempts if r.scene == sc.index],
            )
            for sc in bible.scenes
        ]
        policy_path = str(s.resolved_policy_path()) if s.policy.mode == "learn" else ""
        return FilmReport(
            title=bible.title,
            seed_prompt=bible.seed_prompt,
            seed=s.run.seed,
            backend=s.run.backend,
            bible=bible,
            references=refs.paths,
            policy=PolicyReport(
                mode=s.policy.mode,
                algorithm=s.policy.rl,
                path=policy_path,
                version_start=version_start,
                version_end=version_end,
            ),
            settings=s.public_dump(),
            stages=self.store.stage_times(),
            scenes=scene_rows,
            prompt_opt=PromptOptReport.model_validate(self.prompt_opt) if self.prompt_opt else None,
            llm=LLMReport.model_validate(llm_report(self.out_dir)),
            film=FilmInfo(
                path="film.mp4",
                srt="film.srt",
                seconds=film_info["seconds"],
                frames=film_info["frames"],
                transition=s.assembly.transition,
                scene_offsets=film_info["scene_offsets"],
            ),
            sound=getattr(self, "sound", {}),
        )

    def close(self) -> None:
        if self.own_executor:
            self.executor.shutdown()
        self.store.close()
        self.lock.release()


def make_film(
    prompt: str,
    out_dir: Path,
    settings: Settings,
    fresh: bool = False,
    on_attempt: Callable[[AttemptRecord], None] | None = None,
    on_plan: Callable[[StoryBible], None] | None = None,
    on_event: Callable[[str], None] | None = None,
    on_scene: Callable[[Scene, int], None] | None = None,
    executor: Executor | None = None,
) -> FilmResult:
    """Make (or resume) the film; a full disk, a damaged store or a truncated file ends in a
    UserError of one line (runtime/faults.py). `executor`: where takes run (default: the one
    the `executor` settings name, made for this film and shut down after it)."""
    with as_user_error(Path(out_dir)):
        director = Director(
            prompt, out_dir, settings, fresh, on_attempt, on_plan, on_event=on_event, on_scene=on_scene
        )
        director.executor = executor
        try:
            return director.run()
        finally:
            director.close()
