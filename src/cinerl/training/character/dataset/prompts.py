"""The 17 cinematic prompts of an actor training set, and the descriptor for each actor type.

A character LoRA learns identity best from one face seen in many situations: seven
photorealistic shots (varied light, angle and setting), six black-and-white stylisations and four
colour stylisations. The counts are constants here and every other module, the CLI output and the
docs take them from these names.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from cinerl.core.errors import UserError

PHOTOREALISTIC = "photorealistic"
BW_STYLISED = "bw_stylised"
COLOUR_STYLISED = "colour_stylised"

ACTOR_TYPES = ("human", "creature", "robotic", "anthropomorphic", "mythical")
SEXES = ("male", "female")
_DESCRIPTORS = {
    "creature": "creature",
    "robotic": "robotic character",
    "anthropomorphic": "anthropomorphic character",
    "mythical": "mythical character",
}
_KEEP = (
    "Keep the face, hairstyle and any defining marks, makeup, scars or headgear of the "
    "reference exactly as they are."
)

# (category, style key, template). {d} is the descriptor ("woman", "robotic character", ...).
_TEMPLATES: tuple[tuple[str, str, str], ...] = (
    (
        PHOTOREALISTIC,
        "rain_street_night",
        "Photorealistic film still: the {d} sprints across a rain-slick street at night, caught "
        "mid-stride and lit from the side by car headlights. Three-quarter rear angle, wet asphalt "
        "mirroring the lights, nobody else in frame.",
    ),
    (
        PHOTOREALISTIC,
        "eye_contact_closeup",
        "Photorealistic close-up portrait of the {d} looking straight into the lens, candid and "
        "unposed, soft overcast daylight, shallow depth of field, every facial feature sharp.",
    ),
    (
        PHOTOREALISTIC,
        "window_light_closeup",
        "Photorealistic close-up of the {d}'s face in warm orange window light, jaw set, eyes fixed "
        "on something off-frame left. Camera slightly below eye level.",
    ),
    (
        PHOTOREALISTIC,
        "subway_platform",
        "Photorealistic medium shot of the {d} waiting on a subway platform under flickering "
        "fluorescent tubes, a train blurring past behind, tiled wall, profile view.",
    ),
    (
        PHOTOREALISTIC,
        "parking_garage",
        "Photorealistic wide shot of the {d} walking fast through an empty concrete parking garage "
        "under sodium lamps, long shadows across the floor, camera tracking at hip height.",
    ),
    (
        PHOTOREALISTIC,
        "rooftop_silhouette",
        "Photorealistic shot of the {d} standing on a rooftop at dusk, backlit into a near "
        "silhouette against the city skyline, rim light tracing the outline of the head.",
    ),
    (
        PHOTOREALISTIC,
        "alley_phone_call",
        "Photorealistic medium close-up of the {d} taking a tense phone call in a narrow alley, "
        "magenta and cyan neon signs spilling colour across the wet brick.",
    ),
    (
        BW_STYLISED,
        "pen_ink",
        "Black-and-white pen and ink line drawing of the {d} tying a bootlace on a townhouse stoop "
        "under a single streetlamp in light rain. Crosshatching and stippling for shade, no grey "
        "gradients.",
    ),
    (
        BW_STYLISED,
        "graphite",
        "Graphite pencil sketch, black and white, of the {d} leaning on a railway bridge rail, "
        "loose construction lines, soft smudged shading on textured paper.",
    ),
    (
        BW_STYLISED,
        "charcoal",
        "Black-and-white charcoal drawing of the {d} hunched against the wind on a harbour wall, "
        "heavy dark masses, smudged edges and bright paper left for highlights.",
    ),
    (
        BW_STYLISED,
        "woodcut",
        "Black-and-white woodcut print of the {d} climbing a steep stairway, bold carved lines, "
        "parallel gouge marks for tone, stark contrast.",
    ),
    (
        BW_STYLISED,
        "mono_vector",
        "Monochrome vector illustration of the {d} kicking open a warehouse door, flat grey shapes "
        "with hard edges, no texture, three or four tones of grey only.",
    ),
    (
        BW_STYLISED,
        "manga",
        "Black-and-white manga panel of the {d} turning sharply in a crowded market, clean ink "
        "linework, dot screentones for shading, speed lines.",
    ),
    (
        COLOUR_STYLISED,
        "comic_book",
        "Dynamic comic book illustration of the {d} leaping a rooftop gap at night, low angle, "
        "bold black inks, cel-shaded colour, halftone shadows.",
    ),
    (
        COLOUR_STYLISED,
        "flat_vector",
        "Flat vector illustration of the {d} riding a bicycle along a canal, a few solid colours, "
        "crisp shapes, no gradients.",
    ),
    (
        COLOUR_STYLISED,
        "watercolour",
        "Watercolour painting of the {d} reading a letter at a cafe table by a window, soft washes "
        "bleeding at the edges, white paper showing through.",
    ),
    (
        COLOUR_STYLISED,
        "gouache",
        "Gouache painting of the {d} standing in a windy field of tall grass, opaque matte colour, "
        "visible brush strokes, rich saturated tones.",
    ),
)

COUNTS = {PHOTOREALISTIC: 7, BW_STYLISED: 6, COLOUR_STYLISED: 4}
TOTAL = sum(COUNTS.values())
assert TOTAL == 17 and len(_TEMPLATES) == TOTAL, "the actor set is 7 + 6 + 4 = 17 prompts"
assert all(sum(t[0] == c for t in _TEMPLATES) == n for c, n in COUNTS.items())


@dataclass(frozen=True)
class ActorPrompt:
    index: int  # 1-based position in the set, also in file names
    category: str  # PHOTOREALISTIC, BW_STYLISED or COLOUR_STYLISED
    style: str  # the template's key, e.g. "pen_ink"
    text: str

    def to_dict(self) -> dict:
        return asdict(self)


def actor_descriptor(actor_type: str, actor_sex: str | None = None) -> str:
    """The noun the prompts use: man/woman (person when a human has no sex given), or the
    type's noun for the other types (sex does not change those)."""
    kind = (actor_type or "").strip().lower()
    sex = actor_sex.strip().lower() if actor_sex else None
    if kind not in ACTOR_TYPES:
        raise UserError(f"unknown actor type {actor_type!r}; choose one of: {', '.join(ACTOR_TYPES)}")
    if sex is not None and sex not in SEXES:
        raise UserError(f"unknown sex {actor_sex!r}; choose male or female (or leave it out)")
    if kind == "human":
        return {"male": "man", "female": "woman", None: "person"}[sex]
    return _DESCRIPTORS[kind]


def actor_prompts(descriptor: str) -> list[ActorPrompt]:
    """All TOTAL prompts for one descriptor, in the fixed order photo, b/w, colour."""
    return [
        ActorPrompt(i + 1, cat, style, f"{text.format(d=descriptor)} {_KEEP}")
        for i, (cat, style, text) in enumerate(_TEMPLATES)
    ]
