"""`generate_actor_dataset`: images, payloads, grid, counts; a failure costs one image only."""

import json

import cv2
import numpy as np
import pytest

from cinerl.core.media import load_png
from cinerl.training.character.dataset.actors import (
    GRID_COLUMNS,
    GRID_TILE_WIDTH,
    PortraitConditioned,
    generate_actor_dataset,
)
from cinerl.training.character.dataset.portrait import load_portrait
from cinerl.training.character.dataset.prompts import actor_prompts
from tests.fixtures.faces import FACE

WIDTH = 192  # -> 192x112 (16:9, sides multiples of 16)


def test_full_set_with_payloads_grid_and_counts(tmp_path):
    out = tmp_path / "actor"
    seen = []
    res = generate_actor_dataset(
        FACE,
        "human",
        out,
        actor_sex="female",
        batch_size=4,
        width=WIDTH,
        seed=7,
        on_image=lambda p, ok: seen.append((p.index, ok)),
    )
    assert (res.generated, res.target) == (17, 17) and not res.failures
    assert seen == [(i, True) for i in range(1, 18)]
    prompts = actor_prompts("woman")
    assert res.image_locations == [
        str((out / "images" / f"training_image_{p.index:02d}_{p.style}.jpg").resolve()) for p in prompts
    ]
    for p in prompts:
        img = load_png(out / "images" / f"training_image_{p.index:02d}_{p.style}.jpg")
        assert img.shape == (112, 192, 3)
        payload = json.loads((out / "payloads" / f"request_payload_{p.index:02d}.json").read_text())
        assert payload["prompt"] == p.text and payload["style"] == p.style
        assert payload["category"] == p.category and payload["status"] == "ok"
        assert (payload["width"], payload["height"], payload["aspect_ratio"]) == (192, 112, "16:9")
        assert payload["descriptor"] == "woman" and payload["total"] == 17
        assert payload["batch"] == (p.index - 1) // 4 + 1
        assert payload["renderer"]["face"]["method"] in ("dlib-hog", "opencv-haar")
        assert payload["portrait"]["sha256"] == load_portrait(FACE).sha256
    grid = load_png(res.grid)
    th = round(GRID_TILE_WIDTH * 9 / 16)
    assert grid.shape == (4 * (th + 4) + 4, GRID_COLUMNS * (GRID_TILE_WIDTH + 4) + 4, 3)
    # tile 8 (pen and ink) in the grid is the pen-and-ink image, scaled
    tile = grid[4 + (th + 4) + 20 : 4 + (th + 4) + th, 4 + 2 * (GRID_TILE_WIDTH + 4) :][:, :GRID_TILE_WIDTH]
    ink = cv2.resize(
        load_png(out / "images" / "training_image_08_pen_ink.jpg"),
        (GRID_TILE_WIDTH, th),
        interpolation=cv2.INTER_AREA,
    )[20:]
    assert np.abs(tile.astype(int) - ink.astype(int)).mean() < 12
    summary = json.loads((out / "result.json").read_text())
    assert (summary["generated"], summary["target"]) == (17, 17)
    assert summary["image_locations"] == res.image_locations
    assert (out / "portrait.jpg").exists()


class FailingOn:
    """Wraps the real backend; raises for some prompt styles."""

    def __init__(self, inner, styles):
        self.inner, self.styles, self.name = inner, styles, inner.name

    def render(self, prompt, w, h, seed):
        for s in self.styles:
            if s in prompt:
                raise RuntimeError(f"content filter refused: {s}")
        return self.inner.render(prompt, w, h, seed)


def test_a_failed_image_is_logged_and_skipped(tmp_path, caplog):
    portrait = load_portrait(FACE)
    renderer = PortraitConditioned("previz", portrait)
    renderer.backend = FailingOn(renderer.backend, ["subway platform", "woodcut print"])
    out = tmp_path / "partial"
    (out / "images").mkdir(parents=True)
    stale = out / "images" / "training_image_04_subway_platform.jpg"
    stale.write_bytes(b"an older run's image")
    res = generate_actor_dataset(FACE, "robotic", out, batch_size=5, width=WIDTH, renderer=renderer)
    assert (res.generated, res.target) == (15, 17)
    assert [(f["index"], f["style"]) for f in res.failures] == [(4, "subway_platform"), (11, "woodcut")]
    assert "content filter refused" in res.failures[0]["error"]
    assert len(res.image_locations) == 15 and not stale.exists()
    assert sorted(res.images) == [i for i in range(1, 18) if i not in (4, 11)]
    for i in res.images:
        assert res.images[i].exists()
    failed = json.loads((out / "payloads" / "request_payload_11.json").read_text())
    assert failed["status"] == "failed" and "woodcut" in failed["error"] and "image" not in failed
    assert "robotic character" in failed["prompt"]
    assert any("image 4/17 (subway_platform) failed" in r.getMessage() for r in caplog.records)
    grid = load_png(res.grid)  # failed tile 4: dark with a red cross
    th = round(GRID_TILE_WIDTH * 9 / 16)
    x0 = 4 + 3 * (GRID_TILE_WIDTH + 4)
    cell = grid[4 + 20 : 4 + th, x0 : x0 + GRID_TILE_WIDTH].astype(int)
    assert cell.mean() < 60 and (cell[..., 0] - cell[..., 2] > 100).sum() > 100


def test_diffusers_backend_without_model_is_a_clear_error(tmp_path):
    from cinerl.core.errors import UserError

    with pytest.raises(UserError, match="--backend diffusers: .*needs a local pipeline folder"):
        generate_actor_dataset(FACE, "human", tmp_path / "x", backend="diffusers")
    assert not (tmp_path / "x").exists()
