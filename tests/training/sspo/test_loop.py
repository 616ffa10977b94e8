"""SSPO on previz: the best prompt is returned, a killed chain resumes, the log is complete."""

from __future__ import annotations

import csv
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import numpy as np
import pytest

from cinerl.generation.registry import get_video_backend
from cinerl.core.errors import UserError
from cinerl.training.sspo.physics import FlowStats
from cinerl.training.sspo.loop import LOG_COLUMNS, SSPOConfig, rule_rewrite, run_sspo
from cinerl.training.sspo.vision import VisionJudge

SHAKY = "Wide shot, fast handheld camera. A knight rides through a misty forest, frantic erratic motion."
LAW = "inertia: the horse keeps a steady pace"


def _config(**kw):
    base = dict(prompt=SHAKY, physics_law=LAW, iterations=3, width=128, height=72, fps=8, seconds=3.0, seed=3)
    return SSPOConfig(**{**base, **kw})


class CountingBackend:
    """previz, counting generate calls; optionally interrupted like a kill at call `kill_at`."""

    name = "previz"

    def __init__(self, kill_at: int | None = None):
        self.inner = get_video_backend("previz")
        self.calls = 0
        self.kill_at = kill_at

    def generate(self, request):
        self.calls += 1
        if self.calls == self.kill_at:
            raise KeyboardInterrupt("killed mid-iteration")
        return self.inner.generate(request)


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    out = tmp_path_factory.mktemp("sspo") / "chain"
    backend = CountingBackend()
    return run_sspo(_config(), out, backend=backend, llm="offline"), out, backend


def test_returns_the_best_iteration_not_the_last(chain):
    result, out, backend = chain
    rewards = [it.reward for it in result.iterations]
    assert len(rewards) == 3 and backend.calls == 3  # one backend, one generation per iteration
    assert result.best_reward == max(rewards)
    best = result.iterations[rewards.index(max(rewards))]
    assert result.best_prompt == best.prompt and result.best_iteration == best.iteration
    # the shaky prompt reverses direction on previz; the rewrite calms it and the reward rises
    first, second = result.iterations[0], result.iterations[1]
    assert not first.physics_plausible and "handheld" not in second.prompt
    assert second.reward > first.reward
    assert all(it.prompt == prev.next_prompt for prev, it in zip(result.iterations, result.iterations[1:]))
    assert all(len(it.next_prompt.split()) < 120 for it in result.iterations)
    assert all(
        it.alignment is None and it.alignment_status.startswith("unavailable: no vision")
        for it in result.iterations
    )


