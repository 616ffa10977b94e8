"""Typed values that flow between CineRL's stages.

Every stage takes and returns these models, so a stage can be swapped (offline planner or an
LLM, previz or Wan) without the others noticing. Frames are numpy arrays, uint8 (T, H, W, 3) RGB.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_serializer,
    field_validator,
)

from cinerl.core.errors import UserError
from cinerl.core.inputs import slug

Status = Literal["ok", "unavailable", "not_applicable"]
Beat = Literal["beginning", "turn", "end"]


def safe_id(value: str, what: str = "id") -> str:
    """An id that becomes a file name (references/<id>.png) must already be a slug: a plan or
    bible from any source (--from-plan, story/bible.json, an LLM draft) with `x/../../y` would
    otherwise write outside --out. A UserError, not a ValueError, so it is never "repaired"
    into something else and the CLI says it in one line (exit 2)."""
    if not isinstance(value, str) or not value or slug(value, fallback="") != value:
        suggestion = slug(str(value))
        raise UserError(
            f"{what} {str(value)[:80]!r} is not a safe id: use lowercase letters, digits and '_' "
            f"(at most 40, e.g. {suggestion!r})"
        )
    return value


class NamedColor(BaseModel):
    """A colour the prompt can say out loud and a metric can measure (sRGB 0-255)."""

    name: str
    rgb: tuple[int, int, int]


class Character(BaseModel):
    id: str = Field(description="filesystem-safe slug, unique in the bible")
    name: str
    role: str = ""
    age: int = Field(ge=1, le=120)
    gender: str
    wardrobe: list[NamedColor] = Field(description="garments as 'colour garment', colour measurable")
    garments: list[str] = Field(default_factory=list, description="garment nouns matching wardrobe")
    hair: NamedColor | None = None
    visual_description: str = ""
    species: str | None = Field(default=None, description="an animal's species ('dog'); None for a person")

    @field_validator("id", mode="before")
    @classmethod
    def _safe_id(cls, v: str) -> str:
        return safe_id(v, "character id")


class Location(BaseModel):
    id: str
    name: str
    scenery_type: str = Field(description="one of prompting.vocabulary.SCENERY_TYPES")
    palette: list[NamedColor] = Field(min_length=1)
    visual_description: str = ""
    region: str | None = Field(default=None, description="the named place it lies in ('Harlem, New York')")

    @field_validator("id", mode="before")
    @classmethod
    def _safe_id(cls, v: str) -> str:
        return safe_id(v, "location id")


class Scene(BaseModel):
    index: int = Field(ge=0)
    title: str
    beat: Beat
    duration_s: float = Field(ge=1.0, le=60.0)
    character_ids: list[str]
    location_id: str
    action: str
    shot_notes: str = ""
    time_of_day: str = "day"
    weather: str | None = None
    narration: str = Field("", description="the narrator's line over the scene (empty: none planned)")

    @field_validator("character_ids", mode="before")
    @classmethod
    def _safe_character_ids(cls, v: list[str]) -> list[str]:
        return [safe_id(c, "scene character id") for c in v] if isinstance(v, list) else v

    @field_validator("location_id", mode="before")
    @classmethod
    def _safe_location_id(cls, v: str) -> str:
        return safe_id(v, "scene location id")


class StoryBible(BaseModel):
    seed_prompt: str
    title: str
    logline: str
    characters: list[Character] = Field(min_length=1, max_length=6)
    locations: list[Location] = Field(min_length=1, max_length=6)
    scenes: list[Scene] = Field(min_length=1)
    planner: str = "offline"
    seed: int = 0
    era: str | None = Field(default=None, description="when the story is set ('the 1920s')")
    weather: str | None = None

    def character(self, cid: str) -> Character:
        return next(c for c in self.characters if c.id == cid)

    def location(self, lid: str) -> Location:
        return next(loc for loc in self.locations if loc.id == lid)


class ClipRequest(BaseModel):
    """What a video backend is asked for. The prompt text is the only creative input."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    prompt: str
    negative_prompt: str = ""
    width: int = 640
    height: int = 360
    fps: int = 24
    num_frames: int = 264
    seed: int = 0
    init_image: np.ndarray | None = Field(default=None, description="uint8 (H, W, 3) first frame")
    last_image: np.ndarray | None = Field(
        default=None,
        description="uint8 (H, W, 3) frame to end on (keyframe mode; backends "
        "without last-frame conditioning ignore it and say so)",
    )
    reference_image: np.ndarray | None = Field(
        default=None,
        description="the scene's reference image, for backends that need a first "
        "frame when there is no previous clip",
    )

    @field_validator("init_image", "last_image", "reference_image")
    @classmethod
    def _check_image(cls, v: np.ndarray | None) -> np.ndarray | None:
        if v is not None and (v.dtype != np.uint8 or v.ndim != 3 or v.shape[2] != 3):
            raise ValueError("images must be uint8 (H, W, 3)")
        return v


