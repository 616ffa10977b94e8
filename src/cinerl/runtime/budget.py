"""`--budget SECONDS`: the time a film may spend shooting, spread over its scenes.

Every scene gets its first take whatever the budget says (a film needs each scene once). After
that, a scene gets another take only when the time spent so far, that take, and one take for
each scene still to shoot fit in the budget; the cost of a take is what this run's own takes
cost so far (render, save, score), and of a scene what its policy update cost. Where the budget
stops a scene before the attempt rule would, the store records it (runtime/edit_log.py) and the
report shows it.
"""

from __future__ import annotations

from dataclasses import dataclass

from cinerl.core.store import RunStore
from cinerl.runtime.edit_log import record_budget_cut

TAKE_STAGES = ("render", "save", "score")


@dataclass
class Budget:
    seconds: float
    scenes: int  # scenes in the film
    planned: int  # takes per scene the attempt rule would allow at most

    def spent(self, store: RunStore) -> float:
        stages = store.stage_times()
        return sum(stages.get(k, 0.0) for k in (*TAKE_STAGES, "learn"))

    def allows_another(self, store: RunStore, scene: int, takes: int) -> bool:
        """Whether scene `scene` (0-based), which has `takes` takes, may shoot one more."""
        stages = store.stage_times()
        n_takes = max(1, len(store.attempts()))
        per_take = sum(stages.get(k, 0.0) for k in TAKE_STAGES) / n_takes
        per_update = stages.get("learn", 0.0) / max(1, len(store.scenes()))
        rest = self.scenes - scene - 1  # scenes after this one, one take and one update each
        spent = self.spent(store)
        need = per_take * (1 + rest) + per_update * (rest + 1)
        if spent + need <= self.seconds:
            return True
        record_budget_cut(store, scene, takes, self.planned, spent, self.seconds)
        return False
