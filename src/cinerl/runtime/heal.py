"""Healing a damaged run folder on resume: every file the store lists is checked against its
recorded sha256 and what is missing or changed is made again, with one log line each.

- A take (its mp4, last-frame PNG and thumbnail) is re-rendered from its stored seed, prompt and
  init image: takes are deterministic, and the mp4 cannot be rebuilt from the PNG (which holds
  only the last frame). When the new mp4 is byte-identical to the recorded one the stored reward
  stands; otherwise the take is re-scored (Director.remake_take).
- A policy snapshot is recomputed by replaying the stored scenes' updates from policy/start.pt
  (each attempt's state, action and reward are stored); start.pt itself cannot be recomputed
  (it was the shared file as the run found it), so its loss ends in one line.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from cinerl.core.errors import UserError
from cinerl.core.schema import AttemptRecord
from cinerl.core.store import RunStore
from cinerl.training.policy.net import PromptPolicy, Transition

log = logging.getLogger(__name__)

TAKE_FILES = {"mp4": "clip_path", "last": "last_frame_path", "thumb": "thumbnail_path"}


def take_key(rec: AttemptRecord, part: str) -> str:
    return f"scene_{rec.scene:02d}/attempt_{rec.attempt:02d}/{part}"


def record_take(store: RunStore, rec: AttemptRecord, out_dir: Path) -> None:
    """List a take's three files with their sha256, so a resume can check them."""
    for part, attr in TAKE_FILES.items():
        store.record_artifact("take", take_key(rec, part), out_dir / getattr(rec, attr), out_dir)


def take_damage(store: RunStore, rec: AttemptRecord, out_dir: Path) -> list[str]:
    """The take's files that are missing or not what was written (by sha256 where recorded)."""
    bad = []
    for part, attr in TAKE_FILES.items():
        path = out_dir / getattr(rec, attr)
        key = take_key(rec, part)
        if store.recorded_sha256("take", key) is not None:
            ok = store.artifact("take", key, out_dir) is not None
        else:  # a take committed before takes were listed: it can only be checked for presence
            ok = path.is_file()
        if not ok:
            bad.append(getattr(rec, attr))
    return bad


def batch_of(store: RunStore, scene: int) -> list[Transition]:
    return [
        Transition(np.asarray(st, dtype=np.float32), rec.action, rec.reward.total)
        for rec, st in store.attempts(scene)
    ]


def heal_snapshots(store: RunStore, out_dir: Path, make_policy) -> Path | None:
    """The path of the latest intact snapshot after recomputing any missing or damaged one."""
    start = store.artifact("policy", "start", out_dir)
    scenes = sorted(store.scenes())
    snaps = {i: store.artifact("policy", f"scene_{i:02d}", out_dir) for i in scenes}
    if start is None:
        if scenes:
            raise UserError(
                f"{out_dir / 'policy' / 'start.pt'} is missing or damaged, so this run's policy "
                "cannot be replayed; pass --fresh to shoot it again"
            )
        return None
    if all(snaps.values()):
        return snaps[scenes[-1]] if scenes else start
    policy: PromptPolicy = make_policy()
    policy.load(start)
    for i in scenes:
        policy.update(batch_of(store, i))
        if snaps[i] is None:
            path = policy.save(out_dir / "policy" / f"after_scene_{i:02d}.pt")
            store.record_artifact("policy", f"scene_{i:02d}", path, out_dir)
            log.warning(
                "healed %s: replayed the policy updates from policy/start.pt", path.relative_to(out_dir)
            )
    return out_dir / "policy" / f"after_scene_{scenes[-1]:02d}.pt"
