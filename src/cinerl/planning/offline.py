"""The offline planner: a deterministic story bible from the seed prompt, no model needed.

It reads the prompt for people (proper names and role nouns), places (scenery words with their
modifiers) and a goal ("... to save the festival"), then lays out a three-beat arc: beginning,
turn, end. Everything it invents (names, wardrobe, palettes) comes from one seeded generator.
"""

from __future__ import annotations

import re
import zlib

import cv2
import numpy as np

from cinerl.core.inputs import check_prompt, slug
from cinerl.core.vocabulary import COLORS, SCENERY_TYPES
from cinerl.core.schema import Character, Location, NamedColor, Scene, StoryBible

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


def _find_places(prompt: str) -> list[tuple[str, str]]:
    """(name, scenery type) for each place phrase, in order of appearance.

    Keywords next to each other form one place ("harbour town" is a harbour); a keyword that
    qualifies a role ("lighthouse keeper") is part of a person, not a place.
    """
    low = prompt.lower()
    hits: list[tuple[int, int, str]] = []
    for stype, words in SCENERY_TYPES.items():
        for w in words:
            for m in re.finditer(r"\b" + re.escape(w) + r"s?\b", low):
                after = re.match(r"\s*([a-z]+)", low[m.end() :])
                if after and after.group(1) in ROLES:
                    continue
                hits.append((m.start(), m.end(), stype))
    hits.sort()
    spans: list[list] = []
    for start, end, stype in hits:
        if spans and start <= spans[-1][1] + 1:
            spans[-1][1] = max(spans[-1][1], end)
            continue
        spans.append([start, end, stype])
    places: list[tuple[str, str]] = []
    for start, end, stype in spans:
        mods: list[str] = []
        for tok in reversed(re.findall(r"[\w'-]+", low[:start])[-2:]):
            if tok in PLACE_BREAKS or tok in ROLES or tok in COLORS:
                break
            mods.insert(0, tok)
        name = "the " + " ".join(mods + [low[start:end]]).title()
        if name.lower() not in (p.lower() for p, _ in places):
            places.append((name, stype))
    return places[:6]


def _find_people(prompt: str) -> list[dict]:
    """Named people and role nouns, in order, each with optional name, role, gender and age hint."""
    people: list[dict] = []
    low = prompt.lower()
    for m in re.finditer(r"\b([A-Z][a-z]{2,})\b", prompt):
        word = m.group(1)
        if word in STOPWORDS or word.lower() in ROLES or word.lower() in COLORS:
            continue
        if any(word.lower() in ws for ws in SCENERY_TYPES.values()):
            continue
        if any(p.get("name") == word for p in people):
            continue
        people.append({"pos": m.start(), "name": word})
    for role in sorted(ROLES, key=len, reverse=True):
        for m in re.finditer(r"\b" + role + r"\b", low):
            if any(
                p.get("role_pos") is not None and p["role_pos"] <= m.start() < p["role_end"] for p in people
            ):
                continue
            prev = re.findall(r"[\w'-]+", low[: m.start()])[-3:]
            role_name = f"{prev[-1]} {role}" if prev and prev[-1] in ROLE_COMPOUNDS else role
            entry = {
                "pos": m.start(),
                "role": role_name,
                "role_key": role,
                "role_pos": m.start(),
                "role_end": m.end(),
                "old": any(t in OLD_WORDS for t in prev),
                "young": any(t in YOUNG_WORDS for t in prev),
                "pronoun": next(
                    (
                        w
                        for w in re.findall(r"[a-z]+", low[m.end() : m.end() + 40])
                        if w in ("her", "his", "she", "he")
                    ),
                    "",
                ),
            }
            # "Mara, a retired lighthouse keeper": a name just before the role owns it
            owner = next(
                (p for p in people if "name" in p and "role" not in p and 0 <= m.start() - p["pos"] <= 40),
                None,
            )
            if owner:
                owner.update({k: v for k, v in entry.items() if k != "pos"})
            else:
                people.append(entry)
    # "a thief named Ivo": the name belongs to the role before it
    for m in re.finditer(r"\b(?:named|called)\s+([A-Z][a-z]{2,})", prompt):
        named = next((p for p in people if p.get("name") == m.group(1) and "role" not in p), None)
        role = max(
            (p for p in people if "name" not in p and p["pos"] < m.start()),
            key=lambda p: p["pos"],
            default=None,
        )
        if named and role:
            role["name"] = named["name"]
            people.remove(named)
    people.sort(key=lambda p: p["pos"])
    return people[:6]


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


