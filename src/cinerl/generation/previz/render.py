"""previz: a fast CPU animatic renderer that reads nothing but the prompt.

It stands in for a text-to-video model so the whole RL loop (compose prompt -> render -> score ->
update policy) runs on a laptop. It is deliberately not "good": it reproduces the failures a real
generator shows, driven by the same prompt wording a real model responds to, so the reward suite
gets meaningful differences between prompts:

* identity drift: a person whose hair/wardrobe colours are not written gets colours drawn from the
  request seed, so they change from scene to scene (but not within a clip);
* location drift: a place without named colours (or without a scenery word) gets a palette (and a
  layout type) drawn from the seed;
* camera shake: handheld is a random walk plus per-frame shake; pans, tilts, dollies and zooms are
  smooth affine moves over a canvas larger than the frame;
* generator artifacts (brightness flicker, jitter, colour morphing of figures, slow colour shift,
  blur and grain) are always present and weakened by the matching negative-prompt words.

This module is the frame loop; the parts live below it: parse (prompt -> ShotSpec), look (colours,
light, artifacts, grading), scenery (the background), figures (the characters) and camera (shot
size and camera move). Rendering is cheap by construction: the background canvas and the figure
sprites are drawn once per clip; each frame is a few sprite pastes, one cv2.warpAffine, one
cv2.transform and a grain add.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from cinerl.generation.previz.camera import SHOT_CAST, SHOT_DOF, SHOT_FRAMING, CameraPath, Stage, camera_path
from cinerl.generation.previz.figures import SPRITE_PAD, figure_paths, figure_sprite
from cinerl.generation.previz.look import Artifacts, Grade, Lighting, figure_wobble, resolve_look
from cinerl.generation.previz.parse import ShotSpec
from cinerl.generation.previz.scenery import background

__all__ = ["render", "fit_image"]


def fit_image(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize an init image to the clip size (INTER_AREA when shrinking, linear when growing)."""
    if image.shape[0] == height and image.shape[1] == width:
        return np.ascontiguousarray(image)
    shrink = image.shape[0] * image.shape[1] > width * height
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


@dataclass(frozen=True)
class _Layer:
    """One figure ready to composite: its sprite pair, world position and colour wobble."""

    p: np.ndarray  # uint8 RGBA, premultiplied colour and alpha
    q: np.ndarray  # uint8 RGBA, 255 - alpha in every channel
    x0: float  # top-left corner on the canvas, pixels, before the figure's motion
    y0: float
    wobble: np.ndarray  # (n, 3) colour offset per unit of alpha


def render(
    spec: ShotSpec,
    width: int,
    height: int,
    num_frames: int,
    fps: int,
    seed: int,
    init_image: np.ndarray | None = None,
    artifacts: bool = True,
) -> tuple[np.ndarray, dict]:
    """Render (num_frames, height, width, 3) uint8 RGB frames for a parsed prompt.

    Per frame: one warpAffine of the RGBA background canvas (4 channels warp several times faster
    than 3), figure sprites warped straight into frame space with the same camera matrix, then one
    colour transform (flicker, drift, candle light) and a grain add."""
    w, h, n = int(width), int(height), int(num_frames)
    if w < 1 or h < 1 or n < 1:
        raise ValueError("width, height and num_frames must be positive")
    fps = max(int(fps), 1)
    art = Artifacts.from_negatives(spec.negatives) if artifacts else Artifacts.none()
    look = resolve_look(spec, seed)
    t = np.arange(n, dtype=np.float64) / fps
    stage = Stage.around(w, h)
    light = Lighting.for_spec(spec)

    look["figures_in_frame"] = min(len(look["figures"]), SHOT_CAST[spec.shot_size])
    canvas = _canvas(spec, look, stage, light, art)
    dx, dy = figure_paths(spec, len(look["figures"]), t, fps, w, seed)
    layers = _figure_layers(spec, look, stage, light, art, t, dy, seed)
    path = camera_path(spec, t, w, h, seed, art)
    grade = Grade.for_clip(art, light, t, w, h, seed, artifacts)
    frames = _shoot(canvas, layers, dx, dy, path, grade, stage, wobble=art.morph > 0)
    if init_image is not None:
        _fade_in(frames, fit_image(init_image, w, h), fps)
    return frames, look


def _canvas(spec: ShotSpec, look: dict, stage: Stage, light: Lighting, art: Artifacts) -> np.ndarray:
    """The lit RGBA uint8 background canvas, once per clip. Figures in the shot soften it (depth
    of field); the blur artifact softens it too."""
    bg = background(look, stage.w, stage.h, stage.wc, stage.hc, stage.ox, stage.oy)
    sigma = math.hypot(art.blur, SHOT_DOF[spec.shot_size] if look["figures"] else 0.0) * stage.w
    if sigma > 0.3:
        bg = cv2.GaussianBlur(bg, (0, 0), sigma)
    bg = light.light_canvas(bg)
    canvas = np.empty((stage.hc, stage.wc, 4), np.uint8)
    canvas[..., :3] = np.clip(bg + 0.5, 0, 255)
    canvas[..., 3] = 255
    return canvas


