"""The words CineRL's prompts are made of, shared by the composer that writes them and the previz
renderer that reads them. Keeping one table means the prompt really is the renderer's only input.
"""

from __future__ import annotations

import re

# Named colours (sRGB). Multi-word names are matched before their parts ("slate grey" before "grey").
COLORS: dict[str, tuple[int, int, int]] = {
    "jet black": (20, 20, 22),
    "black": (28, 28, 30),
    "charcoal": (54, 57, 62),
    "obsidian": (40, 38, 48),
    "slate grey": (96, 108, 122),
    "ash grey": (150, 150, 146),
    "grey": (128, 128, 128),
    "silver": (192, 192, 196),
    "fog white": (222, 226, 228),
    "snow white": (245, 246, 250),
    "white": (240, 240, 240),
    "ivory": (240, 234, 214),
    "pearl": (234, 224, 200),
    "bone": (227, 218, 201),
    "cream": (245, 235, 200),
    "beige": (214, 196, 160),
    "sand": (210, 184, 136),
    "sandstone": (196, 158, 110),
    "tan": (196, 150, 100),
    "khaki": (178, 164, 110),
    "ochre": (204, 136, 34),
    "mustard": (214, 172, 40),
    "gold": (212, 175, 55),
    "amber": (230, 140, 20),
    "copper": (184, 100, 50),
    "bronze": (160, 110, 50),
    "rust red": (160, 60, 30),
    "terracotta": (200, 100, 70),
    "brick red": (156, 50, 40),
    "crimson": (180, 20, 40),
    "scarlet": (220, 36, 30),
    "red": (200, 30, 30),
    "burgundy": (110, 20, 40),
    "rose": (220, 110, 140),
    "coral": (240, 120, 100),
    "peach": (250, 190, 150),
    "neon pink": (255, 40, 180),
    "magenta": (200, 30, 150),
    "plum": (110, 50, 100),
    "lavender": (180, 160, 220),
    "violet": (130, 70, 190),
    "indigo": (70, 40, 130),
    "midnight blue": (25, 30, 80),
    "navy": (30, 40, 100),
    "cobalt blue": (0, 71, 171),
    "electric blue": (40, 120, 255),
    "steel blue": (70, 110, 150),
    "sky blue": (130, 190, 235),
    "teal": (0, 120, 120),
    "turquoise": (60, 200, 190),
    "cyan": (40, 210, 230),
    "sea green": (46, 139, 87),
    "emerald": (20, 150, 90),
    "forest green": (34, 90, 40),
    "pine green": (20, 70, 50),
    "moss green": (100, 120, 50),
    "olive": (110, 110, 40),
    "sage": (150, 170, 130),
    "mint": (170, 230, 190),
    "lime": (160, 220, 40),
    "chocolate": (90, 50, 30),
    "walnut": (100, 70, 45),
    "brown": (120, 80, 50),
    "blonde": (225, 195, 120),
    "auburn": (145, 55, 30),
    "chestnut": (110, 60, 35),
}

# Scenery types and the words that name them. The renderer draws each type's layout.
SCENERY_TYPES: dict[str, tuple[str, ...]] = {
    "forest": ("forest", "woods", "woodland", "jungle", "grove", "swamp", "marsh"),
    "city": (
        "city",
        "street",
        "alley",
        "avenue",
        "downtown",
        "metropolis",
        "town",
        "market",
        "bazaar",
        "airport",
    ),
    "harbour": ("harbour", "harbor", "port", "dock", "pier", "wharf"),
    "sea": ("sea", "ocean", "coast", "beach", "shore", "waves", "storm at sea"),
    "desert": ("desert", "dunes", "wasteland", "badlands"),
    "mountain": ("mountain", "peak", "cliff", "ridge", "canyon"),
    "snow": ("snowfield", "tundra", "glacier", "snow", "ice"),
    "interior": (
        "room",
        "interior",
        "hall",
        "kitchen",
        "library",
        "office",
        "apartment",
        "lighthouse",
        "workshop",
        "tavern",
        "cabin",
        "chamber",
        "opera",
        "theatre",
    ),
    "castle": ("castle", "fortress", "palace", "ruins", "tower", "cathedral"),
    "meadow": ("meadow", "field", "farm", "garden", "village", "countryside", "valley", "prairie", "savanna"),
    "space": ("spaceship", "space station", "starship", "orbit", "planet"),
    "underground": ("cave", "tunnel", "subway", "mine", "cellar", "catacomb"),
}