def _make_character(p: dict, i: int, rng: np.random.Generator, used: set[str], pool: list[str]) -> Character:
    hint, (lo, hi) = ROLES.get(p.get("role_key", ""), ("", (25, 55)))
    known = next((g for g, names in NAMES.items() if p.get("name") in names), "")
    gender = (
        hint
        or known
        or {"her": "woman", "she": "woman", "his": "man", "he": "man"}.get(
            p.get("pronoun", ""), "woman" if rng.random() < 0.5 else "man"
        )
    )
    if p.get("old"):
        lo, hi = max(lo, 60), max(hi, 78)
    if p.get("young"):
        lo, hi = min(lo, 16), min(hi, 25)
    age = int(rng.integers(lo, hi + 1))
    names = NAMES["woman" if gender in ("woman", "girl") else "man"]
    name = p.get("name") or next(n for n in [names[int(rng.integers(len(names)))], *names] if n not in used)
    garments = list(GARMENTS[int(rng.integers(len(GARMENTS)))])
    colors = rng.choice(len(pool), size=3, replace=False)
    wardrobe = [NamedColor(name=pool[c], rgb=COLORS[pool[c]]) for c in colors]
    hair = HAIR_COLORS[int(rng.integers(len(HAIR_COLORS)))] if age < 60 else "ash grey"
    role = p.get("role", "")
    return Character(
        id=slug(name, f"character_{i}"),
        name=name,
        role=role,
        age=age,
        gender=gender,
        wardrobe=wardrobe,
        garments=garments,
        hair=NamedColor(name=hair, rgb=COLORS[hair]),
        visual_description=(f"{'an' if role[:1] in 'aeiou' else 'a'} {role}, " if role else "")
        + ["steady gaze", "weathered face", "quick, alert eyes", "tired but resolute look"][i % 4],
    )


def scene_count(
    prompt: str, n_chars: int, n_locs: int, min_scenes: int, max_scenes: int, rng: np.random.Generator
) -> int:
    """More people, places and words make a longer film, within the configured bounds."""
    want = 2 + n_locs + (1 if n_chars > 1 else 0) + (1 if len(prompt.split()) > 40 else 0)
    want += int(rng.integers(0, 2))
    return max(min_scenes, min(max_scenes, want))


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
    places = _find_places(prompt) or [DEFAULT_PLACES[int(rng.integers(len(DEFAULT_PLACES)))]]
    locations: list[Location] = []
    for i, (name, stype) in enumerate(places):
        lid = slug(name.removeprefix("the ").removeprefix("The "), f"location_{i}")
        if lid in {loc.id for loc in locations}:
            lid = f"{lid}_{i}"
        locations.append(
            Location(
                id=lid,
                name=name,
                scenery_type=stype,
                palette=_palette(stype, rng),
                visual_description=LOOKS[stype],
            )
        )
    people = _find_people(prompt) or [{"pos": 0, "role": ""}]
    pool = _wardrobe_pool([c.name for loc in locations for c in loc.palette])
    used: set[str] = set()
    characters: list[Character] = []
    for i, p in enumerate(people):
        ch = _make_character(p, i, rng, used, pool)
        base, k = ch.id, 2
        while ch.id in {c.id for c in characters}:
            ch = ch.model_copy(update={"id": f"{base}_{k}"})
            k += 1
        used.add(ch.name)
        characters.append(ch)
    n = scenes or scene_count(prompt, len(characters), len(locations), min_scenes, max_scenes, rng)
    goal_m = re.search(r"\bto ((?!the\b)[a-z]+\b[^.;:!?]*)", prompt)
    goal = _clean(goal_m.group(1)) if goal_m else "see it through"
    beats = [
        "beginning" if n == 1 or i < max(1, n // 3) else "end" if i >= n - max(1, n // 3) else "turn"
        for i in range(n)
    ]
    scene_list: list[Scene] = []
    for i, beat in enumerate(beats):
        # the story travels through the places in order and ends where the last one is
        loc = locations[min(len(locations) - 1, i * len(locations) // n)]
        lead = characters[i % len(characters)] if beat != "end" else characters[0]
        others = [c for c in characters if c.id != lead.id]
        other = others[i % len(others)] if others else None
        templates = [t for t in ACTIONS[beat] if other or "{other}" not in t]
        text = templates[int(rng.integers(len(templates)))]
        action = text.format(lead=lead.name, other=other.name if other else "", loc=loc.name, goal=goal)
        present = [lead.id] + ([other.id] if other and "{other}" in text else [])
        if len(characters) > 1 and other and beat != "turn" and other.id not in present:
            present.append(other.id)
        times = TIMES[beat]
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
                time_of_day=times[int(rng.integers(len(times)))],
            )
        )
    lead = characters[0]
    title = "The " + (goal.split()[-1].title() if goal_m else locations[0].name.split()[-1].title())
    route = (
        f"from {locations[0].name} to {locations[-1].name}"
        if len(locations) > 1
        else f"in {locations[0].name}"
    )
    logline = f"{lead.name}{', ' + lead.role + ',' if lead.role else ''} sets out to {goal}, {route}."
    return StoryBible(
        seed_prompt=prompt,
        title=title,
        logline=logline,
        characters=characters,
        locations=locations,
        scenes=scene_list,
        planner="offline",
        seed=seed,
    )
