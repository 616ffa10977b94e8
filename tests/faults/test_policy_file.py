"""A policy file is data: loading one never runs code, and one we cannot use is kept as a backup
before the run saves over it (issue 12, case 2)."""

import io
import logging
import os
import pickle

import torch

from cinerl.core.vocabulary import ACTION_FACTORS
from cinerl.training.policy.net import PromptPolicy
from cinerl.training.policy.state import STATE_DIM


class Boom:
    """Unpickling this calls os.system, which writes a marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def hostile_policy(path, marker):
    """A .pt that looks like a policy and runs a command when unpickled with weights_only=False."""
    torch.save({**PromptPolicy().state_dict(), "payload": Boom(marker)}, path)
    return path.read_bytes()


def test_a_hostile_policy_runs_no_code_and_survives_as_a_backup(tmp_path, caplog):
    path, marker = tmp_path / "previz.pt", tmp_path / "PWNED"
    original = hostile_policy(path, marker)
    policy = PromptPolicy()
    with caplog.at_level(logging.WARNING):
        assert policy.load(path) is False
    assert not marker.exists()
    backups = list(tmp_path.glob("previz.unreadable-*.pt"))
    assert len(backups) == 1 and backups[0].read_bytes() == original
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "starting fresh" in warnings[0] and backups[0].name in warnings[0]
    # the run goes on: it learns and saves over the path, which the backup made safe
    policy.save(path)
    assert PromptPolicy().load(path) is True and backups[0].read_bytes() == original
    assert not marker.exists()
    torch.load(backups[0], weights_only=False)  # the control: the old load did run it
    assert marker.exists()


def test_a_plain_pickle_and_garbage_are_refused_with_a_backup(tmp_path):
    for name, data in (("pickled", pickle.dumps(Boom(tmp_path / "PWNED"))), ("garbage", b"\x00not a pt")):
        path = tmp_path / f"{name}.pt"
        path.write_bytes(data)
        assert PromptPolicy().load(path) is False
        assert [p.read_bytes() for p in tmp_path.glob(f"{name}.unreadable-*.pt")] == [data]
    assert not (tmp_path / "PWNED").exists()


def test_a_foreign_dict_is_refused_and_kept(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    assert PromptPolicy().load(path) is False
    assert len(list(tmp_path.glob("other.unreadable-*.pt"))) == 1


def test_the_saved_format_loads_with_weights_only(tmp_path):
    policy = PromptPolicy(seed=1)
    state = torch.randn(5, STATE_DIM).numpy()
    from cinerl.training.policy.net import Transition

    batch = [Transition(s, policy.act(s, i)[0], float(i) / 5) for i, s in enumerate(state)]
    policy.update(batch)
    path = policy.save(tmp_path / "p.pt")
    data = torch.load(path, weights_only=True)  # raises if anything but tensors and plain data
    assert data["version"] == 1
    again = PromptPolicy()
    assert again.load(path) and again.version == 1 and again.history == policy.history
    for a, b in zip(again.net.parameters(), policy.net.parameters()):
        assert torch.equal(a, b)


def test_a_policy_of_the_previous_version_still_loads(tmp_path):
    """The previous save was torch.save of a plain dict (tensors, lists, ints, str): all allowed."""
    old = PromptPolicy(seed=2)
    legacy = {
        "net": old.net.state_dict(),
        "optim": old.optim.state_dict(),
        "version": 7,
        "algorithm": "ppo",
        "stats": [3, 0.5, 0.25],
        "history": [0.1, 0.2],
        "factors": {f: list(v) for f, v in ACTION_FACTORS.items()},
        "state_dim": STATE_DIM,
    }
    buf = io.BytesIO()
    torch.save(legacy, buf)
    path = tmp_path / "legacy.pt"
    path.write_bytes(buf.getvalue())
    policy = PromptPolicy()
    assert policy.load(path) is True
    assert policy.version == 7 and policy.stats.count == 3 and policy.history == [0.1, 0.2]
    assert not list(tmp_path.glob("*.unreadable-*"))


def test_a_make_run_with_a_hostile_policy_goes_on(tmp_path):
    from tests.faults.conftest import PROMPT, TINY, cli

    path, marker = tmp_path / "hostile.pt", tmp_path / "PWNED"
    original = hostile_policy(path, marker)
    res = cli("make", PROMPT, "--out", tmp_path / "out", "--policy", path, *TINY)
    assert res.exit_code == 0, (res.stdout, res.stderr, res.exception)
    assert not marker.exists()
    assert [b.read_bytes() for b in tmp_path.glob("hostile.unreadable-*.pt")] == [original]
    assert PromptPolicy().load(path) is True  # the run's policy took the path, safely
