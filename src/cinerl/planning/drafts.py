"""The compact shapes a language model fills in, and their expansion into a StoryBible.

A StoryBible has ids, RGB triples and cross-references that a model gets wrong; a draft has
only what the model decides (names, ages, colour names from CineRL's vocabulary, scenery types,
short texts), with enums where the answer is a choice. Planning takes two steps: the cast (who
and where), then the scenes, whose schema is built from that cast so that every scene names
real characters and a real location by construction. Ids and colours are filled in here.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from cinerl.core.inputs import slug
from cinerl.core.vocabulary import COLORS, SCENERY_TYPES
from cinerl.core.schema import Character, Location, NamedColor, Scene, StoryBible
from cinerl.planning.offline import NARRATION_PAD_S, NARRATION_WPS, narration_line

ColorName = Literal[tuple(COLORS)]  # type: ignore[valid-type]
SceneryType = Literal[tuple(SCENERY_TYPES)]  # type: ignore[valid-type]
Gender = Literal["woman", "man", "girl", "boy", "robot"]
TimeOfDay = Literal["dawn", "morning", "day", "dusk", "night"]
Beat = Literal["beginning", "turn", "end"]
MAX_CAST = 4


class Draft(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CharacterDraft(Draft):
    name: str = Field(min_length=1, max_length=24, description="first name")
    role: str = Field(min_length=1, max_length=32, description="who they are, e.g. 'lighthouse keeper'")
    age: int = Field(ge=1, le=99)
    gender: Gender
    wardrobe_colors: list[ColorName] = Field(min_length=3, max_length=3)
    garments: list[str] = Field(min_length=3, max_length=3, description="e.g. coat, trousers, boots")
    hair: ColorName
    look: str = Field(min_length=1, max_length=80, description="face, build, expression")


class LocationDraft(Draft):
    name: str = Field(min_length=1, max_length=40, description="e.g. 'the Old Harbour'")
    scenery_type: SceneryType
    palette: list[ColorName] = Field(min_length=2, max_length=3)
    look: str = Field(min_length=1, max_length=80, description="materials and landmarks")


class CastDraft(Draft):
    """Step one of planning: title, logline, who and where."""

    title: str = Field(min_length=1, max_length=60)
    logline: str = Field(min_length=1, max_length=200)
    characters: list[CharacterDraft] = Field(min_length=1, max_length=MAX_CAST)
    locations: list[LocationDraft] = Field(min_length=1, max_length=MAX_CAST)


def cast_problems(cast: CastDraft) -> list[str]:
    """Rules the schema cannot state: names must be distinct."""
    out = []
    for what, names in (
        ("character", [c.name for c in cast.characters]),
        ("location", [loc.name for loc in cast.locations]),
    ):
        slugs = [slug(n) for n in names]
        if len(set(slugs)) != len(slugs):
            out.append(f"two {what}s share a name ({', '.join(names)}); give each its own")
    return out


def narration_budget(seconds: float) -> int:
    """The most words a narrator says over a scene of ``seconds`` at a normal pace (the offline
    planner's rate: about 150 words a minute, with quiet either side)."""
    return max(3, int((seconds - NARRATION_PAD_S) * NARRATION_WPS))


_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]{2,}\b")


def _narration_problems(i: int, sc, cast: CastDraft) -> list[str]:
    known = {w.lower() for c in cast.characters for w in re.findall(r"[A-Za-z]+", c.name)}
    known |= {w.lower() for loc in cast.locations for w in re.findall(r"[A-Za-z]+", loc.name)}
    known |= {w.lower() for w in re.findall(r"[A-Za-z]+", cast.title)}
    out = []
    words, most = len(sc.narration.split()), narration_budget(sc.seconds)
    if words > most:
        out.append(
            f"scene {i + 1}'s narration has {words} words; at most {most} fit its {sc.seconds} s "
            "at a normal speaking pace: shorten it"
        )
    strangers = sorted({m for m in _NAME.findall(sc.narration.strip()) if m.lower() not in known})
    if strangers:
        out.append(
            f"scene {i + 1}'s narration names {', '.join(strangers)}, who is not in the cast "
            f"({', '.join(c.name for c in cast.characters)}): name only the cast"
        )
    return out


