"""Evaluation clips and the curriculum's reward gate (training/video/evaluate.py) on a tiny random
Wan with its VAE (CPU, no hub): clips with the LoRA and with it disabled on the same seeds, scored
by the reward components, charted in the report; the gate deciding on the length-sensitive
components; the regional compile and checkpointing choices (training/video/speed.py)."""

from __future__ import annotations

import json

import pytest
import torch

from cinerl.core.errors import UserError
from cinerl.training.video import speed
from cinerl.training.video.curriculum import Curriculum
from cinerl.training.video.dpo import Trainer, VideoDPOConfig
from cinerl.training.video.evaluate import LENGTH_SENSITIVE, MONITORING
from tests.generation.wan_tiny import make_transformer, make_vae
from tests.training.video.tiny import write_pairs, write_transformers


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = write_transformers("ti2v-5b", tmp_path_factory.mktemp("wan") / "model")
    make_vae("ti2v-5b").save_pretrained(folder / "vae")
    return folder


def cfg(model, pairs, out, **kw) -> VideoDPOConfig:
    base = dict(
        model_dir=str(model),
        pairs=str(pairs),
        out=str(out),
        steps=2,
        warmup_steps=0,
        learning_rate=3e-2,
        lora_rank=4,
        lora_alpha=4,
        checkpoint_every=2,
        eval_every=2,
        eval_prompts=1,
        eval_steps=2,
        curriculum="5,9",
        stage_steps=1,
    )
    return VideoDPOConfig(**{**base, **kw})


def test_evaluation_and_the_reward_gate(model, tmp_path):
    pairs = write_pairs(tmp_path / "data", n=2, frames=9, cond=True)
    out = tmp_path / "out"
    trainer = Trainer(cfg(model, pairs, out))
    res = trainer.run()

    # the gate after stage 1 rendered clips at 5 and 9 frames and judged length-sensitive components
    gate = res.curriculum["history"][0]
    assert gate["gate"] == "rewards" and gate["frames"] == 5 and gate["next_frames"] == 9
    assert gate["metrics"] and set(gate["metrics"]) <= set(LENGTH_SENSITIVE)
    fell = [k for k in gate["metrics"] if gate["next_metrics"].get(k, 1e9) < gate["metrics"][k] - 0.05]
    assert gate["fell"] == fell and gate["decision"] == ("advance" if not fell else "retry")
    assert (out / "eval" / "gate_000001_f5_p0.mp4").is_file() and (
        out / "eval" / "gate_000001_f9_p0.mp4"
    ).is_file()

    # one evaluation at step 2: the LoRA's and the untrained model's scores, same prompt and seed
    (ev,) = res.evaluations
    assert ev["step"] == 2 and ev["frames"] == 9
    scored = {k[5:] for k in ev if k.startswith("eval/")}
    assert {"warp_consistency", "flow_smoothness", "temporal_flicker"} <= scored <= set(MONITORING)
    assert all(0 <= ev[f"eval/{k}"] <= 1 and 0 <= ev[f"base/{k}"] <= 1 for k in scored)
    assert "clip_alignment" in ev["not_scored"]  # CLIP weights are not configured here: said why
    assert all((out / c).is_file() for c in ev["clips"] + ev["base_clips"])
    logged = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged if r.get("kind") == "eval"] == [2]
    assert len(res.metrics) == 2 and all("loss" in m for m in res.metrics)
    page = (out / "training_report.html").read_text()
    assert "eval/warp_consistency" in page and "untrained model (dashed)" in page
    assert "<video src='eval/step_000002_p0.mp4'" in page and "base_f9_p0.mp4" in page

    # the untrained arm is the transformer with its LoRA off, i.e. LoRA B = 0; the trained arm differs
    evaluator = trainer.evaluator
    off = evaluator.latents(0, 5, lora=False)
    on = evaluator.latents(0, 5, lora=True)
    assert not torch.equal(on, off)
    mod = evaluator.experts.experts["transformer"]
    with torch.no_grad():
        for n, p in mod.named_parameters():
            if "lora_B" in n:
                p.zero_()
    assert torch.equal(evaluator.latents(0, 5, lora=True), off)


def test_the_reward_gate_needs_the_vae(tmp_path):
    bare = write_transformers("ti2v-5b", tmp_path / "bare")
    pairs = write_pairs(tmp_path / "data", n=1, frames=9)
    with pytest.raises(UserError, match="--gate rewards renders clips and .* has no vae/"):
        Trainer(cfg(bare, pairs, tmp_path / "out", gate="rewards", eval_every=0)).run()


def test_a_gate_that_measures_nothing_stops_the_curriculum():
    c = Curriculum([5, 9], stage_steps=2)
    d = c.apply(2, {"warp_consistency": 0.9}, {"seam_continuity": 0.8})
    assert d["decision"] == "stop" and c.status == "stopped"
    assert "measured no metric at both 5 and 9 frames" in c.reason


def test_checkpointing_compile_and_optimizer_choices():
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert speed.Checkpointing("auto", cpu, 5001).on and not speed.Checkpointing("auto", cpu, 5000).on
    auto_gpu = speed.Checkpointing("auto", gpu, 50_000)
    assert not auto_gpu.on and auto_gpu.can_switch  # off while memory allows; an OOM turns it on
    assert speed.Checkpointing("on", cpu, 1).on and not speed.Checkpointing("off", gpu, 10**6).can_switch
    m = make_transformer("ti2v-5b")
    speed.Checkpointing("on", cpu, 1).apply([m])
    assert m.gradient_checkpointing
    assert speed.compile_blocks([m]) == 2  # the tiny model's two WanTransformerBlocks
    assert all(b._compiled_call_impl is not None for b in m.blocks)
    assert speed.compile_wanted("auto", gpu) and not speed.compile_wanted("auto", cpu)
    p = torch.nn.Parameter(torch.zeros(2))
    assert not speed.adamw([p], 1e-4, 0.0, cpu).defaults["fused"]
    assert speed.is_oom(torch.OutOfMemoryError("CUDA out of memory")) and not speed.is_oom(ValueError("x"))
