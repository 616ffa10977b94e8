"""The backend registry: a backend registered by name is found by the director and the reference
stage without either naming it; its preflight runs before a run writes anything; unknown names
fail with the list of what exists."""

import numpy as np
import pytest

from cinerl.core.errors import BackendUnavailable
from cinerl.core.media import read_mp4
from cinerl.core.schema import Clip, ClipRequest
from cinerl.core.settings import Settings
from cinerl.generation import registry
from cinerl.generation.registry import (
    backend_spec,
    get_image_backend,
    get_video_backend,
    preflight,
    register_backend,
    registered_backends,
)
from cinerl.runtime.director import make_film


class GradientBackend:
    """A second real video backend: a horizontal gradient that drifts with the seed."""

    name = "gradient"

    def generate(self, request: ClipRequest) -> Clip:
        x = np.linspace(0, 255, request.width, dtype=np.float32)
        shift = request.seed % 64
        frames = np.empty((request.num_frames, request.height, request.width, 3), np.uint8)
        for t in range(request.num_frames):
            frames[t] = np.clip(x + shift + t, 0, 255).astype(np.uint8)[None, :, None]
        return Clip(frames=frames, fps=request.fps, metadata={"backend": self.name})


@pytest.fixture
def gradient():
    seen = []

    def check(settings, source):
        seen.append(source.get("run.width"))
        return settings.updated(**{"run.fps": 3})  # the backend's own rate, as Wan does

    register_backend(
        "gradient",
        lambda group, kind, **_: GradientBackend(),
        None,
        kinds=("video",),
        preflight=check,
        frame_neutral=("run.image_backend",),
    )
    yield seen
    registry._BACKENDS.pop("gradient")


def test_the_builtin_backends_are_listed_by_kind():
    assert registered_backends("video") == ["previz", "wan"]
    assert registered_backends("image") == ["diffusers", "previz", "wan"]
    assert backend_spec("wan").settings_group == "wan"
    assert "wan.offload" in backend_spec("wan").frame_neutral
    with pytest.raises(BackendUnavailable, match="unknown video backend 'sora'; available: previz, wan"):
        get_video_backend("sora")
    with pytest.raises(BackendUnavailable, match="unknown image backend 'dalle'"):
        get_image_backend("dalle")


def test_registration_checks_its_arguments():
    with pytest.raises(ValueError, match="kinds must be among"):
        register_backend("x", lambda *a, **k: None, kinds=("audio",))
    with pytest.raises(ValueError, match="no settings group 'nope'"):
        register_backend("x", lambda *a, **k: None, "nope")


def test_a_registered_backend_shoots_a_film_no_stage_names_it(tmp_path, gradient):
    settings = Settings.of(
        run__backend="gradient",
        plan__scenes=1,
        run__attempts=1,
        run__max_attempts=1,
        run__width=48,
        run__height=32,
        policy__path=str(tmp_path / "p.pt"),
    )
    settings = preflight(settings, {"run.width": "flag"})
    assert gradient == ["flag"] and settings.run.fps == 3
    result = make_film("a lighthouse keeper rows home", tmp_path / "run", settings)
    frames, fps = read_mp4(tmp_path / "run" / result.report.scenes[0].attempts[0].clip_path)
    assert fps == 3 and frames.shape[1:] == (32, 48, 3)
    assert frames[0, 0, -1, 0] > frames[0, 0, 0, 0]  # the gradient, not previz's scenery
