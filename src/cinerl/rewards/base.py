"""Reward-suite plumbing: the scoring context, the component registry and shared colour helpers.

A reward component is a function ``measure(analysis, ctx) -> ComponentScore`` (or a class with a
``measure`` method) decorated with ``@register(name=..., group=...)``. Adding a component is one
module plus one import line in ``cinerl/rewards/__init__.py``; the ``Scorer`` picks up everything
registered. Components build their verdict with :func:`ok`, :func:`unavailable` and
:func:`not_applicable`; :func:`run_component` stamps name and group, keeps values in [0, 1] and
turns any exception into an ``unavailable`` verdict so one broken metric never stops scoring.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import cv2
import numpy as np

from cinerl.schema import ComponentScore, Scene, StoryBible

if TYPE_CHECKING:  # pragma: no cover
    from cinerl.rewards.analysis import ClipAnalysis

log = logging.getLogger(__name__)


@dataclass
class ScoreContext:
    """Everything a component may compare a clip against. Every field is optional."""

    prompt: str = ""
    scene: Scene | None = None
    bible: StoryBible | None = None
    # character id -> uint8 RGB reference image (character on a plain neutral mid-grey backdrop)
    character_refs: dict[str, np.ndarray] = field(default_factory=dict)
    # uint8 RGB reference image of the scene's location
    location_ref: np.ndarray | None = None
    # uint8 RGB last frame of the previous scene's chosen clip
    previous_last_frame: np.ndarray | None = None


# --------------------------------------------------------------------------------------------
# verdict helpers
# --------------------------------------------------------------------------------------------

def ok(value: float, raw: dict | None = None, **more_raw: Any) -> ComponentScore:
    """A measured score in [0, 1] with the raw measurement(s) it came from."""
    return ComponentScore(name="", group="", status="ok", value=float(value),
                          raw={**(raw or {}), **more_raw})


def unavailable(reason: str, raw: dict | None = None) -> ComponentScore:
    """The component applies but cannot run here (missing model, unusable input...)."""
    return ComponentScore(name="", group="", status="unavailable", value=None, raw=raw or {},
                          reason=reason)


def not_applicable(reason: str, raw: dict | None = None) -> ComponentScore:
    """The component does not apply to this clip (first scene, no characters...)."""
    return ComponentScore(name="", group="", status="not_applicable", value=None, raw=raw or {},
                          reason=reason)


# --------------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------------

Measure = Callable[["ClipAnalysis", ScoreContext], ComponentScore]


@dataclass(frozen=True)
class ComponentSpec:
    """One registered component."""

    name: str
    group: str
    measure: Measure
    doc: str = ""
    origin: str = ""  # "module.qualname" of the decorated object, to allow re-import


_REGISTRY: "OrderedDict[str, ComponentSpec]" = OrderedDict()


def register(name: str, group: str) -> Callable[[Any], Any]:
    """Register a reward component under ``name`` in score group ``group``.

    Decorates either a function ``f(analysis, ctx) -> ComponentScore`` or a class whose instances
    (built with no arguments) have ``measure(analysis, ctx) -> ComponentScore``. Returns the
    decorated object unchanged.
    """
    if not name or not isinstance(name, str):
        raise ValueError("component name must be a non-empty string")
    if not group or not isinstance(group, str):
        raise ValueError("component group must be a non-empty string")

    def deco(obj: Any) -> Any:
        origin = f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"
        if isinstance(obj, type):
            inst = obj()
            if not callable(getattr(inst, "measure", None)):
                raise TypeError(f"component class {obj.__name__} needs a measure(analysis, ctx) method")
            measure = inst.measure
        elif callable(obj):
            measure = obj
        else:
            raise TypeError("@register decorates a function or a class")
        old = _REGISTRY.get(name)
        if old is not None and old.origin != origin:
            raise ValueError(f"reward component {name!r} is already registered by {old.origin}")
        _REGISTRY[name] = ComponentSpec(name=name, group=group, measure=measure,
                                        doc=(obj.__doc__ or "").strip(), origin=origin)
        return obj

    return deco


def unregister(name: str) -> None:
    """Remove a component (mainly for tests that register temporary components)."""
    _REGISTRY.pop(name, None)


def registered_components() -> dict[str, ComponentSpec]:
    """All registered components by name, in registration order (a copy)."""
    return dict(_REGISTRY)


def registered_groups() -> list[str]:
    """The score groups that registered components belong to, in first-seen order."""
    return list(dict.fromkeys(s.group for s in _REGISTRY.values()))


def run_component(spec: ComponentSpec, analysis: "ClipAnalysis", ctx: ScoreContext) -> ComponentScore:
    """Run one component safely: never raises; stamps name and group; keeps ok values in [0, 1]."""
    try:
        res = spec.measure(analysis, ctx)
        if not isinstance(res, ComponentScore):
            raise TypeError(f"component returned {type(res).__name__}, not ComponentScore")
    except Exception as exc:  # a broken metric must not stop scoring
        log.warning("reward component %s failed: %s: %s", spec.name, type(exc).__name__, exc,
                    exc_info=log.isEnabledFor(logging.DEBUG))
        return ComponentScore(name=spec.name, group=spec.group, status="unavailable",
                              reason=f"error: {type(exc).__name__}: {exc}")
    upd: dict[str, Any] = {"name": spec.name, "group": spec.group}
    if res.status == "ok":
        v = res.value
        if v is None or not math.isfinite(v):
            return ComponentScore(name=spec.name, group=spec.group, status="unavailable", raw=res.raw,
                                  reason=f"component returned a non-finite value ({v!r})")
        upd["value"] = float(min(1.0, max(0.0, v)))
    else:
        upd["value"] = None
        if not res.reason:
            upd["reason"] = f"component reported {res.status} without a reason"
    return res.model_copy(update=upd)


# --------------------------------------------------------------------------------------------
# image / colour helpers shared by components
# --------------------------------------------------------------------------------------------

def as_rgb_uint8(img: Any, what: str = "image") -> np.ndarray:
    """Validate an image as uint8 (H, W, 3) RGB; grey (H, W) is stacked, RGBA drops alpha."""
    a = np.asarray(img)
    if a.dtype != np.uint8:
        raise ValueError(f"{what} must be uint8, got {a.dtype}")
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4) or a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"{what} must be (H, W, 3) RGB, got shape {a.shape}")
    return np.ascontiguousarray(a[:, :, :3])


def rgb_to_lab(img: np.ndarray) -> np.ndarray:
    """uint8 RGB (..., 3) -> float32 CIE Lab (L 0..100, a/b about -128..127), D65 via OpenCV."""
    a = np.asarray(img)
    shape = a.shape
    flat = a.reshape(-1, 1, 3).astype(np.float32) * (1.0 / 255.0)
    return cv2.cvtColor(flat, cv2.COLOR_RGB2Lab).reshape(shape)


def rgb_colors_to_lab(colors: Any) -> np.ndarray:
    """A list of sRGB 0-255 triples -> (N, 3) float32 Lab."""
    arr = np.asarray(colors, dtype=np.uint8).reshape(-1, 3)
    return rgb_to_lab(arr)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """(..., 3) float Lab -> uint8 sRGB, for reporting colours in raw output."""
    a = np.asarray(lab, dtype=np.float32)
    rgb = cv2.cvtColor(a.reshape(-1, 1, 3), cv2.COLOR_Lab2RGB).reshape(a.shape)
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def delta_e76(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """CIE76 colour difference: pairwise Euclidean distance in Lab, (N, 3) x (M, 3) -> (N, M)."""
    a = np.asarray(a, dtype=np.float32).reshape(-1, 3)
    b = np.asarray(b, dtype=np.float32).reshape(-1, 3)
    d2 = ((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T))
    return np.sqrt(np.maximum(d2, 0.0))


def kmeans_colors(pixels: np.ndarray, k: int, seed: int = 0, attempts: int = 3,
                  max_pixels: int = 20000) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic colour k-means (cv2.kmeans, k-means++ init, fixed RNG seed).

    pixels: (N, 3) float Lab. Returns (centres (k', 3) float32, shares (k',) summing to 1) sorted
    by share, largest first; k' <= k (fewer when there are fewer distinct pixels than k).
    """
    px = np.ascontiguousarray(np.asarray(pixels, dtype=np.float32).reshape(-1, 3))
    if px.shape[0] == 0:
        raise ValueError("no pixels to cluster")
    if px.shape[0] > max_pixels:  # deterministic even subsample
        idx = np.linspace(0, px.shape[0] - 1, max_pixels).astype(np.int64)
        px = np.ascontiguousarray(px[idx])
    k = int(max(1, min(k, px.shape[0])))
    cv2.setRNGSeed(int(seed))
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 25, 0.2)
    _, labels, centers = cv2.kmeans(px, k, None, criteria, attempts, cv2.KMEANS_PP_CENTERS)
    counts = np.bincount(labels.ravel(), minlength=k).astype(np.float64)
    keep = counts > 0
    centers, counts = centers[keep], counts[keep]
    order = np.argsort(-counts, kind="stable")
    return centers[order].astype(np.float32), (counts[order] / counts.sum()).astype(np.float64)


def array_digest(a: np.ndarray) -> str:
    """A content key for caching per-reference work (shape + dtype + bytes)."""
    a = np.ascontiguousarray(a)
    h = hashlib.blake2b(digest_size=16)
    h.update(repr((a.shape, str(a.dtype))).encode())
    if a.size:
        h.update(a.data)
    return h.hexdigest()


def resize_to(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize an image to exactly (height, width), INTER_AREA when shrinking."""
    h, w = img.shape[:2]
    if (w, h) == (width, height):
        return img
    interp = cv2.INTER_AREA if (width <= w and height <= h) else cv2.INTER_LINEAR
    return cv2.resize(img, (int(width), int(height)), interpolation=interp)


def analysis_size(height: int, width: int, max_side: int) -> tuple[int, int]:
    """(height, width) with the longest side at most max_side (never upscales)."""
    s = min(1.0, float(max_side) / float(max(height, width)))
    return max(1, int(round(height * s))), max(1, int(round(width * s)))
