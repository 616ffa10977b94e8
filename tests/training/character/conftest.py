"""One tiny random Wan2.2 5B folder for every character-trainer test of a session (writing it
takes seconds on the shared cores; the tests only read it)."""

from __future__ import annotations

import pytest

from tests.generation.wan_tiny import write_tiny_model


@pytest.fixture(scope="session")
def model(tmp_path_factory):
    return write_tiny_model("ti2v-5b", tmp_path_factory.mktemp("wan") / "model")