def _figure_layers(
    spec: ShotSpec,
    look: dict,
    stage: Stage,
    light: Lighting,
    art: Artifacts,
    t: np.ndarray,
    dy: np.ndarray,
    seed: int,
) -> list[_Layer]:
    """The lit figure sprites, once per clip, side by side and framed by the shot size."""
    w, h = stage.w, stage.h
    hf_frac, feet_frac = SHOT_FRAMING[spec.shot_size]
    figs = look["figures"][: SHOT_CAST[spec.shot_size]]  # a close-up holds one face
    nf = len(figs)
    crowd = 1.0 if nf <= 2 or hf_frac < 1.0 else (0.85 if nf == 3 else 0.75)
    layers = []
    for i, fig in enumerate(figs):
        spr, ax, ay = figure_sprite(fig, hf_frac * h * fig["height"] * crowd)
        fx = 0.5 + (i - (nf - 1) / 2) * min(0.4, 0.8 / nf)  # side by side, centred
        spr = light.light_sprite(spr, fx)
        if art.blur * w > 0.3:
            spr = cv2.GaussianBlur(spr, (0, 0), art.blur * w)
        x0 = stage.ox + fx * w - ax
        if hf_frac < 1.0:  # wide shots: everyone stands on the ground line
            y0 = stage.oy + feet_frac * h - ay
        else:  # medium and close-up frame the faces: a child's head sits a little lower
            top = feet_frac - hf_frac * crowd + 0.3 * (1.0 - fig["height"])
            y0 = stage.oy + top * h - SPRITE_PAD
        # keep only rows the canvas can show (close-ups put the feet far below the frame)
        keep = int(min(spr.shape[0], math.ceil(stage.hc - y0 + np.abs(dy[:, i]).max() + 3)))
        p, q = _sprite_pair(spr[: max(keep, 1)])
        layers.append(_Layer(p, q, x0, y0, figure_wobble(art, seed, i, t)))
    return layers


def _sprite_pair(spr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Premultiplied float sprite -> (P, Q) uint8 RGBA: P = premultiplied colour and alpha,
    Q = 255 - alpha in every channel. Compositing is then roi * Q / 255 + P, two saturating uint8
    ops."""
    p = spr * np.float32([1.0, 1.0, 1.0, 255.0])  # colour is already premultiplied 0-255
    p = np.clip(p + 0.5, 0, 255).astype(np.uint8)
    q = np.repeat((255 - p[..., 3:4]), 4, axis=2)
    return np.ascontiguousarray(p), np.ascontiguousarray(q)


def _shoot(
    canvas: np.ndarray,
    layers: list[_Layer],
    dx: np.ndarray,
    dy: np.ndarray,
    path: CameraPath,
    grade: Grade,
    stage: Stage,
    wobble: bool,
) -> np.ndarray:
    """The frame loop: view the canvas through the camera, paste the figures, grade."""
    w, h, n = stage.w, stage.h, len(dx)
    frames = np.empty((n, h, w, 3), np.uint8)
    buf = np.empty((h, w, 4), np.uint8)
    for f in range(n):
        cam = path.matrix(f, stage)
        cv2.warpAffine(canvas, cam, (w, h), dst=buf, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
        for i, layer in enumerate(layers):
            _paste(
                buf, layer, cam, layer.x0 + dx[f, i], layer.y0 + dy[f, i], layer.wobble[f] if wobble else None
            )
        frame = frames[f]
        cv2.cvtColor(buf, cv2.COLOR_RGBA2RGB, dst=frame)
        grade.apply(frame, f)
    return frames


def _paste(
    buf: np.ndarray, layer: _Layer, cam: np.ndarray, xw: float, yw: float, wobble: np.ndarray | None
) -> None:
    """Composite one figure at canvas position (xw, yw) into the RGBA frame buf, in place."""
    h, w = buf.shape[:2]
    sh, sw = layer.p.shape[:2]
    # sprite -> frame: camera matrix after a translation to the sprite's world position
    mt = cam.copy()
    mt[:, 2] = cam[:, :2] @ (xw, yw) + cam[:, 2]
    corners = mt[:, :2] @ np.array([[0, sw, 0, sw], [0, 0, sh, sh]], np.float64) + mt[:, 2:3]
    rx0 = max(int(math.floor(corners[0].min())) - 1, 0)
    ry0 = max(int(math.floor(corners[1].min())) - 1, 0)
    rx1 = min(int(math.ceil(corners[0].max())) + 2, w)
    ry1 = min(int(math.ceil(corners[1].max())) + 2, h)
    if rx1 <= rx0 or ry1 <= ry0:
        return
    mt[:, 2] -= (rx0, ry0)
    size = (rx1 - rx0, ry1 - ry0)
    pw = cv2.warpAffine(
        layer.p, mt, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0)
    )
    qw = cv2.warpAffine(
        layer.q,
        mt,
        size,
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(255, 255, 255, 255),
    )
    if wobble is not None:  # colour wobble, scaled by alpha so it stays on the figure
        m4 = np.eye(4, dtype=np.float32)
        m4[:3, 3] = wobble
        cv2.transform(pw, m4, dst=pw)
    roi = buf[ry0:ry1, rx0:rx1]
    cv2.multiply(roi, qw, dst=roi, scale=1.0 / 255.0)
    cv2.add(roi, pw, dst=roi)


def _fade_in(frames: np.ndarray, init: np.ndarray, fps: int) -> None:
    """Start on the init image and cross-fade into the render over half a second, in place."""
    n = len(frames)
    nd = max(1, int(round(0.5 * fps)))
    for f in range(1, min(nd, n)):
        a = f / nd
        cv2.addWeighted(init, 1.0 - a, frames[f], a, 0.0, dst=frames[f])
    frames[0] = init
