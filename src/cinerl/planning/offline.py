"""The offline planner: a deterministic story bible from the seed prompt, no model needed.

It reads the prompt for people (proper names and role nouns), places (scenery words with their
modifiers) and a goal ("... to save the festival"), then lays out a three-beat arc: beginning,
turn, end. Everything it invents (names, wardrobe, palettes) comes from one seeded generator.
"""

from __future__ import annotations

import zlib

import cv2
import numpy as np

from cinerl.core.inputs import check_prompt, slug
from cinerl.core.vocabulary import COLORS
from cinerl.core.schema import Character, Location, NamedColor, Scene, StoryBible
from cinerl.planning.prompt_facts import (
    MAX_EVENT_CHARS,
    MAX_NAME_CHARS,
    EventFact,
    PersonFact,
    PromptFacts,
    read_prompt,
    scenery_scores,
    scenery_type,
    clip,
    span_text,
)

# a scene's action holds two of the prompt's clauses; the enricher adds its motion words after it
MAX_ACTION_CHARS = 240

# role noun -> gender hint ("" = unknown) and an age range
ROLES: dict[str, tuple[str, tuple[int, int]]] = {
    "keeper": ("", (40, 70)),
    "sailor": ("", (22, 50)),
    "fisherman": ("man", (30, 60)),
    "captain": ("", (35, 60)),
    "detective": ("", (30, 55)),
    "knight": ("", (22, 45)),
    "soldier": ("", (20, 40)),
    "pilot": ("", (25, 50)),
    "doctor": ("", (30, 60)),
    "scientist": ("", (28, 60)),
    "wizard": ("man", (50, 90)),
    "witch": ("woman", (30, 80)),
    "king": ("man", (40, 70)),
    "queen": ("woman", (35, 65)),
    "prince": ("man", (18, 30)),
    "princess": ("woman", (16, 28)),
    "thief": ("", (18, 40)),
    "farmer": ("", (30, 65)),
    "teacher": ("", (28, 60)),
    "musician": ("", (20, 45)),
    "painter": ("", (25, 65)),
    "mother": ("woman", (30, 55)),
    "father": ("man", (30, 60)),
    "son": ("man", (16, 35)),
    "daughter": ("woman", (14, 35)),
    "brother": ("man", (15, 45)),
    "sister": ("woman", (15, 45)),
    "grandmother": ("woman", (65, 85)),
    "grandfather": ("man", (65, 85)),
    "girl": ("girl", (8, 14)),
    "boy": ("boy", (8, 14)),
    "child": ("", (7, 12)),
    "woman": ("woman", (25, 60)),
    "man": ("man", (25, 60)),
    "stranger": ("", (25, 55)),
    "robot": ("robot", (5, 30)),
    "inventor": ("", (30, 70)),
    "explorer": ("", (25, 50)),
    "hunter": ("", (25, 50)),
    "dancer": ("", (18, 35)),
    "mechanic": ("", (22, 55)),
    "courier": ("", (18, 35)),
}
OLD_WORDS = ("old", "retired", "elderly", "aging", "ageing", "ancient")
YOUNG_WORDS = ("young", "little", "teenage", "small")
NAMES = {
    "woman": ["Mara", "Elena", "Ines", "Noor", "Ada", "Lucia", "Yara", "Hanna", "Sofia", "Ruth"],
    "man": ["Tomas", "Ivo", "Karim", "Elias", "Jonah", "Marek", "Theo", "Rafael", "Anton", "Sami"],
}
STOPWORDS = {
    "A",
    "An",
    "The",
    "In",
    "On",
    "At",
    "To",
    "Of",
    "And",
    "But",
    "Or",
    "When",
    "While",
    "After",
    "Before",
    "As",
    "Then",
    "One",
    "Two",
    "Three",
    "Her",
    "His",
    "Their",
    "Its",
    "With",
    "Through",
    "From",
    "Into",
    "Across",
    "Over",
    "Under",
    "I",
    "We",
    "They",
    "She",
    "He",
    "It",
    "This",
    "That",
    "Ignore",
    "Once",
    "Every",
    "Each",
    "Some",
    "Later",
    "Now",
}
GARMENTS = [
    ("coat", "trousers", "boots"),
    ("jacket", "shirt", "scarf"),
    ("dress", "shawl", "boots"),
    ("sweater", "trousers", "cap"),
    ("cloak", "tunic", "belt"),
    ("raincoat", "jeans", "hat"),
]
WARDROBE_COLORS = [
    "crimson",
    "navy",
    "mustard",
    "emerald",
    "charcoal",
    "ivory",
    "burgundy",
    "teal",
    "ochre",
    "cobalt blue",
    "olive",
    "plum",
    "coral",
    "tan",
    "forest green",
    "scarlet",
]
HAIR_COLORS = ["black", "chestnut", "auburn", "blonde", "ash grey", "brown"]
PALETTES: dict[str, list[tuple[str, ...]]] = {
    "forest": [("moss green", "pine green", "walnut"), ("forest green", "olive", "fog white")],
    "city": [("slate grey", "brick red", "charcoal"), ("steel blue", "ash grey", "amber")],
    "harbour": [("slate grey", "rust red", "fog white"), ("teal", "sandstone", "charcoal")],
    "sea": [("midnight blue", "steel blue", "fog white"), ("teal", "sea green", "pearl")],
    "desert": [("sand", "terracotta", "sky blue"), ("ochre", "sandstone", "copper")],
    "mountain": [("slate grey", "snow white", "pine green"), ("ash grey", "sky blue", "bone")],
    "snow": [("snow white", "steel blue", "silver"), ("fog white", "slate grey", "sky blue")],
    "interior": [("walnut", "cream", "amber"), ("chocolate", "beige", "gold")],
    "castle": [("ash grey", "moss green", "bone"), ("sandstone", "slate grey", "burgundy")],
    "meadow": [("sage", "lime", "sky blue"), ("olive", "mustard", "cream")],
    "space": [("midnight blue", "silver", "electric blue"), ("obsidian", "cyan", "steel blue")],
    "underground": [("charcoal", "ochre", "obsidian"), ("walnut", "slate grey", "amber")],
}
LOOKS = {
    "forest": "tall trunks, ferns and drifting mist",
    "city": "wet asphalt, shop fronts and lamp posts",
    "harbour": "stone quays, moored boats and mooring ropes",
    "sea": "rolling swells and spray",
    "desert": "wind-carved dunes and heat haze",
    "mountain": "jagged ridges and scree slopes",
    "snow": "wind-packed drifts and bare rock",
    "interior": "timber beams, shelves and a long table",
    "castle": "weathered battlements and arches",
    "meadow": "tall grass, hedgerows and a dirt track",
    "space": "bulkheads, consoles and viewports",
    "underground": "rough rock walls and old rails",
}
DEFAULT_PLACES = [
    ("the Old Town Square", "city"),
    ("the Forest Path", "forest"),
    ("the Harbour", "harbour"),
    ("the Mountain Pass", "mountain"),
]
PLACE_BREAKS = {
    "the",
    "a",
    "an",
    "to",
    "through",
    "across",
    "into",
    "in",
    "at",
    "of",
    "from",
    "and",
    "over",
    "on",
    "by",
    "toward",
    "towards",
    "along",
    "inside",
    "outside",
    "near",
}
ROLE_COMPOUNDS = {
    "police",
    "bounty",
    "night",
    "street",
    "ship",
    "space",
    "treasure",
    "tomb",
    "star",
    "sea",
    "lighthouse",
    "palace",
    "castle",
    "forest",
    "desert",
    "city",
    "harbour",
}
TIMES = {
    "beginning": ["day", "morning", "dawn"],
    "turn": ["dusk", "night", "day"],
    "end": ["dawn", "day", "morning"],
}
ACTIONS = {
    "beginning": [
        "{lead} arrives at {loc}, set on a purpose: {goal}",
        "{lead} and {other} meet at {loc} and agree on a plan: {goal}",
        "{lead} prepares at {loc} for what lies ahead: {goal}",
    ],
    "turn": [
        "A setback strikes at {loc}; {lead} must change course",
        "{other} and {lead} clash at {loc} as the plan falls apart",
        "{lead} pushes on through {loc} as the danger grows",
    ],
    "end": [
        "{lead} completes the task at {loc} as calm returns: {goal}",
        "{lead} and {other} stand together at {loc}, the struggle over",
        "{lead} looks back over {loc} one last time",
    ],
}
SHOTS = {
    "beginning": "establishing shot, then settle on {lead}",
    "turn": "tighter framing, tension in the movement",
    "end": "slow release, wide resolve",
}


