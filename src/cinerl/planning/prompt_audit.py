"""Rules a scene prompt must keep, checked in code: the critic's yardstick and its repair list.

A video model only keeps a character or a place stable when the prompt says who and where every
time, in the bible's own words (see prompting/composer.py). So a prompt must name each character
of the scene with a wardrobe colour, name the location with a palette colour, carry the scene's
action, bring in nobody from outside the scene, name no colour the bible does not give the scene
(a stray colour shifts the look between scenes), and stay within its word range.
"""

from __future__ import annotations

import re

from cinerl.core.vocabulary import COLORS
from cinerl.core.schema import Character, Location, Scene, StoryBible

WORDS = {"t2v": (60, 200), "i2v": (20, 90)}
STOP = {
    "the",
    "a",
    "an",
    "and",
    "of",
    "to",
    "at",
    "in",
    "on",
    "with",
    "as",
    "for",
    "from",
    "into",
    "her",
    "his",
    "their",
    "its",
    "is",
    "are",
    "be",
    "set",
    "one",
    "what",
    "that",
    "this",
}
_COLOR_RE = re.compile(
    r"\b(" + "|".join(re.escape(c) for c in sorted(COLORS, key=len, reverse=True)) + r")\b", re.I
)


def word_count(text: str) -> int:
    return len(re.findall(r"[\w'-]+", text))


def colors_in(text: str) -> set[str]:
    return {m.group(1).lower() for m in _COLOR_RE.finditer(text)}


def _has(text: str, phrase: str) -> bool:
    return re.search(r"\b" + re.escape(phrase.lower()) + r"\b", text.lower()) is not None


def location_name(loc: Location) -> str:
    """The location's name as a prompt must say it ("the" is optional)."""
    return loc.name.removeprefix("the ").removeprefix("The ")


def character_locked(prompt: str, ch: Character) -> bool:
    """The identity lock: the character is named and a wardrobe colour is given."""
    return _has(prompt, ch.name) and bool({w.name for w in ch.wardrobe} & colors_in(prompt))


def location_locked(prompt: str, loc: Location) -> bool:
    """The location lock: the place is named and a palette colour is given."""
    palette = {p.name for p in loc.palette}
    return _has(prompt, location_name(loc)) and bool(palette & colors_in(prompt))


def scene_colors(scene: Scene, bible: StoryBible) -> set[str]:
    allowed = {p.name for p in bible.location(scene.location_id).palette}
    for cid in scene.character_ids:
        ch = bible.character(cid)
        allowed |= {w.name for w in ch.wardrobe} | ({ch.hair.name} if ch.hair else set())
    return allowed


def audit(prompt: str, scene: Scene, bible: StoryBible, mode: str = "t2v") -> list[str]:
    """What is wrong with a scene prompt, one line per problem; empty when it keeps every rule."""
    problems: list[str] = []
    lo, hi = WORDS[mode]
    n = word_count(prompt)
    if not lo <= n <= hi:
        problems.append(f"it has {n} words; write {lo}-{hi}")
    found = colors_in(prompt)
    for cid in scene.character_ids:
        ch = bible.character(cid)
        if not _has(prompt, ch.name):
            problems.append(f"identity lock: name {ch.name}")
        wear = {w.name for w in ch.wardrobe}
        if not wear & found:
            problems.append(
                f"identity lock: say what {ch.name} wears "
                f"({', '.join(f'{w.name} {g}' for w, g in zip(ch.wardrobe, ch.garments))})"
            )
    loc = bible.location(scene.location_id)
    if not _has(prompt, location_name(loc)):
        problems.append(f"location lock: name {loc.name}")
    if not {p.name for p in loc.palette} & found:
        problems.append(
            f"location lock: give {loc.name}'s colours ({', '.join(p.name for p in loc.palette)})"
        )
    stray = sorted(found - scene_colors(scene, bible))
    if stray:
        problems.append(f"continuity: colours not in the bible for this scene: {', '.join(stray)}")
    others = [c.name for c in bible.characters if c.id not in scene.character_ids and _has(prompt, c.name)]
    if others:
        problems.append(f"new subjects: {', '.join(others)} are not in this scene")
    if not action_clear(prompt, scene, bible):
        problems.append(f"action unclear: show what happens ({scene.action})")
    return problems


def action_clear(prompt: str, scene: Scene, bible: StoryBible) -> bool:
    """The prompt carries a content word of the scene's action (a name alone is not an action)."""
    content = [
        w
        for w in re.findall(r"[a-z']+", scene.action.lower())
        if w not in STOP and len(w) > 3 and not any(_has(w, c.name) for c in bible.characters)
    ]
    return not content or any(_has(prompt, w) for w in content)
