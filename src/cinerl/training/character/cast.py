"""Casting a real face: `make --cast NAME=PORTRAIT[,LORA_DIR]`.

A cast member is a character of the bible (matched by id or name) played by the person in a
portrait. The portrait becomes that character's reference image, so the identity reward
(rewards/components/identity.py) measures every clip's faces against it. With a character LoRA
(`cinerl train character`), the Wan backend loads it and the prompts that show the character
carry its trigger phrase. On previz, which draws faceless figures, the portrait's face (the
head cut out of the portrait as the actor dataset's renderer cuts it, dataset/previz_portrait.py)
is drawn over the cast figure's head in every frame, following the figure and the camera, so the
identity lock is measurable on a CPU film.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from cinerl.core.errors import UserError
from cinerl.core.schema import Clip, ClipRequest, StoryBible

log = logging.getLogger(__name__)

CAST_FORMAT = "NAME=PORTRAIT[,LORA_DIR]"
# the file `cinerl train character` writes beside its LoRA: name, trigger, base model
CHARACTER_CARD = "character.json"
# faces drawn smaller than this are beyond dlib's HOG detector (80 px window at upsample 0 on
# keyframes of at most 640 px); previz is a preview, so the cast face is drawn at least this tall
MIN_FACE_SHARE = 0.27  # of the frame height
HEAD_TO_FACE = 1.35  # the portrait's face box over the previz head's height


@dataclass(frozen=True)
class CastSpec:
    """One `--cast` value, parsed."""

    name: str
    portrait: Path
    lora: Path | None = None

    def argument(self) -> str:
        return f"{self.name}={self.portrait}" + (f",{self.lora}" if self.lora else "")


def parse_cast(values: list[str] | tuple[str, ...] | None) -> list[CastSpec]:
    """`NAME=PORTRAIT[,LORA_DIR]` values -> specs; a malformed one or a missing file is a UserError."""
    out: list[CastSpec] = []
    for raw in values or []:
        name, sep, rest = str(raw).partition("=")
        if not sep or not name.strip() or not rest.strip():
            raise UserError(f"--cast {raw!r}: expected {CAST_FORMAT}")
        portrait, _, lora = rest.partition(",")
        p = Path(portrait.strip()).expanduser()
        if not p.is_file():
            raise UserError(f"--cast {raw!r}: portrait {p} is not a file")
        lp = Path(lora.strip()).expanduser() if lora.strip() else None
        if lp is not None and not lp.is_dir():
            raise UserError(f"--cast {raw!r}: LoRA folder {lp} does not exist")
        if any(s.name.lower() == name.strip().lower() for s in out):
            raise UserError(f"--cast names {name.strip()!r} twice")
        out.append(CastSpec(name.strip(), p, lp))
    return out


def with_cast_loras(lora: str | None, cast_loras: list[Path], scale: float) -> str:
    """The Wan backend's LoRA setting with each cast LoRA (at --cast-scale) after --lora's (a
    style or DPO LoRA): the backend loads each as its own adapter and activates them together."""
    from cinerl.generation.wan.lora import LoraSpec, join_loras, parse_loras

    specs = parse_loras(lora) if lora else []
    joined = join_loras(specs + [LoraSpec(Path(p), scale) for p in cast_loras])
    parse_loras(joined)  # the same folder twice: one line
    return joined


def read_card(lora: Path | None) -> dict:
    """The character card beside a LoRA (empty when there is none or no LoRA)."""
    if lora is None or not (lora / CHARACTER_CARD).is_file():
        return {}
    try:
        return json.loads((lora / CHARACTER_CARD).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UserError(f"{lora / CHARACTER_CARD} is not readable JSON: {e}") from None


@dataclass
class CastMember:
    """A bible character played by the person in a portrait."""

    character_id: str
    name: str
    spec: CastSpec
    rgb: np.ndarray  # the portrait, uint8 RGB (safely loaded, upright, at most 1024 px)
    sha256: str
    face: object  # dataset.face_crop.FaceBox
    trigger: str | None = None  # the LoRA's trigger phrase (None without a LoRA)
    warnings: list[str] = field(default_factory=list)

    @property
    def has_face(self) -> bool:
        return self.face.method != "centre-crop"

    def summary(self) -> dict:
        return {
            "character_id": self.character_id,
            "name": self.name,
            "portrait": str(self.spec.portrait),
            "portrait_sha256": self.sha256,
            "face": self.face.to_dict(),
            "lora": str(self.spec.lora) if self.spec.lora else None,
            "trigger": self.trigger,
            "warnings": self.warnings,
        }


def find_character(bible: StoryBible, name: str):
    """The bible's character with this id or name (case-insensitive), or a UserError listing them."""
    key = name.strip().lower()
    for c in bible.characters:
        if key in (c.id.lower(), c.name.lower()):
            return c
    known = ", ".join(f"{c.name} ({c.id})" for c in bible.characters) or "none"
    raise UserError(f"--cast {name!r}: no such character in the story; its characters: {known}")


