"""Reference images: picking the image backend, a real (tiny, random) diffusers pipeline, and
references in `cinerl make` runs, read by the reward suite."""

import json

import numpy as np
import pytest

from typer.testing import CliRunner

from cinerl.apps.cli.app import app
from cinerl.core.errors import BackendUnavailable
from cinerl.generation.diffusers_image import DiffusersImageBackend
from cinerl.core.media import load_png
from cinerl.core.store import RunStore
from cinerl.planning.offline import plan_story
from cinerl.training.character.dataset.actors import generate_actor_dataset
from cinerl.generation.registry import get_image_backend
from cinerl.references.preproduce import preproduce
from cinerl.rewards.colour import lab_to_rgb
from cinerl.rewards.components.character import reference_look
from tests.e2e.helpers import CINERL, PROMPT, run
from tests.fixtures.faces import FACE
from tests.references.tiny_diffusers import save_tiny_sd


def test_unconfigured_backends_are_unavailable_with_a_reason(tmp_path):
    assert get_image_backend("previz").name == "previz"
    with pytest.raises(BackendUnavailable, match="needs a local pipeline folder"):
        get_image_backend("diffusers")
    with pytest.raises(BackendUnavailable, match="not a saved diffusers pipeline"):
        get_image_backend("diffusers", model_path=str(tmp_path))
    with pytest.raises(BackendUnavailable, match="Wan"):
        get_image_backend("wan")
    with pytest.raises(BackendUnavailable, match="unknown image backend 'dalle'"):
        get_image_backend("dalle")


def test_diffusers_pipeline_renders_references_and_actor_sets(tmp_path):
    t2i = save_tiny_sd(tmp_path / "sd")
    backend = get_image_backend("diffusers", model_path=str(t2i))
    assert isinstance(backend, DiffusersImageBackend) and not backend.accepts_image
    backend.steps = 2
    a = backend.generate_image("a woman in the rain", 72, 40, seed=1)
    assert a.shape == (40, 72, 3) and a.dtype == np.uint8 and a.std() > 1
    assert np.array_equal(a, backend.generate_image("a woman in the rain", 72, 40, seed=1))
    assert not np.array_equal(a, backend.generate_image("a woman in the rain", 72, 40, seed=2))
    bible = plan_story(PROMPT, seed=0, scenes=1)
    store = RunStore(tmp_path / "run" / "state.db")
    refs = preproduce(bible, backend, tmp_path / "run", store, (72, 40), seed=0)
    assert set(refs.characters) == {c.id for c in bible.characters}
    for key, rel in refs.paths.items():
        assert load_png(tmp_path / "run" / rel).shape == (40, 72, 3)
    store.close()
    # an image-conditioned pipeline (img2img here; FLUX Kontext the same way) makes the set
    i2i = save_tiny_sd(tmp_path / "sd_i2i", img2img=True)
    res = generate_actor_dataset(
        FACE,
        "human",
        tmp_path / "a1",
        backend="diffusers",
        model_path=str(i2i),
        width=64,
        steps=2,
        batch_size=17,
    )
    assert (res.generated, res.target) == (17, 17)
    payload = json.loads((tmp_path / "a1" / "payloads" / "request_payload_01.json").read_text())
    assert payload["renderer"]["pipeline"] == "StableDiffusionImg2ImgPipeline"
    assert payload["render"]["batched"] == 17  # one pipeline call for the batch
    assert load_png(res.images[17]).shape == (32, 64, 3)


def test_references_are_in_make_runs_and_read_by_the_rewards(tmp_path):
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
            "--scenes",
            "1",
            "--attempts",
            "1",
            "--max-attempts",
            "1",
            "--size",
            "96x64",
            "--fps",
            "4",
        ]
    )
    assert res.returncode == 0, res.stderr
    report = json.loads((out / "report.json").read_text())
    scene = report["bible"]["scenes"][0]
    for cid in scene["character_ids"]:
        assert (out / report["references"][f"character:{cid}"]).exists()
    assert (out / report["references"][f"location:{scene['location_id']}"]).exists()
    comp = report["scenes"][0]["attempts"][0]["reward"]["components"]["character_consistency"]
    assert comp["status"] == "ok"
    for cid in scene["character_ids"]:
        look = reference_look(load_png(out / report["references"][f"character:{cid}"]))
        want = [list(map(int, c)) for c in lab_to_rgb(look["lab"])]
        assert comp["raw"]["characters"][cid]["colors_rgb"] == want
    # an image backend that is not configured stops the run with a clear message
    res = CliRunner().invoke(
        app,
        [
            "make",
            PROMPT,
            "--out",
            str(tmp_path / "bad"),
            "--scenes",
            "1",
            "--size",
            "96x64",
            "--fps",
            "4",
            "--policy",
            str(tmp_path / "p.pt"),
        ],
        env={"CINERL_IMAGE_BACKEND": "diffusers"},
    )
    assert res.exit_code == 2 and "needs a local pipeline folder" in " ".join(res.output.split())
