"""Identity lock: is it the same face from keyframe to keyframe, and is it the character's face?

dlib face embeddings (see faces.py) on 6 evenly spaced keyframes (long side <= 640 px).

* consecutive: for keyframes k, k+1 that both show faces, each prominent face in k+1 (at least half
  the area of the largest) is compared with the face at about the same place in k (centres less
  than one face width apart; Euclidean distance of 128-D embeddings); a face with no counterpart
  entered the shot and is not counted;
* reference: the largest face of every keyframe against the nearest face found in the scene
  characters' reference images (detected with one upsampling, cached per image).

Distances map to scores by s(d) = exp(-ln 2 * (d / 0.6)^2): 1 at d = 0, 0.5 at dlib's same-person
threshold 0.6, ~0.1 at d = 1. value = mean of the consecutive and reference means that apply.
No face in any keyframe is ``not_applicable`` (never 0).
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np

from cinerl.rewards.core.analysis import ClipAnalysis
from cinerl.rewards.core.context import ScoreContext
from cinerl.rewards.colour import array_digest, as_rgb_uint8
from cinerl.rewards.core.registry import not_applicable, ok, register, unavailable
from cinerl.rewards.backbones.faces import SAME_PERSON_DISTANCE, FacesUnavailable, clip_faces, face_models

_REF_CACHE: "OrderedDict[str, list[np.ndarray]]" = OrderedDict()


PROMINENT_AREA = 0.5  # faces smaller than half the largest one in the frame are extras (or misses)


def prominent(faces: list) -> list:
    """The faces at least half as large (in area) as the largest one: the subjects of the shot."""

    def area(f) -> int:
        return (f.box[2] - f.box[0]) * (f.box[3] - f.box[1])

    top = area(faces[0])
    return [f for f in faces if area(f) >= PROMINENT_AREA * top]


def same_place(f, candidates: list):
    """The face in the previous keyframe at about the same place (centres closer than one face
    width), or None: a face with no such counterpart entered the shot, it did not change identity."""
    cx, cy, w = (f.box[0] + f.box[2]) / 2, (f.box[1] + f.box[3]) / 2, f.box[2] - f.box[0]
    best, best_d = None, float("inf")
    for g in candidates:
        d = math.hypot((g.box[0] + g.box[2]) / 2 - cx, (g.box[1] + g.box[3]) / 2 - cy)
        if d < best_d:
            best, best_d = g, d
    return best if best_d < w else None


def distance_score(d: float) -> float:
    return math.exp(-math.log(2.0) * (d / SAME_PERSON_DISTANCE) ** 2)


def reference_embeddings(img: np.ndarray) -> list[np.ndarray]:
    img = as_rgb_uint8(img, "character reference")
    key = array_digest(img)
    if key not in _REF_CACHE:
        _REF_CACHE[key] = [f.embedding for f in face_models().faces(img, upsample=1)]
        while len(_REF_CACHE) > 64:
            _REF_CACHE.popitem(last=False)
    return _REF_CACHE[key]


@register(name="identity_lock", group="character_consistency")
def identity_lock(analysis: ClipAnalysis, ctx: ScoreContext):
    """dlib face embeddings on keyframes: consecutive keyframes and against the character reference."""
    try:
        idx, faces, _ = clip_faces(analysis)
    except FacesUnavailable as exc:
        return unavailable(str(exc))
    with_faces = [k for k, f in enumerate(faces) if f]
    if not with_faces:
        return not_applicable(f"no face found in {len(idx)} keyframes")
    consecutive = []
    for a, b in zip(with_faces[:-1], with_faces[1:]):
        if b != a + 1:
            continue
        for f in prominent(faces[b]):
            g = same_place(f, faces[a])
            if g is not None:
                consecutive.append(float(np.linalg.norm(f.embedding - g.embedding)))
    refs, ref_ids = [], []
    if ctx.scene is not None:
        for cid in ctx.scene.character_ids:
            img = ctx.character_refs.get(cid)
            if img is not None:
                embs = reference_embeddings(img)
                refs += embs
                ref_ids += [cid] * len(embs)
    to_ref = []
    for k in with_faces:
        main = faces[k][0]
        if refs:
            to_ref.append(min(float(np.linalg.norm(main.embedding - r)) for r in refs))
    parts = {}
    if consecutive:
        parts["consecutive"] = float(np.mean([distance_score(d) for d in consecutive]))
    if to_ref:
        parts["reference"] = float(np.mean([distance_score(d) for d in to_ref]))
    if not parts:
        return not_applicable("no face seen twice in place, and no reference face to compare with")
    return ok(
        float(np.mean(list(parts.values()))),
        parts=parts,
        keyframes=[int(i) for i in idx],
        faces_per_keyframe=[len(f) for f in faces],
        consecutive_distances=[round(d, 4) for d in consecutive],
        reference_distances=[round(d, 4) for d in to_ref],
        reference_characters=sorted(set(ref_ids)),
        same_person_distance=SAME_PERSON_DISTANCE,
        formula="mean of parts; part = mean exp(-ln2 (d/0.6)^2) over dlib embedding distances",
    )
