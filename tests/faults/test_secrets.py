"""Each key goes only to the endpoint it was configured for, and a password inside a base URL is
never recorded or logged (issue 12, case 5)."""

import logging

import pytest

from cinerl.core.settings import Settings
from cinerl.core.urls import RedactingFilter, redact_url, same_endpoint
from cinerl.llm.client import ChatClient
from tests.faults.conftest import PROMPT, TINY, cli
from tests.llm.llm_servers import FaultServer

MAIN_KEY = "sk-main-OPENAI-0123456789"
VLM_KEY = "sk-vlm-0123456789"
JUDGE_KEY = "sk-judge-0123456789"
PASSWORD = "hunter2SECRETpw"


@pytest.fixture
def server():
    with FaultServer() as srv:
        yield srv


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "CINERL_VLM_API_KEY", "CINERL_JUDGE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", MAIN_KEY)


def auth_seen(server, kind, monkeypatch, **env):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    ChatClient(server.url, "m", kind=kind).chat("hello")
    return server.requests[-1]["auth"]


def test_a_judge_endpoint_without_a_key_gets_none(server, monkeypatch):
    assert auth_seen(server, "vlm", monkeypatch, CINERL_REWARDS__VLM_BASE_URL=server.url) is None
    assert auth_seen(server, "judge", monkeypatch, CINERL_REWARDS__JUDGE_BASE_URL=server.url) is None


def test_each_key_goes_to_its_own_endpoint(server, monkeypatch):
    monkeypatch.setenv("CINERL_REWARDS__VLM_BASE_URL", server.url)
    assert auth_seen(server, "vlm", monkeypatch, CINERL_REWARDS__VLM_API_KEY=VLM_KEY) == f"Bearer {VLM_KEY}"
    # the judge's key is for the judge's endpoint, not this one
    monkeypatch.setenv("CINERL_REWARDS__JUDGE_BASE_URL", "http://127.0.0.1:9/v1")
    assert auth_seen(server, "judge", monkeypatch, CINERL_REWARDS__JUDGE_API_KEY=JUDGE_KEY) is None


def test_the_llm_key_goes_to_the_llm_server(server, monkeypatch):
    monkeypatch.setenv("CINERL_REWARDS__VLM_BASE_URL", server.url + "/")
    assert auth_seen(server, "vlm", monkeypatch, OPENAI_BASE_URL=server.url) == f"Bearer {MAIN_KEY}"


def test_redact_url():
    assert redact_url("https://bob:pw@h.example:8/v1") == "https://***@h.example:8/v1"
    assert (
        redact_url("failed: http://tok@h/v1 and http://a:b@c") == "failed: http://***@h/v1 and http://***@c"
    )
    assert redact_url("http://h/v1?x=a@b") == "http://h/v1?x=a@b"
    assert redact_url(None) is None
    assert same_endpoint("http://a:b@H:80/v1/", "http://h/v1")
    assert not same_endpoint("http://h/v1", "http://evil/v1")


def test_settings_as_recorded_hold_no_password():
    url = f"http://user:{PASSWORD}@127.0.0.1:9/v1"
    s = Settings.of(**{"llm.base_url": url, "rewards.vlm_base_url": url, "rewards.judge_base_url": url})
    assert PASSWORD not in str(s.public_dump()) and PASSWORD not in str(s.film_fingerprint_view())
    assert s.llm.base_url == url  # the request itself still has it


def test_logs_are_redacted():
    record = logging.LogRecord(
        "x", logging.WARNING, "f", 1, "%s failed", (f"http://u:{PASSWORD}@h/v1",), None
    )
    RedactingFilter().filter(record)
    assert PASSWORD not in record.getMessage()


def test_no_password_in_the_run_folder(tmp_path, server, caplog):
    url = server.url.replace("http://", f"http://user:{PASSWORD}@")
    out = tmp_path / "out"
    with caplog.at_level(logging.INFO):
        res = cli(
            "make", PROMPT, "--out", out, *TINY, "--llm", "openai", "--llm-base-url", url,
            "--set", "llm.retries=0", "--set", f"rewards.judge_base_url={url}",
            "--policy", tmp_path / "p.pt",
        )  # fmt: skip
    assert res.exit_code == 0, (res.stdout, res.stderr, res.exception)
    assert server.requests, "the LLM server was asked"
    files = [p for p in out.rglob("*") if p.is_file()]
    assert {"report.json", "report.html", "state.db"} <= {p.name for p in files}
    leaked = [str(p.relative_to(out)) for p in files if PASSWORD.encode() in p.read_bytes()]
    assert leaked == []
    assert PASSWORD not in (res.stdout or "") + (res.stderr or "") + caplog.text
    assert "127.0.0.1" in (out / "report.json").read_text()  # recorded, redacted
