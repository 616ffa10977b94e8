from cinerl.planning.offline import plan_story
from cinerl.prompting.composer import compose, reference_prompt_character
from cinerl.core.vocabulary import ACTION_FACTORS, NEGATIVE_PRESETS, find_colors, find_scenery_type

BIBLE = plan_story(
    "A retired lighthouse keeper and her estranged son sail from the stormy coast to the old harbour town.",
    seed=0,
    scenes=3,
)


def action(**kw):
    base = {f: v[0] for f, v in ACTION_FACTORS.items()}
    base.update(kw)
    return base


def test_identity_lock_levels_spell_out_more_of_the_look():
    scene = BIBLE.scenes[0]
    ch = BIBLE.character(scene.character_ids[0])
    none, _ = compose(scene, BIBLE, action(identity_lock="none"))
    name, _ = compose(scene, BIBLE, action(identity_lock="name"))
    full, _ = compose(scene, BIBLE, action(identity_lock="full"))
    wardrobe = {c.name for c in ch.wardrobe}
    assert "A person is in the scene." in none
    assert f"{ch.name}, a {ch.gender}" in name and not wardrobe & set(find_colors(name))
    assert wardrobe <= set(find_colors(full)) and f"{ch.age}-year-old" in full


def test_location_lock_levels():
    scene = BIBLE.scenes[-1]
    loc = BIBLE.location(scene.location_id)
    none, _ = compose(scene, BIBLE, action(location_lock="none", identity_lock="none"))
    full, _ = compose(scene, BIBLE, action(location_lock="full", identity_lock="none"))
    assert loc.name not in none.split(".")[1]
    assert [c.name for c in loc.palette] == find_colors(full)
    assert find_scenery_type(full) == loc.scenery_type


def test_every_factor_changes_the_text_and_negative_preset_is_the_negative_prompt():
    scene = BIBLE.scenes[1]
    base, _ = compose(scene, BIBLE, action())
    for factor, values in ACTION_FACTORS.items():
        if factor == "negative_preset":
            continue
        texts = {compose(scene, BIBLE, action(**{factor: v}))[0] for v in values}
        assert len(texts) == len(values), factor
    for preset, text in NEGATIVE_PRESETS.items():
        assert compose(scene, BIBLE, action(negative_preset=preset))[1] == text


def test_reference_prompt_is_a_full_lock_on_a_studio_backdrop():
    ch = BIBLE.characters[0]
    text = reference_prompt_character(ch)
    assert "studio backdrop" in text and {c.name for c in ch.wardrobe} <= set(find_colors(text))


def test_an_animal_is_written_with_its_species_noun_and_coat_colours():
    bible = plan_story("A girl and her dog explore a haunted castle at midnight.", seed=0, scenes=2)
    scene = next(s for s in bible.scenes if any(bible.character(c).species for c in s.character_ids))
    dog = next(bible.character(c) for c in scene.character_ids if bible.character(c).species)
    full, _ = compose(scene, bible, action(identity_lock="full"))
    brief, _ = compose(scene, bible, action(identity_lock="brief"))
    none, _ = compose(scene, bible, action(identity_lock="none"))
    coat, collar = (f"{'an' if c.name[0] in 'aeiou' else 'a'} {c.name}" for c in dog.wardrobe[:2])
    assert f"{dog.age}-year-old {dog.gender} dog with {coat} coat, {collar} collar" in full
    assert f"{dog.name}, a dog with {coat} coat." in brief
    assert "A dog is in the scene." in none or "Another dog is in the scene." in none
    assert "-year-old male," not in full and "-year-old female," not in full  # never a noun-less figure
