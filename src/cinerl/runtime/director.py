"""The production loop: plan, preproduce, shoot every scene with a learning prompt policy, stitch,
report. Every finished step is committed to the run store, so a killed run resumes where it
stopped and makes the same film an uninterrupted run makes."""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cinerl.assembly.report.build import write_report
from cinerl.assembly.stitch import stitch
from cinerl.assembly.subtitles import scene_subtitles, write_srt
from cinerl.core.settings import RunSettings, Settings
from cinerl.generation.registry import all_frame_neutral, get_image_backend, get_video_backend
from cinerl.generation.keyframes import scene_keyframes
from cinerl.core.inputs import check_out_dir, check_prompt
from cinerl.core.media import atomic_write_text, load_png, save_jpeg, save_png, thumbnail, write_mp4
from cinerl.core.store import RunStore
from cinerl.planning.scene_prompts import scene_prompts
from cinerl.planning.bible import llm_report, plan_bible
from cinerl.prompting.composer import compose, compose_onto
from cinerl.references.preproduce import References, preproduce
from cinerl.rewards import ScoreContext, Scorer
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
RUN_ENTRIES = (
    "state.db",
    "state.db-wal",
    "state.db-shm",
    "story",
    "references",
    "scenes",
    "policy",
    "film.mp4",
    "film.srt",
    "report.json",
    "report.html",
)


@dataclass
class FilmResult:
    out_dir: Path
    film: Path
    report_json: Path
    report_html: Path
    report: FilmReport


def attempt_seed(seed: int, scene: int, attempt: int) -> int:
    """A seed per attempt derived from the run seed, so any attempt can be redone on its own."""
    return int(np.random.SeedSequence([seed, scene, attempt]).generate_state(1)[0])