def _rng(prompt: str, seed: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(prompt.encode("utf-8"))])


def _clean(text: str) -> str:
    """Keep borrowed prompt text free of colour names so it cannot re-colour the scene."""
    words = [w for w in text.split() if w.lower().strip(",.;:") not in COLORS]
    return " ".join(words).strip(" ,.;:")


def _palette(stype: str, rng: np.random.Generator) -> list[NamedColor]:
    options = PALETTES[stype]
    names = options[int(rng.integers(len(options)))]
    return [NamedColor(name=n, rgb=COLORS[n]) for n in names]


def _lab(names: list[str]) -> np.ndarray:
    rgb = np.array([[COLORS[n] for n in names]], dtype=np.float32) / 255.0
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)[0]


def _wardrobe_pool(avoid: list[str], min_delta_e: float = 25.0) -> list[str]:
    """Wardrobe colours that stand out from every set colour, as a costume designer picks them,
    so a figure never dissolves into the set (for the camera or the reward's colour match)."""
    if not avoid:
        return WARDROBE_COLORS
    dist = np.linalg.norm(_lab(WARDROBE_COLORS)[:, None] - _lab(avoid)[None], axis=-1).min(axis=1)
    pool = [c for c, d in zip(WARDROBE_COLORS, dist) if d > min_delta_e]
    return pool if len(pool) >= 3 else WARDROBE_COLORS


