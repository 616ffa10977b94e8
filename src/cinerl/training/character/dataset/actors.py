"""Actor training data: one portrait in, 17 cinematic images of that actor out.

Flow: normalise the portrait (references/portrait.py) -> the 17 prompts for the actor's type
(references/prompts.py) -> render at 16:9 in batches on an image backend conditioned on the
portrait -> save each image and its request payload as soon as it exists -> upload (local or S3,
references/storage.py) -> a debug grid of all images -> result.json with the image locations,
the generated and the target counts. One failed image is logged and skipped; the rest go on.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from cinerl.core.errors import BackendUnavailable
from cinerl.core.inputs import UserError, check_out_dir
from cinerl.core.media import atomic_write_bytes, atomic_write_text, save_jpeg
from cinerl.training.character.dataset.portrait import Portrait, load_portrait
from cinerl.training.character.dataset.prompts import TOTAL, ActorPrompt, actor_descriptor, actor_prompts
from cinerl.core.storage import LocalStorage, Storage, UploadFailed, parse_storage

log = logging.getLogger(__name__)
ASPECT = (16, 9)
ACTOR_BACKENDS = ("previz", "diffusers")
GRID_COLUMNS = 5
GRID_TILE_WIDTH = 320


def frame_size(width: int) -> tuple[int, int]:
    """16:9 size for a width; both sides multiples of 16 (what diffusion VAEs need)."""
    if width < 64 or width > 4096:
        raise UserError(f"--width must be between 64 and 4096 (got {width})")
    w = int(round(width / 16) * 16)
    return w, int(round(w * ASPECT[1] / ASPECT[0] / 16) * 16)


def image_name(p: ActorPrompt) -> str:
    return f"training_image_{p.index:02d}_{p.style}.jpg"


def payload_name(p: ActorPrompt) -> str:
    return f"request_payload_{p.index:02d}.json"


@dataclass
class ActorDataset:
    out_dir: Path
    descriptor: str
    target: int
    images: dict[int, Path] = field(default_factory=dict)  # index -> local image
    locations: dict[int, str] = field(default_factory=dict)  # index -> where it is stored
    failures: list[dict] = field(default_factory=list)  # generation failures
    upload_failures: list[dict] = field(default_factory=list)
    grid: Path | None = None
    result_path: Path | None = None

    @property
    def generated(self) -> int:
        return len(self.images)

    @property
    def image_locations(self) -> list[str]:
        return [self.locations[i] for i in sorted(self.locations)]

    def to_dict(self) -> dict:
        return {
            "image_locations": self.image_locations,
            "generated": self.generated,
            "target": self.target,
            "descriptor": self.descriptor,
            "images": {str(i): str(p) for i, p in sorted(self.images.items())},
            "failures": self.failures,
            "upload_failures": self.upload_failures,
            "grid": str(self.grid) if self.grid else None,
        }


class PortraitConditioned:
    """Makes any backend render *this* actor: previz-portrait takes the portrait at construction;
    a diffusers pipeline that accepts an image gets it with every call (FLUX Kontext edits)."""

    def __init__(self, name: str, portrait: Portrait, model_path: str | None = None, steps: int = 28):
        self.portrait = portrait
        if name == "previz":
            from cinerl.training.character.dataset.previz_portrait import PortraitPrevizBackend

            self.backend = PortraitPrevizBackend(portrait.rgb)
            self.threads = True  # OpenCV releases the GIL: a batch runs in threads
            self.info = {"backend": self.backend.name, **self.backend.conditioning()}
        elif name == "diffusers":
            from cinerl.generation.registry import get_image_backend

            self.backend = get_image_backend("diffusers", model_path=model_path, steps=steps)
            if not self.backend.accepts_image:
                raise UserError(
                    f"the pipeline in {model_path} ({self.backend.describe()['pipeline']}) "
                    "takes no input image, so it cannot be conditioned on the portrait"
                )
            self.threads = False  # one pipeline call per batch instead
            self.info = self.backend.describe()
        else:
            raise UserError(f"unknown --backend {name!r}; choose one of: {', '.join(ACTOR_BACKENDS)}")

    def render_batch(
        self, prompts: list[ActorPrompt], size: tuple[int, int], seeds: list[int], workers: int
    ) -> list[tuple[np.ndarray | None, dict, str | None]]:
        """(image or None, render info, error or None) per prompt, in order."""
        w, h = size

        def one(p: ActorPrompt, seed: int):
            t0 = time.perf_counter()
            try:
                if hasattr(self.backend, "render"):
                    img, info = self.backend.render(p.text, w, h, seed)
                else:
                    img = self.backend.generate_images([p.text], w, h, [seed], self.portrait.rgb)[0]
                    info = {}
                return img, {**info, "seconds": round(time.perf_counter() - t0, 3)}, None
            except Exception as e:  # one image's failure must not stop the set
                return None, {}, f"{type(e).__name__}: {e}"

        if self.threads and workers > 1:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                return list(pool.map(one, prompts, seeds))
        if not self.threads and len(prompts) > 1:
            t0 = time.perf_counter()
            try:
                imgs = self.backend.generate_images([p.text for p in prompts], w, h, seeds, self.portrait.rgb)
                dt = round((time.perf_counter() - t0) / len(prompts), 3)
                return [(im, {"seconds": dt, "batched": len(prompts)}, None) for im in imgs]
            except Exception as e:  # retry one by one so one bad prompt costs one image
                log.warning("batch of %d failed (%s); rendering one by one", len(prompts), e)
        return [one(p, s) for p, s in zip(prompts, seeds)]


def image_seed(seed: int, index: int) -> int:
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0] & 0x7FFFFFFF)


def debug_grid(
    tiles: list[np.ndarray | None],
    labels: list[str],
    tile_width: int = GRID_TILE_WIDTH,
    columns: int = GRID_COLUMNS,
) -> np.ndarray:
    """All images in index order; a failed one is a dark tile with a red cross, so the grid's
    positions always match the prompt numbers."""
    tw, th = tile_width, int(round(tile_width * ASPECT[1] / ASPECT[0]))
    rows = math.ceil(len(tiles) / columns)
    pad = 4
    grid = np.full((rows * (th + pad) + pad, columns * (tw + pad) + pad, 3), 24, np.uint8)
    for i, (tile, label) in enumerate(zip(tiles, labels)):
        r, c = divmod(i, columns)
        y, x = pad + r * (th + pad), pad + c * (tw + pad)
        if tile is None:
            cell = np.full((th, tw, 3), 45, np.uint8)
            cv2.line(cell, (0, 0), (tw - 1, th - 1), (200, 40, 40), 2)
            cv2.line(cell, (0, th - 1), (tw - 1, 0), (200, 40, 40), 2)
        else:
            cell = cv2.resize(tile, (tw, th), interpolation=cv2.INTER_AREA)
        cv2.rectangle(cell, (0, 0), (tw - 1, 16), (0, 0, 0), -1)
        cv2.putText(cell, label, (4, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
        grid[y : y + th, x : x + tw] = cell
    return grid


def generate_actor_dataset(
    portrait_path: str | Path,
    actor_type: str,
    out_dir: str | Path,
    actor_sex: str | None = None,
    batch_size: int = 5,
    storage: str | Storage | None = None,
    width: int = 1024,
    seed: int = 0,
    backend: str = "previz",
    model_path: str | None = None,
    steps: int = 28,
    on_image: Callable[[ActorPrompt, bool], None] | None = None,
    renderer: PortraitConditioned | None = None,
) -> ActorDataset:
    """Make the actor's training set in out_dir (and upload it to storage). User mistakes raise
    UserError before anything is written."""
    if batch_size < 1 or batch_size > 64:
        raise UserError(f"--batch-size must be between 1 and 64 (got {batch_size})")
    descriptor = actor_descriptor(actor_type, actor_sex)
    size = frame_size(width)
    portrait = load_portrait(portrait_path)
    out_dir = Path(out_dir).expanduser()
    store = (
        storage if storage is not None and not isinstance(storage, str) else parse_storage(storage, out_dir)
    )
    if hasattr(store, "check"):
        store.check()
    try:
        renderer = renderer or PortraitConditioned(backend, portrait, model_path, steps)
    except BackendUnavailable as e:
        raise UserError(f"--backend {backend}: {e}") from None
    out_dir = check_out_dir(out_dir)
    prompts = actor_prompts(descriptor)
    result = ActorDataset(out_dir, descriptor, target=len(prompts))
    images_dir, payload_dir = out_dir / "images", out_dir / "payloads"
    portrait_path_out = atomic_write_bytes(out_dir / "portrait.jpg", portrait.jpeg)
    common = {
        "actor_type": actor_type,
        "actor_sex": actor_sex,
        "descriptor": descriptor,
        "width": size[0],
        "height": size[1],
        "aspect_ratio": f"{ASPECT[0]}:{ASPECT[1]}",
        "portrait": {**portrait.summary(), "normalised": str(portrait_path_out)},
        "renderer": renderer.info,
    }
    tiles: list[np.ndarray | None] = [None] * len(prompts)
    uploads: list[tuple[int | None, Path, str]] = []

    for start in range(0, len(prompts), batch_size):
        batch = prompts[start : start + batch_size]
        seeds = [image_seed(seed, p.index) for p in batch]
        for p, s, (img, info, error) in zip(
            batch, seeds, renderer.render_batch(batch, size, seeds, batch_size)
        ):
            payload = {
                **common,
                "index": p.index,
                "total": len(prompts),
                "category": p.category,
                "style": p.style,
                "prompt": p.text,
                "seed": s,
                "batch": start // batch_size + 1,
                "render": info,
            }
            target = images_dir / image_name(p)
            if img is None:
                log.warning("image %d/%d (%s) failed: %s", p.index, len(prompts), p.style, error)
                payload.update(status="failed", error=error)
                result.failures.append({"index": p.index, "style": p.style, "error": error})
                target.unlink(missing_ok=True)  # never leave an older run's image here
            else:
                save_jpeg(img, target, quality=92)
                tiles[p.index - 1] = img
                result.images[p.index] = target
                payload.update(status="ok", image=str(target))
                uploads.append((p.index, target, f"images/{target.name}"))
            ppath = atomic_write_text(payload_dir / payload_name(p), json.dumps(payload, indent=2))
            uploads.append((None, ppath, f"payloads/{ppath.name}"))
            if on_image:
                on_image(p, img is not None)

    result.grid = out_dir / "training_grid.jpg"
    save_jpeg(debug_grid(tiles, [f"{p.index:02d} {p.style}" for p in prompts]), result.grid)
    uploads += [(None, portrait_path_out, "portrait.jpg"), (None, result.grid, result.grid.name)]
    for index, local, key in uploads:
        try:
            location = store.put(local, key)
        except UploadFailed as e:
            log.error("%s", e)
            result.upload_failures.append({"file": str(local), "key": key, "error": str(e)})
            location = str(local.resolve())
        if index is not None:
            result.locations[index] = location
    result.result_path = atomic_write_text(
        out_dir / "result.json", json.dumps({**result.to_dict(), "storage": store.describe()}, indent=2)
    )
    if not isinstance(store, LocalStorage):
        try:
            store.put(result.result_path, "result.json")
        except UploadFailed as e:
            result.upload_failures.append(
                {"file": str(result.result_path), "key": "result.json", "error": str(e)}
            )
    log.info("generated %d/%d images (%s)", result.generated, TOTAL, store.describe())
    return result