PERSON_NOUNS: tuple[str, ...] = (
    "woman",
    "man",
    "girl",
    "boy",
    "child",
    "person",
    "figure",
    "stranger",
    "knight",
    "keeper",
    "detective",
    "soldier",
    "sailor",
    "captain",
    "pilot",
    "robot",
    "android",
    "wizard",
    "witch",
    "king",
    "queen",
    "prince",
    "princess",
    "hero",
    "heroine",
    "thief",
    "doctor",
    "scientist",
)

# The species an animal character can be (Character.species): the composer writes the noun, previz
# draws a four-legged figure for it (planning/lexicon.py maps every animal word to one of these).
ANIMAL_NOUNS: tuple[str, ...] = (
    "dog",
    "cat",
    "horse",
    "fox",
    "wolf",
    "bear",
    "bird",
    "owl",
    "eagle",
    "crow",
    "deer",
    "rabbit",
    "mouse",
    "lion",
    "tiger",
    "elephant",
    "whale",
    "fish",
    "monkey",
    "cow",
    "sheep",
    "goat",
    "pig",
    "duck",
    "chicken",
    "penguin",
    "camel",
    "turtle",
    "frog",
    "snake",
    "dragon",
    "octopus",
    "squirrel",
)

# Factored prompt actions the policy chooses from. Each value maps to the phrase the composer writes.
SHOT_SIZES = {
    "extreme wide": "Extreme wide shot",
    "wide": "Wide shot",
    "medium": "Medium shot",
    "close-up": "Close-up shot",
}
CAMERA_MOVES = {
    "static": "static camera",
    "pan": "slow pan",
    "tilt": "slow tilt up",
    "dolly": "slow dolly in",
    "zoom": "slow zoom in",
    "handheld": "fast handheld camera",
}
LIGHTING = {
    "soft daylight": "soft even daylight",
    "golden hour": "warm golden hour light",
    "overcast": "overcast diffuse light",
    "low key": "low key light with deep shadows",
    "candlelight": "flickering candlelight",
    "neon": "neon light",
}
IDENTITY_LOCK = ("none", "name", "brief", "full")
LOCATION_LOCK = ("none", "name", "brief", "full")
MOTION = {
    "still": "minimal motion",
    "gentle": "gentle natural motion",
    "dynamic": "dynamic motion",
    "frantic": "frantic erratic motion",
}
NEGATIVE_PRESETS = {
    "none": "",
    "basic": "blurry, low quality",
    "artifacts": "flicker, jitter, morphing, colour shift",
    "full": "blurry, low quality, flicker, jitter, morphing, colour shift, deformed, watermark, text",
}

ACTION_FACTORS: dict[str, tuple[str, ...]] = {
    "shot_size": tuple(SHOT_SIZES),
    "camera_move": tuple(CAMERA_MOVES),
    "lighting": tuple(LIGHTING),
    "identity_lock": IDENTITY_LOCK,
    "location_lock": LOCATION_LOCK,
    "motion": tuple(MOTION),
    "negative_preset": tuple(NEGATIVE_PRESETS),
}

# The composer's default recipe: the action a template would use for every scene, and where a
# fresh prompt policy starts (its prior). A first guess a cinematographer would make for previz and
# a real model alike: a medium shot on a static camera, soft daylight, every lock spelled out,
# gentle motion and the full negative preset (0.817 mean take reward in issue 20's measurements).
DEFAULT_RECIPE: dict[str, str] = {
    "shot_size": "medium",
    "camera_move": "static",
    "lighting": "soft daylight",
    "identity_lock": "full",
    "location_lock": "full",
    "motion": "gentle",
    "negative_preset": "full",
}


def parse_recipe(text: str) -> dict[str, str]:
    """A recipe from "factor=value, factor=value" (the rest from DEFAULT_RECIPE); a ValueError
    that names the bad factor or value and the allowed ones."""
    recipe = dict(DEFAULT_RECIPE)
    for part in filter(None, (p.strip() for p in re.split(r"[,;]", text or ""))):
        factor, sep, value = (x.strip() for x in part.partition("="))
        factor = factor.replace("-", "_")
        if not sep or factor not in ACTION_FACTORS:
            raise ValueError(
                f"recipe part {part!r}: use factor=value with a factor of {', '.join(ACTION_FACTORS)}"
            )
        if value not in ACTION_FACTORS[factor]:
            raise ValueError(f"recipe {factor}={value!r}: choose one of {', '.join(ACTION_FACTORS[factor])}")
        recipe[factor] = value
    return recipe


def format_recipe(recipe: dict[str, str]) -> str:
    return ", ".join(f"{f}={recipe[f]}" for f in ACTION_FACTORS)


