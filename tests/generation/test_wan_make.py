"""`cinerl make --backend wan` on tiny random Wan2.2 folders: the whole loop end to end, the
keyframe mode, and the missing-weights error at the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from cinerl.core.settings import Settings
from cinerl.runtime.director import make_film
from cinerl.generation.wan.backend import shared_backend
from cinerl.core.media import load_png, read_mp4
from tests.e2e.helpers import CINERL, PROMPT, run
from tests.generation.wan_tiny import write_tiny_model


@pytest.mark.slow
def test_cinerl_make_with_the_wan_backend_runs_end_to_end(tmp_path):
    model = write_tiny_model("ti2v-5b", tmp_path / "model")
    out = tmp_path / "run"
    res = run(
        [
            CINERL,
            "make",
            PROMPT,
            "--out",
            str(out),
            "--policy",
            str(tmp_path / "p.pt"),
            "--backend",
            "wan",
            "--model-dir",
            str(model),
            "--steps",
            "2",
            "--size",
            "64x32",
            "--fps",
            "1",
            "--scenes",
            "2",
            "--attempts",
            "1",
            "--max-attempts",
            "1",
        ]
    )
    assert res.returncode == 0, res.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["backend"] == "wan" and report["settings"]["wan"]["variant"] == "ti2v-5b"
    assert report["policy"]["version_end"] == 2 and len(report["scenes"]) == 2
    for sc in report["scenes"]:
        for a in sc["attempts"]:
            info = a["backend_info"]
            assert info["variant"] == "ti2v-5b" and info["loads"] == 1  # loaded once per run
            assert info["mode"] == ("t2v" if sc["scene"] == 0 else "i2v")  # continuity
            assert a["reward"]["components"]["temporal_flicker"]["status"] == "ok"
            frames, fps = read_mp4(out / a["clip_path"])
            # 10-12 s at 1 fps = 10-12 frames, rounded to 4n+1, at the variant's 24 fps
            assert fps == 24 and frames.shape[1:] == (32, 64, 3) and len(frames) in (9, 13)
    assert (out / "film.mp4").exists() and (out / "report.html").exists()


def test_keyframe_mode_runs_each_clip_between_two_keyframes(tmp_path):
    model = write_tiny_model("i2v-a14b", tmp_path / "model")
    settings = Settings.of(
        run__backend="wan",
        wan__model_dir=str(model),
        wan__variant="i2v-a14b",
        wan__steps=2,
        run__shot_mode="keyframes",
        run__width=64,
        run__height=32,
        run__fps=1,
        plan__scenes=2,
        run__attempts=1,
        run__max_attempts=1,
        policy__mode="random",
    )
    backend = shared_backend(settings.wan)
    backend.load()
    seen = []
    original = backend.i2v.prepare_latents

    def prepare(img, *a, **kw):
        seen.append((img.clone(), a[9].clone()))  # image and last_image (11th positional)
        return original(img, *a, **kw)

    backend.i2v.prepare_latents = prepare
    out = tmp_path / "run"
    result = make_film(PROMPT, out, settings)
    keys = sorted((out / "keyframes").glob("boundary_*.png"))
    assert [k.name for k in keys] == ["boundary_00.png", "boundary_01.png", "boundary_02.png"]
    kf = [load_png(k) for k in keys]
    pre = backend.i2v.video_processor.preprocess
    assert len(seen) == 2
    for i, (first, last) in enumerate(seen):  # scene i: keyframe i -> keyframe i+1
        np.testing.assert_allclose(first.cpu(), pre(Image.fromarray(kf[i]), height=32, width=64))
        np.testing.assert_allclose(last.cpu(), pre(Image.fromarray(kf[i + 1]), height=32, width=64))
    for sc in result.report.scenes:
        assert sc.attempts[0].backend_info["first_last_frame"] is True


def test_missing_weights_exit_2_before_anything_is_written(tmp_path):
    out = tmp_path / "run"
    res = run(
        [
            CINERL,
            "make",
            PROMPT,
            "--out",
            str(out),
            "--backend",
            "wan",
            "--variant",
            "t2v-a14b",
            "--model-dir",
            str(tmp_path),
        ]
    )
    assert res.returncode == 2
    for var in (
        "WAN_TOKENIZER_PATH",
        "WAN_T5_PATH",
        "WAN_VAE_PATH",
        "WAN_DIFFUSION_MODEL",
        "WAN_DIFFUSION_MODEL_2",
    ):
        assert var in res.stderr
    assert "Traceback" not in res.stderr
    assert not out.exists() or not any(out.iterdir())