ANIMAL_NAMES = [
    "Biscuit",
    "Pepper",
    "Juniper",
    "Scout",
    "Maple",
    "Shadow",
    "Pip",
    "Clover",
    "Bramble",
    "Ember",
]
ANIMAL_COATS = ("coat", "collar", "markings")


def _make_character(
    p: PersonFact, i: int, rng: np.random.Generator, used: set[str], pool: list[str]
) -> Character:
    """A bible character from what the prompt says of them; the seed invents the rest."""
    lo, hi = p.age
    if p.species:
        gender = p.gender or ("female" if rng.random() < 0.5 else "male")
        names = ANIMAL_NAMES
    else:
        gender = p.gender or ("woman" if rng.random() < 0.5 else "man")
        names = NAMES["woman" if gender in ("woman", "girl") else "man"]
    age = int(rng.integers(lo, hi + 1))
    if p.name:
        name = p.name
    elif p.group:
        name = "The " + " ".join(w.capitalize() for w in p.role.split())
    else:
        pick = names[int(rng.integers(len(names)))]
        name = next((n for n in [pick, *names] if n not in used), None)
        k = 2
        while name is None:
            name = next((f"{n} {chr(64 + k)}." for n in names if f"{n} {chr(64 + k)}." not in used), None)
            k += 1
    garments = list(ANIMAL_COATS if p.species else GARMENTS[int(rng.integers(len(GARMENTS)))])
    colors = rng.choice(len(pool), size=3, replace=False)
    wardrobe = [NamedColor(name=pool[c], rgb=COLORS[pool[c]]) for c in colors]
    hair = HAIR_COLORS[int(rng.integers(len(HAIR_COLORS)))] if age < 60 else "ash grey"
    role = p.role
    look = ["steady gaze", "weathered face", "quick, alert eyes", "tired but resolute look"][i % 4]
    if p.species:
        look = ["alert ears", "bright eyes", "a steady, watchful stance", "a restless tail"][i % 4]
    return Character(
        id=slug(name, f"character_{i}"),
        name=name,
        role=role,
        age=max(1, min(120, age)),
        gender="group" if p.group else gender,
        wardrobe=wardrobe,
        garments=garments,
        hair=None if p.species else NamedColor(name=hair, rgb=COLORS[hair]),
        visual_description=(
            f"{'an' if role[:1] in 'aeiou' else 'a'} {role}, " if role and not p.species else ""
        )
        + look,
        species=p.species,
    )


def scene_count(
    prompt: str, n_chars: int, n_locs: int, min_scenes: int, max_scenes: int, rng: np.random.Generator
) -> int:
    """More people, places and words make a longer film, within the configured bounds."""
    want = 2 + n_locs + (1 if n_chars > 1 else 0) + (1 if len(prompt.split()) > 40 else 0)
    want += int(rng.integers(0, 2))
    return max(min_scenes, min(max_scenes, want))


# the stock place of each scenery type, for a prompt that names none
STOCK_PLACES = {
    "forest": "the Forest Path",
    "city": "the Old Town Square",
    "harbour": "the Harbour",
    "sea": "the Open Sea",
    "desert": "the Dune Sea",
    "mountain": "the Mountain Pass",
    "snow": "the Snowfield",
    "interior": "the House",
    "castle": "the Old Castle",
    "meadow": "the Meadow",
    "space": "the Space Station",
    "underground": "the Cave",
}


