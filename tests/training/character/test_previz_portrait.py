"""The portrait-conditioned previz backend really uses the portrait: its face, its colours."""

import cv2
import numpy as np
import pytest

from cinerl.training.character.dataset.face_crop import find_face
from cinerl.training.character.dataset.previz_portrait import PortraitPrevizBackend
from cinerl.training.character.dataset.portrait import load_portrait
from cinerl.training.character.dataset.prompts import actor_prompts
from tests.fixtures.faces import FACE, FACE_BOX

W, H = 256, 144


@pytest.fixture(scope="module")
def face_rgb():
    return load_portrait(FACE).rgb


@pytest.fixture(scope="module")
def backend(face_rgb):
    return PortraitPrevizBackend(face_rgb)


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    a = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY).astype(np.float64).ravel()
    b = cv2.cvtColor(b, cv2.COLOR_RGB2GRAY).astype(np.float64).ravel()
    a, b = a - a.mean(), b - b.mean()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-9))


def test_face_is_found_with_a_detector(backend):
    box = backend.face
    assert box.method in ("dlib-hog", "opencv-haar")
    assert abs(box.x - FACE_BOX[0]) < 15 and abs(box.y - FACE_BOX[1]) < 15
    assert 0.7 < box.w / FACE_BOX[2] < 1.4


def test_no_face_falls_back_to_a_centre_crop_with_a_note():
    flat = np.full((200, 300, 3), 128, np.uint8)
    box = find_face(flat)
    assert box.method == "centre-crop" and (box.w, box.h) == (100, 100)
    assert "used a centre crop instead of a detected face" in box.notes


def test_close_up_shows_the_portraits_own_face(backend, face_rgb):
    text = actor_prompts("woman")[1].text  # the eye-contact close-up
    img, info = backend.render(text, W, H, seed=3)
    assert img.shape == (H, W, 3) and img.dtype == np.uint8
    assert info["style"] == "photo" and info["framing"] == "close"
    x, y, w, h = info["face_box"]
    out_face = cv2.resize(img[y : y + h, x : x + w], (64, 64), interpolation=cv2.INTER_AREA)
    f = backend.face
    src_face = cv2.resize(face_rgb[f.y : f.y + f.h, f.x : f.x + f.w], (64, 64), interpolation=cv2.INTER_AREA)
    assert _ncc(out_face, src_face) > 0.8
    # and the mean colour of the face is the portrait's (neutral studio light)
    assert np.abs(out_face.reshape(-1, 3).mean(0) - src_face.reshape(-1, 3).mean(0)).max() < 20
    # another portrait gives another face in the same shot
    other = PortraitPrevizBackend(np.ascontiguousarray(face_rgb[:, :, ::-1]))  # channels swapped
    img2, _ = other.render(text, W, H, seed=3)
    assert np.abs(img2.astype(int) - img.astype(int)).mean() > 10


def test_every_style_has_its_look(backend):
    prompts = actor_prompts("woman")
    for p in prompts:
        img, info = backend.render(p.text, W, H, seed=p.index)
        assert img.shape == (H, W, 3) and info["style"] in (p.style, "photo")
        sat = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)[..., 1].astype(float).mean()
        if p.category == "bw_stylised":
            assert np.array_equal(img[..., 0], img[..., 1]) and np.array_equal(img[..., 1], img[..., 2]), (
                p.style
            )
        else:
            assert sat > 25, (p.style, sat)
        assert img.std() > 20, p.style  # a picture, not a flat fill
    # the same seed renders the same image; another seed moves the shot
    a = backend.generate_image(prompts[0].text, W, H, 5)
    assert np.array_equal(a, backend.generate_image(prompts[0].text, W, H, 5))
    assert not np.array_equal(a, backend.generate_image(prompts[0].text, W, H, 6))


def test_stylised_images_differ_from_each_other(backend):
    imgs = [backend.render(p.text, W, H, seed=1)[0].astype(np.int16) for p in actor_prompts("man")[7:]]
    for i in range(len(imgs)):
        for j in range(i + 1, len(imgs)):
            assert np.abs(imgs[i] - imgs[j]).mean() > 8
