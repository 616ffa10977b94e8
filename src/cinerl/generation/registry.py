"""Every video and image backend by name: how to build it, which settings group it reads, which
of those settings do not change its frames, and the check it runs before a run writes anything.

The director and the CLI only ask this registry; they never name a backend. A backend module
calls `register_backend` when it is imported; the built-in ones are imported on first lookup
(`BUILTIN`, the only place that names their modules), so `cinerl make` on previz never imports
the Wan code. Another installed package adds a backend with an entry point in the
`cinerl.backends` group naming its module.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from cinerl.core.errors import BackendUnavailable
from cinerl.core.settings import Settings

KINDS = ("video", "image")
# backend name -> the module that registers it
BUILTIN = {
    "previz": "cinerl.generation.previz.backend",
    "wan": "cinerl.generation.wan.backend",
    "diffusers": "cinerl.generation.diffusers_image",
}

# (settings, {dotted setting: source}) -> settings, possibly with the backend's own defaults
Preflight = Callable[[Settings, dict[str, str]], Settings]


@dataclass(frozen=True)
class BackendSpec:
    name: str
    factory: Callable[..., Any]  # (settings group or None, kind=, **options) -> a backend
    settings_group: str | None  # the Settings group the backend reads ("wan"), or None
    kinds: frozenset[str]
    frame_neutral: tuple[str, ...]  # dotted settings of its group that never change frames
    preflight: Preflight | None
    description: str


_BACKENDS: dict[str, BackendSpec] = {}


def register_backend(
    name: str,
    factory: Callable[..., Any],
    settings_group: str | None = None,
    kinds: Iterable[str] = ("video",),
    *,
    frame_neutral: Iterable[str] = (),
    preflight: Preflight | None = None,
    description: str = "",
) -> BackendSpec:
    """Make a backend available by name to `cinerl make --backend` and the reference stage."""
    kinds = frozenset(kinds)
    if not kinds or not kinds <= set(KINDS):
        raise ValueError(f"backend {name!r}: kinds must be among {KINDS}, got {sorted(kinds)}")
    if settings_group is not None and settings_group not in Settings.model_fields:
        raise ValueError(f"backend {name!r}: no settings group {settings_group!r}")
    spec = BackendSpec(name, factory, settings_group, kinds, tuple(frame_neutral), preflight, description)
    _BACKENDS[name] = spec
    return spec


_PLUGINS_LOADED = False


def _load_plugins() -> None:
    """Backends of other installed packages: entry points in the `cinerl.backends` group, each a
    module that calls `register_backend` when imported."""
    global _PLUGINS_LOADED
    if not _PLUGINS_LOADED:
        _PLUGINS_LOADED = True
        for ep in entry_points(group="cinerl.backends"):
            importlib.import_module(ep.value.split(":")[0])


def _lookup(name: str) -> BackendSpec | None:
    if name not in _BACKENDS and name in BUILTIN:
        importlib.import_module(BUILTIN[name])
    if name not in _BACKENDS:
        _load_plugins()
    return _BACKENDS.get(name)


def registered_backends(kind: str | None = None) -> list[str]:
    _load_plugins()
    names = sorted(set(BUILTIN) | set(_BACKENDS))
    return [n for n in names if kind is None or kind in _lookup(n).kinds]


def backend_spec(name: str, kind: str = "video") -> BackendSpec:
    spec = _lookup(name)
    if spec is None or kind not in spec.kinds:
        raise BackendUnavailable(
            f"unknown {kind} backend {name!r}; available: {', '.join(registered_backends(kind))}"
        )
    return spec


def _group(spec: BackendSpec, settings: Settings | None):
    if spec.settings_group is None:
        return None
    return getattr(settings or Settings(), spec.settings_group)


def get_video_backend(name: str, settings: Settings | None = None, **options: Any):
    """The named video backend, configured from its settings group."""
    spec = backend_spec(name, "video")
    return spec.factory(_group(spec, settings), kind="video", **options)


def get_image_backend(name: str, settings: Settings | None = None, **options: Any):
    """The named image backend (reference stills, actor images), configured from its group;
    `options` are per-use (model_path, steps)."""
    spec = backend_spec(name, "image")
    return spec.factory(_group(spec, settings), kind="image", **options)


def preflight(settings: Settings, source: dict[str, str] | None = None) -> Settings:
    """Before a run writes anything: the video backend's own checks (weights present, sizes it
    can render); it may fill in its defaults where `source` says the user chose nothing."""
    spec = backend_spec(settings.run.backend, "video")
    if spec.preflight is None:
        return settings
    return spec.preflight(settings, source or {})


def frame_neutral_settings(backend: str) -> tuple[str, ...]:
    """The video backend's settings that do not change frames (a run resumes across them)."""
    return backend_spec(backend, "video").frame_neutral


def all_frame_neutral() -> tuple[str, ...]:
    """Every registered video backend's frame-neutral settings. A run's fingerprint leaves all of
    them out, as CineRL 0.1 did, so runs started before the registry still resume."""
    return tuple(
        sorted({k for n in registered_backends("video") for k in backend_spec(n, "video").frame_neutral})
    )
