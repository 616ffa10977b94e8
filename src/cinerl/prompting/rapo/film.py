"""`cinerl make --prompt-opt rapo`: retrieval applied to each scene before the policy composes it.

The policy owns camera, light and motion (its action factors), and the bible owns the location,
so a retrieved modifier that names a camera move, a lighting phrase, a motion word or another
kind of place is left out; what remains (what people do there, what the place feels like) is
appended to the scene's action. The result is computed once per run and stored as an artifact,
so a resumed run composes the same prompts even if the graph has grown since.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

from cinerl.core.media import atomic_write_text
from cinerl.core.vocabulary import find_scenery_type
from cinerl.core.schema import Scene, StoryBible

log = logging.getLogger(__name__)

ARTIFACT = ("prompt_opt", "rapo")
MAX_ADDED = 3  # two verbs and a scene at most: the composer's sentence must stay readable

# Words that steer what the policy or the bible decides: camera moves, the lighting presets, motion
# and time of day (previz parses the same words; so does a real model).
_POLICY_WORDS = re.compile(
    r"\b(static|pan|pans|panning|tilt|tilting|dolly|zoom|zooming|hand-?held|shaky|tracking|tripod|"
    r"crane|steadicam|golden hour|daylight|overcast|low[- ]key|candle\w*|neon|frantic|erratic|"
    r"dynamic|energetic|gentle|motionless|minimal motion|slow motion|dawn|sunrise|morning|noon|"
    r"midday|dusk|evening|twilight|sunset|night|midnight)\b",
    re.IGNORECASE,
)


def conflicts(modifier: str, scenery_type: str) -> bool:
    """True when the modifier names a policy choice or a scenery type other than the scene's."""
    if _POLICY_WORDS.search(modifier):
        return True
    other = find_scenery_type(modifier)
    return other is not None and other != scenery_type


def scene_query(scene: Scene, bible: StoryBible) -> str:
    loc = bible.location(scene.location_id)
    return f"{scene.action.rstrip('.')} in a {loc.scenery_type}"


def optimise_scenes(bible: StoryBible, retriever) -> list[dict]:
    """For each scene: the query, every retrieved modifier, and the ones appended to the action."""
    out = []
    queries = [scene_query(s, bible) for s in bible.scenes]
    for scene, query, r in zip(bible.scenes, queries, retriever.retrieve_many(queries)):
        stype = bible.location(scene.location_id).scenery_type
        usable = [m for m in r.kept if m.kind != "place" and not conflicts(m.text, stype)]
        verbs = [m for m in usable if m.kind == "verb"][:2]
        scenes = [m for m in usable if m.kind == "scene"][: MAX_ADDED - len(verbs)]
        added = [m.text for m in verbs + scenes]
        action = scene.action.rstrip(". ")
        new_action = ", ".join([action, *added]) if added else scene.action
        out.append(
            {
                "scene": scene.index,
                "query": query,
                "action_before": scene.action,
                "action_after": new_action,
                "added": added,
                "retrieved": [m.model_dump() for m in r.kept],
                "left_out": [m.text for m in r.kept if m.text not in added],
            }
        )
    return out


def prompt_scenes(bible: StoryBible, settings, out_dir: Path, store) -> tuple[dict[int, Scene], dict]:
    """The scenes the composer should see, and the report section saying what retrieval added.
    Empty when `settings.plan.prompt_opt` is not "rapo"."""
    if settings.plan.prompt_opt != "rapo":
        return {}, {}

    def make() -> dict:
        from cinerl.prompting.rapo.graph import load_graph
        from cinerl.prompting.rapo.retrieval import Retriever

        rapo_dir = Path(settings.plan.rapo_dir).expanduser() if settings.plan.rapo_dir else None
        graph = load_graph(rapo_dir=rapo_dir)
        return {"method": "rapo", "graph": graph.stats(), "scenes": optimise_scenes(bible, Retriever(graph))}

    rows = store.cached(
        *ARTIFACT,
        make=make,
        write=lambda saved: atomic_write_text(
            Path(out_dir) / "story" / "rapo.json", json.dumps(saved, indent=2)
        ),
        read=lambda path: json.loads(path.read_text(encoding="utf-8")),
    )["scenes"]
    scenes = {s.index: s for s in bible.scenes}
    changed = {
        r["scene"]: scenes[r["scene"]].model_copy(update={"action": r["action_after"]})
        for r in rows
        if r["added"] and r["scene"] in scenes
    }
    report = {
        "method": "rapo",
        "artifact": "story/rapo.json",
        "scenes": [{k: r[k] for k in ("scene", "query", "added", "left_out")} for r in rows],
    }
    return changed, report
