"""Scene prompt composition with identity and location locks.

The policy's action decides how much of the bible the prompt spells out. A real video model
(and previz) only keeps a character's look stable when the prompt states it every time, so the
lock levels are what the policy learns to value. When a language model wrote the scene's base
prompt (`--llm`, `--from-plan`), `compose_onto` puts the policy's camera, light and motion on it.
"""

from __future__ import annotations

import re

from cinerl.core.vocabulary import CAMERA_MOVES, LIGHTING, MOTION, NEGATIVE_PRESETS, SHOT_SIZES
from cinerl.core.schema import Character, Location, Scene, StoryBible

STYLE = "Cinematic film still, 35mm lens, shallow depth of field."


def _join(words: list[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _garments(ch: Character) -> list[str]:
    return [f"{c.name} {g}" for c, g in zip(ch.wardrobe, ch.garments or ["outfit"] * len(ch.wardrobe))]


def _animal_sentence(ch: Character, level: str, first: bool) -> str:
    """An animal's lock: its species noun (what previz draws it from) with its coat colours."""
    species = ch.species or "animal"
    if level == "none":
        return ("A " if first else "Another ") + f"{species} is in the scene."
    kind = " ".join(w for w in (ch.gender if ch.gender in ("female", "male") else "", species) if w)
    if level == "name":
        return f"{ch.name}, {_article(kind)} {kind}, is in the scene."
    # "a crimson coat, a navy collar and mustard markings": plural garments take no article
    wear = [g if g.endswith("s") else f"{_article(g)} {g}" for g in _garments(ch)]
    if level == "brief":
        return f"{ch.name}, {_article(species)} {species} with {wear[0]}."
    look = f", {ch.visual_description}" if ch.visual_description else ""
    return f"{ch.name}, {_article(str(ch.age))} {ch.age}-year-old {kind} with {_join(wear)}{look}."


def character_sentence(ch: Character, level: str, first: bool = True) -> str:
    """One sentence per character: the identity lock at the given level."""
    if ch.species:
        return _animal_sentence(ch, level, first)
    if level == "none":
        return ("A person" if first else "Another person") + " is in the scene."
    if level == "name":
        return f"{ch.name}, {_article(ch.gender)} {ch.gender}, is in the scene."
    wear = _garments(ch)
    if level == "brief":
        return f"{ch.name}, {_article(ch.gender)} {ch.gender} in {_article(wear[0])} {wear[0]}."
    hair = f" with {ch.hair.name} hair" if ch.hair else ""
    look = f", {ch.visual_description}" if ch.visual_description else ""
    return (
        f"{ch.name}, {_article(str(ch.age))} {ch.age}-year-old {ch.gender}{hair}, "
        f"wearing {_join(wear)}{look}."
    )


def location_sentence(loc: Location, level: str) -> str:
    """The location lock: nothing, the name, the type and main colours, or the whole palette."""
    if level == "none":
        return ""
    if level == "name":
        return f"In {loc.name}."
    colors = [c.name for c in loc.palette]
    if level == "brief":
        return f"In {loc.name}, a {loc.scenery_type} of {_join(colors[:2])}."
    look = f", {loc.visual_description}" if loc.visual_description else ""
    return f"In {loc.name}, a {loc.scenery_type} of {_join(colors)}{look}."


def compose(scene: Scene, bible: StoryBible, action: dict[str, str]) -> tuple[str, str]:
    """Return (prompt, negative_prompt) for one attempt at a scene."""
    loc = bible.location(scene.location_id)
    chars = [bible.character(cid) for cid in scene.character_ids]
    parts = [
        f"{SHOT_SIZES[action['shot_size']]}, {CAMERA_MOVES[action['camera_move']]}.",
        location_sentence(loc, action["location_lock"]),
        f"{scene.time_of_day.capitalize()}, {LIGHTING[action['lighting']]}.",
        *(character_sentence(c, action["identity_lock"], i == 0) for i, c in enumerate(chars)),
        f"{scene.action.rstrip('.')}, {MOTION[action['motion']]}.",
        STYLE,
    ]
    prompt = " ".join(p for p in parts if p)
    return prompt, NEGATIVE_PRESETS[action["negative_preset"]]


# Words of the policy's own factors: a base sentence that speaks of these (and of nobody in the
# scene) gives way to the policy's choice.
_CAMERA_OR_LIGHT = re.compile(
    r"\b(shots?|camera|close-?up|pans?|panning|tilts?|dolly|zooms?|hand-?held|tracking|crane|"
    r"light|lighting|lit|daylight|sunlight|moonlight|golden hour|overcast|shadows?)\b",
    re.I,
)


def compose_onto(base: str, scene: Scene, bible: StoryBible, action: dict[str, str]) -> tuple[str, str]:
    """Return (prompt, negative_prompt) for one attempt at a scene whose base prompt a language
    model wrote (enriched, then revised by the critic).

    The base keeps the subject, the locks and the action. The policy owns shot size, camera move,
    light and motion, so they lead the prompt (previz reads the first mention; a real model
    weighs it most) and base sentences about camera or light that name nobody in the scene give
    way. The lock levels do not apply: the critic made sure every lock is in the base.
    """
    names = [bible.character(c).name for c in scene.character_ids]
    names.append(bible.location(scene.location_id).name.removeprefix("the ").removeprefix("The "))

    def policy_owned(sentence: str) -> bool:
        low = sentence.lower()
        return bool(_CAMERA_OR_LIGHT.search(sentence)) and not any(n.lower() in low for n in names)

    lead = [
        f"{SHOT_SIZES[action['shot_size']]}, {CAMERA_MOVES[action['camera_move']]}, "
        f"{MOTION[action['motion']]}.",
        f"{scene.time_of_day.capitalize()}, {LIGHTING[action['lighting']]}.",
    ]
    kept = [s.strip() + "." for s in base.split(".") if s.strip() and not policy_owned(s)]
    return " ".join(lead + kept), NEGATIVE_PRESETS[action["negative_preset"]]


def reference_prompt_character(ch: Character) -> str:
    """A full-lock studio portrait: the look every scene is measured against."""
    return (
        "Medium shot, static camera. Character reference on a plain studio backdrop, "
        "soft even daylight. " + character_sentence(ch, "full") + " " + STYLE
    )


def reference_prompt_location(loc: Location) -> str:
    """A full-lock empty establishing shot of a location."""
    return (
        "Extreme wide shot, static camera. "
        + location_sentence(loc, "full")
        + " Day, soft even daylight. Empty establishing shot, no people. "
        + STYLE
    )
