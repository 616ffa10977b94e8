"""SSPO's motion evidence on synthetic clips with known motion."""

from __future__ import annotations

import numpy as np
import pytest

from cinerl.llm.client import EndpointError, parse_rating
from cinerl.training.sspo.physics import physics_conclusion, physics_score, sample_flows


def _texture(h=96, w=160, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, size=(h // 8 + 2, w // 8 + 2, 3)).astype(np.uint8)
    import cv2

    return cv2.resize(base, (w * 2, h), interpolation=cv2.INTER_CUBIC)


def _clip(offsets, h=96, w=160):
    tex = _texture(h, w)
    return np.stack([tex[:, o : o + w] for o in offsets]).astype(np.uint8)


def test_steady_pan_is_plausible_and_back_and_forth_is_not():
    fps = 8
    steady = _clip([2 * t for t in range(33)])  # 2 px per frame, one direction
    s = sample_flows(steady, fps)
    assert s.interval_frames == 4 and len(s.flows) == 8
    assert s.reversals == 0 and physics_score(s) > 0.9
    assert physics_conclusion(s)[0] is True
    # direction flips every 0.5 s sample: inertia violated
    zigzag = _clip([16 + 2 * (t % 4) if (t // 4) % 2 == 0 else 24 - 2 * (t % 4) for t in range(33)])
    z = sample_flows(zigzag, fps)
    assert z.reversal_rate > 0.5
    assert physics_score(z) < physics_score(s) - 0.25
    plausible, text = physics_conclusion(z)
    assert not plausible and "inertia" in text


def test_vlm_scores_are_parsed_from_free_text():
    assert parse_rating("The knight and forest match well. Score: 4") == 4
    assert parse_rating("Alignment 3/5 because the horse is missing") == 3
    assert parse_rating("I'd say 2 out of 5.") == 2
    with pytest.raises(EndpointError):
        parse_rating("no number here")
