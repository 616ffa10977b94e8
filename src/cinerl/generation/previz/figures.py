"""Figures: the characters of a shot, drawn as flat sprites, and how they move.

It exists because the figures carry what the identity reward measures: a figure is its resolved
hair, skin and wardrobe colours (look.resolve_look) in flat shapes, drawn once per clip at the
height the shot size gives, then moved per frame by the prompt's motion word (still, gentle,
dynamic, frantic).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from cinerl.generation.previz.look import rng, smooth_series
from cinerl.generation.previz.parse import ShotSpec

__all__ = ["SPRITE_PAD", "figure_paths", "figure_sprite"]

SPRITE_PAD = 2.0  # transparent margin around a sprite, pixels


def figure_sprite(fig: dict, hf: float) -> tuple[np.ndarray, float, float]:
    """Premultiplied RGBA float32 sprite of one figure hf pixels tall, plus the feet anchor (x, y).

    Flat colours on purpose: the wardrobe colour is what the identity reward measures. An animal
    (fig["animal"]) is a four-legged silhouette in its coat colours."""
    hf = max(hf, 6.0)
    if fig.get("animal"):
        return _animal_sprite(fig, hf)
    rgb, alpha, poly, ellipse, cx, y0 = _canvas(hf, 0.56, 0.5)
    torso, legs = fig["wardrobe_rgb"][0], fig["wardrobe_rgb"][1]
    skin, hair = fig["skin_rgb"], fig["hair_rgb"]
    sh_w = 0.14 if fig["female"] else 0.16
    shoe = tuple(int(c * 0.45) for c in legs)
    # legs, shoes
    poly([(-0.105, 0.55), (-0.012, 0.55), (-0.02, 0.97), (-0.095, 0.97)], legs)
    poly([(0.012, 0.55), (0.105, 0.55), (0.095, 0.97), (0.02, 0.97)], legs)
    ellipse(-0.065, 0.975, 0.05, 0.022, shoe)
    ellipse(0.065, 0.975, 0.05, 0.022, shoe)
    if fig["female"] and hair is not None:  # long hair behind the shoulders
        poly([(-0.082, 0.08), (0.082, 0.08), (0.097, 0.27), (-0.097, 0.27)], hair)
    # arms (sleeves in the torso colour), hands
    poly([(-sh_w, 0.205), (-sh_w + 0.05, 0.22), (-sh_w - 0.005, 0.52), (-sh_w - 0.055, 0.5)], torso)
    poly([(sh_w, 0.205), (sh_w - 0.05, 0.22), (sh_w + 0.005, 0.52), (sh_w + 0.055, 0.5)], torso)
    ellipse(-sh_w - 0.03, 0.535, 0.028, 0.03, skin)
    ellipse(sh_w + 0.03, 0.535, 0.028, 0.03, skin)
    # neck, torso (a coat down to the hips)
    poly([(-0.03, 0.14), (0.03, 0.14), (0.03, 0.21), (-0.03, 0.21)], skin)
    poly([(-sh_w, 0.2), (sh_w, 0.2), (0.13, 0.6), (-0.13, 0.6)], torso)
    if len(fig["wardrobe_rgb"]) > 2:  # accessory: a scarf
        acc = fig["wardrobe_rgb"][2]
        poly([(-0.075, 0.19), (0.075, 0.19), (0.07, 0.235), (-0.07, 0.235)], acc)
        poly([(0.02, 0.22), (0.065, 0.22), (0.06, 0.4), (0.025, 0.4)], acc)
    # head and hair
    ellipse(0.0, 0.082, 0.062, 0.075, skin)
    if hair is not None:
        ellipse(0.0, 0.072, 0.068, 0.068, hair, 180, 360)
        poly([(-0.068, 0.072), (-0.054, 0.072), (-0.058, 0.11), (-0.07, 0.1)], hair)
        poly([(0.068, 0.072), (0.054, 0.072), (0.058, 0.11), (0.07, 0.1)], hair)
    else:  # robot: a visor
        poly([(-0.045, 0.07), (0.045, 0.07), (0.045, 0.095), (-0.045, 0.095)], (20, 200, 230))
    return _sprite(rgb, alpha), cx, y0 + hf


def _canvas(hf: float, width: float, centre: float):
    """An empty sprite `width` x 1 figure heights (plus padding), with fill helpers in figure
    units: x from the anchor at `centre` of the width, y from the top, both times hf."""
    sw, sh = int(math.ceil(hf * width)) + 4, int(math.ceil(hf)) + 2 * int(SPRITE_PAD)
    rgb = np.zeros((sh, sw, 3), np.uint8)
    alpha = np.zeros((sh, sw), np.uint8)
    cx, y0 = sw * centre, SPRITE_PAD

    def pt(x, y):
        return (int(round((cx + x * hf) * 16)), int(round((y0 + y * hf) * 16)))

    def poly(points, colour):
        arr = np.array([pt(x, y) for x, y in points], np.int32)
        cv2.fillPoly(rgb, [arr], tuple(int(c) for c in colour), cv2.LINE_AA, 4)
        cv2.fillPoly(alpha, [arr], 255, cv2.LINE_AA, 4)

    def ellipse(x, y, rx, ry, colour, a0=0, a1=360):
        c, ax = pt(x, y), (max(1, int(round(rx * hf * 16))), max(1, int(round(ry * hf * 16))))
        cv2.ellipse(rgb, c, ax, 0, a0, a1, tuple(int(v) for v in colour), -1, cv2.LINE_AA, 4)
        cv2.ellipse(alpha, c, ax, 0, a0, a1, 255, -1, cv2.LINE_AA, 4)

    return rgb, alpha, poly, ellipse, cx, y0


def _sprite(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    return np.dstack([rgb.astype(np.float32), alpha.astype(np.float32) / 255.0])


def _animal_sprite(fig: dict, hf: float) -> tuple[np.ndarray, float, float]:
    """A four-legged animal hf pixels tall, facing right: body and legs in the coat colour, a
    collar in the second colour, markings (a patch on the flank) in the third."""
    rgb, alpha, poly, ellipse, cx, y0 = _canvas(hf, 1.6, 0.48)
    coat, collar = fig["wardrobe_rgb"][0], fig["wardrobe_rgb"][1]
    far = tuple(int(c * 0.7) for c in coat)  # the far legs, in shade
    # far legs, then tail, body, near legs
    for x in (-0.36, 0.26):
        poly([(x, 0.5), (x + 0.08, 0.5), (x + 0.075, 0.97), (x + 0.005, 0.97)], far)
    poly([(-0.46, 0.36), (-0.42, 0.44), (-0.7, 0.2), (-0.72, 0.16)], coat)
    ellipse(-0.02, 0.46, 0.48, 0.17, coat)
    for x in (-0.46, 0.34):
        poly([(x, 0.5), (x + 0.09, 0.5), (x + 0.085, 0.98), (x + 0.005, 0.98)], coat)
    if len(fig["wardrobe_rgb"]) > 2:
        ellipse(-0.12, 0.42, 0.16, 0.09, fig["wardrobe_rgb"][2])
    # neck, collar, head, snout, ear, eye
    poly([(0.28, 0.34), (0.44, 0.14), (0.56, 0.2), (0.46, 0.46)], coat)
    poly([(0.38, 0.22), (0.49, 0.15), (0.54, 0.21), (0.43, 0.29)], collar)
    ellipse(0.56, 0.15, 0.13, 0.11, coat)
    ellipse(0.68, 0.19, 0.1, 0.06, coat)
    poly([(0.48, 0.1), (0.5, 0.0), (0.58, 0.07)], far)
    ellipse(0.6, 0.13, 0.018, 0.018, (20, 20, 20))
    return _sprite(rgb, alpha), cx, y0 + hf


def figure_paths(spec: ShotSpec, n: int, t: np.ndarray, fps: int, w: int, seed: int):
    """World-space offsets (dx, dy) per frame and figure, in pixels. Frantic motion changes
    direction at random every few frames: that is what makes its optical flow jerky."""
    dx = np.zeros((len(t), n))
    dy = np.zeros((len(t), n))
    for i in range(n):
        r = rng(seed, f"motion{i}")
        if spec.motion == "still":
            dx[:, i] = 0.002 * w * smooth_series(r, t, 0.05, 0.15, 2)
            dy[:, i] = 0.001 * w * np.sin(2 * np.pi * 0.25 * t + r.uniform(0, 6))
        elif spec.motion == "dynamic":
            dx[:, i] = 0.07 * w * smooth_series(r, t, 0.15, 0.45, 2)
            dy[:, i] = 0.006 * w * np.sin(2 * np.pi * 1.6 * t + r.uniform(0, 6))
        elif spec.motion == "frantic":
            x, v, out = 0.0, 0.0, []
            k = 0
            for _ in range(len(t)):
                if k <= 0:
                    v = r.normal(0.0, 0.012 * w) * 24.0 / max(fps, 1)
                    k = int(r.integers(2, 6))
                k -= 1
                x += v
                if abs(x) > 0.12 * w:
                    v, x = -v, math.copysign(0.12 * w, x)
                out.append(x)
            dx[:, i] = out
            dy[:, i] = 0.004 * w * r.standard_normal(len(t))
        else:  # gentle
            dx[:, i] = 0.025 * w * smooth_series(r, t, 0.08, 0.2, 2)
            dy[:, i] = 0.003 * w * np.sin(2 * np.pi * 1.0 * t + r.uniform(0, 6))
    return dx, dy