def _locations(facts: PromptFacts, prompt: str, rng: np.random.Generator) -> list[Location]:
    places = [(pl.name, scenery_type(pl.phrase), pl.region) for pl in facts.places]
    if not places:  # none named: the stock place that fits the action best
        scores = scenery_scores(" ".join(e.text for e in facts.events) or prompt)
        everyday = ("city", "forest", "harbour", "mountain", "meadow", "interior", "sea")
        stype = max(everyday, key=scores.get)
        places = [(STOCK_PLACES[stype], stype, None)]
    locations: list[Location] = []
    for i, (name, stype, region) in enumerate(places):
        lid = slug(name.removeprefix("the ").removeprefix("The "), f"location_{i}")
        if lid in {loc.id for loc in locations}:
            lid = f"{lid}_{i}"[:40]
        locations.append(
            Location(
                id=lid,
                name=name,
                scenery_type=stype,
                palette=_palette(stype, rng),
                visual_description=LOOKS[stype],
                region=region,
            )
        )
    return locations


def _event_action(ev: EventFact, facts: PromptFacts, characters: list[Character]) -> str:
    """The prompt's clause, each person in it said by name (a person noun would add a figure)."""
    replace = {i: "" for i in facts.drop}
    # the whole mention, determiner to noun ("a young detective" -> "Theo"): a word left inside it
    # would stand between two copies of the name
    replace.update(
        {
            i: ch.name
            for p, ch in zip(facts.characters, characters)
            if p.tokens
            for i in range(min(p.tokens), max(p.tokens) + 1)
        }
    )
    text = clip(_clean(span_text(facts.doc, ev.tokens, replace)), MAX_EVENT_CHARS)
    return text[:1].upper() + text[1:]


#: a normal narrating pace (words per second, about 150 words a minute) and the quiet either side
NARRATION_WPS, NARRATION_PAD_S = 2.5, 0.8
_NARRATION_LEAD = {"beginning": "", "turn": "Then ", "end": "In the end, "}


def narration_line(beat: str, action: str, seconds: float) -> str:
    """The narrator's line for a scene: its action, led in by its beat, cut at a word boundary to
    what a narrator says in the scene's length at a normal pace."""
    words = action.strip().rstrip(".").split()
    lead = _NARRATION_LEAD.get(beat, "")
    if lead and words and words[0] in ("The", "A", "An"):
        words[0] = words[0].lower()
    words = (lead.split() + words) if lead else words
    budget = max(3, int((seconds - NARRATION_PAD_S) * NARRATION_WPS))
    cut = len(words) > budget
    words = words[:budget]
    while cut and len(words) > 3 and words[-1].lower() in ("and", "the", "a", "an", "to", "of", "with"):
        words.pop()
    line = " ".join(words).rstrip(",;:")
    return (line + ("…" if cut else ".")) if line else ""


