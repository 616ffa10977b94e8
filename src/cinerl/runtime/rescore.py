"""New reward weights on a resumed run: every stored take's total is recomputed from its stored
component scores (no clip is scored again) and each finished scene chooses again. The takes stay
as they were shot; only the choice, the film and the report follow the new weights."""

from __future__ import annotations

import logging

from cinerl.core.store import RunStore
from cinerl.rewards import combine

log = logging.getLogger(__name__)


def rescore(store: RunStore, weights: dict[str, float]) -> list[str]:
    """Re-total and re-choose; returns one line per scene whose chosen take changed."""
    changed = []
    by_scene: dict[int, list] = {}
    for rec, state in store.attempts():
        b = rec.reward
        rec.reward = combine(b.components, weights, list(b.groups), seconds=b.seconds)
        store.commit_attempt(rec, state)
        by_scene.setdefault(rec.scene, []).append(rec)
    for idx, row in store.scenes().items():
        recs = by_scene.get(idx, [])
        if not recs:
            continue
        chosen = max(recs, key=lambda r: (r.reward.total, -r.attempt)).attempt
        if chosen != row["chosen"]:
            store.commit_scene(idx, chosen, row["policy_version"], row["policy_path"], row["learn"])
            changed.append(f"scene {idx + 1}: take {row['chosen'] + 1} -> {chosen + 1}")
    return changed
