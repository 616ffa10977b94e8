"""Shared, expensive things built once per session: the starter graph (real MiniLM embeddings,
cached in a temporary RAPO folder) and one tiny `cinerl make --prompt-opt rapo` run."""

from __future__ import annotations

import os

import pytest

pytest.importorskip("networkx", reason="networkx (the rapo extra) is not installed")


@pytest.fixture(scope="session")
def rapo_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("rapo_cache")


@pytest.fixture(scope="session")
def starter_graph(rapo_dir):
    from cinerl.prompting.rapo.graph import STARTER_CSV, load_graph

    return load_graph([STARTER_CSV], rapo_dir=rapo_dir)


@pytest.fixture(scope="session")
def retriever(starter_graph):
    from cinerl.prompting.rapo.retrieval import Retriever

    return Retriever(starter_graph)


@pytest.fixture(scope="session")
def rapo_env(rapo_dir, starter_graph):
    """CINERL_RAPO_DIR pointing at the session cache (the starter graph is already in it)."""
    old = os.environ.get("CINERL_RAPO_DIR")
    os.environ["CINERL_RAPO_DIR"] = str(rapo_dir)
    yield rapo_dir
    if old is None:
        os.environ.pop("CINERL_RAPO_DIR", None)
    else:
        os.environ["CINERL_RAPO_DIR"] = old


@pytest.fixture(scope="session")
def make_run(tmp_path_factory, rapo_env):
    """A one-scene, three-attempt film made with --prompt-opt rapo through the CLI."""
    from typer.testing import CliRunner

    from cinerl.cli import app

    out = tmp_path_factory.mktemp("make_rapo") / "run"
    policy = out.parent / "policy.pt"
    res = CliRunner().invoke(app, [
        "make", "A knight rides through a misty forest to find a lost dragon", "--out", str(out),
        "--scenes", "1", "--attempts", "3", "--max-attempts", "3", "--size", "128x72",
        "--fps", "6", "--prompt-opt", "rapo", "--policy", str(policy), "--fresh"])
    assert res.exit_code == 0, res.output
    return out