class Clip(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    frames: np.ndarray
    fps: int
    metadata: dict = Field(default_factory=dict)

    @field_validator("frames")
    @classmethod
    def _check_frames(cls, v: np.ndarray) -> np.ndarray:
        if v.dtype != np.uint8 or v.ndim != 4 or v.shape[3] != 3 or v.shape[0] < 1:
            raise ValueError("frames must be uint8 (T, H, W, 3) with T >= 1")
        return v

    @property
    def seconds(self) -> float:
        return self.frames.shape[0] / self.fps


class ComponentScore(BaseModel):
    """One reward component's verdict. value is None unless status is 'ok'."""

    name: str
    group: str
    status: Status
    value: float | None = None
    raw: dict = Field(default_factory=dict)
    reason: str = ""


class RewardBreakdown(BaseModel):
    total: float = Field(ge=0.0, le=1.0)
    components: dict[str, ComponentScore]
    groups: dict[str, float | None]
    weights: dict[str, float] = Field(description="group weights actually used (renormalised)")
    seconds: float = 0.0


class AttemptRecord(BaseModel):
    scene: int
    attempt: int
    seed: int
    prompt: str
    negative_prompt: str
    action: dict[str, str]
    log_prob: float
    reward: RewardBreakdown
    clip_path: str
    last_frame_path: str
    thumbnail_path: str
    timings: dict[str, float] = Field(default_factory=dict)
    backend_info: dict = Field(
        default_factory=dict,
        description="what the backend reports about "
        "the clip: warnings, memory plan, out-of-memory ladder, speed",
    )


class SceneResult(BaseModel):
    scene: int
    attempts: list[AttemptRecord]
    chosen: int
    policy_version: int

    @property
    def chosen_attempt(self) -> AttemptRecord:
        return next(a for a in self.attempts if a.attempt == self.chosen)


# ------------------------------------------------------------------------------------------
# the run report (report.json). Field names and shapes are what report.json has always held:
# `FilmReport.model_dump(mode="json")` is the file's content. Sections allow extra keys, so a
# report written by a later version still loads and round-trips what it does not know.


class _ReportSection(BaseModel):
    model_config = ConfigDict(extra="allow")


class PolicyReport(_ReportSection):
    """Which prompt policy shot the film, and its version before and after."""

    mode: str = ""
    algorithm: str = ""
    path: str = Field("", description="the policy file learned into (mode learn), else empty")
    version_start: int = 0
    version_end: int = 0


class SceneReport(_ReportSection):
    """One shot scene: every attempt, the one chosen, and the policy update after it."""

    scene: int
    title: str = ""
    beat: str = ""
    chosen: int
    policy_version: int = 0
    learn: dict = Field(default_factory=dict, description="the policy update's losses")
    attempts: list[AttemptRecord] = Field(default_factory=list)

    @property
    def chosen_attempt(self) -> AttemptRecord | None:
        return next((a for a in self.attempts if a.attempt == self.chosen), None)


class PromptOptScene(_ReportSection):
    scene: int
    query: str = ""
    added: list[str] = Field(default_factory=list)
    left_out: list[str] = Field(default_factory=list)


class PromptOptReport(_ReportSection):
    """What prompt optimisation (`--prompt-opt rapo`) added to each scene's action."""

    method: str = ""
    artifact: str = ""
    scenes: list[PromptOptScene] = Field(default_factory=list)


class LLMStepReport(_ReportSection):
    """One model step (plan, a scene's enrich or critique): who answered, at what cost."""

    step: str = ""
    provider: str = ""
    model: str = ""
    calls: list[dict] = Field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    repairs: int = 0
    fell_back: bool = False
    warning: str = ""


class ScenePromptReport(_ReportSection):
    """A scene's base prompt as the LLM layer wrote it (before and after the critic)."""

    scene: int
    mode: str = ""
    enriched: str = ""
    issues: list[str] = Field(default_factory=list)
    revised_prompt: str = ""
    base_prompt: str | None = None
    warning: str = ""


class ScenePromptsReport(_ReportSection):
    source: str = ""
    scenes: list[ScenePromptReport] = Field(default_factory=list)


class LLMReport(_ReportSection):
    """The LLM section: every step with its tokens and time, and the scenes' base prompts."""

    steps: list[LLMStepReport] = Field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    scene_prompts: ScenePromptsReport = Field(default_factory=ScenePromptsReport)
    warnings: list[str] = Field(default_factory=list)


class FilmInfo(_ReportSection):
    """The stitched film, relative to the run folder."""

    path: str = "film.mp4"
    srt: str = "film.srt"
    seconds: float = 0.0
    frames: int = 0
    transition: str = "cut"
    scene_offsets: list[float] = Field(default_factory=list, description="scene starts, seconds")


class FilmReport(_ReportSection):
    """A finished run, as report.json holds it (and report.html shows it)."""

    title: str
    seed_prompt: str
    seed: int = 0
    backend: str = ""
    bible: StoryBible
    references: dict[str, str] = Field(default_factory=dict, description="'kind:id' -> path")
    policy: PolicyReport = Field(default_factory=PolicyReport)
    settings: dict = Field(default_factory=dict, description="Settings.public_dump()")
    stages: dict[str, float] = Field(default_factory=dict, description="stage -> seconds")
    scenes: list[SceneReport] = Field(default_factory=list)
    prompt_opt: PromptOptReport | None = Field(None, description="written as {} when off")
    llm: LLMReport = Field(default_factory=LLMReport)
    film: FilmInfo = Field(default_factory=FilmInfo)

    @field_validator("prompt_opt", mode="before")
    @classmethod
    def _empty_is_none(cls, v: object) -> object:
        return None if v == {} else v

    @field_serializer("prompt_opt", mode="wrap")
    def _none_is_empty(self, v: PromptOptReport | None, handler: SerializerFunctionWrapHandler) -> dict:
        # report.json has always said {} for "no prompt optimisation"; readers rely on a dict
        return {} if v is None else handler(v)

    @classmethod
    def read(cls, path: str | Path) -> "FilmReport":
        """Load report.json (or a run folder's report.json); a UserError names the file."""
        path = Path(path).expanduser()
        if path.is_dir():
            path = path / "report.json"
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise UserError(f"{path} is missing (is this a finished cinerl make run?)") from None
        except OSError as e:
            raise UserError(f"{path} cannot be read: {e}") from None
        try:
            return cls.model_validate_json(text)
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(root)"
            n = e.error_count()
            raise UserError(
                f"{path} is not a valid CineRL report ({n} problem"
                f"{'s' if n != 1 else ''}; first: {where}: {first['msg']})"
            ) from None

    def to_json(self) -> dict:
        """The report as report.json holds it (plain JSON types)."""
        return self.model_dump(mode="json")
