"""What a prompt says, read with spaCy (planning/nlp.py): its people and animals, its places, its
time, weather and era, and its events (the clauses that become scene actions).

`read_prompt(prompt)` returns `PromptFacts`; the offline planner (planning/offline.py) builds the
bible from it and the LLM path (planning/agents.py) holds the model to it. Nothing here is
random: the same prompt always gives the same facts.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

import numpy as np

from cinerl.core.vocabulary import COLORS, SCENERY_TYPES
from cinerl.planning import lexicon as lx
from cinerl.planning.nlp import read

# what the planner copies from the prompt is capped, so a hostile prompt (1,000 'A's) still plans:
# a name is a few words, a place a short phrase, an event a clause a scene's action can hold
MAX_NAME_CHARS = 40
MAX_NAME_WORDS = 4
MAX_PLACE_CHARS = 60
MAX_PLACE_WORDS = 3  # the words before a place noun that name it
MAX_EVENT_CHARS = 200
MAX_GOAL_CHARS = 120


def clip(text: str, limit: int) -> str:
    """The text cut to at most `limit` characters, at a word boundary where there is one."""
    if len(text) <= limit:
        return text
    cut = text[: limit + 1]
    cut = cut.rsplit(" ", 1)[0] if " " in cut.strip() else cut[:limit]
    return cut[:limit].rstrip(" ,;:")


NUMBERS = {
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "deux": 2,
    "trois": 3,
    "quatre": 4,
    "2": 2,
    "3": 3,
    "4": 4,
    "5": 5,
    "6": 6,
    "pair": 2,
    "twin": 2,
}
ROLE_MODIFIERS = {
    "jewel",
    "art",
    "bank",
    "cat",
    "master",
    "head",
    "chief",
    "night",
    "street",
    "bounty",
    "space",
    "sea",
    "caravan",
    "ship",
    "tomb",
    "treasure",
    "police",
    "star",
    "lighthouse",
    "museum",
    "palace",
    "castle",
    "forest",
    "desert",
    "city",
    "harbour",
    "rival",
    "jazz",
    "former",
    "deep-sea",
    "fishing",
    "war",
    "bomb",
    "border",
    "stunt",
    "court",
    "hotel",
}
TRANSIENT = {
    "crowded",
    "busy",
    "empty",
    "quiet",
    "deserted",
    "bustling",
    "noisy",
    "packed",
    "dark",
    "abandoned",
    "flooded",
    "burning",
    "sleepy",
}
FEMALE_NAMES = {
    "mara",
    "elena",
    "ines",
    "noor",
    "ada",
    "lucia",
    "yara",
    "hanna",
    "sofia",
    "ruth",
    "lena",
    "anna",
    "maria",
    "emma",
    "olivia",
    "sophie",
    "chloe",
    "alice",
    "clara",
    "julia",
    "amara",
    "aisha",
    "fatima",
    "mei",
    "yuki",
    "priya",
    "leila",
    "nora",
    "ingrid",
    "astrid",
    "freya",
    "marie",
    "camille",
    "louise",
    "zoe",
    "ella",
    "mia",
    "lily",
    "grace",
    "rosa",
    "carmen",
    "eva",
    "ivy",
    "iris",
    "hazel",
    "maya",
    "sara",
    "sarah",
    "kate",
    "jane",
    "mary",
    "elsa",
}
MALE_NAMES = {
    "tomas",
    "ivo",
    "karim",
    "elias",
    "jonah",
    "marek",
    "theo",
    "rafael",
    "anton",
    "sami",
    "omar",
    "john",
    "james",
    "jack",
    "leo",
    "hugo",
    "lucas",
    "max",
    "felix",
    "oscar",
    "ali",
    "hassan",
    "kenji",
    "hiro",
    "raj",
    "arjun",
    "pierre",
    "jean",
    "louis",
    "paul",
    "marco",
    "luca",
    "diego",
    "pablo",
    "carlos",
    "sven",
    "erik",
    "lars",
    "olaf",
    "finn",
    "liam",
    "noah",
    "ben",
    "sam",
    "tom",
    "peter",
    "david",
    "daniel",
    "michael",
    "victor",
    "ivan",
    "boris",
    "yusuf",
    "malik",
}


@dataclass
class PersonFact:
    role: str
    noun: str
    pos: int
    name: str | None = None
    gender: str = ""
    age: tuple[int, int] = (25, 55)
    species: str | None = None
    group: bool = False
    tokens: set[int] = field(default_factory=set)  # the mention, for rewriting clauses
    head: int = -1
    # while reading: how many people a plural mention stands for ("two bakers": 2, "bakers": 0),
    # and the names in apposition to it ("two bakers, Lena and Omar"), each its own PersonFact
    count: int = field(default=1, repr=False, compare=False)
    named: list[PersonFact] = field(default_factory=list, repr=False, compare=False)


@dataclass
class PlaceFact:
    name: str
    phrase: str  # what MiniLM reads to choose the scenery type
    pos: int
    region: str | None = None
    entity: bool = False
    tokens: set[int] = field(default_factory=set)
    head: int = -1


@dataclass
class EventFact:
    text: str
    pos: int
    tokens: list[int]
    people: list[int] = field(default_factory=list)  # indices into PromptFacts.characters
    place: int | None = None
    time_of_day: str | None = None


@dataclass
class PromptFacts:
    lang: str
    detected: str
    characters: list[PersonFact]
    places: list[PlaceFact]
    events: list[EventFact]
    time_of_day: str | None = None
    weather: str | None = None
    season: str | None = None
    era: str | None = None
    goal: str | None = None
    warnings: list[str] = field(default_factory=list)
    doc: object = field(default=None, repr=False, compare=False)  # the spaCy Doc the facts point into
    drop: set[int] = field(default_factory=set)  # tokens a scene action leaves out

    def summary(self) -> dict:
        """The facts as plain data (what the LLM path is held to, what the benchmark compares)."""
        return {
            "language": self.lang,
            "characters": [
                {"role": c.role, "name": c.name, "gender": c.gender, "age": list(c.age), "species": c.species}
                for c in self.characters
            ],
            "places": [{"name": p.name, "region": p.region} for p in self.places],
            "events": [e.text for e in self.events],
            "time_of_day": self.time_of_day,
            "weather": self.weather,
            "era": self.era,
        }


def _key(tok) -> str:
    return tok.lemma_.lower() if tok.lemma_ else tok.text.lower()


def _person_kind(tok, lang: str):
    """('person' | 'animal' | 'group', info) when the token names someone, else None."""
    low, lem = tok.text.lower(), _key(tok)
    if lang == "fr":
        for w in (low, lem):
            if w in lx.FRENCH_PERSONS:
                role, g, age = lx.FRENCH_PERSONS[w]
                return ("group" if role == "team" else "person"), (role, g, age)
            if w in lx.ANIMALS:
                return "animal", lx.ANIMALS[w]
        return None
    if low in lx.NOT_PEOPLE or lem in lx.NOT_PEOPLE:
        return None
    if low in lx.GROUPS or lem in lx.GROUPS and tok.tag_ != "NNS":
        return "group", (low, "", (25, 50))
    for w in (low, lem):
        if w in lx.ANIMALS:
            return "animal", lx.ANIMALS[w]
        if w in lx.PERSONS:
            g, age = lx.PERSONS[w]
            return "person", (w, g, age)
    return None


def _is_place_word(tok) -> bool:
    low, lem = tok.text.lower(), _key(tok)
    if low in lx.FRENCH_PLACES or lem in lx.FRENCH_PLACES:
        return True
    if low in lx.PLACES_IF_LOCATIVE or lem in lx.PLACES_IF_LOCATIVE:
        return tok.dep_ in ("pobj", "obl", "obl:arg", "obl:mod", "nmod") and (
            tok.head.lower_ in lx.LOCATIVE_PREPS
            or any(c.dep_ == "case" and c.lower_ in {"à", "au", "dans", "sur", "vers"} for c in tok.children)
        )
    return low in lx.PLACES or lem in lx.PLACES


PLACE_ENTS = {"GPE", "LOC", "FAC"}


def read_prompt(prompt: str) -> PromptFacts:
    r = read(prompt)
    doc, lang = r.doc, r.lang
    ent_of: dict[int, object] = {}
    for e in doc.ents:
        for t in e:
            ent_of[t.i] = e
    place_ent = {i for i, e in ent_of.items() if e.label_ in PLACE_ENTS | {"NORP", "ORG", "LOC"}}

    # ---- people and animals -------------------------------------------------------------
    people: list[PersonFact] = []
    by_head: dict[int, PersonFact] = {}
    for tok in doc:
        if tok.i in place_ent or tok.pos_ not in ("NOUN", "PROPN"):
            continue
        kind = _person_kind(tok, lang)
        if kind is None:
            continue
        h = tok.head
        if tok.dep_ == "compound" and h.i != tok.i:
            verb_like = (
                h.dep_ in ("ROOT", "advcl", "conj", "ccomp", "relcl") and _person_kind(h, lang) is None
            )
            if not verb_like and h.pos_ in ("NOUN", "PROPN"):
                continue  # "dog walker", "police detective": a modifier, not someone
        if tok.dep_ in ("amod",) or (tok.dep_ == "nmod" and lang == "en"):
            continue
        what, info = kind
        mods = [c for c in tok.lefts if c.dep_ in ("compound", "amod") and c.lower_ in ROLE_MODIFIERS]
        mods = [c for c in mods if c.lower_ not in {"rival", "former", "jazz"}]
        adjs = {c.lower_ for c in tok.children if c.dep_ in ("amod", "compound", "nummod", "nmod")}
        mention = {c.i for c in tok.lefts if c.dep_ in ("det", "amod", "compound", "poss", "nummod", "case")}
        mention |= {t.i for c in tok.lefts if c.dep_ in ("poss", "amod") for t in c.subtree}
        mention.add(tok.i)
        if tok.dep_ == "compound":  # "while a detective watches": the article hangs on the verb
            mention |= {c.i for c in h.lefts if c.dep_ == "det"}
        plural = tok.tag_ in ("NNS", "NNPS") or "Number=Plur" in str(tok.morph)
        count = next((NUMBERS[c.lower_] for c in tok.lefts if c.lower_ in NUMBERS), 0)
        if what == "animal":
            species, age, g = info
            role = tok.lemma_.lower() if plural else tok.lower_
            p = PersonFact(
                role=role,
                noun=tok.lemma_.lower(),
                pos=tok.idx,
                gender=g,
                age=age,
                species=species,
                tokens=mention,
                head=tok.i,
            )
        elif what == "group":
            p = PersonFact(
                role=" ".join([*(m.lower_ for m in mods), tok.lower_]),
                noun=tok.lower_,
                pos=tok.idx,
                gender="group",
                age=info[2],
                group=True,
                tokens=mention,
                head=tok.i,
            )
        else:
            noun, g, age = info
            lemma = noun if lang == "fr" else tok.lemma_.lower()
            if lang == "en" and lemma not in lx.PERSONS:
                lemma = noun
            role = " ".join([*(m.lower_ for m in mods), lemma])
            p = PersonFact(role=role, noun=lemma, pos=tok.idx, gender=g, age=age, tokens=mention, head=tok.i)
            if lang == "fr":
                morph = str(tok.morph)
                if not p.gender:
                    p.gender = "woman" if "Gender=Fem" in morph else "man" if "Gender=Masc" in morph else ""
        # age words
        lo, hi = p.age
        if adjs & lx.OLD_WORDS and not p.species:
            lo, hi = max(lo, 62), max(hi, 80)
        elif adjs & lx.YOUNG_WORDS and not p.species:
            lo, hi = min(lo, 16), min(hi, 26)
            lo = max(lo, 5)
        m = re.search(r"(\d{1,3})[- ]year[- ]old", doc[min(mention) : tok.i + 1].text)
        if m:
            lo = hi = max(1, min(110, int(m.group(1))))
        p.age = (lo, max(lo, hi))
        if p.gender in ("girl", "boy") and p.age[0] >= 18:
            p.gender = "woman" if p.gender == "girl" else "man"
        # "two bakers": two people of that role (unless names follow in apposition)
        p.count = count if plural and count else (1 if not plural else 0)
        if plural and not count and what == "person":
            p.group, p.gender = True, "group"
            p.role = " ".join([*(mm.lower_ for mm in mods), tok.lower_])
        people.append(p)
        by_head[tok.i] = p

    # ---- names ------------------------------------------------------------------------------
    name_ents = [
        e for e in doc.ents if e.label_ == "PERSON" and not (set(range(e.start, e.end)) & set(by_head))
    ]
    taken = {
        i
        for e in doc.ents
        if e.label_ in PLACE_ENTS | {"ORG", "NORP", "DATE", "TIME"}
        for i in range(e.start, e.end)
    }
    for tok in doc:  # names the small model missed: a capitalised proper noun acting as someone
        if (
            tok.pos_ == "PROPN"
            and tok.text[:1].isupper()
            and tok.i not in ent_of
            and tok.i not in taken
            and tok.dep_ in ("nsubj", "conj", "appos", "dobj", "oprd", "attr", "ROOT", "npadvmod")
            and tok.i not in by_head
            and not _is_place_word(tok)
            and len(tok.text) > 2
            and tok.text.isalpha()
            and not any(c.dep_ == "det" for c in tok.children)
        ):
            name_ents.append(doc[tok.i : tok.i + 1])
    name_ents.sort(key=lambda e: e.start)
    for e in name_ents:
        root = e.root
        name = e.text.strip(" ,.").removesuffix("'s").removesuffix("’s").strip()
        title = next((c for c in root.children if c.dep_ == "compound" and _person_kind(c, lang)), None)
        if (
            title is None
            and e.start > 0
            and _person_kind(doc[e.start - 1], lang)
            and doc[e.start - 1].head.i == root.i
        ):
            title = doc[e.start - 1]
        if title is not None and title.lower_ in name.lower():
            name = name[len(title.text) :].strip()
        if not name or name.lower() in lx.PERSONS or _person_kind(root, lang):
            continue
        if len(name) > MAX_NAME_CHARS or len(name.split()) > MAX_NAME_WORDS:
            continue  # no one's name: a run of capitals, a shouted sentence
        owner = None
        anchor = root
        while anchor.dep_ == "conj" and anchor.head.i != anchor.i and anchor.head.i not in by_head:
            anchor = anchor.head
        if anchor.dep_ in ("appos", "compound", "flat", "conj") and anchor.head.i in by_head:
            owner = by_head[anchor.head.i]
        elif (
            anchor.dep_ in ("dobj", "oprd", "attr", "xcomp", "obj")
            and anchor.head.lower_ in ("named", "called", "nommé", "nommée", "appelé", "appelée")
            and anchor.head.head.i in by_head
        ):
            owner = by_head[anchor.head.head.i]
        else:
            owner = next((by_head[c.i] for c in root.children if c.dep_ == "appos" and c.i in by_head), None)
        mention = {t.i for t in e}
        if (
            owner is not None
            and owner.name is None
            and not owner.named
            and owner.count <= 1
            and not owner.group
        ):
            owner.name = name
            owner.tokens |= mention | {
                t.i
                for t in doc[min(e.start, min(owner.tokens)) : max(e.end, max(owner.tokens) + 1)]
                if t.dep_ == "punct" and t.text == ","
            }
            continue
        if owner is not None:  # "two rival bakers, Lena and Omar": each name gets the role
            p = PersonFact(
                role=owner.role,
                noun=owner.noun,
                pos=e.start_char,
                name=name,
                gender=owner.gender if owner.gender not in ("group",) else "",
                age=owner.age,
                species=owner.species,
                tokens=mention,
                head=root.i,
            )
            owner.named.append(p)
            continue
        if title is not None:  # "Captain Reyes"
            _, info = _person_kind(title, lang)
            mention.add(title.i)
            people.append(
                PersonFact(
                    role=info[0] if lang == "fr" else title.lemma_.lower(),
                    noun=title.lemma_.lower(),
                    pos=e.start_char,
                    name=name,
                    gender=info[1] if len(info) > 2 else "",
                    age=info[2] if len(info) > 2 else (25, 55),
                    tokens=mention,
                    head=root.i,
                )
            )
            continue
        people.append(PersonFact(role="", noun="", pos=e.start_char, name=name, tokens=mention, head=root.i))
    expanded: list[PersonFact] = []
    drop: set[int] = set()
    for p in sorted(people, key=lambda q: q.pos):
        named = p.named
        if named:
            # the plural noun's mention and its appositive names read as the names
            span = p.tokens | {i for q in named for i in q.tokens}
            lo_i, hi_i = min(span), max(span)
            # the clause reads "Lena and Omar race...": the noun and its commas go, the names stay
            drop |= p.tokens | {i for i in range(lo_i, hi_i + 2) if i < len(doc) and doc[i].text == ","}
            for k, q in enumerate(named):
                q.pos = p.pos + k
                expanded.append(q)
            continue
        if p.count > 1:
            for k in range(p.count):
                expanded.append(
                    PersonFact(
                        role=p.role,
                        noun=p.noun,
                        pos=p.pos + k,
                        gender=p.gender,
                        age=p.age,
                        species=p.species,
                        tokens=p.tokens if k == 0 else set(),
                        head=p.head if k == 0 else -1,
                    )
                )
            continue
        expanded.append(p)
    people = expanded[:6]

    # ---- gender from names and pronouns ------------------------------------------------------
    for p in people:
        if p.name and not p.gender:
            first = p.name.split()[0].lower()
            p.gender = "woman" if first in FEMALE_NAMES else "man" if first in MALE_NAMES else ""
    if lang == "en":
        heads = {p.head: p for p in people if p.head >= 0}
        for tok in doc:
            g = {
                "her": "woman",
                "hers": "woman",
                "she": "woman",
                "herself": "woman",
                "his": "man",
                "he": "man",
                "him": "man",
                "himself": "man",
            }.get(tok.lower_)
            if not g:
                continue
            inside = heads.get(tok.head.i) if tok.dep_ == "poss" else None
            before = [
                p
                for p in people
                if p.head >= 0 and p.head < tok.i and p is not inside and not p.group and not p.species
            ]
            if inside is not None:
                before = [p for p in before if p.head < inside.head]
            if not before:
                continue
            target = (
                next((p for p in reversed(before) if not p.gender), None)
                if tok.dep_ != "poss"
                else before[-1]
            )
            if target is not None and not target.gender:
                target.gender = g

    # ---- places -----------------------------------------------------------------------------
    places: list[PlaceFact] = []
    person_tokens = {p.head for p in people}
    cand: list = []
    for tok in doc:
        if tok.i in person_tokens or tok.i in ent_of and ent_of[tok.i].label_ == "PERSON":
            continue
        if not _is_place_word(tok) or tok.lower_ in lx.NOT_PEOPLE:
            continue
        if tok.dep_ in ("compound", "amod") and (
            tok.head.i in by_head or _is_place_word(tok.head) or _person_kind(tok.head, lang)
        ):
            continue  # "lighthouse keeper", "harbour town": part of the head
        if tok.dep_ == "compound" and tok.head.pos_ == "NOUN" and tok.head.i != tok.i:
            continue  # "city lights": a modifier
        cand.append(tok)
    skip: set[int] = set()
    used_ents: set = set()
    stops = {"DET", "ADP", "PRON", "NUM", "PUNCT", "VERB", "AUX", "CCONJ", "SCONJ", "PART", "ADV"}
    for tok in cand:
        # the words just before the noun name it ("a crowded Marrakech souk" -> Marrakech Souk)
        lefts, j = [], tok.i - 1
        while j >= 0 and doc[j].pos_ not in stops and doc[j].i not in person_tokens and j not in skip:
            if doc[j].dep_ in ("det", "poss", "nummod", "case") or _person_kind(doc[j], lang):
                break
            if len(lefts) == MAX_PLACE_WORDS or len(doc[j].text) > MAX_NAME_CHARS:
                break
            lefts.insert(0, doc[j])
            j -= 1
        ents_in, words = [], []
        for c in lefts:
            if c.i in ent_of and ent_of[c.i].label_ in PLACE_ENTS | {"NORP", "ORG"}:
                e = ent_of[c.i]
                if e not in ents_in:
                    ents_in.append(e)
                    used_ents.add(e)
                words.append(c.text)
                continue
            bad = c.lower_ in lx.WEATHER or c.lower_ in TRANSIENT or c.lower_ in COLORS
            if (
                bad
                or c.lower_ in lx.TIMES_OF_DAY
                or (c.i in ent_of and ent_of[c.i].label_ in ("DATE", "TIME"))
            ):
                continue
            words.append(c.text)
        # "the rooftops of the city": the city is part of the place
        tail = ""
        for c in tok.rights:
            if c.dep_ == "prep" and c.lower_ == "of":
                obj = next((g for g in c.children if g.dep_ == "pobj"), None)
                if obj is not None and (_is_place_word(obj) or obj.i in place_ent):
                    tail = " of " + clip(doc[obj.left_edge.i : obj.i + 1].text, MAX_PLACE_CHARS // 2)
                    for g in obj.subtree:
                        if g.i in ent_of:
                            used_ents.add(ent_of[g.i])
                    skip |= {g.i for g in obj.subtree}
        if lang == "fr":
            base = lx.FRENCH_PLACES.get(tok.lower_, lx.FRENCH_PLACES.get(_key(tok), "the " + tok.lower_))
            name = base.removeprefix("the ")
        else:
            name = " ".join([*words, tok.text])
        name = re.sub(r"\s+", " ", name + tail).strip()
        proper = " ".join(w if w[:1].isupper() else w.capitalize() for w in name.split())
        proper = re.sub(r"\bOf\b", "of", re.sub(r"\bThe\b", "the", proper))
        toks = {c.i for c in lefts} | {tok.i}
        kept = {w.lower() for w in words}
        common = " ".join(
            w.text.lower() for w in [*lefts, tok] if w.i not in ent_of and (w is tok or w.lower_ in kept)
        )
        region = clip(", ".join(e.text for e in ents_in if e.label_ in PLACE_ENTS | {"ORG"}), MAX_PLACE_CHARS)
        places.append(
            PlaceFact(
                name="the " + proper,
                phrase=(common or tok.text.lower()) + tail,
                pos=tok.idx,
                region=region,
                tokens=toks,
                head=tok.i,
            )
        )
    places = [p for p in places if p.head not in skip]
    # entity places not already inside a place noun
    ent_places: list[PlaceFact] = []
    for e in doc.ents:
        if e.label_ not in PLACE_ENTS or e in used_ents or len(e.text) > MAX_PLACE_CHARS:
            continue
        if set(range(e.start, e.end)) & ({i for p in places for i in p.tokens} | skip | person_tokens):
            continue
        prep = e.root.head if e.root.dep_ in ("pobj", "obl", "nmod") else None
        container = prep is not None and prep.lower_ in ("in", "of", "en", "à", "dans") and bool(places)
        if container:  # "a thief in 1920s New York ... a Harlem jazz club": the club is in New York
            for p in places:
                if e.text not in (p.region or ""):
                    p.region = clip(f"{p.region}, {e.text}" if p.region else e.text, MAX_PLACE_CHARS)
            continue
        ent_places.append(
            PlaceFact(
                name=e.text,
                phrase=f"the city of {e.text}" if e.label_ == "GPE" else e.text,
                pos=e.start_char,
                region=None,
                entity=True,
                tokens=set(range(e.start, e.end)),
                head=e.root.i,
            )
        )
    places = sorted(places + ent_places, key=lambda p: p.pos)
    seen: set[str] = set()
    unique = []
    for p in places:
        k = p.name.lower()
        if k not in seen:
            seen.add(k)
            unique.append(p)
    places = unique[:6]

    # ---- time, weather, era ----------------------------------------------------------------
    low = prompt.lower()
    time_of_day = None
    times = lx.FRENCH_TIMES if lang == "fr" else lx.TIMES_OF_DAY
    for tok in doc:
        if tok.lower_ in times and tok.i not in {i for p in places for i in p.tokens}:
            time_of_day = times[tok.lower_]
            break
    weather = None
    wtable = {**lx.WEATHER, **lx.FRENCH_WEATHER}
    wm = sorted(
        (
            (m.start(), wtable[m.group(1)])
            for m in re.finditer(
                r"\b(" + "|".join(sorted(map(re.escape, wtable), key=len, reverse=True)) + r")\b", low
            )
        ),
    )
    season = next((w for w in re.findall(r"[a-zéè]+", low) if w in lx.SEASONS), None)
    kinds: list[str] = []
    for _, w in wm:
        w = (
            f"{season} {w}"
            if season and w in ("storm", "snow", "rain", "wind") and season not in " ".join(kinds)
            else w
        )
        if w not in kinds and not any(w in k for k in kinds):
            kinds.append(w)
    weather = " and ".join(kinds[:2]) or None
    era = None
    for e in doc.ents:
        if e.label_ == "DATE" and re.search(r"\d{3,4}s?\b|centur|siècle", e.text, re.I):
            era = e.text if e.text[:1].isdigit() or e.text.lower().startswith("the") else e.text
            era = ("the " + era) if re.fullmatch(r"\d{3,4}s", era) else era
            break
    if era is None:
        m = re.search(r"\b(1\d{3}s?|20\d{2}s?|\d{1,2}(?:st|nd|rd|th) century)\b", prompt)
        if m:
            era = ("the " if m.group(1).endswith("s") or "century" in m.group(1) else "") + m.group(1)
    if era is None:
        era = next((lx.ERA_WORDS[w] for w in re.findall(r"[a-z-]+", low) if w in lx.ERA_WORDS), None)

    # ---- events -----------------------------------------------------------------------------
    facts = PromptFacts(
        lang=lang,
        detected=r.detected,
        characters=people,
        places=places,
        events=[],
        time_of_day=time_of_day,
        weather=weather,
        season=season,
        era=era,
        warnings=list(r.warnings),
        doc=doc,
        drop=drop,
    )
    facts.goal = _goal(doc)
    facts.events = _events(doc, facts, lang)
    return facts


SUBJ = ("nsubj", "nsubjpass", "nsubj:pass", "csubj")


def _is_purpose(v) -> bool:
    return v.dep_ in ("xcomp", "advcl", "acl") and any(
        c.dep_ in ("aux", "mark") and c.lower_ in ("to", "pour") for c in v.children
    )


def _goal(doc) -> str | None:
    for v in doc:
        if v.pos_ == "VERB" and _is_purpose(v) and v.lower_ != "be":
            return clip(_clean(doc[v.i : v.right_edge.i + 1].text), MAX_GOAL_CHARS)
    return None


def _clean(text: str) -> str:
    words = [w for w in text.split() if w.lower().strip(",.;:") not in COLORS]
    return " ".join(words).strip(" ,.;:")


def _events(doc, facts: PromptFacts, lang: str) -> list[EventFact]:
    heads: list = []
    for v in doc:
        if _is_purpose(v) or v.dep_ in ("amod", "aux", "auxpass"):
            continue
        has_subj = any(c.dep_ in SUBJ for c in v.children)
        if v.pos_ in ("VERB",) and (has_subj or (v.dep_ == "conj" and v.head in heads)):
            heads.append(v)
        elif (
            v.pos_ == "NOUN"
            and v.dep_ in ("advcl", "conj", "ROOT")
            and any(c.dep_ == "compound" and c.i in {p.head for p in facts.characters} for c in v.children)
        ):
            heads.append(v)  # "while a detective watches": the tagger took the verb for a noun
    if not heads and facts.characters and len(doc) > 3:
        root = next((t for t in doc if t.dep_ == "ROOT"), doc[0])
        heads = [root]
    heads.sort(key=lambda t: t.i)
    # "Sequence: ...": a header before a colon is no part of any clause
    colon = next((t.i for t in doc[:4] if t.text == ":"), None)
    header = set(range(colon + 1)) if colon is not None else set()
    heads = [h for h in heads if h.i not in header] or heads
    head_set = {h.i for h in heads}
    events: list[EventFact] = []
    for h in heads:
        toks = []
        stack = [h]
        while stack:
            t = stack.pop()
            toks.append(t.i)
            for c in t.children:
                if c.i in head_set and c.i != h.i:
                    continue
                if c.dep_ in ("cc",) and c.head.i == h.i and c.i > h.i:
                    continue
                stack.append(c)
        # the conjoined subject of a verb without its own ("repairs the boat and sails home")
        toks = sorted(set(toks))
        while toks and (
            doc[toks[0]].dep_ in ("cc", "mark", "punct")
            or doc[toks[0]].lower_ in ("and", "then", "while", "et", "puis")
        ):
            toks.pop(0)
        while toks and doc[toks[-1]].dep_ in ("punct", "cc"):
            toks.pop()
        if heads == [h] and h.dep_ == "ROOT" and not any(doc[i].dep_ in SUBJ for i in toks):
            toks = [t.i for t in doc if not t.is_punct or t.text in ",'-"]
            while (
                toks and doc[toks[0]].pos_ in ("NOUN", "PROPN") and len(toks) > 1 and doc[toks[1]].text == ":"
            ):
                toks = toks[2:]
        # a clause with no subject inherits the one of the clause it is joined to
        if not any(doc[i].dep_ in SUBJ for i in toks) and h.dep_ == "conj" and events:
            subj = [i for i in events[-1].tokens if doc[i].dep_ in SUBJ]
            if subj:
                s = doc[subj[0]]
                toks = sorted(set(toks) | {t.i for t in s.subtree})
        if len([i for i in toks if not doc[i].is_punct]) < 2:
            continue
        people = [k for k, p in enumerate(facts.characters) if p.tokens & set(toks) or p.head in toks]
        place = next((k for k, pl in enumerate(facts.places) if pl.tokens & set(toks)), None)
        tod = next((_tod(doc[i], lang) for i in toks if _tod(doc[i], lang)), None)
        toks = [i for i in toks if i not in header]
        if not toks:
            continue
        events.append(
            EventFact(
                text=clip(span_text(doc, toks), MAX_EVENT_CHARS),
                pos=doc[toks[0]].idx,
                tokens=toks,
                people=people,
                place=place,
                time_of_day=tod,
            )
        )
    # people of a sibling mention ("two bakers") share the clause
    for ev in events:
        for k, p in enumerate(facts.characters):
            if (
                k not in ev.people
                and p.head < 0
                and any(q.role == p.role and j in ev.people for j, q in enumerate(facts.characters))
            ):
                ev.people.append(k)
        ev.people.sort()
    return events


def _tod(tok, lang: str) -> str | None:
    table = lx.FRENCH_TIMES if lang == "fr" else lx.TIMES_OF_DAY
    return table.get(tok.lower_)


def span_text(doc, toks: list[int], replace: dict[int, str] | None = None) -> str:
    """The text of some tokens, with their own spacing; a token in `replace` gives its string
    instead (the first of a run of tokens mapped to one string gives it once)."""
    out, last = [], None
    for i in toks:
        t = doc[i]
        if replace and i in replace and replace[i] == "":
            out.append(t.whitespace_)
            continue
        if replace and t.pos_ == "DET" and i + 1 in replace and i not in replace:
            continue
        if replace and i in replace:
            if last is not None and last == replace[i] and i - 1 in replace:
                continue
            out.append(replace[i] + t.whitespace_)
            last = replace[i]
            continue
        last = None
        out.append(t.text_with_ws)
    text = "".join(out)
    text = re.sub(r"\s+([,;:.])", r"\1", text)
    text = re.sub(r"([,;:])(\s*[,;:])+", r"\1", text)
    return re.sub(r"\s+", " ", text).strip(" ,;:")


# --------------------------------------------------------------------------------------------
# scenery type: MiniLM similarity against the previz scenery vocabulary


TEMPLATE = "a scene in a {}"


@functools.lru_cache(maxsize=1)
def _scenery_matrix(path: str | None) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Each scenery word of the previz vocabulary embedded alone and in a short sentence."""
    from cinerl.models.embedder import load_embedder

    labels = [stype for stype, words in SCENERY_TYPES.items() for _ in (stype, *words)]
    words = [w for stype, ws in SCENERY_TYPES.items() for w in (stype, *ws)]
    # one batch for all of them (one encode call per word took seconds at every start)
    vecs = load_embedder(path).encode(
        words + [TEMPLATE.format(w) for w in words], normalize_embeddings=True, show_progress_bar=False
    )
    vecs = np.asarray(vecs, dtype=np.float32)
    return labels, vecs[: len(words)], vecs[len(words) :]


def scenery_scores(phrase: str, path: str | None = None) -> dict[str, float]:
    """Per scenery type, its best word's similarity to the phrase: bare word against bare phrase
    plus framed word against framed phrase (all-MiniLM-L6-v2, cosine)."""
    from cinerl.models.embedder import embed_text

    labels, bare, framed = _scenery_matrix(path)
    sims = bare @ embed_text(phrase.lower(), path) + framed @ embed_text(
        TEMPLATE.format(phrase.lower()), path
    )
    out: dict[str, float] = {}
    for lab, sim in zip(labels, sims):
        out[lab] = max(out.get(lab, -9.0), float(sim))
    return out


def scenery_type(phrase: str, path: str | None = None) -> str:
    """The scenery type nearest in meaning to the phrase (its misread nouns glossed first)."""
    words = [lx.PLACE_GLOSSES.get(w, w) for w in phrase.lower().split()]
    scores = scenery_scores(" ".join(words), path)
    return max(scores, key=scores.get)
