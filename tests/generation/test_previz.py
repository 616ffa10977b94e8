"""previz must respond to prompt wording the way the reward suite expects a real generator to:
locked looks stay put, unlocked ones drift with the seed, calm cameras and artifact negatives
measure smoother than handheld and empty negatives."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from cinerl.generation.registry import get_image_backend, get_video_backend
from cinerl.generation.base import ImageBackend, VideoBackend
from cinerl.generation.previz.backend import PrevizBackend
from cinerl.generation.previz.parse import parse_prompt
from cinerl.generation.previz.render import fit_image
from cinerl.core.vocabulary import COLORS, NEGATIVE_PRESETS
from cinerl.core.schema import ClipRequest

STYLE = "Cinematic film still, 35mm lens, shallow depth of field."
ACTION = "Mara hauls a small boat up the slipway against the wind"
FULL_MARA = (
    "Mara, a 34-year-old woman with black hair, wearing crimson coat and charcoal trousers, "
    "weathered face, steady gaze."
)
FULL_HARBOUR = (
    "In the Old Harbour, a harbour of slate grey, rust red and fog white, wet stone quays and moored boats."
)

EXAMPLES = {
    "unlocked_handheld": (
        f"Wide shot, fast handheld camera. Dusk, warm golden hour light. A person is in the scene. "
        f"{ACTION}, gentle natural motion. {STYLE}"
    ),
    "name_lock": (
        f"Wide shot, static camera. In the Old Harbour. Dusk, warm golden hour light. Mara, a woman, "
        f"is in the scene. {ACTION}, gentle natural motion. {STYLE}"
    ),
    "brief_lock": (
        f"Medium shot, slow pan. In the Old Harbour, a harbour of slate grey and rust red. Night, neon "
        f"light. Mara, a woman in a crimson coat. Tomas, a man in a navy jacket. {ACTION}, dynamic "
        f"motion. {STYLE}"
    ),
    "full_lock": (
        f"Close-up shot, slow dolly in. {FULL_HARBOUR} Day, soft even daylight. {FULL_MARA} {ACTION}, "
        f"frantic erratic motion. {STYLE}"
    ),
    "character_ref": (
        f"Medium shot, static camera. Character reference on a plain studio backdrop, soft even "
        f"daylight. {FULL_MARA} {STYLE}"
    ),
    "location_ref": (
        f"Extreme wide shot, static camera. {FULL_HARBOUR} Day, soft even daylight. Empty "
        f"establishing shot, no people. {STYLE}"
    ),
}

W, H = 160, 96


def clip(prompt: str, seed: int = 0, negative: str = "", frames: int = 12, **kw) -> np.ndarray:
    req = ClipRequest(
        prompt=prompt,
        negative_prompt=negative,
        width=kw.pop("width", W),
        height=kw.pop("height", H),
        num_frames=frames,
        seed=seed,
        **kw,
    )
    return PrevizBackend().generate(req).frames


def near_fraction(image: np.ndarray, rgb, tol: float = 30.0) -> float:
    """Share of pixels within tol (Euclidean, sRGB levels) of a colour."""
    d = np.linalg.norm(image.reshape(-1, 3).astype(np.float32) - np.float32(rgb), axis=1)
    return float((d < tol).mean())


def flow_acceleration(frames: np.ndarray) -> float:
    """Mean magnitude of the frame-to-frame change of Farneback optical flow."""
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    flows = [
        cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0) for a, b in zip(grey, grey[1:])
    ]
    return float(np.mean([np.linalg.norm(b - a, axis=-1).mean() for a, b in zip(flows, flows[1:])]))


def mean_abs_frame_diff(frames: np.ndarray) -> float:
    return float(np.abs(np.diff(frames.astype(np.int16), axis=0)).mean())


# ---------------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    "key, shot, move, speed, scenery, palette, n_fig",
    [
        ("unlocked_handheld", "wide", "handheld", "fast", None, [], 1),
        ("name_lock", "wide", "static", "normal", "harbour", [], 1),
        ("brief_lock", "medium", "pan", "slow", "harbour", ["slate grey", "rust red"], 2),
        ("full_lock", "close-up", "dolly", "slow", "harbour", ["slate grey", "rust red", "fog white"], 1),
        ("character_ref", "medium", "static", "normal", None, [], 1),
        (
            "location_ref",
            "extreme wide",
            "static",
            "normal",
            "harbour",
            ["slate grey", "rust red", "fog white"],
            0,
        ),
    ],
)
def test_parse_examples(key, shot, move, speed, scenery, palette, n_fig):
    spec = parse_prompt(EXAMPLES[key])
    assert (spec.shot_size, spec.camera_move, spec.camera_speed) == (shot, move, speed)
    assert spec.scenery_type == scenery
    assert spec.palette == palette
    assert len(spec.figures) == n_fig


def test_parse_details():
    full = parse_prompt(EXAMPLES["full_lock"], NEGATIVE_PRESETS["full"])
    mara = full.figures[0]
    assert (mara.name, mara.noun, mara.age, mara.hair) == ("Mara", "woman", 34, "black")
    assert mara.wardrobe == ["crimson", "charcoal"]
    assert (full.time_of_day, full.lighting, full.motion) == ("day", "soft daylight", "frantic")
    assert full.camera_direction == "in"
    assert full.location_name == "the Old Harbour"
    assert set(full.negatives) >= {"flicker", "jitter", "morphing", "colour shift", "blurry"}

    brief = parse_prompt(EXAMPLES["brief_lock"])
    assert [f.name for f in brief.figures] == ["Mara", "Tomas"]
    assert [f.wardrobe for f in brief.figures] == [["crimson"], ["navy"]]
    assert (brief.time_of_day, brief.lighting, brief.motion) == ("night", "neon", "dynamic")

    assert parse_prompt(EXAMPLES["character_ref"]).studio
    # "shallow depth of field" is not a meadow: an unnamed place stays unknown
    assert parse_prompt(EXAMPLES["unlocked_handheld"]).scenery_type is None
    assert parse_prompt(EXAMPLES["unlocked_handheld"]).negatives == []


# ---------------------------------------------------------------------------------- contract


def test_protocols_and_registry():
    b = PrevizBackend()
    assert isinstance(b, VideoBackend) and isinstance(b, ImageBackend)
    assert b.name == "previz"
    assert isinstance(get_video_backend("previz"), PrevizBackend)
    assert isinstance(get_image_backend("previz"), PrevizBackend)


@pytest.mark.parametrize("w, h, n, fps", [(33, 47, 1, 24), (161, 97, 5, 12), (32, 32, 3, 30)])
def test_shapes_for_odd_sizes(w, h, n, fps):
    for key in ("full_lock", "location_ref", "unlocked_handheld"):
        c = PrevizBackend().generate(
            ClipRequest(prompt=EXAMPLES[key], width=w, height=h, num_frames=n, fps=fps, seed=5)
        )
        assert c.frames.shape == (n, h, w, 3) and c.frames.dtype == np.uint8
        assert c.fps == fps
    img = PrevizBackend().generate_image(EXAMPLES["character_ref"], w, h, 1)
    assert img.shape == (h, w, 3) and img.dtype == np.uint8


def test_metadata():
    c = PrevizBackend().generate(
        ClipRequest(prompt=EXAMPLES["brief_lock"], width=W, height=H, num_frames=2, seed=9)
    )
    m = c.metadata
    assert m["backend"] == "previz" and m["seed"] == 9 and m["prompt"] == EXAMPLES["brief_lock"]
    assert m["spec"]["camera_move"] == "pan" and len(m["spec"]["figures"]) == 2
    assert m["render_seconds"] >= 0


def test_deterministic_and_seed_dependent():
    p = EXAMPLES["unlocked_handheld"]
    a, b = clip(p, seed=3), clip(p, seed=3)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, clip(p, seed=4))
    img = PrevizBackend().generate_image(EXAMPLES["full_lock"], W, H, 2)
    assert np.array_equal(img, PrevizBackend().generate_image(EXAMPLES["full_lock"], W, H, 2))


def test_init_image_is_first_frame_then_dissolves():
    rng = np.random.default_rng(0)
    init = rng.integers(0, 256, size=(120, 200, 3), dtype=np.uint8)  # other size: gets resized
    frames = clip(EXAMPLES["full_lock"], seed=1, frames=24, fps=24, init_image=init)
    expected = cv2.resize(init, (W, H), interpolation=cv2.INTER_AREA)
    assert np.array_equal(frames[0], expected)
    assert np.array_equal(fit_image(init, W, H), expected)
    plain = clip(EXAMPLES["full_lock"], seed=1, frames=24, fps=24)
    # halfway through the dissolve the frame lies between the init image and the scene
    d_init = np.abs(frames[6].astype(int) - expected).mean()
    d_scene = np.abs(frames[6].astype(int) - plain[6]).mean()
    assert 0 < d_scene < d_init + d_scene and 0 < d_init
    assert np.array_equal(frames[12:], plain[12:])  # after ~0.5 s it is the rendered scene
    same = clip(EXAMPLES["full_lock"], seed=1, frames=3, init_image=fit_image(init, W, H))
    assert np.array_equal(same[0], expected)


# ---------------------------------------------------------------------------------- identity


CRIMSON, CHARCOAL = COLORS["crimson"], COLORS["charcoal"]


def test_locked_character_keeps_wardrobe_across_seeds():
    prompt = (
        f"Medium shot, static camera. {FULL_HARBOUR} Day, soft even daylight. {FULL_MARA} "
        f"{ACTION}, minimal motion. {STYLE}"
    )
    for seed in (1, 2, 3):
        frames = clip(prompt, seed=seed, negative=NEGATIVE_PRESETS["full"], frames=6)
        assert near_fraction(frames[-1], CRIMSON) > 0.08
        assert near_fraction(frames[-1], CHARCOAL) > 0.01
    ref = PrevizBackend().generate_image(EXAMPLES["character_ref"], W, H, 7)
    assert near_fraction(ref, CRIMSON, tol=10) > 0.08
    assert near_fraction(ref, COLORS["slate grey"], tol=12) < 0.01  # the backdrop is neutral grey


def test_unlocked_character_drifts_across_seeds_but_not_within_clip():
    prompt = f"Medium shot, static camera. Plain studio backdrop. A person is in the scene. {STYLE}"
    looks = {}
    for seed in range(4):
        c = PrevizBackend().generate(
            ClipRequest(
                prompt=prompt,
                width=W,
                height=H,
                num_frames=8,
                seed=seed,
                negative_prompt=NEGATIVE_PRESETS["full"],
            )
        )
        torso = tuple(c.metadata["look"]["figures"][0]["wardrobe_rgb"][0])
        looks[seed] = torso
        # the invented coat is really there, in the first and last frame alike
        assert near_fraction(c.frames[0], torso, 25) > 0.05
        assert near_fraction(c.frames[-1], torso, 25) > 0.05
    assert len(set(looks.values())) >= 3
    img0 = PrevizBackend().generate_image(prompt, W, H, 0)
    img1 = PrevizBackend().generate_image(prompt, W, H, 1)
    assert near_fraction(img0, looks[0], 15) > 0.05
    assert near_fraction(img1, looks[0], 15) < 0.02


def test_brief_lock_fixes_coat_not_trousers():
    prompt = EXAMPLES["brief_lock"].replace("Night, neon light", "Day, soft even daylight")
    outfits = [
        PrevizBackend()
        .generate(ClipRequest(prompt=prompt, width=W, height=H, num_frames=1, seed=s))
        .metadata["look"]["figures"][0]
        for s in range(4)
    ]
    assert all(f["wardrobe"][0] == "crimson" for f in outfits)
    assert len({f["wardrobe"][1] for f in outfits}) >= 3


# ---------------------------------------------------------------------------------- location


def test_location_palette_matches_named_colours():
    img = PrevizBackend().generate_image(EXAMPLES["location_ref"], W, H, 0)
    shares = [near_fraction(img, COLORS[c]) for c in ("slate grey", "rust red", "fog white")]
    assert min(shares) > 0.15, shares
    assert sum(shares) > 0.7, shares
    # the same holds in a clip with calm camera and artifact negatives
    frames = clip(EXAMPLES["location_ref"], seed=4, negative=NEGATIVE_PRESETS["full"], frames=4)
    shares = [near_fraction(frames[-1], COLORS[c]) for c in ("slate grey", "rust red", "fog white")]
    assert min(shares) > 0.12, shares


def test_unlocked_location_drifts_across_seeds():
    prompt = (
        f"Extreme wide shot, static camera. In the Old Harbour. Day, soft even daylight. "
        f"Empty establishing shot, no people. {STYLE}"
    )
    named = [COLORS[c] for c in ("slate grey", "rust red", "fog white")]
    palettes = set()
    for seed in range(4):
        b = PrevizBackend()
        c = b.generate(ClipRequest(prompt=prompt, width=W, height=H, num_frames=1, seed=seed))
        look = c.metadata["look"]
        assert look["scenery_type"] == "harbour" and look["palette_source"] == "seed"
        palettes.add(tuple(n for n, _ in look["palette"]))
        img = b.generate_image(prompt, W, H, seed)
        assert sum(near_fraction(img, rgb) for rgb in named) < 0.5
    assert len(palettes) == 4
    no_place = f"Wide shot, static camera. Day, soft even daylight. {STYLE}"
    kinds = {
        PrevizBackend()
        .generate(ClipRequest(prompt=no_place, width=W, height=H, num_frames=1, seed=s))
        .metadata["look"]["scenery_type"]
        for s in range(8)
    }
    assert len(kinds) >= 3


# ---------------------------------------------------------------------------------- motion, artifacts


def _calm(camera: str, motion: str = "gentle natural motion") -> str:
    return (
        f"Medium shot, {camera}. {FULL_HARBOUR} Day, soft even daylight. {FULL_MARA} {ACTION}, "
        f"{motion}. {STYLE}"
    )


def test_handheld_is_much_shakier_than_static():
    neg = NEGATIVE_PRESETS["full"]
    static = clip(_calm("static camera"), seed=2, negative=neg, frames=24)
    handheld = clip(_calm("fast handheld camera"), seed=2, negative=neg, frames=24)
    assert mean_abs_frame_diff(handheld) > 2.5 * mean_abs_frame_diff(static)
    assert flow_acceleration(handheld) > 4 * flow_acceleration(static)
    pan = clip(_calm("slow pan"), seed=2, negative=neg, frames=24)
    assert flow_acceleration(pan) < 0.25 * flow_acceleration(handheld)  # smooth moves are smooth


def test_frantic_motion_is_jerkier_than_gentle():
    neg = NEGATIVE_PRESETS["full"]
    gentle = clip(_calm("static camera"), seed=2, negative=neg, frames=24)
    frantic = clip(_calm("static camera", "frantic erratic motion"), seed=2, negative=neg, frames=24)
    assert flow_acceleration(frantic) > 2 * flow_acceleration(gentle)


def test_flicker_negative_reduces_brightness_flicker():
    prompt = _calm("static camera", "minimal motion")
    plain = clip(prompt, seed=3, frames=36)
    guarded = clip(prompt, seed=3, negative="flicker", frames=36)
    std_plain = plain.reshape(len(plain), -1).mean(1).std()
    std_guarded = guarded.reshape(len(guarded), -1).mean(1).std()
    assert std_guarded < 0.4 * std_plain
    full = clip(prompt, seed=3, negative=NEGATIVE_PRESETS["full"], frames=36)
    assert mean_abs_frame_diff(full) < 0.5 * mean_abs_frame_diff(plain)


def test_colour_shift_negative_reduces_drift():
    prompt = _calm("static camera", "minimal motion")

    def drift(frames):
        return float(np.abs(frames[-3:].mean((0, 1, 2)) - frames[:3].mean((0, 1, 2))).max())

    drifts = [
        (
            drift(clip(prompt, seed=s, frames=48)),
            drift(clip(prompt, seed=s, negative="colour shift, flicker", frames=48)),
        )
        for s in range(3)
    ]
    assert sum(d for _, d in drifts) < 0.5 * sum(d for d, _ in drifts)


def test_still_image_has_no_artifacts():
    """generate_image is the clean reference: the locked colours come out exactly."""
    img = PrevizBackend().generate_image(EXAMPLES["character_ref"], W, H, 0)
    grey = np.abs(img[:5, :5].astype(int) - 128).max()
    assert grey <= 3  # plain mid-grey backdrop, no grain or tint


def test_render_speed_sanity(capsys):
    """640x360, 264 frames (11 s at 24 fps). Printed, not asserted: machines differ."""
    req = ClipRequest(prompt=EXAMPLES["brief_lock"], width=640, height=360, num_frames=264, seed=1)
    start = time.perf_counter()
    cpu = time.process_time()
    c = PrevizBackend().generate(req)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    assert c.frames.shape == (264, 360, 640, 3)
    with capsys.disabled():
        print(f"\npreviz 640x360x264: {wall:.2f} s wall, {cpu:.2f} s CPU")


ANIMAL = "Pip, a 3-year-old male dog with a crimson coat, a navy collar and mustard markings, alert ears"


def test_an_animal_noun_gives_a_four_legged_figure_in_its_coat_colours():
    spec = parse_prompt(f"Wide shot, static camera. {FULL_HARBOUR} {ANIMAL}. {STYLE}")
    assert [(f.noun, f.name, f.wardrobe) for f in spec.figures] == [
        ("dog", "Pip", ["crimson", "navy", "mustard"])
    ]
    frames = clip(f"Wide shot, static camera. {FULL_HARBOUR} {ANIMAL}. {STYLE}", frames=2)
    assert near_fraction(frames[0], COLORS["crimson"]) > 0.005
    # wider than tall: a figure on four legs, not a standing person
    mask = np.abs(frames[0].astype(float) - COLORS["crimson"]).sum(-1) < 60
    ys, xs = np.nonzero(mask)
    assert xs.max() - xs.min() > ys.max() - ys.min()
    # a place named after an animal is still a place, not a figure
    assert parse_prompt("In the Fox Inn, an interior of walnut and cream.").figures == []


# ---------------------------------------------------------------------------------- context (issue 20)
# previz renders light, motion and shot size the way a real model would, so that on previz the best
# action depends on the scene (a night, a candle-lit room, a chase, a crowd).

CAST4 = (
    "Mara, a woman in a crimson coat. Tomas, a man in a mustard jacket. Ines, a woman in an emerald "
    "dress. Olek, a man in a cobalt blue coat."
)


def _lit(time_of_day: str, light: str, motion: str = "minimal motion", shot: str = "Wide shot") -> str:
    return (
        f"{shot}, static camera. {FULL_HARBOUR} {time_of_day}, {light}. {FULL_MARA} {ACTION}, {motion}. "
        f"{STYLE}"
    )


def _lab(frames: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(frames.reshape(-1, 1, 3), cv2.COLOR_RGB2Lab).reshape(-1, 3).astype(np.float32)


def _lightness(frames: np.ndarray) -> float:
    return float(_lab(frames)[:, 0].mean() / 2.55)  # 8-bit L* is scaled by 255/100


def _red_over_blue(frames: np.ndarray) -> float:
    return float(frames[..., 0].astype(float).mean() / max(frames[..., 2].astype(float).mean(), 1.0))


def test_night_darkens_whatever_the_lighting_phrase_says():
    neg = NEGATIVE_PRESETS["full"]
    day = clip(_lit("Day", "soft even daylight"), negative=neg, frames=4)
    night_day = clip(_lit("Night", "soft even daylight"), negative=neg, frames=4)
    night_low = clip(_lit("Night", "low key light with deep shadows"), negative=neg, frames=4)
    assert _lightness(night_day) < 0.75 * _lightness(day)
    assert _lightness(night_low) < 0.6 * _lightness(night_day)


def test_neon_is_saturated_and_blue_magenta():
    neg = NEGATIVE_PRESETS["full"]
    lab = _lab(clip(_lit("Night", "neon light"), negative=neg, frames=4)) - [0, 128, 128]
    daylab = _lab(clip(_lit("Night", "soft even daylight"), negative=neg, frames=4)) - [0, 128, 128]
    hue = np.degrees(np.arctan2(lab[:, 2], lab[:, 1])) % 360
    chroma = np.hypot(lab[:, 1], lab[:, 2])
    assert float(((hue >= 250) & (chroma > 20)).mean()) > 0.6  # violet to magenta
    assert chroma.mean() > 1.5 * np.hypot(daylab[:, 1], daylab[:, 2]).mean()


def test_candlelight_is_warm_dim_and_flickers_golden_hour_is_warm():
    neg = NEGATIVE_PRESETS["full"]
    day = clip(_lit("Day", "soft even daylight"), negative=neg, frames=24)
    candle = clip(_lit("Night", "flickering candlelight"), negative=neg, frames=24)
    golden = clip(_lit("Dusk", "warm golden hour light"), negative=neg, frames=24)
    assert _red_over_blue(candle) > 2.0 * _red_over_blue(day)
    assert _red_over_blue(golden) > 1.4 * _red_over_blue(day)
    assert _lightness(candle) < 0.6 * _lightness(day)
    flicker = [f.reshape(len(f), -1).mean(1).std() for f in (day, candle)]
    assert flicker[1] > 3 * flicker[0]


def test_frantic_motion_moves_much_more_than_still():
    neg = NEGATIVE_PRESETS["full"]

    def flow(frames):
        grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
        return float(
            np.mean(
                [
                    np.linalg.norm(
                        cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0), axis=-1
                    ).mean()
                    for a, b in zip(grey, grey[1:])
                ]
            )
        )

    still = clip(_lit("Day", "soft even daylight", "minimal motion"), negative=neg, frames=12)
    frantic = clip(_lit("Day", "soft even daylight", "frantic erratic motion"), negative=neg, frames=12)
    assert flow(frantic) > 5 * flow(still)


def test_a_close_up_crops_the_cast_to_one_figure():
    def render(shot: str):
        prompt = f"{shot}, static camera. {FULL_HARBOUR} Day, soft even daylight. {CAST4} {ACTION}. {STYLE}"
        c = PrevizBackend().generate(
            ClipRequest(
                prompt=prompt, negative_prompt=NEGATIVE_PRESETS["full"], width=W, height=H, num_frames=2
            )
        )
        return c.frames[0], c.metadata["look"]

    coats = [COLORS[c] for c in ("crimson", "mustard", "emerald", "cobalt blue")]
    wide, wide_look = render("Wide shot")
    close, close_look = render("Close-up shot")
    medium, medium_look = render("Medium shot")
    assert (
        wide_look["figures_in_frame"],
        medium_look["figures_in_frame"],
        close_look["figures_in_frame"],
    ) == (4, 3, 1)
    assert all(near_fraction(wide, c) > 0.003 for c in coats)
    assert near_fraction(close, coats[0]) > 0.1  # the first character fills the frame
    assert all(near_fraction(close, c) < 0.001 for c in coats[1:])
    assert near_fraction(medium, coats[3]) < 0.001 and near_fraction(medium, coats[2]) > 0.003