def plan_story(
    prompt: str,
    seed: int = 0,
    scenes: int | None = None,
    min_scenes: int = 3,
    max_scenes: int = 6,
    seconds: tuple[float, float] = (10.0, 12.0),
) -> StoryBible:
    """Plan a film from the seed prompt; the same prompt and seed always give the same bible."""
    prompt = check_prompt(prompt)
    rng = _rng(prompt, seed)
    facts = read_prompt(prompt)
    locations = _locations(facts, prompt, rng)
    people = facts.characters or [PersonFact(role="", noun="", pos=0)]
    pool = _wardrobe_pool([c.name for loc in locations for c in loc.palette])
    used: set[str] = {p.name for p in people if p.name}
    characters: list[Character] = []
    for i, p in enumerate(people):
        ch = _make_character(p, i, rng, used, pool)
        base, k = ch.id, 2
        while ch.id in {c.id for c in characters}:
            ch = ch.model_copy(update={"id": f"{base[:36]}_{k}"})
            k += 1
        used.add(ch.name)
        characters.append(ch)
    events = facts.events if facts.characters else []
    n_auto = scene_count(prompt, len(characters), len(locations), min_scenes, max_scenes, rng)
    n = scenes or max(n_auto, min(len(events), max_scenes))
    # the prompt's own clauses, in order; too many for the scenes: neighbours share one
    ev_actions = [_event_action(ev, facts, characters) for ev in events]
    groups: list[list[int]] = [[k] for k in range(len(events))]
    while len(groups) > n:
        j = min(range(len(groups) - 1), key=lambda g: len(groups[g]) + len(groups[g + 1]))
        groups[j : j + 2] = [groups[j] + groups[j + 1]]
    slots: dict[int, list[int]] = {}
    if len(groups) == 1:
        slots[0] = groups[0]
    elif groups:
        for k, g in enumerate(groups):
            slots[round(k * (n - 1) / (len(groups) - 1))] = g
    goal = facts.goal or "see it through"
    beats = [
        "beginning" if n == 1 or i < max(1, n // 3) else "end" if i >= n - max(1, n // 3) else "turn"
        for i in range(n)
    ]
    global_time = facts.time_of_day if (len(events) <= 1 or not any(e.time_of_day for e in events)) else None
    scene_list: list[Scene] = []
    seen_actions: set[str] = set()
    used_templates: set[str] = set()
    for i, beat in enumerate(beats):
        # the story travels through the places in order and ends where the last one is
        loc = locations[min(len(locations) - 1, i * len(locations) // n)]
        lead = characters[i % len(characters)] if beat != "end" else characters[0]
        others = [c for c in characters if c.id != lead.id]
        other = others[i % len(others)] if others else None
        tod = None
        if i in slots:
            evs = [events[k] for k in slots[i]]
            action = clip("; then ".join(ev_actions[k].rstrip(".") for k in slots[i]), MAX_ACTION_CHARS)
            place = next((e.place for e in evs if e.place is not None), None)
            if place is not None and place < len(locations) and facts.places:
                loc = locations[place]
            ids = [characters[k].id for e in evs for k in e.people if k < len(characters)]
            present = list(dict.fromkeys(ids)) or [lead.id]
            tod = next((e.time_of_day for e in evs if e.time_of_day), None)
        else:
            templates = [t for t in ACTIONS[beat] if other or "{other}" not in t]
            start = int(rng.integers(len(templates)))
            order = [templates[(start + j) % len(templates)] for j in range(len(templates))]
            # a beat line not used yet in this film first: the same line with the names swapped
            # is still the same scene
            order = [t for t in order if t not in used_templates] + [t for t in order if t in used_templates]
            action = ""
            for text in order:
                action = text.format(
                    lead=lead.name, other=other.name if other else "", loc=loc.name, goal=goal
                )
                if action.lower() not in seen_actions:
                    break
            used_templates.add(text)
            present = [lead.id] + ([other.id] if other and "{other}" in text else [])
            if len(characters) > 1 and other and beat != "turn" and other.id not in present:
                present.append(other.id)
        base_action, k = action, 2
        while action.lower() in seen_actions:  # never two scenes with the same action line
            action = f"{base_action.rstrip('.')}, {['once more', 'later', 'at last', 'again'][k % 4]}"
            k += 1
        seen_actions.add(action.lower())
        times = TIMES[beat]
        rand_time = times[int(rng.integers(len(times)))]
        scene_list.append(
            Scene(
                index=i,
                title=f"{beat.capitalize()}: {loc.name.removeprefix('the ').title()}",
                beat=beat,
                duration_s=round(float(rng.uniform(*seconds)), 1),
                character_ids=present,
                location_id=loc.id,
                action=action,
                shot_notes=SHOTS[beat].format(lead=lead.name),
                time_of_day=tod or global_time or rand_time,
                weather=facts.weather,
            )
        )
        scene_list[-1].narration = narration_line(beat, action, scene_list[-1].duration_s)
    lead = characters[0]
    last = goal.split()[-1] if facts.goal else locations[0].name.split()[-1]
    title = "The " + clip(last, MAX_NAME_CHARS).title()
    route = (
        f"from {locations[0].name} to {locations[-1].name}"
        if len(locations) > 1
        else f"in {locations[0].name}"
    )
    if facts.goal or not ev_actions:
        logline = f"{lead.name}{', ' + lead.role + ',' if lead.role else ''} sets out to {goal}, {route}."
    else:
        logline = f"{ev_actions[0].rstrip('.')}, {route}."
    return StoryBible(
        seed_prompt=prompt,
        title=title,
        logline=logline,
        characters=characters,
        locations=locations,
        scenes=scene_list,
        planner="offline",
        seed=seed,
        era=facts.era,
        weather=facts.weather,
    )
