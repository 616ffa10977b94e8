"""Fixtures the video GRPO tests share: the tiny 5B-shaped Wan folder and two prompts (a test
module that needs other ones defines its own, which pytest prefers)."""

from __future__ import annotations

import pytest

from tests.training.video.test_grpo import tiny_model


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_model(tmp_path_factory)


@pytest.fixture(scope="module")
def prompts(tmp_path_factory):
    p = tmp_path_factory.mktemp("prompts") / "prompts.txt"
    p.write_text("a woman walks\na red boat\n")
    return p