def scenes_problems(draft: BaseModel, cast: CastDraft) -> list[str]:
    """Rules of the scenes draft the schema cannot state: each narration line fits its scene at a
    normal speaking pace and names nobody the cast lacks (a capitalised word inside a sentence
    that is no cast member's name, no word of a location's name and not in the title)."""
    return [p for i, sc in enumerate(draft.scenes) for p in _narration_problems(i, sc, cast)]


def keep_narration(draft: BaseModel, cast: CastDraft) -> tuple[BaseModel, list[int]]:
    """The draft with each narration line that still breaks a rule of :func:`scenes_problems`
    replaced by the offline planner's line for the scene's own action (which fits by
    construction), so a line alone never costs the model's whole scene plan; and the scenes
    (0-based) whose line was replaced."""
    fixed = [i for i, sc in enumerate(draft.scenes) if _narration_problems(i, sc, cast)]
    if not fixed:
        return draft, []
    scenes = [
        sc.model_copy(update={"narration": narration_line(sc.beat, sc.action, sc.seconds)})
        if i in fixed
        else sc
        for i, sc in enumerate(draft.scenes)
    ]
    return draft.model_copy(update={"scenes": scenes}), fixed


@lru_cache(maxsize=64)
def scenes_schema(
    characters: tuple[str, ...],
    locations: tuple[str, ...],
    min_scenes: int,
    max_scenes: int,
    min_seconds: int,
    max_seconds: int,
) -> type[BaseModel]:
    """Step two's schema: scenes that can only name this cast, in the allowed count and length."""
    char_t = Literal[characters]  # type: ignore[valid-type]
    loc_t = Literal[locations]  # type: ignore[valid-type]
    scene = create_model(
        "SceneDraft",
        __base__=Draft,
        title=(str, Field(min_length=1, max_length=60)),
        beat=(Beat, ...),
        seconds=(int, Field(ge=min_seconds, le=max_seconds)),
        characters=(list[char_t], Field(min_length=1, max_length=min(3, len(characters)))),
        location=(loc_t, ...),
        action=(str, Field(min_length=1, max_length=160, description="what happens, one sentence")),
        time_of_day=(TimeOfDay, ...),
        narration=(
            str,
            Field(min_length=1, max_length=240, description="the narrator's line over the scene"),
        ),
    )
    return create_model(
        "ScenesDraft",
        __base__=Draft,
        scenes=(list[scene], Field(min_length=min_scenes, max_length=max_scenes)),
    )


def scene_bounds(
    min_scenes: int, max_scenes: int, scenes: int | None, seconds: tuple[float, float]
) -> tuple[int, int, int, int]:
    lo, hi = (scenes, scenes) if scenes else (min_scenes, max_scenes)
    s_lo = max(1, math.ceil(seconds[0]))
    s_hi = max(s_lo, math.floor(seconds[1]))
    return lo, hi, s_lo, s_hi


def _clip(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1].rstrip(" ,;:") + "…"


def cast_from_bible(bible: StoryBible) -> CastDraft:
    """The offline planner's cast as a draft (the fallback of step one)."""
    chars = [
        CharacterDraft(
            name=_clip(c.name, 24),
            role=_clip(c.role or "traveller", 32),
            age=min(99, c.age),
            gender=c.gender if c.gender in Gender.__args__ else "woman",
            wardrobe_colors=[w.name for w in c.wardrobe][:3],
            garments=[_clip(g, 20) for g in (c.garments or ["outfit"] * 3)][:3],
            hair=c.hair.name if c.hair else "brown",
            look=_clip(c.visual_description or "calm", 80),
        )
        for c in bible.characters[:MAX_CAST]
    ]
    locs = [
        LocationDraft(
            name=_clip(loc.name, 40),
            scenery_type=loc.scenery_type,
            palette=[p.name for p in loc.palette][:3],
            look=_clip(loc.visual_description or loc.scenery_type, 80),
        )
        for loc in bible.locations[:MAX_CAST]
    ]
    return CastDraft(
        title=_clip(bible.title, 60), logline=_clip(bible.logline, 200), characters=chars, locations=locs
    )


