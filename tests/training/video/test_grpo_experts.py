"""`--expert high|low|both` of the Flow-GRPO trainer on a tiny random two-expert Wan (T2V-A14B,
CPU): rollouts run both experts, only the chosen one gets a LoRA and gradients, its window lies
in its own sampling steps, and `cinerl make --backend wan --lora DIR` loads what it holds."""

from __future__ import annotations

import json
import random

import pytest
import torch
from safetensors.torch import load_file

from cinerl.core.errors import UserError
from cinerl.training.video import flow_matching as fm
from cinerl.training.video.grpo import VideoGRPOTrainer, expert_steps, window_of
from tests.generation.wan_tiny import write_tiny_model
from tests.training.video.test_grpo import config, tiny_model

BOUNDARY = 0.875  # t2v-a14b: the high-noise expert at sigma >= 0.875


@pytest.fixture(scope="module")
def a14b(tmp_path_factory):
    return write_tiny_model("t2v-a14b", tmp_path_factory.mktemp("wan14") / "model")


def a14b_config(model, prompts, out, **kw):
    # 4 sampling steps at flow shift 12: sigmas 1, 0.961 (high expert), 0.861, 0.126 (low)
    return config(model, prompts, out, train_steps=4, learning_rate=1e-2, **kw)


def test_expert_low_trains_only_the_low_expert_and_make_loads_it(a14b, prompts, tmp_path):
    from cinerl.core.settings import WanSettings
    from cinerl.generation.wan.backend import WanBackend
    from cinerl.generation.wan.lora import MANIFEST, WEIGHTS, WEIGHTS_2

    out = tmp_path / "low"
    tr = VideoGRPOTrainer(a14b_config(a14b, prompts, out, steps=2, expert="low", train_window=1))
    assert list(tr.ranges) == ["transformer_2"] and tr.trainable == range(2, 4)
    used = []
    real = tr._expert_of
    tr._expert_of = lambda s: used.append(real(s)) or used[-1]
    res = tr.train()
    assert {"transformer", "transformer_2"} <= set(used)  # the rollouts ran both experts
    for row in res.metrics:  # each step's window: one of the low expert's steps
        a, b = row["window"]
        assert b - a == 1 and all(float(tr.sigmas[i]) < BOUNDARY for i in range(a, b))
        assert row["groups_trained"] == 1 and row["first_pass_ratio_min"] == 1.0
    # the high expert has no LoRA and its weights are the folder's
    high = tr.frozen["transformer"]
    assert not any("lora_" in n for n, _ in high.named_parameters())
    on_disk = load_file(str(a14b / "transformer" / "diffusion_pytorch_model.safetensors"))
    assert all(torch.equal(high.state_dict()[k], v) for k, v in on_disk.items())
    # the LoRA folder holds the low expert only, and its LoRA moved
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["experts"] == ["transformer_2"] and manifest["expert"] == "low"
    assert (out / WEIGHTS_2).is_file() and not (out / WEIGHTS).exists()
    ckpt = load_file(str(out / "checkpoints" / "step_000002" / "lora.safetensors"))
    assert ckpt and all(k.startswith("experts.transformer_2.") for k in ckpt)
    assert any(float(v.abs().max()) > 0 for k, v in ckpt.items() if "lora_B" in k)
    # `cinerl make --backend wan --lora DIR`: the low expert gets it, the high one nothing
    backend = WanBackend(WanSettings(variant="t2v-a14b", model_dir=str(a14b), lora=str(out), compile="off"))
    backend.load()
    assert backend.stats["lora"]["experts"] == ["transformer_2"]
    assert not any("lora_" in n for n, _ in backend.comp.transformer.named_parameters())
    loaded = dict(backend.comp.transformer_2.named_parameters())
    for k, v in ckpt.items():
        name = k.removeprefix("experts.transformer_2.").replace(".default.", ".cinerl.")
        assert torch.equal(loaded[name], v), k


def test_expert_both_trains_both_and_a_bad_expert_is_refused(a14b, prompts, tmp_path, tmp_path_factory):
    out = tmp_path / "both"
    tr = VideoGRPOTrainer(a14b_config(a14b, prompts, out, steps=1, kl=0.0))
    assert tr.trainable == range(4)
    tr.train()
    assert not tr.frozen and tr.experts.names == ["transformer", "transformer_2"]
    ckpt = load_file(str(out / "checkpoints" / "step_000001" / "lora.safetensors"))
    for name in ("transformer", "transformer_2"):  # every step trained: both LoRAs moved
        assert any(
            float(v.abs().max()) > 0
            for k, v in ckpt.items()
            if k.startswith(f"experts.{name}.") and "lora_B" in k
        )
    assert json.loads((out / "cinerl_lora.json").read_text())["experts"] == ["transformer", "transformer_2"]
    bad = tmp_path / "bad"
    five_b = tiny_model(tmp_path_factory)
    cases = [
        (five_b, dict(expert="high"), "ti2v-5b has one expert"),
        (a14b, dict(expert="middle"), "--expert must be high, low or both"),
        (a14b, dict(expert="low", train_steps=1), "none of the 1 sampling steps"),
    ]
    for model, kw, words in cases:
        with pytest.raises(UserError, match=words.replace("-", r"\-")):
            VideoGRPOTrainer(config(model, prompts, bad, **kw))
    assert not bad.exists()


def test_the_window_is_drawn_inside_the_experts_steps():
    from cinerl.training.video import sde

    sig = sde.flow_sigmas(20, 12.0)
    high = expert_steps(sig, BOUNDARY, {"transformer": (BOUNDARY, 1.0)})
    low = expert_steps(sig, BOUNDARY, {"transformer_2": (0.0, BOUNDARY)})
    assert high == range(0, 13) and low == range(13, 20)  # sigma 0.878 is step 12's, 0.852 step 13's
    assert expert_steps(sig, None, {"transformer": (0.0, 1.0)}) == range(20)
    starts = set()
    for step in range(200):
        w = window_of(0, step, 20, 3, low)
        assert len(w) == 3 and w.start >= 13 and w.stop <= 20
        starts.add(w.start)
    assert starts == set(range(13, 18))  # every position of the range is drawn
    assert window_of(0, 5, 20, 0, low) == low and window_of(0, 5, 20, 9, low) == low
    # without a range (5B, --expert both): the windows of before, a seeded start in 0..16
    for s in range(5):
        start = random.Random(fm.sample_seed(3, s, -3)).randint(0, 16)
        assert window_of(3, s, 20, 4) == window_of(3, s, 20, 4, range(20)) == range(start, start + 4)