_COLOR_RE = re.compile(
    r"\b(" + "|".join(re.escape(n) for n in sorted(COLORS, key=len, reverse=True)) + r")\b",
    re.IGNORECASE,
)


def find_colors(text: str) -> list[str]:
    """Colour names in reading order, longest names first ("slate grey" is not "grey")."""
    return [m.group(1).lower() for m in _COLOR_RE.finditer(text)]


def color_rgb(name: str) -> tuple[int, int, int]:
    return COLORS[name.lower()]


def find_scenery_type(text: str) -> str | None:
    """The scenery type whose keyword appears earliest in the text, or None."""
    low = text.lower()
    best: tuple[int, str] | None = None
    for stype, words in SCENERY_TYPES.items():
        for w in words:
            m = re.search(r"\b" + re.escape(w) + r"s?\b", low)
            if m and (best is None or m.start() < best[0]):
                best = (m.start(), stype)
    return best[1] if best else None


# How much a scene's action moves, read from its verbs (and the nouns of events: "a chase", "the
# storm"): the motion-energy reward (rewards/components/scene_motion.py) expects an optical-flow
# band for each. A hand-written lexicon, not a parser, so the reward suite needs no NLP model;
# inflections come from verb_forms() and irregular forms are listed. The highest band any word of
# the action names wins ("waits, then runs" must move).
ACTION_ENERGY: dict[str, tuple[str, ...]] = {
    "calm": tuple(
        """vigil wait rest sleep/slept sit/sat kneel/knelt pray mourn grieve weep/wept watch gaze
        stare listen read write/wrote whisper talk speak/spoke converse conversation chat
        think/thought ponder meditate stand/stood lie/lay doze dream remember pause linger
        hold/held embrace hug smile nod sigh silence silent alone contemplate observe ask
        tell/told confess
        """.split()
    ),
    "moderate": tuple(
        """walk stroll wander bargain shop browse cook work build/built climb ride/rode drive/drove
        sail row swim/swam search explore carry haul dig/dug paint play gather cross approach arrive
        enter follow march hike trudge pace drift fly/flew dance sweep/swept push pull lift
        bring/brought travel journey trade sell/sold buy/bought greet celebrate festival
        """.split()
    ),
    "vigorous": tuple(
        """chase race run/ran sprint flee/fled escape fight/fought battle brawl duel attack charge
        storm struggle wrestle dash rush hurry leap/leapt jump crash explode explosion gallop pursue
        pursuit hunt strike/struck swing/swung spin/spun whirl riot stampede collide dodge plunge
        hurl smash scramble tumble tempest hurricane gale blizzard avalanche earthquake flood war
        raid ambush skirmish
        """.split()
    ),
}
ENERGY_ORDER = ("calm", "moderate", "vigorous")


def verb_forms(word: str) -> set[str]:
    """A word with its regular inflections: chase -> chases, chased, chasing; run -> running;
    hurry -> hurries, hurried. Over-generation is harmless: a lexicon word is only matched as a
    whole word of the action."""
    w = word.lower()
    forms = {w, w + "s", w + "es", w + "ed", w + "d", w + "ing", w + "er", w + "ers"}
    if w.endswith("e"):
        forms |= {w[:-1] + "ing", w[:-1] + "er"}
    if w.endswith("y") and len(w) > 2 and w[-2] not in "aeiou":
        forms |= {w[:-1] + "ies", w[:-1] + "ied"}
    if len(w) >= 3 and w[-1] not in "aeiouwxy" and w[-2] in "aeiou" and w[-3] not in "aeiou":
        forms |= {w + w[-1] + "ing", w + w[-1] + "ed", w + w[-1] + "er"}  # run -> running
    return forms


# every form -> (band, base word); an entry "sit/sat" is the base word with its irregular forms
_ENERGY_FORMS: dict[str, tuple[str, str]] = {
    form: (band, entry.split("/")[0])
    for band in ENERGY_ORDER
    for entry in ACTION_ENERGY[band]
    for form in verb_forms(entry.split("/")[0]) | set(entry.split("/")[1:])
}


def action_energy(text: str) -> tuple[str | None, list[str]]:
    """(band, matched lexicon words) of an action: the highest ENERGY_ORDER band named, or
    (None, []) when no word of the lexicon occurs."""
    found: dict[str, list[str]] = {b: [] for b in ENERGY_ORDER}
    for tok in re.findall(r"[a-z]+", text.lower()):
        hit = _ENERGY_FORMS.get(tok)
        if hit and hit[1] not in found[hit[0]]:
            found[hit[0]].append(hit[1])
    for band in reversed(ENERGY_ORDER):
        if found[band]:
            return band, found[band]
    return None, []
