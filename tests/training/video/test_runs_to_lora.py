"""The whole loop on tiny random Wan folders: `cinerl make --backend wan --save-latents` keeps each
take's latents, `cinerl train pairs` builds best-vs-worst pairs from the run, `cinerl train
video-dpo` trains on them, and `cinerl make --lora` loads the result, which reproduces the trained
transformer exactly; a LoRA of another variant is refused before anything is written."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from cinerl.core.settings import WanSettings
from cinerl.generation.wan.backend import WanBackend
from cinerl.generation.wan.take_latents import read_take_latents
from cinerl.training.datasets.video_pairs import read_pairs
from tests.e2e.helpers import CINERL, PROMPT, run
from tests.generation.wan_tiny import write_tiny_model

pytestmark = pytest.mark.slow

WAN = ["--backend", "wan", "--steps", "2", "--size", "64x32", "--fps", "1"]


def make(model, out, policy, *extra):
    cmd = [CINERL, "make", PROMPT, "--out", str(out), "--policy", str(policy), "--model-dir", str(model)]
    return run([*cmd, *WAN, *extra])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("loop")
    model = write_tiny_model("ti2v-5b", root / "model")
    res = make(
        model,
        root / "run",
        root / "p.pt",
        "--scenes",
        "2",
        "--attempts",
        "2",
        "--max-attempts",
        "2",
        "--save-latents",
    )
    assert res.returncode == 0, res.stderr
    pairs = root / "pairs.jsonl"
    res = run(
        [CINERL, "train", "pairs", "--from", str(root / "run"), "--out", str(pairs), "--min-margin", "0"]
    )
    assert res.returncode == 0, res.stderr
    lora = root / "lora"
    res = run(
        [
            CINERL,
            "train",
            "video-dpo",
            "--model-dir",
            str(model),
            "--pairs",
            str(pairs),
            "--out",
            str(lora),
            "--steps",
            "3",
            "--warmup-steps",
            "0",
            "--learning-rate",
            "1e-2",
            "--lora-rank",
            "4",
            "--lora-alpha",
            "4",
            "--checkpoint-every",
            "3",
        ]
    )
    assert res.returncode == 0, res.stderr
    return {"root": root, "model": model, "run": root / "run", "pairs": pairs, "lora": lora}


def test_save_latents_keeps_each_take_and_pairs_are_built_from_the_run(trained):
    run_dir = trained["run"]
    report = json.loads((run_dir / "report.json").read_text())
    for sc in report["scenes"]:
        for a in sc["attempts"]:
            lat = run_dir / a["clip_path"].replace(".mp4", ".latents.safetensors")
            take = read_take_latents(lat)
            assert take.meta["seed"] == str(a["seed"]) and take.meta["prompt"] == a["prompt"]
            frames = int(take.meta["num_frames"])  # 10-12 s at 1 fps: 9 or 13 frames
            assert frames == a["backend_info"]["frames"] and frames in (9, 13)
            assert take.meta["variant"] == "ti2v-5b" and take.latents.shape == (
                48,
                (frames - 1) // 4 + 1,
                2,
                4,
            )
            assert take.prompt_embeds.shape == (512, 32)
            # scene 0 starts from text, scene 1 from the previous scene's last frame
            assert take.condition_kind == ("none" if sc["scene"] == 0 else "first_frame")
            assert a["backend_info"]["latents_saved"] is True
    rows = read_pairs(trained["pairs"])
    assert len(rows) == 2  # best against worst, one pair per scene
    for row, sc in zip(rows, report["scenes"]):
        scores = {a["attempt"]: a["reward"]["total"] for a in sc["attempts"]}
        best, worst = max(scores.values()), min(scores.values())
        assert row.chosen_score == best and row.rejected_score == worst
        assert row.margin == pytest.approx(best - worst, abs=1e-6)
        assert row.chosen.endswith(".latents.safetensors") and row.rejected.endswith(".latents.safetensors")
        assert row.variant == "ti2v-5b" and row.num_frames in (9, 13) and (row.width, row.height) == (64, 32)
        assert "temporal_flicker" in row.chosen_components
        assert (row.condition_image is None) == (sc["scene"] == 0)


def test_the_loaded_lora_reproduces_the_trained_transformer_exactly(trained):
    from diffusers import WanTransformer3DModel

    from cinerl.training.video.model import add_lora, lora_targets

    model, lora = trained["model"], trained["lora"]
    reference = WanTransformer3DModel.from_pretrained(str(model / "transformer"))
    add_lora(reference, 4, 4, lora_targets("attn"))
    ckpt = load_file(str(lora / "checkpoints" / "step_000003" / "lora.safetensors"))
    with torch.no_grad():
        for n, p in reference.named_parameters():
            if p.requires_grad:
                p.copy_(ckpt["experts.transformer." + n])
    assert any(float(v.abs().max()) > 0 for k, v in ckpt.items() if "lora_B" in k)  # it trained
    backend = WanBackend(WanSettings(model_dir=str(model), steps=2, lora=str(lora), compile="off"))
    backend.load()
    assert backend.stats["lora"]["experts"] == ["transformer"]
    g = torch.Generator().manual_seed(0)
    kw = dict(
        hidden_states=torch.randn(1, 48, 3, 2, 4, generator=g),
        timestep=torch.tensor([700.0]),
        encoder_hidden_states=torch.randn(1, 16, 32, generator=g),
        return_dict=False,
    )
    with torch.no_grad():
        want = reference.eval()(**kw)[0]
        got = backend.comp.transformer(**kw)[0]
        assert torch.equal(want, got)
        backend.comp.transformer.disable_adapters()  # and the LoRA is what makes the difference
        assert not torch.equal(want, backend.comp.transformer(**kw)[0])


def test_make_with_the_lora_names_it_and_another_variant_is_refused(trained):
    root, lora = trained["root"], trained["lora"]
    out = root / "with_lora"
    res = make(
        trained["model"],
        out,
        root / "p2.pt",
        "--scenes",
        "1",
        "--attempts",
        "1",
        "--max-attempts",
        "1",
        "--lora",
        f"{lora}:0.5",
    )
    assert res.returncode == 0, res.stderr
    report = json.loads((out / "report.json").read_text())
    info = report["scenes"][0]["attempts"][0]["backend_info"]["lora"]
    assert info["path"] == str(lora) and info["scale"] == 0.5 and info["variant"] == "ti2v-5b"
    assert report["settings"]["wan"]["lora"] == f"{lora}:0.5"
    other = write_tiny_model("t2v-a14b", root / "a14b")
    out2 = root / "refused"
    res = run(
        [
            CINERL,
            "make",
            PROMPT,
            "--out",
            str(out2),
            "--model-dir",
            str(other),
            "--variant",
            "t2v-a14b",
            "--lora",
            str(lora),
            *WAN,
        ]
    )
    assert res.returncode == 2 and "trained for Wan2.2 ti2v-5b" in res.stderr and "t2v-a14b" in res.stderr
    assert "Traceback" not in res.stderr
    assert not out2.exists() or not any(out2.iterdir())
