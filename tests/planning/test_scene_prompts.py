"""The rules between a model's prompt and the backend, without a model: `keep_facts` puts back
what the bible fixes, `compose_onto` puts the policy's choices on a base prompt."""

from cinerl.generation.previz.parse import parse_prompt
from cinerl.planning.agents import keep_facts, offline_prompt
from cinerl.planning.offline import plan_story
from cinerl.planning.prompt_audit import audit, character_locked, location_locked
from cinerl.prompting.composer import compose_onto

BIBLE = plan_story(
    "A retired lighthouse keeper and her son sail from the stormy coast to the harbour town.", scenes=2
)
ACTION = {
    "shot_size": "wide",
    "camera_move": "pan",
    "lighting": "golden hour",
    "identity_lock": "none",
    "location_lock": "none",
    "motion": "dynamic",
    "negative_preset": "basic",
}


def test_keep_facts_puts_back_locks_and_action_and_drops_stray_colours():
    sc = BIBLE.scenes[1]
    text = "Waves roll in under an indigo sky while the gulls circle the masts."
    kept = keep_facts(text, sc, BIBLE, "i2v")
    assert "indigo" not in kept and kept.startswith(sc.action.rstrip("."))  # motion first
    assert all(character_locked(kept, BIBLE.character(c)) for c in sc.character_ids)
    assert location_locked(kept, BIBLE.location(sc.location_id))
    assert "Waves roll in under an sky" in kept
    assert not [p for p in audit(kept, sc, BIBLE, "i2v") if "lock" in p or "colour" in p or "action" in p]
    good = offline_prompt(BIBLE.scenes[0], BIBLE, "t2v").text("t2v")
    assert keep_facts(good, BIBLE.scenes[0], BIBLE, "t2v") == good  # nothing to put back


def test_policy_choices_lead_a_base_prompt_and_replace_its_camera_and_light():
    sc = BIBLE.scenes[0]
    base = offline_prompt(sc, BIBLE, "t2v").text("t2v")
    prompt, negative = compose_onto(base, sc, BIBLE, ACTION)
    lead = f"Wide shot, slow pan, dynamic motion. {sc.time_of_day.capitalize()}, warm golden hour light."
    assert prompt.startswith(lead)
    assert negative == "blurry, low quality"
    assert "Medium shot, slow dolly in." not in prompt and "soft even daylight" not in prompt
    for sentence in base.split(". "):  # the subject, the locks and the action stay
        if any(BIBLE.character(c).name in sentence for c in sc.character_ids):
            assert sentence.rstrip(".") in prompt
    spec = parse_prompt(prompt, negative)  # what previz renders is the policy's choice
    assert (spec.shot_size, spec.camera_move, spec.lighting, spec.motion) == (
        "wide",
        "pan",
        "golden hour",
        "dynamic",
    )
    assert [f.name for f in spec.figures] == [BIBLE.character(c).name for c in sc.character_ids]
