"""The six prompts of issue 23, planned with the spaCy reader: the table's right answer."""

from cinerl.planning.offline import plan_story


def _roles(bible):
    return [c.role for c in bible.characters]


def test_nurse_and_grandson_on_a_fjord():
    b = plan_story(
        "A retired nurse and her grandson repair a fishing boat on a foggy Norwegian fjord "
        "before the winter storm."
    )
    nurse, grandson = b.characters
    assert (nurse.role, nurse.gender) == ("nurse", "woman") and nurse.age >= 60
    assert (grandson.role, grandson.gender) == ("grandson", "man") and grandson.age <= 20
    assert [loc.name for loc in b.locations] == ["the Norwegian Fjord"]
    assert "fog" in b.weather and "storm" in b.weather


def test_bakers_lena_and_omar_in_the_marrakech_souk():
    b = plan_story(
        "Two rival bakers, Lena and Omar, race through a crowded Marrakech souk to deliver a wedding cake."
    )
    assert [(c.name, c.role) for c in b.characters] == [("Lena", "baker"), ("Omar", "baker")]
    assert [loc.name for loc in b.locations] == ["the Marrakech Souk"]
    assert b.scenes[0].action.startswith("Lena and Omar race through")


def test_a_dog():
    b = plan_story("a dog")
    assert len(b.characters) == 1 and b.characters[0].species == "dog"


def test_thief_and_detective_in_a_harlem_jazz_club_in_1920s_new_york():
    b = plan_story(
        "A jewel thief in 1920s New York steals a ruby from a Harlem jazz club while a detective watches."
    )
    assert _roles(b) == ["jewel thief", "detective"]
    (club,) = b.locations
    assert club.name == "the Harlem Jazz Club" and club.region == "Harlem, New York"
    assert club.scenery_type == "interior"
    assert b.era == "the 1920s"
    assert not {"New", "York", "Harlem"} & {c.name for c in b.characters}


def test_french_fisherman_and_daughter_at_a_port():
    b = plan_story("Un pêcheur et sa fille traversent une tempête pour rentrer au port.")
    assert [(c.role, c.gender) for c in b.characters] == [("fisherman", "man"), ("daughter", "woman")]
    assert [loc.scenery_type for loc in b.locations] == ["harbour"]
    assert b.weather == "storm"


def test_climber_and_team_with_three_events():
    b = plan_story("Sequence: a climber reaches the summit, a storm hits, and the team descends at night.")
    assert _roles(b) == ["climber", "team"]
    actions = [s.action for s in b.scenes]
    lead = b.characters[0].name
    assert f"{lead} reaches the summit" in actions and "A storm hits" in actions
    assert any(a.endswith("descends at night") for a in actions)
    assert len(set(actions)) == len(actions)
    night = next(s for s in b.scenes if s.action.endswith("descends at night"))
    assert night.time_of_day == "night"
