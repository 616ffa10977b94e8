"""The LLM path is held to what the prompt says of its people (issue 23): the model's cast keeps
the gender, age range, role noun, name and species that the offline analysis reads."""

from cinerl.llm.providers.openai import OpenAIProvider
from cinerl.planning.agents import DirectorAgent, keep_cast_facts
from cinerl.planning.drafts import CastDraft
from cinerl.planning.prompt_facts import read_prompt
from tests.llm.llm_servers import FaultServer

ASTRONAUT = "A retired astronaut teaches her grandson to fly a kite on the windy beach."


def person(name, role, age, gender):
    return {
        "name": name,
        "role": role,
        "age": age,
        "gender": gender,
        "wardrobe_colors": ["crimson", "navy", "mustard"],
        "garments": ["coat", "trousers", "boots"],
        "hair": "black",
        "look": "steady gaze",
    }


def draft(*people) -> CastDraft:
    return CastDraft.model_validate(
        {
            "title": "The Kite",
            "logline": "A lesson on the beach.",
            "characters": list(people),
            "locations": [
                {"name": "the Beach", "scenery_type": "sea", "palette": ["teal", "sand"], "look": "dunes"}
            ],
        }
    )


def test_a_model_written_cast_keeps_the_prompts_gender_age_and_role():
    # what a small model wrote: the astronaut a young man, the grandson a retired woman
    cast = draft(person("Jack", "astronaut", 25, "man"), person("Ruth", "pilot", 70, "woman"))
    held, animals = keep_cast_facts(cast, read_prompt(ASTRONAUT))
    astro, grandson = held.characters
    assert (astro.gender, astro.role, astro.name) == ("woman", "astronaut", "Jack")
    assert 62 <= astro.age <= 80  # "retired"
    assert grandson.gender == "man" and grandson.role == "grandson" and grandson.age <= 20
    assert animals == {} and astro.wardrobe_colors == ["crimson", "navy", "mustard"]  # looks stay


def test_a_cast_that_agrees_with_the_prompt_comes_back_unchanged():
    cast = draft(person("Ruth", "retired astronaut", 68, "woman"), person("Leo", "her grandson", 10, "boy"))
    held, _ = keep_cast_facts(cast, read_prompt(ASTRONAUT))
    assert held == cast


def test_names_and_animals_from_the_prompt():
    facts = read_prompt("Captain Reyes and her old dog Biscuit guard the lighthouse.")
    cast = draft(person("Biscuit", "companion", 30, "man"), person("Ana", "captain", 40, "woman"))
    held, animals = keep_cast_facts(cast, facts)
    names = [c.name for c in held.characters]
    assert "Reyes" in names and "Biscuit" in names
    assert animals["Biscuit"]["species"] == "dog" and animals["Biscuit"]["gender"] in ("female", "male")


def test_the_director_holds_a_real_endpoints_cast_to_the_prompt():
    # FaultServer answers the smallest valid JSON (age 1, the first gender, a one-letter role):
    # a real HTTP round trip through the OpenAI provider, no stand-in provider
    with FaultServer() as srv:
        provider = OpenAIProvider(model="fault-model", base_url=srv.url, api_key="sk-test", retries=0)
        bible, meta = DirectorAgent(provider, repairs=0).plan(ASTRONAUT, scenes=1)
    assert not meta[0]["fell_back"]
    astro = bible.characters[0]
    assert astro.role == "astronaut" and astro.gender == "woman" and astro.age >= 62
