"""Video and image backends behind one protocol each."""

from __future__ import annotations

from cinerl.generation.base import BackendUnavailable, ImageBackend, VideoBackend

VIDEO_BACKENDS = ("previz", "wan")


def get_video_backend(name: str, settings=None) -> VideoBackend:
    """The named backend; `settings` (cinerl.config.Settings) configures the Wan backend."""
    if name == "previz":
        from cinerl.generation.previz import PrevizBackend

        return PrevizBackend()
    if name == "wan":
        from cinerl.generation.wan import WanOptions, shared_backend

        return shared_backend(WanOptions.from_settings(settings) if settings else WanOptions())
    raise BackendUnavailable(f"unknown video backend {name!r}; available: {', '.join(VIDEO_BACKENDS)}")


def get_image_backend(name: str) -> ImageBackend:
    if name == "previz":
        from cinerl.generation.previz import PrevizBackend

        return PrevizBackend()
    raise BackendUnavailable(f"unknown image backend {name!r}; available: previz")


__all__ = ["BackendUnavailable", "ImageBackend", "VideoBackend", "get_video_backend",
           "get_image_backend", "VIDEO_BACKENDS"]