@lru_cache(maxsize=16)
def _load(path: str, mtime_ns: int):
    from cinerl.training.character.dataset.face_crop import find_face
    from cinerl.training.character.dataset.portrait import load_portrait

    portrait = load_portrait(path)
    return portrait.rgb, portrait.sha256, find_face(portrait.rgb)


def resolve_cast(values: list[str] | tuple[str, ...] | None, bible: StoryBible) -> list[CastMember]:
    """The run's cast: each spec matched to a bible character, its portrait loaded and its face
    found. A portrait without a face is kept with a warning (identity lock has nothing to
    measure against for that character, and previz draws no face for it)."""
    members = []
    for spec in parse_cast(values):
        ch = find_character(bible, spec.name)
        if any(m.character_id == ch.id for m in members):
            raise UserError(f"--cast names {ch.name} ({ch.id}) twice")
        rgb, sha, face = _load(str(spec.portrait), spec.portrait.stat().st_mtime_ns)
        card = read_card(spec.lora)
        trigger = (card.get("trigger") or f"{ch.name.lower()} person") if spec.lora else None
        m = CastMember(ch.id, ch.name, spec, rgb, sha, face, trigger)
        if not m.has_face:
            m.warnings.append(
                f"no face found in the portrait {spec.portrait}: {ch.name} keeps it as the reference "
                "image, but identity lock cannot measure a face against it and previz draws none"
            )
        members.append(m)
    return members


def warn_faceless(members: list[CastMember]) -> None:
    for m in members:
        for w in m.warnings:
            log.warning("%s", w)


# ---- the trigger phrase in the prompts ------------------------------------------------------


def add_triggers(prompt: str, character_ids: list[str], bible: StoryBible, members: list[CastMember]) -> str:
    """The prompt with each cast LoRA's trigger phrase where it shows that character: after the
    character's first mention by name, else (a prompt that names nobody) as a leading sentence."""
    for m in members:
        if not m.trigger or m.character_id not in character_ids or m.trigger in prompt:
            continue
        name = bible.character(m.character_id).name
        at = prompt.find(name)
        if at >= 0:
            prompt = f"{prompt[: at + len(name)]} ({m.trigger}){prompt[at + len(name) :]}"
        else:
            prompt = f"{m.trigger}. {prompt}"
    return prompt


# ---- previz: the portrait's face on the cast figure ------------------------------------------


@lru_cache(maxsize=16)
def _face_sprite(
    sha256: str, rgb_bytes: bytes, shape: tuple, box: tuple
) -> tuple[np.ndarray, np.ndarray, tuple]:
    """The portrait's head (face, hair, a little neck) as float RGB and a soft alpha, and the face
    box inside it. Cut out with the actor renderer's GrabCut cut-out, limited to the head."""
    from cinerl.training.character.dataset.face_crop import FaceBox
    from cinerl.training.character.dataset.previz_portrait import PortraitCutout

    rgb = np.frombuffer(rgb_bytes, np.uint8).reshape(shape)
    cut = PortraitCutout(rgb, FaceBox(*box, method="given"))
    fx, fy, fw, fh = cut.face
    ch, cw = cut.rgb.shape[:2]
    x0, x1 = max(0, int(fx - 0.3 * fw)), min(cw, int(fx + 1.3 * fw))
    y0, y1 = max(0, int(fy - 0.5 * fh)), min(ch, int(fy + 1.2 * fh))
    head = cut.rgb[y0:y1, x0:x1].astype(np.float32)
    alpha = cut.mask[y0:y1, x0:x1].astype(np.float32)
    oval = np.zeros(alpha.shape, np.float32)
    centre = (int(fx - x0 + fw / 2), int(fy - y0 + fh * 0.42))
    cv2.ellipse(oval, centre, (int(fw * 0.78), int(fh * 0.95)), 0, 0, 360, 1.0, -1)
    alpha = alpha * cv2.GaussianBlur(oval, (0, 0), max(1.0, fw / 20))
    return head, alpha, (fx - x0, fy - y0, fw, fh)


