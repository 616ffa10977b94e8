"""Several LoRAs at once on a tiny random Wan2.2 (`make --cast A=..,L1 --cast B=..,L2 --lora L3`):
each loads as its own diffusers adapter and they act together, each at its scale."""

from __future__ import annotations

import json

import pytest
import torch

from cinerl.core.errors import UserError
from cinerl.core.settings import WanSettings
from cinerl.generation.wan import lora as fmt
from cinerl.generation.wan.backend import WanBackend
from cinerl.training.character.cast import with_cast_loras


def write_lora(model_dir, out, seed: int, rank: int, trainer: str):
    """A LoRA folder in the trainers' format: a peft adapter on the tiny transformer with random
    A and B (seeded), saved by diffusers with the CineRL manifest."""
    from diffusers import WanPipeline, WanTransformer3DModel
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    t = WanTransformer3DModel.from_pretrained(str(model_dir / "transformer"))
    cfg = LoraConfig(r=rank, lora_alpha=rank, target_modules=["to_q", "to_k", "to_v", "to_out.0"])
    t.add_adapter(cfg)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in t.named_parameters():
            if ".lora_" in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    WanPipeline.save_lora_weights(
        str(out),
        transformer_lora_layers=get_peft_model_state_dict(t),
        weight_name=fmt.WEIGHTS,
        transformer_lora_adapter_metadata=cfg.to_dict(),
    )
    manifest = {"variant": "ti2v-5b", "experts": ["transformer"], "trainer": trainer}
    manifest["base"] = fmt.base_shape(t)
    (out / fmt.MANIFEST).write_text(json.dumps(manifest))
    return out


def test_cast_loras_and_a_style_lora_load_as_adapters_that_act_together(model, tmp_path):
    a = write_lora(model, tmp_path / "mara", 1, 4, "character")
    b = write_lora(model, tmp_path / "tom", 2, 2, "character")
    style = write_lora(model, tmp_path / "style", 3, 4, "video-dpo")
    setting = with_cast_loras(f"{style}:0.5", [a, b], 0.8)
    assert setting == f"{style}:0.5;{a}:0.8;{b}:0.8"  # --lora first, then the cast in order
    backend = WanBackend(WanSettings(model_dir=str(model), steps=2, lora=setting, compile="off"))
    backend.load()
    info = backend.stats["lora"]
    assert [(i["adapter"], i["scale"], i["trainer"]) for i in info["adapters"]] == [
        ("cinerl", 0.5, "video-dpo"),
        ("cinerl_2", 0.8, "character"),
        ("cinerl_3", 0.8, "character"),
    ]
    assert info["path"] == str(style)  # the one-LoRA report shape stays the first's
    t = backend.comp.transformer
    # one attention projection: its output is the base's plus every adapter's scaled B A x
    layer = t.blocks[0].attn1.to_q
    assert sorted(layer.active_adapters) == ["cinerl", "cinerl_2", "cinerl_3"]
    x = torch.randn(3, layer.in_features)
    with torch.no_grad():
        want = layer.base_layer(x)
        for name, scale in (("cinerl", 0.5), ("cinerl_2", 0.8), ("cinerl_3", 0.8)):
            delta = layer.lora_B[name](layer.lora_A[name](x))
            want += scale * delta  # alpha == rank in write_lora: peft's scaling is 1 x the weight
        assert torch.allclose(layer(x), want, atol=1e-5)
        # and each adapter matters: dropping one changes the output
        t.set_adapters(["cinerl", "cinerl_2"], weights=[0.5, 0.8])
        assert not torch.allclose(layer(x), want, atol=1e-4)


def test_the_same_lora_twice_or_another_variants_is_one_line(model, tmp_path):
    a = write_lora(model, tmp_path / "mara", 1, 2, "character")
    with pytest.raises(UserError, match="given twice"):
        with_cast_loras(str(a), [a], 1.0)
    manifest = json.loads((a / fmt.MANIFEST).read_text())
    (a / fmt.MANIFEST).write_text(json.dumps({**manifest, "variant": "t2v-a14b"}))
    b = write_lora(model, tmp_path / "tom", 2, 2, "character")
    with pytest.raises(UserError, match="was trained for Wan2.2 t2v-a14b"):
        fmt.preflight_lora(with_cast_loras(None, [b, a], 1.0), "ti2v-5b")
