"""The 17 actor prompts: counts, descriptors, and that each one asks for the style it is."""

import pytest

from cinerl.training.character.dataset.previz_portrait import scene_for_prompt
from cinerl.training.character.dataset.stylise import BW_STYLES, COLOUR_STYLES, PHOTO, style_for_prompt
from cinerl.core.errors import UserError
from cinerl.training.character.dataset.prompts import (
    ACTOR_TYPES,
    BW_STYLISED,
    COLOUR_STYLISED,
    COUNTS,
    PHOTOREALISTIC,
    TOTAL,
    actor_descriptor,
    actor_prompts,
)

EXPECTED = {
    ("human", "male"): "man",
    ("human", "female"): "woman",
    ("human", None): "person",
    ("creature", None): "creature",
    ("creature", "female"): "creature",
    ("robotic", None): "robotic character",
    ("anthropomorphic", "male"): "anthropomorphic character",
    ("mythical", None): "mythical character",
}


@pytest.mark.parametrize("kind,sex", sorted(EXPECTED, key=str))
def test_seventeen_prompts_for_every_type_and_sex(kind, sex):
    d = actor_descriptor(kind, sex)
    assert d == EXPECTED[(kind, sex)]
    prompts = actor_prompts(d)
    assert TOTAL == 17 and len(prompts) == 17
    assert [p.index for p in prompts] == list(range(1, 18))
    cats = [p.category for p in prompts]
    assert cats == [PHOTOREALISTIC] * 7 + [BW_STYLISED] * 6 + [COLOUR_STYLISED] * 4
    assert COUNTS == {PHOTOREALISTIC: 7, BW_STYLISED: 6, COLOUR_STYLISED: 4}
    assert len({p.style for p in prompts}) == 17 and len({p.text for p in prompts}) == 17
    for p in prompts:
        assert f"the {d}" in p.text.lower() and "{" not in p.text


def test_each_prompt_names_its_style_and_setting():
    prompts = actor_prompts("woman")
    styles = [style_for_prompt(p.text) for p in prompts]
    assert styles[:7] == [PHOTO] * 7
    assert tuple(styles[7:13]) == BW_STYLES and tuple(styles[13:]) == COLOUR_STYLES
    assert [p.style for p in prompts[7:]] == styles[7:]
    assert [scene_for_prompt(p.text) for p in prompts[:7]] == [
        "night_street",
        "studio",
        "window",
        "subway",
        "garage",
        "rooftop_silhouette",
        "alley",
    ]


def test_the_seven_photorealistic_settings_of_the_issue():
    texts = [p.text.lower() for p in actor_prompts("man")[:7]]
    for text, words in zip(
        texts,
        [
            "rain-slick street at night",
            "into the lens",
            "window light",
            "subway platform",
            "parking garage",
            "silhouette",
            "phone call",
        ],
    ):
        assert words in text
    bw = " ".join(p.text.lower() for p in actor_prompts("man")[7:13])
    for words in ("pen and ink", "graphite", "charcoal", "woodcut", "monochrome vector", "screentone"):
        assert words in bw
    colour = " ".join(p.text.lower() for p in actor_prompts("man")[13:])
    for words in ("comic book", "flat vector", "watercolour", "gouache"):
        assert words in colour


def test_unknown_type_and_sex_are_user_errors():
    with pytest.raises(UserError, match="unknown actor type 'alien'.*human, creature"):
        actor_descriptor("alien")
    with pytest.raises(UserError, match="unknown sex 'x'"):
        actor_descriptor("human", "x")
    assert set(ACTOR_TYPES) == {"human", "creature", "robotic", "anthropomorphic", "mythical"}