def _head_track(request: ClipRequest, figure_name: str | None, figure_index: int | None):
    """Per frame (head centre x, y, head height) of the figure previz drew for this request, or
    None when the figure is not in the frame. The geometry is previz's own (render.py: figure
    layers, figure paths, camera path), recomputed from the same prompt and seed."""
    from cinerl.generation.previz.camera import SHOT_CAST, SHOT_FRAMING, Stage, camera_path
    from cinerl.generation.previz.figures import SPRITE_PAD, figure_paths, figure_sprite
    from cinerl.generation.previz.look import Artifacts, resolve_look
    from cinerl.generation.previz.parse import parse_prompt

    spec = parse_prompt(request.prompt, request.negative_prompt)
    look = resolve_look(spec, request.seed)
    figs = look["figures"][: SHOT_CAST[spec.shot_size]]
    i = next(
        (
            k
            for k, f in enumerate(figs)
            if figure_name and (f.get("name") or "").lower() == figure_name.lower()
        ),
        None,
    )
    if (
        i is None
        and figure_index is not None
        and figure_index < len(figs)
        and not figs[figure_index].get("name")
    ):
        i = figure_index
    if i is None or figs[i].get("animal") or figs[i].get("robot"):
        return None
    w, h, n = request.width, request.height, request.num_frames
    fps = max(int(request.fps), 1)
    t = np.arange(n, dtype=np.float64) / fps
    stage = Stage.around(w, h)
    art = Artifacts.from_negatives(spec.negatives)
    hf_frac, feet_frac = SHOT_FRAMING[spec.shot_size]
    nf = len(figs)
    crowd = 1.0 if nf <= 2 or hf_frac < 1.0 else (0.85 if nf == 3 else 0.75)
    fig = figs[i]
    hf = max(hf_frac * h * fig["height"] * crowd, 6.0)
    _, ax, ay = figure_sprite(fig, hf)
    hf = max(hf, 6.0)
    fx = 0.5 + (i - (nf - 1) / 2) * min(0.4, 0.8 / nf)
    x0 = stage.ox + fx * w - ax
    if hf_frac < 1.0:
        y0 = stage.oy + feet_frac * h - ay
    else:
        y0 = stage.oy + (feet_frac - hf_frac * crowd + 0.3 * (1.0 - fig["height"])) * h - SPRITE_PAD
    hx, hy = ax, SPRITE_PAD + 0.082 * hf  # the head ellipse's centre in the sprite
    dx, dy = figure_paths(spec, len(look["figures"]), t, fps, w, request.seed)
    path = camera_path(spec, t, w, h, request.seed, art)
    out = []
    for f in range(n):
        cam = path.matrix(f, stage)
        p = cam[:, :2] @ np.array([x0 + dx[f, i] + hx, y0 + dy[f, i] + hy]) + cam[:, 2]
        zoom = math.hypot(cam[0, 0], cam[1, 0])
        out.append((float(p[0]), float(p[1]), 2 * 0.075 * hf * zoom))
    return out


def _paste(frame: np.ndarray, head: np.ndarray, alpha: np.ndarray, x: int, y: int) -> None:
    h, w = frame.shape[:2]
    sh, sw = alpha.shape
    fx0, fy0, fx1, fy1 = max(0, x), max(0, y), min(w, x + sw), min(h, y + sh)
    if fx1 <= fx0 or fy1 <= fy0:
        return
    a = alpha[fy0 - y : fy1 - y, fx0 - x : fx1 - x, None]
    roi = frame[fy0:fy1, fx0:fx1].astype(np.float32)
    frame[fy0:fy1, fx0:fx1] = np.clip(
        a * head[fy0 - y : fy1 - y, fx0 - x : fx1 - x] + (1 - a) * roi + 0.5, 0, 255
    )


