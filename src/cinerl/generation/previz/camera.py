"""Camera: shot size and camera move, as a per-frame view onto a canvas larger than the frame.

It exists because the camera words of a prompt (shot size; static, pan, tilt, dolly, zoom,
handheld; slow to whip) are what the motion rewards respond to: smooth moves are linear or
exponential in time, handheld is a random walk plus per-frame shake, and the jitter artifact
shakes every camera a little unless the negative prompt says "jitter". Shot size sets how tall
the figures stand and how soft the background falls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cinerl.generation.previz.look import Artifacts, rng
from cinerl.generation.previz.parse import ShotSpec

__all__ = ["CANVAS_SCALE", "SHOT_CAST", "SHOT_DOF", "SHOT_FRAMING", "CameraPath", "Stage", "camera_path"]

CANVAS_SCALE = 1.5  # background canvas is this much larger than the frame, room for camera moves

# Shot size -> (figure height, feet line), both as fractions of the frame height.
SHOT_FRAMING = {
    "extreme wide": (0.2, 0.8),
    "wide": (0.55, 0.86),
    "medium": (1.3, 1.38),
    "close-up": (2.3, 2.36),
}
# Shot size -> how many figures the frame holds: a close-up frames the first one alone and a
# medium shot at most three side by side; the rest of the cast stands outside the frame, as in a
# real shot.
SHOT_CAST = {"extreme wide": 6, "wide": 6, "medium": 3, "close-up": 1}
# Extra depth-of-field blur of the background, as a fraction of the frame width.
SHOT_DOF = {"extreme wide": 0.0, "wide": 0.0, "medium": 0.0015, "close-up": 0.004}


@dataclass(frozen=True)
class Stage:
    """The frame (w, h) and the canvas (wc, hc) it looks at; the home view sits at (ox, oy)."""

    w: int
    h: int
    wc: int
    hc: int
    ox: float
    oy: float

    @classmethod
    def around(cls, w: int, h: int) -> "Stage":
        wc, hc = int(round(w * CANVAS_SCALE)), int(round(h * CANVAS_SCALE))
        return cls(w, h, wc, hc, (wc - w) / 2.0, (hc - h) / 2.0)


@dataclass(frozen=True)
class CameraPath:
    """Per-frame view centre offset (px, py) in pixels, zoom and roll (radians)."""

    px: np.ndarray
    py: np.ndarray
    zoom: np.ndarray
    roll: np.ndarray

    def matrix(self, f: int, stage: Stage) -> np.ndarray:
        """The 2x3 canvas -> frame affine of frame number f."""
        w, h = stage.w, stage.h
        cxc, cyc = stage.ox + w / 2.0, stage.oy + h / 2.0
        z, th = self.zoom[f], self.roll[f]
        c, s = z * math.cos(th), z * math.sin(th)
        vx, vy = cxc + self.px[f], cyc + self.py[f]
        tx, ty = w / 2.0 - (c * vx - s * vy), h / 2.0 - (s * vx + c * vy)
        return np.array([[c, -s, tx], [s, c, ty]], np.float64)


def camera_path(spec: ShotSpec, t: np.ndarray, w: int, h: int, seed: int, art: Artifacts) -> CameraPath:
    """The camera move of a shot. Smooth moves are linear or exponential in time; handheld is a
    random walk plus per-frame shake; jitter (an artifact) is added to every move."""
    n = len(t)
    dur = max(float(t[-1]) if n > 1 else 0.0, 1e-6)
    px, py = np.zeros(n), np.zeros(n)
    zoom, roll = np.ones(n), np.zeros(n)
    r = rng(seed, "camera")
    speed = {"slow": 0.6, "normal": 1.0, "fast": 2.0, "whip": 2.0}[spec.camera_speed]
    move, d = spec.camera_move, spec.camera_direction
    max_x, max_y = 0.21 * w, 0.21 * h
    if move == "pan":
        sign = {"left": -1.0, "right": 1.0}.get(d or "", 1.0 if r.random() < 0.5 else -1.0)
        if spec.camera_speed == "whip":
            mid = r.uniform(0.3, 0.7) * dur
            s = np.clip((t - mid) / 0.4 + 0.5, 0, 1)
            s = s * s * (3 - 2 * s)
            px = sign * (s - 0.5) * 2 * max_x
        else:
            travel = min(0.035 * w * speed * dur, 2 * max_x)
            px = sign * (t / dur - 0.5) * travel
    elif move == "tilt":
        sign = 1.0 if d == "down" else -1.0
        travel = min(0.03 * h * speed * dur, 2 * max_y)
        py = sign * (t / dur - 0.5) * travel
    elif move in ("dolly", "zoom"):
        rate = (0.02 if move == "dolly" else 0.03) * speed
        end = min(math.exp(rate * dur), 1.4)
        z = np.exp(np.log(end) * t / dur)
        zoom = z[::-1].copy() if d == "out" else z
    elif move == "handheld":
        walk, shake, rot = {
            "slow": (0.002, 0.0008, 0.05),
            "normal": (0.003, 0.002, 0.12),
            "fast": (0.005, 0.005, 0.3),
            "whip": (0.005, 0.005, 0.3),
        }[spec.camera_speed]
        for arr, lim in ((px, max_x), (py, max_y)):
            p = 0.0
            steps = r.normal(0.0, walk * w, n)
            for i in range(n):
                p = 0.97 * p + steps[i]
                arr[i] = p
            arr += r.normal(0.0, shake * w, n)
            np.clip(arr, -lim, lim, out=arr)
        roll = np.deg2rad(np.cumsum(r.normal(0, rot * 0.3, n)) * 0.2 + r.normal(0, rot, n))
    if art.jitter > 0:
        px = px + r.normal(0.0, art.jitter * w, n)
        py = py + r.normal(0.0, art.jitter * w, n)
    return CameraPath(px, py, zoom, roll)
