"""Judge components over the OpenAI-compatible protocol, against a scripted server on 127.0.0.1:
the request carries the prompt and the keyframes, the rating is parsed, captions reach the judge."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import numpy as np
import pytest

from cinerl.rewards import RewardSettings, ScoreContext, Scorer
from cinerl.llm.client import EndpointError, parse_rating
from tests.rewards.conftest import bible, pan_clip


@pytest.fixture
def server():
    seen: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
            content = body["messages"][0]["content"]
            text = content if isinstance(content, str) else content[0]["text"]
            if "Describe this video frame" in text:
                answer = "A woman in a crimson coat walks into a red canyon."
            elif "judge whether a film clip" in text:
                answer = "Score: 5\nThe clip shows the planned arrival."
            else:
                answer = "Score: 4\nThe rocks match; no person is visible."
            out = json.dumps({"choices": [{"message": {"role": "assistant", "content": answer}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *a):
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_port}/v1", seen
    httpd.shutdown()
    httpd.server_close()


def test_vlm_caption_and_narrative_judges_over_the_protocol(server, monkeypatch):
    url, seen = server
    monkeypatch.setenv("CINERL_VLM_API_KEY", "sk-test-not-logged")
    cfg = RewardSettings(vlm_base_url=url, vlm_model="tiny-vl", judge_base_url=url, judge_model="tiny-llm")
    b = bible()
    ctx = ScoreContext(prompt="Mara walks into the red canyon", scene=b.scenes[0], bible=b)
    r = (
        Scorer(components=["vlm_alignment", "caption_consistency", "narrative_judge"], config=cfg)
        .score(pan_clip(t=12, h=90, w=160), ctx)
        .components
    )
    assert r["vlm_alignment"].status == "ok" and r["vlm_alignment"].value == pytest.approx(0.75)
    assert r["narrative_judge"].value == pytest.approx(1.0) and r["narrative_judge"].raw["rating"] == 5
    cap = r["caption_consistency"]
    assert cap.status == "ok" and cap.raw["captions_from"] == "vlm:tiny-vl"
    assert cap.raw["agreement"] == "all-MiniLM-L6-v2 cosine" and 0.3 < cap.value <= 1.0
    vlm_req = next(s for s in seen if "Judge how well" in s["body"]["messages"][0]["content"][0]["text"])
    images = [p for p in vlm_req["body"]["messages"][0]["content"] if p["type"] == "image_url"]
    assert len(images) == 4 and images[0]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    assert vlm_req["path"] == "/v1/chat/completions" and vlm_req["auth"] == "Bearer sk-test-not-logged"
    judge_req = next(s for s in seen if s["body"]["model"] == "tiny-llm")
    prompt = judge_req["body"]["messages"][0]["content"]
    assert "crimson coat walks into a red canyon" in prompt and "Mara walks into the canyon." in prompt
    assert "sk-test" not in json.dumps([c.model_dump() for c in r.values()])


def test_unreachable_endpoint_is_unavailable_not_zero():
    cfg = RewardSettings(vlm_base_url="http://127.0.0.1:9/v1", vlm_model="m", endpoint_timeout_s=2)
    c = (
        Scorer(components=["vlm_alignment"], config=cfg)
        .score(pan_clip(t=4, h=64, w=96), ScoreContext(prompt="rocks"))
        .components["vlm_alignment"]
    )
    assert c.status == "unavailable" and "unreachable" in c.reason


@pytest.mark.parametrize(
    "text,want",
    [("Score: 4\nfine", 4), ("I'd say 3/5.", 3), ("5", 5), ("Rating - 2", 2), ("I'd say 2 out of 5.", 2)],
)
def test_parse_rating(text, want):
    assert parse_rating(text) == want


def test_parse_rating_rejects_out_of_range():
    with pytest.raises(EndpointError, match="no 1-5 rating"):
        parse_rating("Score: 9")


def test_chat_client_retries_rate_limits_and_server_errors_and_never_shows_the_key():
    from cinerl.llm.client import ChatClient
    from tests.llm.llm_servers import FaultServer

    key = "sk-judge-SECRET-0123456789"
    with FaultServer(["429", "500", "ok"]) as srv:
        client = ChatClient(srv.url, "judge-model", api_key=key, retries=2, backoff=0.01)
        answer = client.chat("hello", [np.zeros((8, 8, 3), np.uint8)])
    assert json.loads(answer) == {"text": "hello"} and len(srv.requests) == 3
    assert srv.requests[0]["auth"] == f"Bearer {key}" and key not in repr(client)
    parts = srv.requests[0]["body"]["messages"][0]["content"]
    assert parts[1]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    with FaultServer(["500", "500"]) as srv:
        with pytest.raises(EndpointError, match="HTTP 500 \\(after 1 retries\\)") as err:
            ChatClient(srv.url, "m", api_key=key, retries=1, backoff=0.01).chat("hello")
    assert key not in str(err.value)
    with FaultServer(["401"]) as srv:  # a refused key is not retried
        with pytest.raises(EndpointError, match="HTTP 401"):
            ChatClient(srv.url, "m", api_key=key, retries=3, backoff=0.01).chat("hello")
        assert len(srv.requests) == 1
