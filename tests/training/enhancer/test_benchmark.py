"""benchmarks/enhancer.py --gpu-qwen, its CPU-side pieces: the Qwen2.5-1.5B shape (built on the
meta device: no memory, no download), the word-level tokenizer of the model's vocabulary, the
text-only reward, the refusal without a GPU, and the whole run on a tiny config on the CPU."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "enhancer.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("enhancer_benchmark", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_qwen_shape_has_qwen25_1_5b_parameter_count(bench):
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    with torch.device("meta"):
        model = Qwen2ForCausalLM(Qwen2Config(**bench.QWEN25_1_5B))
    params = sum(p.numel() for p in model.parameters())
    assert 1.50e9 < params < 1.58e9, params  # Qwen2.5-1.5B: 1.54 B with tied embeddings
    assert model.config.num_key_value_heads == 2 and model.config.num_hidden_layers == 28


def test_the_word_tokenizer_covers_every_id_and_the_reward_counts_even_words(bench):
    tok = bench.word_tokenizer(64)
    assert len(tok) == 64 and tok.pad_token_id == 0 and tok.eos_token_id == 1
    ids = tok("w5 w63 w7", add_special_tokens=False)["input_ids"]
    assert ids == [5, 63, 7] and tok.decode(ids) == "w5 w63 w7"
    assert bench.even_word_share(["w2 w3", "w4 w6 w8 w9", "", "hello"]) == [0.5, 0.75, 0.0, 0.0]


def test_gpu_qwen_without_a_gpu_says_so_and_exits_2(bench, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert bench.main(["--gpu-qwen"]) == 2
    assert "needs a CUDA GPU" in capsys.readouterr().out


@pytest.mark.heavy  # TRL's GRPOTrainer built and run for 2 steps on a 2-layer Qwen2: 7 s here
def test_the_tiny_qwen_grpo_run_writes_its_timings(bench, tmp_path, capsys):
    out = tmp_path / "gpu.json"
    argv = ["--gpu-qwen", "--qwen-tiny", "--qwen-steps", "2", "--qwen-generations", "2"]
    assert bench.main(argv + ["--qwen-tokens", "8", "--gpu-json", str(out)]) == 0
    r = json.loads(out.read_text())
    g = r["grpo"]
    assert r["shape_name"] == "tiny" and r["model"]["params"] < 1e6
    assert 0 < r["model"]["lora_trainable_params"] < r["model"]["params"]
    assert len(g["step_s_each"]) == 2 and g["step_s"] > 0 and 0 < g["share_generate"] < 1
    assert g["completion_mean_length"] == 8  # EOS suppressed: every completion is full length
    assert g["generated_tokens_per_s"] > 0 and g["peak_memory_gib"] is None
    assert f"json: {out}" in capsys.readouterr().out