def clear_run(out_dir: Path) -> None:
    """Remove what a previous run wrote (and only that) for --fresh."""
    for name in RUN_ENTRIES:
        p = out_dir / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


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
    ):
        self.prompt = check_prompt(prompt)
        self.out_dir = check_out_dir(Path(out_dir))
        self.settings = settings
        self.on_attempt, self.on_plan = on_attempt, on_plan
        # the settings that make this run this run (a backend's speed settings do not)
        film_settings = settings.film_fingerprint_view(all_frame_neutral())
        if fresh:
            clear_run(self.out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.store = RunStore.open_run(self.out_dir, self.prompt, film_settings)
        self.timer = Timer(self.store)
        self.keyframes: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # --mode keyframes
        self.prompt_scenes: dict[int, Scene] = {}  # --prompt-opt: scenes as the composer sees them
        self.prompt_opt: dict = {}  # --prompt-opt: what it added, for the report
        self.base_prompts: dict[int, str] = {}  # --llm, --from-plan: each scene's base prompt

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

        return self.store.cached("story", "bible", make, write, read)

    def references(self, bible: StoryBible) -> References:
        with self.timer.stage("references"):
            s = self.settings
            backend = get_image_backend(s.run.image_backend, s, model_path=s.run.image_model_path)
            return preproduce(
                bible, backend, self.out_dir, self.store, (s.run.width, s.run.height), s.run.seed
            )

    def load_policy(self) -> tuple[PromptPolicy, int]:
        """The run's own policy snapshot (start, or after the last finished scene)."""
        s = self.settings
        policy = PromptPolicy.from_settings(s.policy, seed=s.run.seed)
        if s.policy.mode == "random":
            return policy, 0
        # the shared policy file as this run found it; other runs may change the file later
        start = self.store.cached(
            "policy",
            "start",
            make=lambda: policy.load(s.resolved_policy_path()),
            write=lambda _: policy.save(self.out_dir / "policy" / "start.pt"),
            read=lambda path: path,
        )
        latest = start
        for idx in sorted(self.store.scenes()):
            snap = self.store.artifact("policy", f"scene_{idx:02d}", self.out_dir)
            if snap is None:
                raise RuntimeError(f"run store lists scene {idx} but its policy snapshot is missing")
            latest = snap
        policy.load(latest)
        return policy, policy.version

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
        ctx = ScoreContext(
            scene=scene,
            bible=bible,
            character_refs={cid: refs.characters[cid] for cid in scene.character_ids},
            location_ref=refs.locations[scene.location_id],
            previous_last_frame=prev_last,
        )
        k = 0
        while True:
            if k in done:
                rec, st = done[k]
                state = np.asarray(st, dtype=np.float32)
            else:
                state = state_vector(scene, bible, recent)
                rec = self.attempt(scene, k, bible, policy, backend, scorer, ctx, state, prev_last)
            records.append(rec)
            batch.append(Transition(state, rec.action, rec.reward.total))
            recent = recent + [rec.reward.total]
            if self.on_attempt:
                self.on_attempt(rec)
            k += 1
            if enough_attempts(k, max(r.reward.total for r in records), s.run):
                break
        chosen = max(records, key=lambda r: (r.reward.total, -r.attempt)).attempt
        learn_t: dict[str, float] = {}
        with self.timer.stage("learn", learn_t):
            info = policy.update(batch)
            snap_path = ""
            if s.policy.mode != "random":
                snap = policy.save(self.out_dir / "policy" / f"after_scene_{scene.index:02d}.pt")
                self.store.record_artifact("policy", f"scene_{scene.index:02d}", snap, self.out_dir)
                snap_path = str(snap.relative_to(self.out_dir))
                if s.policy.mode == "learn":
                    policy.save(s.resolved_policy_path())
        self.store.commit_scene(scene.index, chosen, policy.version, snap_path, info)
        return chosen

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
        s = self.settings
        seed = attempt_seed(s.run.seed, scene.index, k)
        action, log_prob = policy.act(state, seed)
        composed = self.prompt_scenes.get(scene.index, scene)
        if scene.index in self.base_prompts:
            prompt, negative = compose_onto(self.base_prompts[scene.index], composed, bible, action)
        else:
            prompt, negative = compose(composed, bible, action)
        r = s.run
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
        timings: dict[str, float] = {}
        with self.timer.stage("render", timings):
            clip = backend.generate(request)
        ctx.prompt = prompt
        with self.timer.stage("score", timings):
            reward = scorer.score(clip, ctx)
        folder = self.out_dir / "scenes" / f"scene_{scene.index:02d}"
        stem = f"attempt_{k:02d}"
        with self.timer.stage("save", timings):
            write_mp4(clip.frames, clip.fps, folder / f"{stem}.mp4")
            save_png(clip.frames[-1], folder / f"{stem}_last.png")
            save_jpeg(thumbnail(clip.frames[len(clip.frames) // 2]), folder / f"{stem}_thumb.jpg")

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
            reward=reward,
            clip_path=rel(f"{stem}.mp4"),
            last_frame_path=rel(f"{stem}_last.png"),
            thumbnail_path=rel(f"{stem}_thumb.jpg"),
            timings=timings,
            backend_info=clip.metadata.get("report", {}),
        )
        self.store.commit_attempt(record, state.tolist())
        return record

    # the whole film -----------------------------------------------------------------------
    def run(self) -> FilmResult:
        s = self.settings
        bible = self.plan()
        if self.on_plan:
            self.on_plan(bible)
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
        backend = get_video_backend(s.run.backend, s)
        if s.run.shot_mode == "keyframes":
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
        scorer = Scorer(config=s.rewards)
        committed = self.store.scenes()
        prev_last: np.ndarray | None = None
        recent: list[float] = []
        for scene in bible.scenes:
            if scene.index not in committed:
                self.shoot_scene(scene, bible, refs, policy, backend, scorer, prev_last, recent)
                committed = self.store.scenes()
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
            write_srt(scene_subtitles(bible, info["scene_offsets"], durations), self.out_dir / "film.srt")
        with self.timer.stage("report"):
            report = self.build_report(bible, refs, attempts, scenes, info, version_start, version_end)
            json_path, html_path = write_report(report, self.out_dir)
        self.store.set_status("done")
        # written again so the report's stage table includes the report stage itself
        report.stages = self.store.stage_times()
        json_path, html_path = write_report(report, self.out_dir)
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
        )

    def close(self) -> None:
        self.store.close()


def make_film(
    prompt: str,
    out_dir: Path,
    settings: Settings,
    fresh: bool = False,
    on_attempt: Callable[[AttemptRecord], None] | None = None,
    on_plan: Callable[[StoryBible], None] | None = None,
) -> FilmResult:
    director = Director(prompt, out_dir, settings, fresh=fresh, on_attempt=on_attempt, on_plan=on_plan)
    try:
        return director.run()
    finally:
        director.close()
