"""`cinerl batch`: three prompts on a 2-actor local Ray cluster make the three films three
separate `make_film` runs make, batch.json sums them up, and a second batch redoes nothing.

Heavy: five tiny films (each actor loads the planner's spaCy pipelines once, ~20 s on this
machine) and a Ray cluster start; `make test-heavy` runs it."""

import json

import numpy as np
import pytest

from cinerl.core.settings import Settings
from cinerl.runtime.batch import film_name, run_batch
from cinerl.runtime.director import make_film
from tests.e2e.helpers import film_frames

pytestmark = pytest.mark.heavy

PROMPTS = [
    "A retired lighthouse keeper rows to the harbour town in a storm.",
    "Two children follow a fox through a snowy forest at dawn.",
    "A baker opens her shop on a rainy night in the old city.",
]
TINY = {
    "plan.scenes": 2,
    "run.attempts": 2,
    "run.max_attempts": 2,
    "run.width": 96,
    "run.height": 64,
    "run.fps": 4,
}


def test_a_batch_is_its_films_made_one_by_one_and_resumes(ray_cluster, tmp_path):
    listing = tmp_path / "prompts.txt"
    listing.write_text("# three films\n" + "\n\n".join(PROMPTS) + "\n", encoding="utf-8")
    shared = tmp_path / "shared.pt"  # absent: every film starts from a fresh policy
    settings = Settings.of(**TINY, **{"policy.path": str(shared), "executor.kind": "ray"})
    rows = run_batch(listing, tmp_path / "batch", settings)
    assert [r["status"] for r in rows] == ["done"] * 3
    summary = json.loads((tmp_path / "batch" / "batch.json").read_text())["films"]
    assert [r["folder"] for r in summary] == [film_name(i, p) for i, p in enumerate(PROMPTS)]
    assert not shared.exists()  # the batch leaves the shared policy file alone
    for i, prompt in enumerate(PROMPTS):
        alone = make_film(
            prompt, tmp_path / f"alone{i}", Settings.of(**TINY, **{"policy.path": str(tmp_path / f"p{i}.pt")})
        )
        folder = tmp_path / "batch" / film_name(i, prompt)
        assert np.array_equal(film_frames(folder), film_frames(tmp_path / f"alone{i}"))
        totals = [s.chosen_attempt.reward.total for s in alone.report.scenes]
        assert summary[i]["reward"] == pytest.approx(sum(totals) / len(totals), abs=1e-6)
        assert summary[i]["seconds"] > 0
    stamps = [(tmp_path / "batch" / r["folder"] / "film.mp4").stat().st_mtime_ns for r in rows]
    again = run_batch(listing, tmp_path / "batch", settings.updated(**{"executor.kind": "local"}))
    assert [r.get("earlier") for r in again] == [True] * 3  # finished films are not shot again
    assert [(tmp_path / "batch" / r["folder"] / "film.mp4").stat().st_mtime_ns for r in again] == stamps