def draw_cast_faces(
    clip: Clip, request: ClipRequest, character_ids: list[str], bible: StoryBible, members
) -> Clip:
    """A previz clip with each cast member's portrait face over their figure's head, frame by
    frame (records where in clip.metadata["cast"]). Other backends' clips come back unchanged."""
    if clip.metadata.get("backend") != "previz":
        return clip
    frames, drawn = None, []
    for m in members:
        if m.character_id not in character_ids or not m.has_face:
            continue
        track = _head_track(
            request, bible.character(m.character_id).name, character_ids.index(m.character_id)
        )
        if track is None:
            continue
        f = m.face
        head, alpha, (bx, by, bw, bh) = _face_sprite(
            m.sha256, m.rgb.tobytes(), m.rgb.shape, (f.x, f.y, f.w, f.h)
        )
        frames = clip.frames.copy() if frames is None else frames
        h = frames.shape[1]
        sprite, last_scale = None, None
        for k, (cx, cy, head_h) in enumerate(track):
            target = min(max(HEAD_TO_FACE * head_h, MIN_FACE_SHARE * h), 0.6 * h)
            scale = target / bh
            if sprite is None or abs(scale / last_scale - 1) > 0.02:
                size = (max(1, round(head.shape[1] * scale)), max(1, round(head.shape[0] * scale)))
                interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
                sprite = (cv2.resize(head, size, interpolation=interp), cv2.resize(alpha, size))
                last_scale = scale
            ox = round(cx - (bx + bw / 2) * last_scale)
            oy = round(cy - (by + bh / 2) * last_scale)
            _paste(frames[k], sprite[0], sprite[1], ox, oy)
        drawn.append({"character_id": m.character_id, "portrait_sha256": m.sha256})
    if frames is None:
        return clip
    return Clip(frames=frames, fps=clip.fps, metadata={**clip.metadata, "cast": drawn})


@lru_cache(maxsize=8)
def _members_for(cast: tuple[str, ...], bible_json: str) -> list[CastMember]:
    return resolve_cast(list(cast), StoryBible.model_validate_json(bible_json))


def dress_take(clip: Clip, request: ClipRequest, ctx, settings) -> Clip:
    """The take job's hook (runtime/takes.py): on previz, draw the cast's faces (a no-op without
    `run.cast`, without a scene, or on another backend)."""
    cast = tuple(settings.run.cast or ())
    if not cast or ctx.scene is None or ctx.bible is None or clip.metadata.get("backend") != "previz":
        return clip
    members = _members_for(cast, ctx.bible.model_dump_json())
    return draw_cast_faces(clip, request, list(ctx.scene.character_ids), ctx.bible, members)


def cast_references(refs, members: list[CastMember], out_dir: Path) -> None:
    """Each cast character's reference becomes its portrait (references/cast_<id>.png), in place
    of the generated still: the identity reward measures against the person cast."""
    from cinerl.core.media import save_png

    for m in members:
        path = out_dir / "references" / f"cast_{m.character_id}.png"
        save_png(m.rgb, path)
        refs.characters[m.character_id] = m.rgb
        refs.paths[f"character:{m.character_id}"] = str(path.relative_to(out_dir))


def cast_report(members: list[CastMember], report) -> list[dict]:
    """The report's cast: for each member the portrait, LoRA and trigger, and the identity lock
    of every scene's chosen take that shows the character (measured against the portrait)."""
    out = []
    for m in members:
        scenes = []
        for sc in report.scenes:
            if m.character_id not in report.bible.scenes[sc.scene].character_ids:
                continue
            take = sc.chosen_attempt
            comp = take.reward.components.get("identity_lock") if take is not None else None
            scenes.append(
                {
                    "scene": sc.scene,
                    "title": sc.title,
                    "attempt": take.attempt if take is not None else None,
                    "status": comp.status if comp is not None else "missing",
                    "value": comp.value if comp is not None else None,
                    "swaps": len((comp.raw or {}).get("swaps", [])) if comp is not None else 0,
                }
            )
        out.append(
            {
                **m.summary(),
                "reference": report.references.get(f"character:{m.character_id}"),
                "scenes": scenes,
            }
        )
    return out
