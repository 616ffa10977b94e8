"""Which changed settings a resumed run can take, and what each one redoes.

The store keeps the settings view the run started with (`runs.settings`, made by
`Settings.film_fingerprint_view`: 0.1 flat names, plus newer dotted fields that differ from their
defaults), so a resume compares view to view, setting by setting, never hash to hash:

- settings that change frames: refused, naming each one with both values ("run.seed: 1 -> 2");
- settings that change only later stages (`LATER`), each with what it redoes:
  the transition and crossfade re-stitch and re-report; reward weights re-score every stored
  take from its stored components, re-choose, re-stitch; the attempt rule (attempts,
  max_attempts, threshold) applies to the scenes not finished yet (finished scenes keep their
  takes: re-opening them would change the policy update, and so every later scene's frames);
- settings that change nothing (every field the settings mark frames=False: LLM timeout and
  retries, reward device, workers and threads, the policy file...; a backend's frame-neutral
  settings): accepted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cinerl.core.settings import LEGACY, Settings, frame_neutral_fields

LATER = {
    "assembly.transition": "restitch",
    "assembly.crossfade_frames": "restitch",
    "run.attempts": "attempts",
    "run.max_attempts": "attempts",
    "run.consistency_threshold": "attempts",
}
MISSING = object()


@dataclass
class Changes:
    refuse: list[str] = field(default_factory=list)  # "run.seed: 1 -> 2"
    redo: dict[str, list[str]] = field(default_factory=dict)  # "restitch" -> ["assembly.transition: ..."]
    accepted: list[str] = field(default_factory=list)

    @property
    def any(self) -> bool:
        return bool(self.refuse or self.redo or self.accepted)


def _dotted(key: str) -> str:
    return LEGACY.get(key, key)


def _normalise(view: dict) -> dict:
    """A view with every key dotted; a newer field's absence means its default."""
    out: dict = {}
    for key, value in view.items():
        if key == "rewards.weights" and isinstance(value, dict):  # extra groups, one key each
            for g, w in value.items():
                out[f"rewards.weights.{g}"] = w
        else:
            out[_dotted(key)] = value
    return out


def _default(dotted: str):
    try:
        value = Settings().get(dotted)
    except (AttributeError, KeyError):
        return MISSING
    return value


def kind_of(dotted: str, neutral: set[str]) -> str:
    if dotted in neutral:
        return "nothing"
    if dotted.startswith("rewards.weights."):
        return "rescore"
    return LATER.get(dotted, "frames")


def compare(stored: dict, current: dict, backend_neutral: tuple[str, ...] = ()) -> Changes:
    """What differs between the run's stored settings view and this command's, by kind."""
    old, new = _normalise(stored), _normalise(current)
    neutral = set(backend_neutral) | set(frame_neutral_fields())
    changes = Changes()
    for key in sorted(set(old) | set(new)):
        a = old.get(key, _default(key))
        b = new.get(key, _default(key))
        if a == b:
            continue
        line = f"{key}: {'unset' if a is MISSING else a} -> {'unset' if b is MISSING else b}"
        kind = kind_of(key, neutral)
        if kind == "frames":
            changes.refuse.append(line)
        elif kind == "nothing":
            changes.accepted.append(line)
        else:
            changes.redo.setdefault(kind, []).append(line)
    return changes
