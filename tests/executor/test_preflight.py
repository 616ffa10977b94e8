"""What the executor refuses before a run plans anything: a `--ray-address` that cannot name a
cluster (by its form; nothing is contacted), a `--ray-address` without `--executor ray`, and
`--parallel-scenes` outside keyframes mode; each is one line, exit 2, no run folder. A
well-formed HOST:PORT where no cluster answers ends at the run's start, before the plan."""

import pytest

from cinerl.core.errors import UserError
from cinerl.core.settings import Settings
from cinerl.executor.base import check_address
from tests.e2e.helpers import CINERL, PROMPT, run
from tests.faults.runs import one_line_error


@pytest.mark.parametrize(
    "address", [None, "", "auto", "10.0.0.5:6379", "head-0.cluster.local:6379", "[::1]:6379"]
)
def test_well_formed_addresses_pass_without_contacting_anything(address):
    check_address(address, "ray")  # no cluster runs at any of these: only the form is checked


@pytest.mark.parametrize(
    "address",
    ["10.0.0.5", "10.0.0.5:", ":6379", "10.0.0.5:0", "10.0.0.5:65536", "host:port", "http://h:1", "a b:1"],
)
def test_malformed_addresses_are_refused_by_name(address):
    with pytest.raises(UserError, match="give auto or HOST:PORT"):
        check_address(address, "ray")


def test_an_address_without_the_ray_executor_is_refused():
    with pytest.raises(UserError, match="is for --executor ray"):
        check_address("10.0.0.5:6379", "local")


def test_parallel_scenes_needs_keyframes_mode():
    with pytest.raises(UserError, match="--parallel-scenes needs --mode keyframes"):
        Settings.of(**{"run.parallel_scenes": True})
    assert Settings.of(**{"run.parallel_scenes": True, "run.shot_mode": "keyframes"}).run.parallel_scenes


def test_make_refuses_a_malformed_address_in_one_line_before_any_folder(tmp_path):
    proc = run(
        [CINERL, "make", PROMPT, "--out", str(tmp_path / "out"), "--executor", "ray", "--ray-address", "head"]
    )
    assert "--ray-address 'head': give auto or HOST:PORT" in one_line_error(proc)
    assert not (tmp_path / "out").exists()


@pytest.mark.heavy  # Ray's driver starts and waits out its connect timeout: about 10 s
def test_an_address_where_no_cluster_answers_fails_at_the_start_before_the_plan(tmp_path):
    out = tmp_path / "out"
    cmd = [CINERL, "make", PROMPT, "--out", str(out), "--executor", "ray", "--ray-address", "127.0.0.1:1"]
    proc = run([*cmd, "--set", "executor.connect_timeout_s=3"])  # nothing listens on port 1
    assert "--ray-address 127.0.0.1:1: no Ray cluster answers there" in one_line_error(proc)
    assert not (out / "story" / "bible.json").exists()  # failed before planning


def test_a_run_resumed_with_parallel_scenes_changed_is_refused_by_name():
    """--parallel-scenes changes which policy and state a take acts from: it changes frames."""
    from cinerl.runtime import fingerprint as fpcheck

    kf = {"run.shot_mode": "keyframes"}
    before = Settings.of(**kf).film_fingerprint_view(())
    after = Settings.of(**kf, **{"run.parallel_scenes": True}).film_fingerprint_view(())
    assert fpcheck.compare(before, after).refuse == ["run.parallel_scenes: False -> True"]
    timeout = Settings.of(**kf, **{"executor.connect_timeout_s": 5}).film_fingerprint_view(())
    assert fpcheck.compare(before, timeout).refuse == []  # where the takes run changes no frame
