"""The character LoRA's training images and captions.

Two inputs:
- a `cinerl actors` folder: `result.json` lists the images; each image's payload
  (`payloads/request_payload_NN.json`) holds its prompt and the actor descriptor ("woman",
  "robotic character"); the caption is that prompt with the descriptor replaced by the trigger
  phrase, so the LoRA ties the person's look to the trigger and not to the common noun;
- any folder of images, each with an optional caption in `NAME.txt` beside it (the trigger
  phrase is put in front of a caption that lacks it; an image without one is captioned with the
  trigger alone).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cinerl.core.errors import UserError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


@dataclass(frozen=True)
class Example:
    image: Path
    caption: str


def with_trigger(prompt: str, descriptor: str | None, trigger: str) -> str:
    """The prompt with the descriptor (as a whole word, every time) replaced by the trigger; a
    prompt without it gets the trigger in front."""
    if descriptor and re.search(rf"\b{re.escape(descriptor)}\b", prompt, re.I):
        return re.sub(rf"\b{re.escape(descriptor)}\b", trigger, prompt, flags=re.I)
    return prompt if trigger.lower() in prompt.lower() else f"{trigger}, {prompt}"


def _actors_examples(folder: Path, trigger: str) -> list[Example]:
    try:
        result = json.loads((folder / "result.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UserError(f"{folder / 'result.json'} is not readable JSON: {e}") from None
    payloads = {}
    for p in sorted((folder / "payloads").glob("request_payload_*.json")):
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        payloads[int(d.get("index", p.stem.rsplit("_", 1)[-1]))] = d
    out = []
    for loc in result.get("image_locations", []):
        path = Path(loc)
        if not path.is_file():  # the folder was moved: look under images/
            path = folder / "images" / Path(loc).name
        if not path.is_file():
            continue
        m = re.search(r"training_image_(\d+)", path.name)
        d = payloads.get(int(m.group(1))) if m else None
        if d is None or d.get("status", "ok") != "ok":
            continue
        out.append(Example(path, with_trigger(d["prompt"], d.get("descriptor"), trigger)))
    return out


def _folder_examples(folder: Path, trigger: str) -> list[Example]:
    out = []
    for p in sorted(folder.iterdir()):
        if p.suffix.lower() not in IMAGE_SUFFIXES or not p.is_file():
            continue
        txt = p.with_suffix(".txt")
        caption = txt.read_text(encoding="utf-8").strip() if txt.is_file() else ""
        out.append(Example(p, with_trigger(caption, None, trigger) if caption else trigger))
    return out


def read_examples(dataset: str | Path, trigger: str) -> list[Example]:
    """The (image, caption) pairs of a dataset folder; a folder without images is a UserError."""
    folder = Path(dataset).expanduser()
    if not folder.is_dir():
        raise UserError(f"dataset {folder} is not a folder")
    actors = (folder / "result.json").is_file()
    examples = _actors_examples(folder, trigger) if actors else _folder_examples(folder, trigger)
    if not examples:
        what = "no image listed in its result.json exists" if actors else "it holds no image"
        raise UserError(
            f"dataset {folder}: {what} ({', '.join(IMAGE_SUFFIXES)}); give a `cinerl actors` folder "
            "or a folder of images"
        )
    return examples


def load_image(path: Path) -> np.ndarray:
    """uint8 RGB, upright (EXIF orientation applied); an unreadable file is a UserError."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return np.asarray(ImageOps.exif_transpose(img).convert("RGB"))
    except (OSError, UnidentifiedImageError) as e:
        raise UserError(f"training image {path} cannot be read: {e}") from None


# aspect-ratio buckets (width / height), as image LoRA trainers bucket (kohya-ss sd-scripts)
BUCKETS = (1.0, 4 / 3, 3 / 4, 16 / 9, 9 / 16)


def bucket_size(width: int, height: int, area: tuple[int, int], multiple: int) -> tuple[int, int]:
    """The bucket of an image: the aspect nearest its own (in log ratio), at the training area,
    sides rounded to the variant's multiple."""
    ratio = width / height
    aspect = min(BUCKETS, key=lambda b: abs(np.log(b / ratio)))
    px = area[0] * area[1]
    w = (px * aspect) ** 0.5
    h = w / aspect
    return max(multiple, round(w / multiple) * multiple), max(multiple, round(h / multiple) * multiple)


CLIP_SUFFIXES = (".mp4", ".mov", ".webm", ".mkv", ".avi")


def read_clips(folder: str | Path, trigger: str) -> list[Example]:
    """`--clips DIR`: the (clip, caption) pairs of a folder of short clips; a clip's caption is
    its `NAME.txt` as written (the clips may show other people), else the trigger phrase alone. A
    folder without clips is a UserError."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise UserError(f"--clips {folder} is not a folder")
    out = []
    for p in sorted(folder.iterdir()):
        if p.suffix.lower() not in CLIP_SUFFIXES or not p.is_file():
            continue
        txt = p.with_suffix(".txt")
        caption = txt.read_text(encoding="utf-8").strip() if txt.is_file() else ""
        out.append(Example(p, caption or trigger))
    if not out:
        raise UserError(f"--clips {folder} holds no clip ({', '.join(CLIP_SUFFIXES)})")
    return out


def clip_size(path: Path) -> tuple[int, int]:
    """(width, height) of a clip's first video stream; an unreadable file is a UserError."""
    import av

    try:
        with av.open(str(path)) as container:
            s = container.streams.video[0]
            return int(s.codec_context.width), int(s.codec_context.height)
    except Exception as e:  # PyAV raises its own error kinds for a file that is not a video
        raise UserError(f"clip {path} cannot be read: {e}") from None
