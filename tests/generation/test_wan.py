"""The Wan2.2 backend on tiny random models (CPU, no hub): loading, generation per variant,
equality with a direct diffusers call, image conditioning, keyframes, the memory ladder."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cinerl.core.settings import WanSettings
from cinerl.generation.wan.backend import WanBackend, to_uint8
from cinerl.generation.wan.loading import make_scheduler, resolve_sources
from cinerl.generation.wan.memory import GiB, plan_memory
from cinerl.generation.wan.variants import VARIANTS, fit_request, round_frames
from cinerl.core.errors import UserError
from cinerl.core.schema import ClipRequest
from tests.generation.wan_tiny import write_tiny_model

PROMPT = "a woman in a red coat walks on the stormy coast, slow pan"
NEG = "blurry, low quality"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("wan")
    return {v: write_tiny_model(v, root / v) for v in VARIANTS}


def backend(models, variant, **kw) -> WanBackend:
    return WanBackend(WanSettings(variant=variant, model_dir=str(models[variant]), steps=2, **kw))


def image(seed, h=32, w=64) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def request(**kw) -> ClipRequest:
    base = dict(prompt=PROMPT, negative_prompt=NEG, width=64, height=32, num_frames=5, seed=7)
    return ClipRequest(**{**base, **kw})


# rounding and planning (pure) ------------------------------------------------------------------
def test_sizes_and_frames_round_to_what_the_variant_accepts():
    five_b, a14b = VARIANTS["ti2v-5b"], VARIANTS["t2v-a14b"]
    fit = fit_request(five_b, 640, 360, 264)
    assert (fit.width, fit.height, fit.num_frames) == (640, 352, 121)
    assert any("640x360 rounded to 640x352" in w for w in fit.warnings)
    assert any("at most 121 frames" in w for w in fit.warnings)
    fit = fit_request(a14b, 640, 360, 50)
    assert (fit.width, fit.height, fit.num_frames) == (640, 368, 49)
    assert fit_request(a14b, 1280, 720, 81).warnings == ()
    assert [round_frames(n) for n in (1, 2, 4, 6, 8, 81)] == [1, 1, 5, 5, 9, 81]


def test_memory_plan_is_the_fastest_that_fits_and_flags_win():
    need = {
        "transformers": 10 * GiB,
        "largest_expert": 10 * GiB,
        "largest_block": GiB // 3,
        "text_encoder": 11 * GiB,
        "vae": GiB // 2,
        "activations": 4 * GiB,
        "vae_decode": 20 * GiB,
        "vae_decode_tiled": 6 * GiB,
    }
    roomy = plan_memory(80 * GiB, need)
    assert (roomy.offload, roomy.vae_tiling, roomy.text_encoder_cpu) == ("none", False, False)
    mid = plan_memory(45 * GiB, need)  # 45.5 with the text encoder: it goes to the CPU
    assert (mid.offload, mid.vae_tiling, mid.text_encoder_cpu) == ("none", False, True)
    small = plan_memory(24 * GiB, need)
    assert (small.offload, small.vae_tiling) == ("none", True) and small.text_encoder_cpu
    assert plan_memory(16 * GiB, need).offload == "model"  # one 10 GiB expert at a time
    assert plan_memory(12 * GiB, need).offload == "group"  # transformer blocks streamed in
    forced = plan_memory(80 * GiB, need, offload="group", vae_tiling="on", text_encoder="cpu")
    assert (forced.offload, forced.vae_tiling, forced.text_encoder_cpu) == ("group", True, True)
    assert plan_memory(None, need).reason.startswith("no CUDA device")


# loading ---------------------------------------------------------------------------------------
def test_missing_weights_name_every_piece_and_its_variable(tmp_path):
    (tmp_path / "vae").mkdir()
    (tmp_path / "vae" / "config.json").write_text("{}")
    with pytest.raises(UserError) as e:
        resolve_sources(VARIANTS["t2v-a14b"], tmp_path, env={"WAN_T5_PATH": str(tmp_path / "t5")})
    msg = str(e.value)
    assert "nothing is downloaded" in msg
    for piece, var in (
        ("tokenizer", "WAN_TOKENIZER_PATH"),
        ("text encoder", "WAN_T5_PATH"),
        ("diffusion transformer", "WAN_DIFFUSION_MODEL"),
        ("low-noise expert", "WAN_DIFFUSION_MODEL_2"),
    ):
        assert piece in msg and var in msg
    assert "Wan VAE" not in msg  # present, so not listed
    with pytest.raises(UserError, match="WAN_MODEL_ROOT"):
        resolve_sources(VARIANTS["ti2v-5b"], None, env={})


def test_component_variables_override_the_folder(models, tmp_path):
    five_b = models["ti2v-5b"]
    env = {
        "WAN_MODEL_ROOT": str(five_b),
        "WAN_VAE_PATH": str(five_b / "vae"),
        "WAN_DIFFUSION_MODEL": str(five_b / "transformer"),
    }
    src = resolve_sources(VARIANTS["ti2v-5b"], None, env=env)
    assert src.paths["transformer"] == five_b / "transformer"
    assert src.paths["tokenizer"] == five_b / "tokenizer"


def test_a_folder_of_another_variant_is_named(models):
    b = WanBackend(WanSettings(variant="t2v-a14b", model_dir=str(models["i2v-a14b"])))
    with pytest.raises(UserError, match="i2v-a14b, not t2v-a14b"):
        b.generate(request())


# generation ------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_each_variant_generates(models, variant):
    b = backend(models, variant)
    init = image(1) if variant == "i2v-a14b" else None
    clip = b.generate(request(init_image=init))
    assert clip.frames.shape == (5, 32, 64, 3) and clip.frames.dtype == np.uint8
    assert clip.fps == VARIANTS[variant].fps
    assert clip.frames.std() > 1.0  # random weights still draw something, not a flat frame
    rep = clip.metadata["report"]
    assert rep["variant"] == variant and rep["mode"] == ("i2v" if init is not None else "t2v")
    assert len(rep["timing"]["steps"]) == 2


def test_backend_equals_a_direct_diffusers_call_and_caches_embeddings(models):
    from diffusers import WanPipeline

    b = backend(models, "ti2v-5b")
    clip = b.generate(request())
    c = b.comp
    # plain diffusers: the 5B's per-token timesteps (expand_timesteps=True), prompts as text
    direct = WanPipeline(
        tokenizer=c.tokenizer,
        text_encoder=c.text_encoder,
        vae=c.vae,
        scheduler=make_scheduler(b.variant),
        transformer=c.transformer,
        expand_timesteps=True,
    )
    out = direct(
        prompt=PROMPT,
        negative_prompt=NEG,
        height=32,
        width=64,
        num_frames=5,
        num_inference_steps=2,
        guidance_scale=5.0,
        output_type="np",
        generator=torch.Generator("cpu").manual_seed(7),
    ).frames[0]
    ref = to_uint8(out)
    # the scalar timestep computes the same thing through a broadcast instead of per token
    assert np.abs(clip.frames.astype(int) - ref.astype(int)).max() <= 1
    assert clip.metadata["report"]["speed"]["scalar_timestep"] is True

    calls = []
    hook = c.text_encoder.register_forward_hook(lambda *a: calls.append(1))
    again = b.generate(request())
    other = b.generate(request(prompt=PROMPT + " at night"))
    hook.remove()
    assert np.array_equal(again.frames, clip.frames)
    assert len(calls) == 1  # only the new prompt was encoded
    assert other.metadata["report"]["loads"] == 1  # nothing reloaded
    assert not np.array_equal(other.frames, clip.frames)


def test_image_to_video_receives_the_first_frame_and_matches_diffusers(models):
    from diffusers import WanImageToVideoPipeline

    b = backend(models, "ti2v-5b")
    first = image(3)
    b.load()
    seen = []
    original = b.i2v.prepare_latents

    def prepare(img, *a, **kw):
        seen.append(img.clone())
        return original(img, *a, **kw)

    b.i2v.prepare_latents = prepare
    clip = b.generate(request(init_image=first))
    assert clip.metadata["report"]["mode"] == "i2v"
    expected = b.i2v.video_processor.preprocess(Image.fromarray(first), height=32, width=64)
    assert torch.allclose(seen[0].cpu(), expected)
    c = b.comp
    direct = WanImageToVideoPipeline(
        tokenizer=c.tokenizer,
        text_encoder=c.text_encoder,
        vae=c.vae,
        scheduler=make_scheduler(b.variant),
        transformer=c.transformer,
        expand_timesteps=True,
    )
    out = direct(
        image=Image.fromarray(first),
        prompt=PROMPT,
        negative_prompt=NEG,
        height=32,
        width=64,
        num_frames=5,
        num_inference_steps=2,
        guidance_scale=5.0,
        output_type="np",
        generator=torch.Generator("cpu").manual_seed(7),
    ).frames[0]
    # the backend decodes the pipeline's own latents; with diffusers 0.42 on the CPU one value in
    # ~30,000 rounds to the next uint8 level (float summation order), so: at most one level, rarely
    diff = np.abs(clip.frames.astype(int) - to_uint8(out).astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3
    assert not np.array_equal(b.generate(request(init_image=image(4))).frames, clip.frames)


def test_first_last_frame_clip_passes_both_images(models):
    b = backend(models, "i2v-a14b")
    first, last = image(5), image(6)
    b.load()
    seen = []
    original = b.i2v.prepare_latents

    def prepare(img, *a, **kw):
        # diffusers passes last_image as the 11th positional argument
        last_image = kw.get("last_image", a[9] if len(a) > 9 else None)
        seen.append((img.clone(), None if last_image is None else last_image.clone()))
        return original(img, *a, **kw)

    b.i2v.prepare_latents = prepare
    clip = b.generate(request(init_image=first, last_image=last))
    pre = b.i2v.video_processor.preprocess
    assert torch.allclose(seen[0][0].cpu(), pre(Image.fromarray(first), height=32, width=64))
    assert torch.allclose(seen[0][1].cpu(), pre(Image.fromarray(last), height=32, width=64))
    assert clip.metadata["report"]["first_last_frame"] is True
    plain = b.generate(request(init_image=first))
    assert not np.array_equal(plain.frames, clip.frames)  # the last frame changes the clip


def test_variants_that_cannot_take_an_image_say_so(models):
    clip = backend(models, "t2v-a14b").generate(request(init_image=image(1), last_image=image(2)))
    notes = " ".join(clip.metadata["report"]["warnings"])
    assert "continuity off: t2v-a14b" in notes
    with pytest.raises(UserError, match="needs a first frame"):
        backend(models, "i2v-a14b").generate(request())
    ref = backend(models, "i2v-a14b").generate(request(reference_image=image(9)))
    assert "reference image" in " ".join(ref.metadata["report"]["warnings"])


def test_out_of_memory_walks_the_ladder(models):
    b = backend(models, "t2v-a14b")
    b.load()
    forward = b.comp.transformer.forward
    tried = []

    def maybe_oom(hidden_states, *a, **kw):
        tried.append(hidden_states.shape[2])
        if hidden_states.shape[2] > 2:  # more than 2 latent frames "does not fit"
            raise torch.OutOfMemoryError("CUDA out of memory (forced by the test)")
        return forward(hidden_states, *a, **kw)

    b.comp.transformer.forward = maybe_oom
    clip = b.generate(request(num_frames=9))
    rep = clip.metadata["report"]
    assert [r["rung"] for r in rep["oom_ladder"]] == [
        "vae_tiling",
        "model_offload",
        "group_offload",
        "fewer_frames",
    ]
    assert "forced by the test" in rep["oom_ladder"][0]["error"]
    assert clip.frames.shape[0] == 5 and rep["frames"] == 5
    assert rep["memory_plan"]["vae_tiling"] and b.comp.vae.use_tiling
    assert rep["memory_plan"]["offload"] == "group"
    if torch.cuda.is_available():  # group offload really applied: hooks on the transformer
        from diffusers.hooks.group_offloading import _is_group_offload_enabled

        assert _is_group_offload_enabled(b.comp.transformer)
    else:
        assert any("no CUDA device" in n for n in rep["placement_notes"])
    # the plan stays down the ladder: the next clip does not hit the wall again
    n = len(tried)
    b.generate(request(num_frames=9, seed=8))
    assert all(t <= 2 for t in tried[n:])
