"""SFT of the prompt enhancer (TRL SFTTrainer + peft LoRA): the loss at initialisation is the
base model's, a few steps lower it on the data, and the saved enhancer loads and writes."""

from __future__ import annotations

import json

import pytest

from cinerl.core.errors import UserError
from cinerl.training.datasets.prompt_pairs import STARTER_SFT, read_rows
from cinerl.training.enhancer.config import read_metrics
from cinerl.training.enhancer.model import INFO, Enhancer, load_causal_lm, load_tokenizer, resolve_base
from cinerl.training.enhancer.sft import EnhancerSFTConfig, completion_loss, lora_config, train


def _rows(n):
    return read_rows(STARTER_SFT)[:n]


def _data(tmp_path, rows):
    path = tmp_path / "sft.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_lora_at_initialisation_is_the_base_model(tiny_lm):
    from peft import get_peft_model

    rows = _rows(3)
    tok = load_tokenizer(tiny_lm)
    base_loss = completion_loss(load_causal_lm(tiny_lm), tok, rows)
    peft = get_peft_model(load_causal_lm(tiny_lm), lora_config(EnhancerSFTConfig()))
    # LoRA's B starts at zero (Hu et al. 2021, sec. 4.1): the adapted model is the base exactly
    assert completion_loss(peft, tok, rows) == pytest.approx(base_loss, abs=1e-6)
    assert base_loss > 9.0  # a random model over a 49k vocabulary: about ln(49152) = 10.8
    names = {n.split(".")[-1] for n, m in peft.named_modules() if hasattr(m, "lora_A")}
    assert names >= {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}


@pytest.mark.slow
def test_sft_lowers_the_loss_of_a_tiny_model_and_saves_a_loadable_enhancer(tiny_lm, tmp_path):
    """Slow: 70 s here on 2 shared cores (the 49k-token vocabulary's logits dominate). A system
    instruction of its own: enhancer.json keeps it, so GRPO and `enhance` prompt the same way."""
    rows = _rows(4)
    tok = load_tokenizer(tiny_lm)
    system = "Write the video prompt of the brief."
    before = completion_loss(load_causal_lm(tiny_lm), tok, rows, system)
    cfg = EnhancerSFTConfig(
        base=str(tiny_lm),
        data=str(_data(tmp_path, rows)),
        out=str(tmp_path / "enh"),
        steps=8,
        lr=2e-2,
        batch_size=2,
        system=system,
    )
    out = train(cfg)
    info = json.loads((out / INFO).read_text())
    assert info["kind"] == "sft" and info["base"] == str(tiny_lm) and info["config"]["lora_rank"] == 16
    assert info["system"] == system
    assert (out / "adapter_config.json").is_file() and (out / "adapter_model.safetensors").is_file()
    enh = Enhancer(out)
    assert enh.system == system
    after = completion_loss(enh.model, enh.tokenizer, rows, system)
    assert after < before - 0.5, (before, after)
    metrics = read_metrics(out / "metrics.jsonl")
    losses = [m["loss"] for m in metrics if "loss" in m]
    assert len(losses) == 8 and losses[-1] < losses[0]
    text = enh.write([rows[0]["prompt"]], max_new_tokens=8)
    assert len(text) == 1 and text[0]
    # the base alone (adapter=False) is the untrained model: its loss is the one before
    plain = Enhancer(out, adapter=False)
    assert completion_loss(plain.model, plain.tokenizer, rows, system) == pytest.approx(before, abs=1e-5)


@pytest.mark.heavy
def test_sft_on_the_smollm2_gguf_lowers_its_loss(smollm2, tmp_path):
    """SmolLM2-135M from its .gguf (de-quantized, trained in float) at the default lr 2e-4, on
    4 image-to-video rows (the shorter ones). Slow: 305 s here, on 2 cores shared with other jobs
    (load average 4 to 7)."""
    rows = [r for r in read_rows(STARTER_SFT) if r["prompt"].endswith("image-to-video.")][:4]
    base = resolve_base(smollm2)
    before = completion_loss(load_causal_lm(base.folder), load_tokenizer(base.folder), rows)
    out = train(
        EnhancerSFTConfig(
            base=str(smollm2), data=str(_data(tmp_path, rows)), out=str(tmp_path / "e"), steps=4, batch_size=2
        )
    )
    enh = Enhancer(out)
    after = completion_loss(enh.model, enh.tokenizer, rows)
    assert after < before - 0.05, (before, after)
    assert enh.write([rows[1]["prompt"]], max_new_tokens=12)[0]


def test_a_hub_name_or_missing_model_is_refused(tmp_path):
    with pytest.raises(UserError, match="nothing is downloaded"):
        resolve_base("HuggingFaceTB/SmolLM2-135M-Instruct")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(UserError, match="must be a .gguf"):
        resolve_base(tmp_path / "notes.txt")
    with pytest.raises(UserError, match="no config.json"):
        resolve_base(tmp_path)
