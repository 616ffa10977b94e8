"""What a reward component may compare a clip against."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cinerl.core.schema import Scene, StoryBible


@dataclass
class ScoreContext:
    """Everything a component may compare a clip against. Every field is optional."""

    prompt: str = ""
    scene: Scene | None = None
    bible: StoryBible | None = None
    # character id -> uint8 RGB reference image (character on a plain neutral mid-grey backdrop)
    character_refs: dict[str, np.ndarray] = field(default_factory=dict)
    # uint8 RGB reference image of the scene's location
    location_ref: np.ndarray | None = None
    # uint8 RGB last frame of the previous scene's chosen clip
    previous_last_frame: np.ndarray | None = None
