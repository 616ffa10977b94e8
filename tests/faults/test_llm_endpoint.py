"""The LLM path against a bad URL, a failing server and a slow one: a typo is one line before
anything starts; a failing server is asked llm.max_failures times, then the plan goes offline with
each warning said once; llm.deadline bounds the whole plan; the report says when every step fell
back (issue 12, case 9)."""

import logging
import time
from collections import Counter

import pytest

from tests.faults.conftest import PROMPT, TINY, assert_one_line_error, cli
from tests.llm.llm_servers import FaultServer

FAST = ["--set", "llm.retries=0"]


@pytest.mark.parametrize(
    "url", ["htp://x/v1", "http//x", "http://", "http://h:99999/v1", "http://a b/v1", "x"]
)
@pytest.mark.parametrize("command", ["make", "plan"])
def test_a_malformed_base_url_is_one_line_and_writes_nothing(tmp_path, command, url):
    out = tmp_path / "out"
    res = cli(command, PROMPT, "--out", out, "--llm", "openai", "--llm-base-url", url)
    assert "llm.base_url" in assert_one_line_error(res)
    assert not out.exists()


def warnings_of(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_the_breaker_stops_asking_and_warns_once(tmp_path, caplog):
    with FaultServer(["500"] * 100) as srv, caplog.at_level(logging.WARNING):
        res = cli(
            "plan", PROMPT, "--out", tmp_path / "plan", "--scenes", "2", "--llm", "openai",
            "--llm-base-url", srv.url, *FAST,
        )  # fmt: skip
        asked = len(srv.requests)
    assert res.exit_code == 0, (res.stdout, res.stderr, res.exception)
    assert asked == 3  # llm.max_failures, not 1 + 2 x 2 steps x every repair
    said = warnings_of(caplog)
    assert said and max(Counter(said).values()) == 1, said
    assert any("llm.max_failures" in w for w in said)


def test_max_failures_is_a_setting(tmp_path):
    with FaultServer(["500"] * 100) as srv:
        res = cli(
            "plan", PROMPT, "--out", tmp_path / "plan", "--scenes", "1", "--llm", "openai",
            "--llm-base-url", srv.url, *FAST, "--set", "llm.max_failures=1",
        )  # fmt: skip
        assert res.exit_code == 0 and len(srv.requests) == 1


def test_the_deadline_bounds_a_slow_server(tmp_path, caplog):
    with FaultServer(["timeout"] * 100, hang=3.0) as srv, caplog.at_level(logging.WARNING):
        t0 = time.monotonic()
        res = cli(
            "plan", PROMPT, "--out", tmp_path / "plan", "--scenes", "2", "--llm", "openai",
            "--llm-base-url", srv.url, *FAST, "--set", "llm.deadline=1",
        )  # fmt: skip
        took = time.monotonic() - t0
        asked = len(srv.requests)
    assert res.exit_code == 0, (res.stdout, res.stderr, res.exception)
    assert asked == 1 and took < 10, (asked, took)
    assert any("llm.deadline" in w for w in warnings_of(caplog))


def test_the_report_says_every_llm_step_fell_back(tmp_path):
    out = tmp_path / "out"
    with FaultServer(["500"] * 100) as srv:
        res = cli(
            "make", PROMPT, "--out", out, *TINY, "--llm", "openai", "--llm-base-url", srv.url, *FAST,
            "--policy", tmp_path / "p.pt",
        )  # fmt: skip
    assert res.exit_code == 0, (res.stdout, res.stderr, res.exception)
    html = (out / "report.html").read_text()
    assert "planner: offline (every LLM step fell back: " in html
