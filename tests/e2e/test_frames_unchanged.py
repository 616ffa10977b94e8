"""The layout change moved every module and changed no frame: the film the tree before it made
(same prompt, seed, size) decodes to exactly the same pixels.

The hashes were recorded with the tree before the move (commit d0c8160, `cinerl.cli make`); a
change that is meant to change frames must record new ones and say why in its commit."""

import hashlib

import pytest

from tests.e2e.helpers import film_frames, make_cmd, run

RECORDED = {
    # seed 0, continuous shots, cuts
    "continuous": (
        ["--scenes", "2", "--seed", "0"],
        "f7c22e3444a7016814127bd642d653a05405b4fc8986d0e6eb34ed21eda87611",
        138,
    ),
    # seed 3, keyframes between scenes, crossfades
    "keyframes": (
        ["--scenes", "2", "--seed", "3", "--mode", "keyframes", "--transition", "crossfade"],
        "367ef21dedbaeee1ea2d28259a237f0bbd041459e146e014c79ff5d141a6f38e",
        126,
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(RECORDED))
def test_film_frames_equal_the_recorded_film(tmp_path, case):
    extra, digest, count = RECORDED[case]
    out = tmp_path / "run"
    res = run(make_cmd(out, tmp_path / "policy.pt", *extra))
    assert res.returncode == 0, res.stderr
    frames = film_frames(out)
    assert len(frames) == count
    assert hashlib.sha256(frames.tobytes()).hexdigest() == digest
