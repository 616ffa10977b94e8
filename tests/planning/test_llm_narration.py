"""With --llm the DirectorAgent writes each scene's narration line in the scene draft, checked
like the other fields: it fits the scene at a normal speaking pace and names nobody the cast
lacks; a draft that breaks a rule is sent back with the problem, and a line that still breaks
one after the last repair is replaced by code with the offline planner's line for the model's
own action (the model's scenes are kept). Real HTTP round trips to the fault server
(tests/llm/llm_servers.py)."""

from __future__ import annotations

from cinerl.llm.providers.openai import OpenAIProvider
from cinerl.planning.agents import DirectorAgent
from cinerl.planning.drafts import narration_budget
from cinerl.planning.offline import narration_line
from tests.llm.llm_servers import FaultServer, instance

PROMPT = "A fisherman and his daughter search the stormy harbour for a lost boat at night."
GOOD = "Mara searches the dark harbour for the boat."
LONG = " ".join(["Mara walks slowly along the long grey pier and looks out over the water"] * 3)
STRANGER = "Mara and Zoltan search the harbour."


def scripted(lines: list[str]):
    """Answers the scenes draft with the next narration of ``lines`` (its last one after that),
    every other request with the schema's smallest instance."""
    left = list(lines)

    def answer(schema: dict, body: dict) -> dict:
        value = instance(schema)
        if "scenes" in value:
            text = left.pop(0) if len(left) > 1 else left[0]
            for sc in value["scenes"]:
                sc["narration"] = text
        return value

    return answer


def plan(lines: list[str], repairs: int = 2):
    with FaultServer(answer=scripted(lines)) as srv:
        provider = OpenAIProvider(model="fault-model", base_url=srv.url, api_key="sk-test", retries=0)
        bible, meta = DirectorAgent(provider, repairs=repairs).plan(PROMPT, scenes=2)
    return bible, meta, srv.requests


def test_the_model_writes_the_narration_and_it_reaches_the_bible():
    bible, meta, requests = plan([GOOD])
    assert not meta[1]["fell_back"] and meta[1]["repairs"] == 0
    assert [sc.narration for sc in bible.scenes] == [GOOD, GOOD]
    asked = requests[-1]["body"]["messages"][-1]["content"]
    assert "narrator's line" in asked and f"at most {narration_budget(10)} words" in asked


def test_a_line_too_long_for_its_scene_or_naming_a_stranger_is_sent_back():
    bible, meta, requests = plan([LONG, STRANGER, GOOD])
    assert meta[1]["repairs"] == 2 and not meta[1]["fell_back"]
    first, second = (r["body"]["messages"][-1]["content"] for r in requests[-2:])
    words = len(LONG.split())
    assert f"scene 1's narration has {words} words; at most {narration_budget(10)} fit its 10 s" in first
    assert "names Zoltan, who is not in the cast (Mara)" in second
    assert all(sc.narration == GOOD for sc in bible.scenes)


def test_a_line_that_never_fits_is_replaced_by_the_offline_line_of_the_models_action():
    bible, meta, requests = plan([LONG], repairs=1)
    assert not meta[1]["fell_back"] and meta[1]["repairs"] == 1 and "fixed by code" in meta[1]["warning"]
    assert len(requests) == 3  # the cast, the scenes, one repair of the scenes
    for sc in bible.scenes:
        assert sc.action == "Mara"  # the model's scene (the fault server's smallest answer) is kept
        assert sc.narration == narration_line(sc.beat, sc.action, sc.duration_s)
        assert len(sc.narration.split()) <= narration_budget(sc.duration_s)
