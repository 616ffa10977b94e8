"""Identity lock: is every face in the clip one of the scene's people, and does each keep its face?

dlib face embeddings (see faces.py) on 6 evenly spaced keyframes (long side <= 640 px). Only the
prominent faces of a keyframe (at least half the area of its largest face) are subjects; smaller
ones are extras or misses, and so are faces detected with far less confidence than the frame's
surest face (HOG false positives beside a clear face).

* identities: the faces of the scene characters' reference images (detected with one upsampling,
  cached per image). When some scene character has no reference face (no reference, or a drawn
  one), the identities seen in the clip's first keyframes with faces (the first
  ``FIRST_KEYFRAMES``, faces closer than dlib's same-person distance merged) are added, so the
  person who opens the shot is the one it must keep.
* every prominent face is matched against every identity (nearest embedding): a face farther than
  the same-person distance 0.6 from all of them is an **unmatched face**, a swap. Matching by
  embedding, not by position, catches a new face elsewhere in the frame.
* tracks: a face in keyframe k+1 at about the place of a face in k (centres less than one face
  width apart) continues it; a track whose two faces are farther apart than 0.6 **changed
  identity**, a swap.

Distances map to scores by s(d) = exp(-ln 2 * (d / 0.6)^2): 1 at d = 0, 0.5 at dlib's same-person
threshold 0.6, ~0.1 at d = 1. A face scores min(s(identity distance), s(track distance)); a
keyframe scores its worst prominent face (one swapped person spoils the shot, two people who each
keep their face score as one); value = mean over the keyframes with faces. No face in any keyframe
is ``not_applicable`` (never 0).
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np

from cinerl.rewards.backbones.faces import SAME_PERSON_DISTANCE, FacesUnavailable, clip_faces, face_models
from cinerl.rewards.colour import array_digest, as_rgb_uint8
from cinerl.rewards.core.analysis import ClipAnalysis
from cinerl.rewards.core.context import ScoreContext
from cinerl.rewards.core.registry import not_applicable, ok, register, unavailable

_REF_CACHE: "OrderedDict[str, list[np.ndarray]]" = OrderedDict()


PROMINENT_AREA = 0.5  # faces smaller than half the largest one in the frame are extras (or misses)
# a face detected with a HOG confidence this far below the frame's surest face is a doubtful
# detection (a patch or a hand beside a clear face), not a second subject
CONFIDENCE_MARGIN = 0.75
FIRST_KEYFRAMES = 2  # keyframes with faces whose people define the clip's identities (no reference)


def prominent(faces: list) -> list:
    """The subjects of the shot: faces at least half as large (in area) as the largest one and
    detected with a confidence within ``CONFIDENCE_MARGIN`` of the surest one."""

    def area(f) -> int:
        return (f.box[2] - f.box[0]) * (f.box[3] - f.box[1])

    top = area(faces[0])
    sure = max(f.score for f in faces)
    return [f for f in faces if area(f) >= PROMINENT_AREA * top and f.score >= sure - CONFIDENCE_MARGIN]


def same_place(f, candidates: list):
    """The face in the previous keyframe at about the same place (centres closer than one face
    width), or None: a face with no such counterpart entered the shot, it starts a track."""
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
    """Face embeddings of one reference image (largest first), cached by image content."""
    img = as_rgb_uint8(img, "character reference")
    key = array_digest(img)
    if key not in _REF_CACHE:
        _REF_CACHE[key] = [f.embedding for f in face_models().faces(img, upsample=1)]
        while len(_REF_CACHE) > 64:
            _REF_CACHE.popitem(last=False)
    return _REF_CACHE[key]


def reference_identities(ctx: ScoreContext) -> tuple[list[tuple[str, np.ndarray]], list[str]]:
    """([(character id, embedding)] from the scene characters' references, [ids without a face])."""
    found, faceless = [], []
    if ctx.scene is None:
        return found, faceless
    for cid in ctx.scene.character_ids:
        img = ctx.character_refs.get(cid)
        embs = reference_embeddings(img) if img is not None else []
        if not embs:
            faceless.append(cid)
        # the largest face is the character; more faces in one still are a crowd or a miss
        found += [(cid, embs[0])] if embs else []
    return found, faceless


def clip_identities(faces: list[list]) -> list[np.ndarray]:
    """The people of the clip's first keyframes with faces: prominent faces, merged greedily when
    closer than the same-person distance (the first face seen stands for its person)."""
    out: list[np.ndarray] = []
    for fs in [fs for fs in faces if fs][:FIRST_KEYFRAMES]:
        for f in prominent(fs):
            if all(np.linalg.norm(f.embedding - e) > SAME_PERSON_DISTANCE for e in out):
                out.append(f.embedding)
    return out


@register(name="identity_lock", group="character_consistency")
def identity_lock(analysis: ClipAnalysis, ctx: ScoreContext):
    """dlib face embeddings on keyframes: every face against the scene's identities, every track."""
    try:
        idx, faces, _ = clip_faces(analysis)
    except FacesUnavailable as exc:
        return unavailable(str(exc))
    with_faces = [k for k, f in enumerate(faces) if f]
    if not with_faces:
        return not_applicable(f"no face found in {len(idx)} keyframes")
    refs, faceless = reference_identities(ctx)
    identities = [e for _, e in refs]
    labels = [cid for cid, _ in refs]
    if faceless or not refs:
        own = clip_identities(faces)
        identities += own
        labels += [f"clip_{i}" for i in range(len(own))]
    consecutive, to_ref, to_clip, swaps, per_keyframe = [], [], [], [], []
    for k in with_faces:
        worst = 1.0
        for f in prominent(faces[k]):
            dists = [float(np.linalg.norm(f.embedding - e)) for e in identities]
            j = int(np.argmin(dists))
            d_id = dists[j]
            (to_ref if labels[j] in ctx.character_refs else to_clip).append(d_id)
            score = distance_score(d_id)
            if d_id > SAME_PERSON_DISTANCE:
                swaps.append({"keyframe": int(idx[k]), "kind": "unmatched face", "distance": round(d_id, 4)})
            g = same_place(f, faces[k - 1]) if k > 0 and faces[k - 1] else None
            if g is not None:
                d_tr = float(np.linalg.norm(f.embedding - g.embedding))
                consecutive.append(d_tr)
                score = min(score, distance_score(d_tr))
                if d_tr > SAME_PERSON_DISTANCE:
                    swaps.append(
                        {
                            "keyframe": int(idx[k]),
                            "kind": "identity changed in a track",
                            "distance": round(d_tr, 4),
                        }
                    )
            worst = min(worst, score)
        per_keyframe.append(worst)
    parts = {}
    if consecutive:
        parts["consecutive"] = float(np.mean([distance_score(d) for d in consecutive]))
    if to_ref:
        parts["reference"] = float(np.mean([distance_score(d) for d in to_ref]))
    if to_clip:
        parts["clip_identities"] = float(np.mean([distance_score(d) for d in to_clip]))
    return ok(
        float(np.mean(per_keyframe)),
        parts=parts,
        keyframes=[int(i) for i in idx],
        faces_per_keyframe=[len(f) for f in faces],
        keyframe_scores=[round(s, 4) for s in per_keyframe],
        swaps=swaps,
        identities=labels,
        consecutive_distances=[round(d, 4) for d in consecutive],
        reference_distances=[round(d, 4) for d in to_ref],
        clip_identity_distances=[round(d, 4) for d in to_clip],
        reference_characters=sorted({c for c, _ in refs}),
        characters_without_reference_face=faceless,
        same_person_distance=SAME_PERSON_DISTANCE,
        formula="mean over keyframes of the worst prominent face's min(s(d_identity), s(d_track)); "
        "s(d) = exp(-ln2 (d/0.6)^2) on dlib embedding distances",
    )
