"""Learning into the shared policy file (~/.cinerl/policy/<backend>.pt or --policy) without losing
another run's update.

Several runs may learn into one file at once. Each update is done under the file's lock
(core/locks.locked_file) and merged, not refused: if the file is still what this run last read or
wrote (same sha256), this run's policy is written; if another run changed it meanwhile, the file
is re-read and this scene's update (its batch of attempts) is applied to it, so the file holds
both runs' updates. Merging was chosen over refusing because refusing would throw away a whole
scene's learning for a race the user did nothing about. The run's own snapshots
(policy/after_scene_NN.pt) are never merged: a run stays reproducible from its folder.
"""

from __future__ import annotations

import logging
from pathlib import Path

from cinerl.core.locks import locked_file
from cinerl.core.store import sha256_file
from cinerl.training.policy.net import PromptPolicy, Transition

log = logging.getLogger(__name__)


class SharedPolicy:
    def __init__(self, path: Path, make_policy):
        self.path = Path(path)
        self.make_policy = make_policy  # () -> a fresh PromptPolicy of this run's settings
        self.seen = self._sha()
        self.merged = False  # once merged, the file is no longer this run's policy: merge always

    def _sha(self) -> str | None:
        return sha256_file(self.path) if self.path.is_file() else None

    def publish(self, own: PromptPolicy, batch: list[Transition]) -> None:
        """Write this run's update into the shared file, merging with any other run's."""
        with locked_file(self.path):
            now = self._sha()
            if not self.merged and (now == self.seen or now is None):
                own.save(self.path)
            else:
                if not self.merged:
                    log.warning(
                        "%s was changed by another run: merging this run's updates into it", self.path
                    )
                self.merged = True
                merged = self.make_policy()
                merged.load(self.path)
                merged.update(batch)
                merged.save(self.path)
            self.seen = self._sha()
