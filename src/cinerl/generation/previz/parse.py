"""Prompt text -> ShotSpec: what the previz renderer understands of a prompt.

previz reads nothing but the prompt, like a real text-to-video model, so this parser is the whole
of its "understanding". It only records what the text states; anything left unstated (no colours for
a location, no wardrobe for a person) stays empty here and is invented from the seed at render time,
which is how the renderer models identity and location drift.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from cinerl.core.vocabulary import ANIMAL_NOUNS, COLORS, LIGHTING, MOTION, PERSON_NOUNS, find_scenery_type

MAX_FIGURES = 6

# Colour names with their positions (the vocabulary helper gives names only; we need what follows
# a colour to tell "black hair" from "black coat").
_COLOR_SPAN_RE = re.compile(
    r"\b(" + "|".join(re.escape(n) for n in sorted(COLORS, key=len, reverse=True)) + r")\b",
    re.IGNORECASE,
)
_PERSON_RE = re.compile(r"\b(" + "|".join(map(re.escape, PERSON_NOUNS)) + r")\b", re.IGNORECASE)
_ANIMAL_RE = re.compile(r"\b(" + "|".join(map(re.escape, ANIMAL_NOUNS)) + r")\b", re.IGNORECASE)
_AGE_RE = re.compile(r"\b(\d{1,3})[- ]year[- ]old\b", re.IGNORECASE)
_NOT_WARDROBE = ("eyes", "eye", "skin", "lips", "beard", "moustache", "mustache", "eyebrows")
_NO_PEOPLE_RE = re.compile(r"\bno (people|person|one|figures?|characters?)\b|\bnobody\b", re.I)
_NAME_RE = re.compile(r"^([A-Z][\w'-]*(?: [A-Z][\w'-]*)?)\s*,")
_NOT_NAMES = {"A", "An", "Another", "The", "One", "Some", "Two", "Three"}
_LOCATION_NAME_RE = re.compile(r"^(?:in|inside|at)\s+((?:the\s+)?[A-Z][^,]*)", re.IGNORECASE)
_LOCATION_START_RE = re.compile(r"^(?:In|Inside|At) (?:the )?[A-Z]")

_SHOT_PATTERNS = (
    ("close-up", r"\b(?:extreme )?close[- ]?up\b"),
    ("extreme wide", r"\bextreme (?:wide|long)\b"),
    ("wide", r"\b(?:wide|long|full) shot\b|\bwide[- ]angle\b"),
    ("medium", r"\bmedium\b|\bmid[- ]shot\b"),
)
_CAMERA_PATTERNS = (
    ("handheld", r"\bhand[- ]?held\b|\bshaky cam"),
    ("pan", r"\b(?:whip )?pan(?:s|ning)?\b"),
    ("tilt", r"\btilt(?:s|ing)?\b"),
    ("dolly", r"\bdolly\b|\bpush[- ]in\b|\btracking\b|\bpull[- ]back\b"),
    ("zoom", r"\bzoom(?:s|ing)?\b"),
    ("static", r"\bstatic\b|\blocked[- ]off\b|\btripod\b"),
)
_SPEED_PATTERNS = (
    ("whip", r"\bwhip\b"),
    ("fast", r"\b(?:fast|quick|rapid|brisk)\b"),
    ("slow", r"\b(?:slow|gentle|gradual)\b"),
)
_DIRECTION_PATTERNS = (
    ("out", r"\bout\b|\bpull[- ]back\b"),
    ("in", r"\bin\b"),
    ("up", r"\bup\b"),
    ("down", r"\bdown\b"),
    ("left", r"\bleft\b"),
    ("right", r"\bright\b"),
)
_TIME_WORDS = {
    "dawn": "dawn",
    "sunrise": "dawn",
    "morning": "morning",
    "noon": "noon",
    "midday": "noon",
    "day": "day",
    "daytime": "day",
    "afternoon": "day",
    "dusk": "dusk",
    "evening": "dusk",
    "twilight": "dusk",
    "sunset": "sunset",
    "night": "night",
    "midnight": "night",
    "nighttime": "night",
}
_TIME_RE = re.compile(r"\b(" + "|".join(sorted(_TIME_WORDS, key=len, reverse=True)) + r")\b", re.I)
_LIGHT_EXTRA = {
    "golden hour": "golden hour",
    "overcast": "overcast",
    "low key": "low key",
    "low-key": "low key",
    "candlelight": "candlelight",
    "candle": "candlelight",
    "neon": "neon",
    "daylight": "soft daylight",
}
_MOTION_EXTRA = (
    ("frantic", "frantic"),
    ("erratic", "frantic"),
    ("dynamic", "dynamic"),
    ("energetic", "dynamic"),
    ("minimal motion", "still"),
    ("motionless", "still"),
    ("gentle", "gentle"),
)
_NEGATIVE_FLAGS = (
    ("flicker", r"flicker"),
    ("jitter", r"jitter|shak"),
    ("morphing", r"morph"),
    ("colour shift", r"colou?r (?:shift|cast|drift)"),
    ("blurry", r"blur"),
    ("low quality", r"low quality|noise|grain"),
)
# Words whose scenery keyword is not a place ("shallow depth of field" is not a meadow).
_SCENERY_MASK_RE = re.compile(r"depth of field|field of view", re.IGNORECASE)


@dataclass
class FigureSpec:
    """One person (or animal: `noun` in ANIMAL_NOUNS) the prompt puts in frame. Empty fields are
    filled from the seed at render time."""

    noun: str
    name: str | None = None
    age: int | None = None
    hair: str | None = None
    wardrobe: list[str] = field(default_factory=list)
    sentence: str = ""


@dataclass
class ShotSpec:
    """Everything previz takes from a prompt (and its negative prompt)."""

    shot_size: str = "medium"
    camera_move: str = "static"
    camera_speed: str = "normal"
    camera_direction: str | None = None
    scenery_type: str | None = None
    location_name: str | None = None
    palette: list[str] = field(default_factory=list)
    studio: bool = False
    time_of_day: str | None = None
    lighting: str | None = None
    figures: list[FigureSpec] = field(default_factory=list)
    motion: str = "gentle"
    negatives: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in text.split(".") if s.strip()]


def color_spans(text: str) -> list[tuple[str, int, int]]:
    """(colour name, start, end) in reading order, longest names first."""
    return [(m.group(1).lower(), m.start(), m.end()) for m in _COLOR_SPAN_RE.finditer(text)]


def _first_pattern(text: str, patterns) -> tuple[str | None, int]:
    """The label of the pattern matching earliest in text."""
    best: tuple[int, str] | None = None
    for label, pat in patterns:
        m = re.search(pat, text, re.IGNORECASE)
        if m and (best is None or m.start() < best[0]):
            best = (m.start(), label)
    return (best[1], best[0]) if best else (None, -1)


def _parse_figure(sentence: str, noun: str) -> FigureSpec:
    hair = None
    wardrobe: list[str] = []
    for name, _s, end in color_spans(sentence):
        following = sentence[end:].lstrip().lower()
        if following.startswith("hair") and hair is None:
            hair = name
        elif following.startswith(_NOT_WARDROBE):
            continue
        else:
            wardrobe.append(name)
    m = _NAME_RE.match(sentence)
    name = m.group(1) if m and m.group(1) not in _NOT_NAMES else None
    age_m = _AGE_RE.search(sentence)
    age = int(age_m.group(1)) if age_m else None
    return FigureSpec(noun=noun.lower(), name=name, age=age, hair=hair, wardrobe=wardrobe, sentence=sentence)


def _is_action(sentence: str) -> bool:
    low = sentence.lower()
    return any(p in low for p in MOTION.values()) or any(w in low for w, _ in _MOTION_EXTRA[:5])


def parse_prompt(prompt: str, negative_prompt: str = "") -> ShotSpec:
    """Read a prompt the way previz renders it. Pure text -> ShotSpec; no randomness here."""
    spec = ShotSpec()
    sentences = split_sentences(prompt)
    low = prompt.lower()

    size, _ = _first_pattern(prompt, _SHOT_PATTERNS)
    spec.shot_size = size or "medium"

    # Camera: the first sentence naming a move; speed and direction words come from that sentence.
    for s in sentences:
        move, pos = _first_pattern(s, _CAMERA_PATTERNS)
        if move:
            spec.camera_move = move
            spec.camera_speed = _first_pattern(s, _SPEED_PATTERNS)[0] or "normal"
            spec.camera_direction = _first_pattern(s[pos:], _DIRECTION_PATTERNS)[0]
            break

    # Figures: every sentence with a person noun, or else an animal noun (an animal character:
    # "Pip, a 3-year-old male dog with a teal coat"; a place sentence, "In the Fox Inn", is none).
    # The action sentence (the one carrying a motion phrase) only adds a figure when no other
    # sentence introduced anyone.
    person_sents: list[tuple[str, str]] = []
    action_sents: list[tuple[str, str]] = []
    for s in sentences:
        m = _PERSON_RE.search(s)
        if not m and not _LOCATION_START_RE.match(s):
            m = _ANIMAL_RE.search(s)
        if not m or _NO_PEOPLE_RE.search(s):
            continue
        (action_sents if _is_action(s) else person_sents).append((s, m.group(1)))
    chosen = person_sents or action_sents[:1]
    spec.figures = [_parse_figure(s, noun) for s, noun in chosen[:MAX_FIGURES]]
    figure_sents = {s for s, _ in chosen}

    spec.studio = "studio backdrop" in low
    if not spec.studio:
        # Location: first non-figure sentence with a scenery keyword, or one opening "In <Name>".
        loc_sentence = None
        for s in sentences:
            if s in figure_sents:
                continue
            stype = find_scenery_type(_SCENERY_MASK_RE.sub(" ", s))
            if stype or _LOCATION_START_RE.match(s):
                loc_sentence, spec.scenery_type = s, stype
                break
        if loc_sentence is None:  # a place named only inside a figure sentence: type, no palette
            for s in sentences:
                stype = find_scenery_type(_SCENERY_MASK_RE.sub(" ", s))
                if stype:
                    spec.scenery_type = stype
                    break
        else:
            spec.palette = [c for c, _s, _e in color_spans(loc_sentence)]
            m = _LOCATION_NAME_RE.match(loc_sentence)
            if m:
                spec.location_name = m.group(1).strip()

    m = _TIME_RE.search(prompt)
    spec.time_of_day = _TIME_WORDS[m.group(1).lower()] if m else None

    # The composer's lighting phrase ("neon light", "soft even daylight") is an instruction and
    # wins over a light word elsewhere (a place named "the Neon Streets" lit by daylight is asked
    # for daylight); a single light word counts only when no phrase is given.
    spec.lighting = _first_pattern(prompt, [(k, re.escape(v)) for k, v in LIGHTING.items()])[0]
    if spec.lighting is None:
        extra = [(v, r"\b" + re.escape(k) + r"\b") for k, v in _LIGHT_EXTRA.items()]
        spec.lighting = _first_pattern(prompt, extra)[0]

    motion_patterns = [(k, re.escape(v)) for k, v in MOTION.items()]
    motion_patterns += [(v, r"\b" + re.escape(k) + r"\b") for k, v in _MOTION_EXTRA]
    spec.motion = _first_pattern(prompt, motion_patterns)[0] or "gentle"

    neg = negative_prompt.lower()
    spec.negatives = [flag for flag, pat in _NEGATIVE_FLAGS if re.search(pat, neg)]
    return spec