def scenes_from_bible(bible: StoryBible, cast: CastDraft, schema: type[BaseModel]) -> BaseModel:
    """The offline planner's scenes as a draft over `cast` (the fallback of step two)."""
    names = [c.name for c in cast.characters]
    places = [loc.name for loc in cast.locations]
    by_id = {c.id: i for i, c in enumerate(bible.characters)}
    loc_by_id = {loc.id: i for i, loc in enumerate(bible.locations)}
    item = schema.model_fields["scenes"].annotation.__args__[0]
    secs = item.model_fields["seconds"].metadata
    s_lo = next(m.ge for m in secs if hasattr(m, "ge"))
    s_hi = next(m.le for m in secs if hasattr(m, "le"))
    scenes = []
    for sc in bible.scenes:
        who = [names[min(by_id[c], len(names) - 1)] for c in sc.character_ids][:3]
        seconds = int(min(s_hi, max(s_lo, round(sc.duration_s))))
        scenes.append(
            item(
                title=_clip(sc.title, 60),
                beat=sc.beat,
                seconds=seconds,
                characters=list(dict.fromkeys(who)) or names[:1],
                location=places[min(loc_by_id[sc.location_id], len(places) - 1)],
                action=_clip(sc.action, 160),
                time_of_day=sc.time_of_day if sc.time_of_day in TimeOfDay.__args__ else "day",
                narration=narration_line(sc.beat, sc.action, seconds),
            )
        )
    return schema(scenes=scenes)


def _named(name: str) -> NamedColor:
    return NamedColor(name=name, rgb=COLORS[name])


def expand(prompt: str, seed: int, cast: CastDraft, scenes: BaseModel, planner: str) -> StoryBible:
    """A StoryBible from the two drafts: ids from names, RGB from colour names."""
    characters: list[Character] = []
    for i, c in enumerate(cast.characters):
        cid = slug(c.name, f"character_{i}")
        while cid in {x.id for x in characters}:
            cid += f"_{i}"
        characters.append(
            Character(
                id=cid,
                name=c.name.strip(),
                role=c.role.strip(),
                age=c.age,
                gender=c.gender,
                wardrobe=[_named(w) for w in c.wardrobe_colors],
                garments=[g.strip() or "outfit" for g in c.garments],
                hair=_named(c.hair),
                visual_description=c.look.strip(),
            )
        )
    locations: list[Location] = []
    for i, loc in enumerate(cast.locations):
        lid = slug(loc.name.removeprefix("the ").removeprefix("The "), f"location_{i}")
        while lid in {x.id for x in locations}:
            lid += f"_{i}"
        locations.append(
            Location(
                id=lid,
                name=loc.name.strip(),
                scenery_type=loc.scenery_type,
                palette=[_named(p) for p in loc.palette],
                visual_description=loc.look.strip(),
            )
        )
    char_id = {c.name: characters[i].id for i, c in enumerate(cast.characters)}
    loc_id = {loc.name: locations[i].id for i, loc in enumerate(cast.locations)}
    scene_list = [
        Scene(
            index=i,
            title=s.title.strip(),
            beat=s.beat,
            duration_s=float(s.seconds),
            character_ids=list(dict.fromkeys(char_id[n] for n in s.characters)),
            location_id=loc_id[s.location],
            action=s.action.strip(),
            time_of_day=s.time_of_day,
            narration=" ".join(s.narration.split()),
        )
        for i, s in enumerate(scenes.scenes)
    ]
    return StoryBible(
        seed_prompt=prompt,
        title=cast.title.strip(),
        logline=cast.logline.strip(),
        characters=characters,
        locations=locations,
        scenes=scene_list,
        planner=planner,
        seed=seed,
    )
