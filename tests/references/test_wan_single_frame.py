"""Wan single frame as a reference image backend, on a tiny random Wan2.2 5B written to disk."""

import numpy as np

from cinerl.core.settings import Settings
from cinerl.generation.registry import get_image_backend
from tests.generation.wan_tiny import write_tiny_model


def test_wan_single_frame_renders_a_reference_image(tmp_path):
    model = write_tiny_model("ti2v-5b", tmp_path / "model")
    settings = Settings.of(wan__steps=2)
    backend = get_image_backend("wan", settings, model_path=str(model))
    prompt = "Medium shot, static camera. Character reference on a plain studio backdrop."
    image = backend.generate_image(prompt, 64, 32, 3)
    assert image.dtype == np.uint8 and image.shape == (32, 64, 3)
    assert np.array_equal(image, backend.generate_image(prompt, 64, 32, 3))  # seeded
    assert not np.array_equal(image, backend.generate_image(prompt, 64, 32, 4))
