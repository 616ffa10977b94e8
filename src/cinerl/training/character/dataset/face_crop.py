"""Find the face in a portrait, with whichever detector this machine has, and say which.

Order: OpenCV Haar cascade (only when the installed OpenCV still ships the cascade files in
cv2.data.haarcascades; OpenCV 5 dropped them), then dlib's HOG frontal face detector (built into
dlib, no model file), then a centre crop. The chosen method and any fallback reason are
recorded, so a dataset made without a detector says so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)
DETECT_MAX_SIDE = 800


@dataclass
class FaceBox:
    x: int
    y: int
    w: int
    h: int
    method: str  # "opencv-haar", "dlib-hog" or "centre-crop"
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"box": [self.x, self.y, self.w, self.h], "method": self.method, "notes": self.notes}


def _haar(gray: np.ndarray) -> list[tuple[int, int, int, int]] | None:
    """Faces from the frontal Haar cascade, or None when this OpenCV has no cascade."""
    folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
    if not hasattr(cv2, "CascadeClassifier") or not folder:
        return None
    xml = Path(folder) / "haarcascade_frontalface_default.xml"
    if not xml.exists():
        return None
    cascade = cv2.CascadeClassifier(str(xml))
    if cascade.empty():
        return None
    found = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24))
    return [tuple(int(v) for v in f) for f in found]


def _dlib(rgb: np.ndarray) -> list[tuple[int, int, int, int]] | None:
    try:
        import dlib
    except ImportError:
        return None
    detector = dlib.get_frontal_face_detector()
    upsample = 1 if max(rgb.shape[:2]) < 400 else 0  # HOG needs faces of about 80 px
    rects = detector(np.ascontiguousarray(rgb), upsample)
    return [(r.left(), r.top(), r.width(), r.height()) for r in rects]


def centre_box(width: int, height: int) -> tuple[int, int, int, int]:
    """A square on the vertical centre line, in the upper middle where a portrait's face sits."""
    side = int(min(width, height) * 0.5)
    return (width - side) // 2, max(0, int(height * 0.4) - side // 2), side, side


def find_face(rgb: np.ndarray) -> FaceBox:
    """The largest face in the image, in its own pixel coordinates."""
    h, w = rgb.shape[:2]
    scale = min(1.0, DETECT_MAX_SIDE / max(h, w))
    small = (
        cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        if scale < 1.0
        else rgb
    )
    notes: list[str] = []
    for method, run in (
        ("opencv-haar", lambda: _haar(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY))),
        ("dlib-hog", lambda: _dlib(small)),
    ):
        found = run()
        if found is None:
            notes.append(f"{method}: not available on this machine")
            continue
        found = [f for f in found if f[2] > 0 and f[3] > 0]
        if not found:
            notes.append(f"{method}: no face found")
            continue
        x, y, bw, bh = max(found, key=lambda f: f[2] * f[3])
        x0, y0 = max(0, round(x / scale)), max(0, round(y / scale))
        x1, y1 = min(w, round((x + bw) / scale)), min(h, round((y + bh) / scale))
        return FaceBox(x0, y0, x1 - x0, y1 - y0, method, notes)
    notes.append("used a centre crop instead of a detected face")
    log.warning("no face detected in the portrait (%s); using a centre crop", "; ".join(notes))
    return FaceBox(*centre_box(w, h), "centre-crop", notes)
