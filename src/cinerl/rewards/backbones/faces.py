"""Face detection and identity embeddings with dlib (``dlib-bin``), model files found by path in the
``face_recognition_models`` package (nothing is downloaded).

* detector: dlib's HOG frontal face detector (built into dlib);
* landmarks: ``shape_predictor_5_face_landmarks.dat``;
* identity: ``dlib_face_recognition_resnet_model_v1.dat``, a 128-D embedding where faces of the
  same person are within Euclidean distance ~0.6 (dlib's documented threshold, King 2017).
"""

from __future__ import annotations

import queue
from dataclasses import dataclass

import numpy as np

from cinerl.rewards.core.analysis import parallel_map
from cinerl.models.cache import cached_model, package_dir
from cinerl.rewards.config import EXTRA_HINT

SAME_PERSON_DISTANCE = 0.6


class FacesUnavailable(RuntimeError):
    pass


@dataclass
class Face:
    box: tuple[int, int, int, int]  # left, top, right, bottom in the frame it was found in
    embedding: np.ndarray  # (128,) float32
    score: float = 0.0  # the HOG detector's confidence (SVM margin; 0 is its detection threshold)


class FaceModels:
    def __init__(self):
        try:
            import dlib
        except ImportError as exc:
            raise FacesUnavailable(f"dlib is not installed (package dlib-bin; {EXTRA_HINT})") from exc
        d = package_dir("face_recognition_models")
        if d is None:
            raise FacesUnavailable(f"face_recognition_models is not installed ({EXTRA_HINT})")
        sp, rec = (
            d / "models" / "shape_predictor_5_face_landmarks.dat",
            d / "models" / "dlib_face_recognition_resnet_model_v1.dat",
        )
        for f in (sp, rec):
            if not f.is_file():
                raise FacesUnavailable(f"dlib model file missing: {f}")
        self._new_detector = dlib.get_frontal_face_detector
        self._idle: queue.SimpleQueue = queue.SimpleQueue()
        self._idle.put(self._new_detector())
        self.shape = dlib.shape_predictor(str(sp))
        self.encoder = dlib.face_recognition_model_v1(str(rec))

    def detect(self, rgb: np.ndarray, upsample: int = 0) -> list:
        """(dlib rectangle, detection score) of the faces in one image. Safe to call from
        several threads: a dlib detector is not, so each call borrows an idle one (a new one,
        ~0.5 s to build, when all are busy) and gives it back."""
        try:
            det = self._idle.get_nowait()
        except queue.Empty:
            det = self._new_detector()
        try:
            rects, scores, _ = det.run(np.ascontiguousarray(rgb), upsample, 0.0)
            return list(zip(rects, scores))
        finally:
            self._idle.put(det)

    def faces(
        self, rgb: np.ndarray, upsample: int = 0, max_faces: int = 4, dets: list | None = None
    ) -> list[Face]:
        """Faces in one uint8 RGB image, largest first, with their embeddings (``dets``: the
        detections when they were already made). Not thread-safe: the encoder is one network."""
        img = np.ascontiguousarray(rgb)
        dets = self.detect(img, upsample) if dets is None else dets
        dets = sorted(dets, key=lambda d: -d[0].width() * d[0].height())[:max_faces]
        out = []
        for r, score in dets:
            shape = self.shape(img, r)
            emb = np.asarray(self.encoder.compute_face_descriptor(img, shape), np.float32)
            out.append(Face((r.left(), r.top(), r.right(), r.bottom()), emb, float(score)))
        return out


def face_models() -> FaceModels:
    """dlib's models, loaded once per process."""
    return cached_model("dlib-faces", "face_recognition_models", "cpu", FaceModels)


N_KEYFRAMES = 6


def clip_faces(analysis) -> tuple[np.ndarray, list[list[Face]], tuple[int, int]]:
    """(keyframe indices, faces per keyframe, (h, w) of the keyframes), once per analysis."""

    def compute():
        models = face_models()
        idx, frames = analysis.detail_frames(N_KEYFRAMES)
        dets = parallel_map(models.detect, frames)  # detection dominates; it runs on threads
        return idx, [models.faces(f, dets=d) for f, d in zip(frames, dets)], frames[0].shape[:2]

    return analysis.shared("faces", compute)
