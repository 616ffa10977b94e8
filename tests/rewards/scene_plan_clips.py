"""Scenes and previz takes for the scene-plan reward tests (test_scene_light, _motion, _cast):
small bibles of one scene each, and takes rendered through the previz backend at test size."""

from __future__ import annotations

from cinerl.core.schema import Character, ClipRequest, Location, NamedColor, Scene, StoryBible
from cinerl.core.vocabulary import COLORS
from cinerl.generation.registry import get_image_backend, get_video_backend
from cinerl.prompting.composer import compose, reference_prompt_location
from cinerl.rewards import ScoreContext
from cinerl.rewards.core.analysis import ClipAnalysis

W, H, FRAMES, FPS = 96, 64, 8, 8
BASE = {
    "shot_size": "wide",
    "camera_move": "static",
    "lighting": "soft daylight",
    "identity_lock": "full",
    "location_lock": "full",
    "motion": "gentle",
    "negative_preset": "full",
}


def nc(name: str) -> NamedColor:
    return NamedColor(name=name, rgb=COLORS[name])


def person(cid: str, name: str, gender: str, wardrobe: list[str], hair: str) -> Character:
    return Character(
        id=cid,
        name=name,
        gender=gender,
        age=30,
        wardrobe=[nc(w) for w in wardrobe],
        garments=["coat", "trousers"][: len(wardrobe)],
        hair=nc(hair),
    )


CAST = [
    person("ana", "Ana", "woman", ["crimson", "charcoal"], "black"),
    person("ben", "Ben", "man", ["mustard", "navy"], "chestnut"),
    person("cy", "Cy", "man", ["emerald", "khaki"], "grey"),
    person("di", "Di", "woman", ["rose", "ivory"], "blonde"),
]
LOCATIONS = {
    "city": Location(
        id="street",
        name="Canal Street",
        scenery_type="city",
        palette=[nc("slate grey"), nc("charcoal"), nc("steel blue")],
    ),
    "chapel": Location(
        id="chapel",
        name="the Old Chapel",
        scenery_type="interior",
        palette=[nc("walnut"), nc("cream"), nc("burgundy")],
        visual_description="stone walls and rows of candles",
    ),
    "neon street": Location(
        id="neon_street",
        name="the Neon Streets of Tokyo",
        scenery_type="city",
        palette=[nc("steel blue"), nc("ash grey"), nc("amber")],
        visual_description="wet asphalt, shop fronts and lamp posts",
    ),
    "meadow": Location(
        id="field",
        name="the Long Field",
        scenery_type="meadow",
        palette=[nc("sand"), nc("terracotta"), nc("sage")],
    ),
}


def bible(
    location: str = "meadow",
    cast: int = 1,
    action: str = "Ana walks across the field",
    time_of_day: str = "day",
    weather: str | None = None,
    era: str | None = None,
) -> StoryBible:
    loc = LOCATIONS[location]
    chars = CAST[:cast]
    scene = Scene(
        index=0,
        title="a scene",
        beat="beginning",
        duration_s=4,
        character_ids=[c.id for c in chars],
        location_id=loc.id,
        action=action,
        time_of_day=time_of_day,
        weather=weather,
    )
    return StoryBible(
        seed_prompt="test",
        title="test",
        logline="test",
        characters=chars,
        locations=[loc],
        scenes=[scene],
        era=era,
    )


def take(b: StoryBible, seed: int = 0, **action: str) -> tuple[ClipAnalysis, ScoreContext]:
    """The scene of `b` shot on previz with BASE updated by `action`, and its scoring context
    (with the location reference image, as `cinerl make` gives it)."""
    scene = b.scenes[0]
    prompt, negative = compose(scene, b, {**BASE, **action})
    req = ClipRequest(
        prompt=prompt, negative_prompt=negative, width=W, height=H, num_frames=FRAMES, fps=FPS, seed=seed
    )
    clip = get_video_backend("previz").generate(req)
    ref = get_image_backend("previz").generate_image(
        reference_prompt_location(b.location(scene.location_id)), W, H, 0
    )
    return ClipAnalysis(clip), ScoreContext(scene=scene, bible=b, location_ref=ref)