def test_log_records_the_whole_chain(chain):
    result, out, _ = chain
    with open(out / "sspo_log.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == LOG_COLUMNS
    assert [float(r["reward"]) for r in rows] == [it.reward for it in result.iterations]
    assert [r["prompt"] for r in rows] == [it.prompt for it in result.iterations]
    assert all((out / r["clip"]).stat().st_size > 0 for r in rows)
    assert len(json.loads(rows[0]["flows"])) == 5  # 3 s at 8 fps, every 4 frames: 6 samples


class ShakenLaterBackend(CountingBackend):
    """previz whose clips from the second call on are shaken frame by frame (a backend that
    got worse), so the last iteration is the worst."""

    def generate(self, request):
        clip = super().generate(request)
        if self.calls >= 2:
            rng = np.random.default_rng(self.calls)
            frames = np.stack(
                [np.roll(f, tuple(rng.integers(-6, 7, size=2)), axis=(0, 1)) for f in clip.frames]
            )
            clip = clip.model_copy(update={"frames": frames})
        return clip


def test_best_is_kept_when_a_later_iteration_is_worse(tmp_path):
    calm = "Wide shot, static camera. A knight walks slowly through a misty forest, gentle motion."
    res = run_sspo(
        _config(prompt=calm, physics_law="", iterations=2),
        tmp_path / "c",
        backend=ShakenLaterBackend(),
        llm="offline",
    )
    first, last = res.iterations
    assert last.reward < first.reward
    assert res.best_iteration == 1 and res.best_prompt == calm and res.best_reward == first.reward


def test_resumes_after_a_kill_with_the_same_chain(chain, tmp_path):
    reference, _, _ = chain
    out = tmp_path / "killed"
    with pytest.raises(KeyboardInterrupt):
        run_sspo(_config(), out, backend=CountingBackend(kill_at=2), llm="offline")
    with open(out / "sspo_log.csv", encoding="utf-8") as f:
        assert len(list(csv.DictReader(f))) == 1  # iteration 1 finished, iteration 2 did not
    backend = CountingBackend()
    resumed = run_sspo(_config(), out, backend=backend, llm="offline")
    assert resumed.resumed_from == 1 and backend.calls == 2  # iteration 1 is not redone
    assert [it.prompt for it in resumed.iterations] == [it.prompt for it in reference.iterations]
    assert [it.reward for it in resumed.iterations] == [it.reward for it in reference.iterations]
    assert resumed.best_prompt == reference.best_prompt
    # finished chain: nothing left to do
    again = CountingBackend()
    assert run_sspo(_config(), out, backend=again, llm="offline").resumed_from == 3
    assert again.calls == 0


def test_another_prompt_in_the_same_folder_is_refused(chain):
    _, out, _ = chain
    with pytest.raises(UserError, match="another prompt"):
        run_sspo(_config(prompt="a different prompt"), out, backend=CountingBackend(), llm="offline")


def test_rule_rewrite_stays_under_120_words_and_states_the_law():
    long_prompt = " ".join(["A knight in heavy armour rides a grey horse."] * 30)
    shaky = FlowStats(
        interval_frames=4,
        flows=[(1, 0), (-1, 0), (1, 0)],
        mean_magnitude=0.1,
        reversals=2,
        directed_pairs=2,
        jump=0.9,
    )
    out = rule_rewrite(long_prompt, shaky, physics_law="Conservation of momentum.")
    assert len(out.split()) < 120 + 1
    assert out.endswith("The motion obeys conservation of momentum.")
    assert "without sudden reversals" in out and "no sudden jumps" in out
    steady = FlowStats(
        interval_frames=4, flows=[(1, 0), (1, 0)], mean_magnitude=0.1, reversals=0, directed_pairs=1, jump=0.0
    )
    assert rule_rewrite(SHAKY, steady) == SHAKY  # nothing to fix, nothing changed


class _VLMHandler(BaseHTTPRequestHandler):
    seen: list[dict] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _VLMHandler.seen.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
        reply = {"choices": [{"message": {"content": "Knight and forest are visible. Score: 4"}}]}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_vision_endpoint_protocol_and_alignment_in_the_reward(tmp_path):
    """A local OpenAI-compatible endpoint (answers fixed text): checks the request we send and
    that its 1-5 score enters the reward. It tests our protocol, not a model."""
    server = HTTPServer(("127.0.0.1", 0), _VLMHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        judge = VisionJudge(f"http://127.0.0.1:{server.server_port}/v1", "test-vlm", api_key="k", frames=3)
        res = run_sspo(
            _config(iterations=1), tmp_path / "v", backend=CountingBackend(), llm="offline", judge=judge
        )
    finally:
        server.shutdown()
    it = res.iterations[0]
    assert it.alignment == 4.0 and it.alignment_status == "ok"
    req = _VLMHandler.seen[-1]
    assert req["path"] == "/v1/chat/completions" and req["auth"] == "Bearer k"
    parts = req["body"]["messages"][0]["content"]
    assert parts[0]["type"] == "text" and SHAKY in parts[0]["text"]
    assert [p["type"] for p in parts[1:]] == ["image_url"] * 3
    assert parts[1]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    # reward = 0.4 physics + 0.4 clip quality + 0.2 alignment (4 -> 0.75)
    expected = (0.4 * it.physics + 0.4 * it.clip_quality + 0.2 * 0.75) / 1.0
    assert it.reward == pytest.approx(expected, abs=1e-5)
