"""A portrait-conditioned previz image backend: the portrait itself is the input.

The face found in the portrait (generation/face_crop.py) and the head and shoulders around it are
cut out (GrabCut, initialised with that box), relit and placed into a procedural set that the
prompt names (night street, window light, subway, parking garage, rooftop, alley, or a studio
backdrop in the portrait's own colours), framed as the prompt asks (close-up, medium, wide), then
drawn in the prompt's style (generation/stylise.py). Like previz for video, it is a preview and a
test bed for the character-LoRA data path, not a generative model: it never invents a face.
"""

from __future__ import annotations

import re

import cv2
import numpy as np

from cinerl.training.character.dataset.face_crop import FaceBox, find_face
from cinerl.training.character.dataset.stylise import PHOTO, style_for_prompt, stylise

# (pattern, scene). First match wins; stylised prompts get a set too.
_SCENE_WORDS: tuple[tuple[str, str], ...] = (
    (r"rain-slick|headlight", "night_street"),
    (r"window light|by a window", "window"),
    (r"subway|railway", "subway"),
    (r"parking garage|warehouse", "garage"),
    (r"silhouette", "rooftop_silhouette"),
    (r"rooftop|skyline", "rooftop"),
    (r"alley|neon", "alley"),
)
# face height as a share of the frame height, per framing
_FRAMING = {"close": 0.46, "medium_close": 0.30, "medium": 0.19, "wide": 0.11}
# multiplicative light colour on the figure, per scene
_KEY = {
    "night_street": (0.55, 0.6, 0.8),
    "window": (1.2, 0.92, 0.68),
    "subway": (0.88, 1.02, 0.86),
    "garage": (1.05, 0.82, 0.55),
    "rooftop": (1.1, 0.88, 0.78),
    "rooftop_silhouette": (0.16, 0.15, 0.2),
    "alley": (1.0, 0.8, 1.0),
    "studio": (1.0, 1.0, 1.0),
}


def scene_for_prompt(prompt: str) -> str:
    text = prompt.lower()
    for pattern, scene in _SCENE_WORDS:
        if re.search(pattern, text):
            return scene
    return "studio"


def framing_for_prompt(prompt: str) -> str:
    text = prompt.lower()
    if "medium close-up" in text:
        return "medium_close"
    if "close-up" in text or "portrait" in text:
        return "close"
    if "wide shot" in text or "silhouette" in text:
        return "wide"
    return "medium"


def portrait_palette(rgb: np.ndarray, k: int = 5) -> list[dict]:
    """Dominant colours of the portrait (k-means in RGB on a 64 px copy), largest share first."""
    small = cv2.resize(rgb, (64, 64), interpolation=cv2.INTER_AREA).reshape(-1, 3).astype(np.float32)
    cv2.setRNGSeed(0)
    crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
    _, labels, centres = cv2.kmeans(small, k, None, crit, 2, cv2.KMEANS_PP_CENTERS)
    shares = np.bincount(labels.ravel(), minlength=k) / len(labels)
    order = np.argsort(-shares)
    return [{"rgb": [int(v) for v in centres[i]], "share": round(float(shares[i]), 4)} for i in order]


class PortraitCutout:
    """Head and shoulders around the face, with a soft foreground mask."""

    def __init__(self, portrait: np.ndarray, face: FaceBox):
        h, w = portrait.shape[:2]
        x0 = max(0, int(face.x - 0.9 * face.w))
        x1 = min(w, int(face.x + face.w + 0.9 * face.w))
        y0 = max(0, int(face.y - 0.6 * face.h))
        y1 = min(h, int(face.y + face.h + 1.8 * face.h))
        self.rgb = np.ascontiguousarray(portrait[y0:y1, x0:x1])
        self.face = (face.x - x0, face.y - y0, face.w, face.h)  # face box inside the cut-out
        self.mask, self.mask_method = self._mask()
        self.border_rgb = np.median(np.concatenate([portrait[0], portrait[:, 0], portrait[:, -1]]), axis=0)

    def _mask(self) -> tuple[np.ndarray, str]:
        ch, cw = self.rgb.shape[:2]
        fx, fy, fw, fh = self.face
        mask = np.full((ch, cw), cv2.GC_PR_BGD, np.uint8)
        cv2.ellipse(
            mask, (fx + fw // 2, fy + fh // 2), (int(fw * 0.75), int(fh)), 0, 0, 360, cv2.GC_PR_FGD, -1
        )
        cv2.rectangle(
            mask, (max(0, fx - fw // 2), fy + fh), (min(cw, fx + fw + fw // 2), ch), cv2.GC_PR_FGD, -1
        )
        cv2.ellipse(mask, (fx + fw // 2, fy + fh // 2), (fw // 3, fh // 3), 0, 0, 360, cv2.GC_FGD, -1)
        method = "grabcut"
        try:
            bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
            cv2.setRNGSeed(0)
            cv2.grabCut(self.rgb[..., ::-1].copy(), mask, None, bgd, fgd, 3, cv2.GC_INIT_WITH_MASK)
            fg = ((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)).astype(np.float32)
        except cv2.error:
            fg = ((mask == cv2.GC_PR_FGD) | (mask == cv2.GC_FGD)).astype(np.float32)
            method = "ellipse"
        if fg.mean() < 0.05:  # GrabCut lost the figure: keep the drawn shape
            fg = ((mask == cv2.GC_PR_FGD) | (mask == cv2.GC_FGD)).astype(np.float32)
            method = "ellipse"
        soft = cv2.GaussianBlur(fg, (0, 0), max(1.0, fw / 25))
        return soft, method


def _gradient(h: int, w: int, top, bottom) -> np.ndarray:
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    return np.broadcast_to((1 - t) * np.float32(top) + t * np.float32(bottom), (h, w, 3)).copy()


def _glow(img: np.ndarray, x: float, y: float, r: float, colour, strength: float = 1.0) -> None:
    h, w = img.shape[:2]
    ys, xs = np.ogrid[0:h, 0:w]
    d2 = ((xs - x) ** 2 + (ys - y) ** 2) / max(r * r, 1.0)
    img += strength * np.exp(-d2)[..., None] * np.float32(colour)


def background(scene: str, w: int, h: int, rng: np.random.Generator, accent) -> np.ndarray:
    """A procedural set for the scene (float32 RGB 0-255)."""
    if scene == "night_street":
        img = _gradient(h, w, (8, 12, 28), (22, 26, 40))
        horizon = int(h * 0.62)
        img[horizon:] *= 0.6
        for _ in range(4):
            x = rng.uniform(0, w)
            _glow(img, x, horizon, h * 0.05, (255, 235, 190), 0.9)
            streak = np.zeros((h, w), np.float32)
            cv2.line(
                streak,
                (int(x), horizon),
                (int(x + rng.uniform(-w * 0.05, w * 0.05)), h),
                1.0,
                max(2, w // 120),
            )
            img += cv2.GaussianBlur(streak, (0, 0), w / 150)[..., None] * np.float32((180, 160, 120))
    elif scene == "window":
        img = _gradient(h, w, (70, 48, 34), (40, 28, 22))
        _glow(img, w * 0.12, h * 0.35, h * 0.45, (255, 170, 90), 1.0)
        cv2.rectangle(img, (int(w * 0.02), int(h * 0.1)), (int(w * 0.2), int(h * 0.7)), (255, 215, 160), -1)
        img = cv2.GaussianBlur(img, (0, 0), w / 100)
    elif scene == "subway":
        img = _gradient(h, w, (150, 172, 150), (110, 125, 110))
        step = max(6, w // 40)
        img[:: step // 2] *= 0.8
        img[:, ::step] *= 0.8
        cv2.rectangle(img, (0, int(h * 0.78)), (w, int(h * 0.82)), (230, 200, 40), -1)
        img[int(h * 0.82) :] *= 0.45
        train = np.zeros((h, w), np.float32)
        cv2.rectangle(train, (0, int(h * 0.2)), (w, int(h * 0.6)), 1.0, -1)
        img += cv2.blur(train, (w // 6 | 1, 1))[..., None] * np.float32((40, 40, 45))
    elif scene == "garage":
        img = _gradient(h, w, (95, 95, 92), (60, 60, 58))
        for x in np.linspace(0, w, 5)[1:-1] + rng.uniform(-w * 0.04, w * 0.04, 3):
            cv2.rectangle(img, (int(x - w * 0.03), 0), (int(x + w * 0.03), h), (70, 70, 68), -1)
        for x in np.linspace(w * 0.1, w * 0.9, 4):
            _glow(img, x, h * 0.06, h * 0.12, (255, 160, 50), 0.9)
    elif scene in ("rooftop", "rooftop_silhouette"):
        img = _gradient(h, w, (55, 48, 105), (250, 150, 80))
        sky = int(h * 0.6)
        x = 0
        while x < w:
            bw, bh = int(rng.uniform(w * 0.04, w * 0.1)), int(rng.uniform(h * 0.08, h * 0.3))
            cv2.rectangle(img, (x, sky - bh), (x + bw, h), (22, 20, 32), -1)
            x += bw
    elif scene == "alley":
        img = _gradient(h, w, (48, 30, 32), (26, 18, 20))
        for y in range(0, h, max(4, h // 30)):
            img[y] *= 0.7
        _glow(img, w * 0.15, h * 0.25, h * 0.35, (255, 40, 200), 0.8)
        _glow(img, w * 0.85, h * 0.3, h * 0.35, (40, 220, 255), 0.8)
    else:  # studio: a soft backdrop in the portrait's own colours
        accent = np.float32(accent)
        img = _gradient(h, w, np.clip(accent * 1.15 + 20, 0, 255), accent * 0.6)
    return np.clip(img, 0, 255).astype(np.float32)


class PortraitPrevizBackend:
    """ImageBackend: prompt + the actor's portrait -> one still of that actor in that shot."""

    name = "previz-portrait"

    def __init__(self, portrait: np.ndarray):
        portrait = np.asarray(portrait)
        if portrait.dtype != np.uint8 or portrait.ndim != 3 or portrait.shape[2] != 3:
            raise ValueError("portrait must be uint8 (H, W, 3) RGB")
        self.portrait = portrait
        self.face = find_face(portrait)
        self.cutout = PortraitCutout(portrait, self.face)
        self.palette = portrait_palette(portrait)

    def conditioning(self) -> dict:
        """What of the portrait the images use, for the request payloads."""
        return {"face": self.face.to_dict(), "cutout_mask": self.cutout.mask_method, "palette": self.palette}

    def generate_image(self, prompt: str, width: int, height: int, seed: int) -> np.ndarray:
        return self.render(prompt, width, height, seed)[0]

    def render(self, prompt: str, width: int, height: int, seed: int) -> tuple[np.ndarray, dict]:
        rng = np.random.default_rng(seed)
        style, scene, framing = style_for_prompt(prompt), scene_for_prompt(prompt), framing_for_prompt(prompt)
        canvas = background(scene, width, height, rng, self.cutout.border_rgb)
        box = self._place(canvas, scene, framing, rng)
        if style == PHOTO:
            canvas = self._photo_finish(canvas, rng)
        image = np.clip(canvas, 0, 255).astype(np.uint8)
        image = stylise(image, style, int(rng.integers(1 << 31)))
        return image, {"style": style, "scene": scene, "framing": framing, "face_box": box}

    def _place(self, canvas: np.ndarray, scene: str, framing: str, rng: np.random.Generator) -> list[int]:
        """Relight the cut-out, scale it so the face has the framing's height, paste it."""
        h, w = canvas.shape[:2]
        cut, mask = self.cutout.rgb.astype(np.float32), self.cutout.mask
        fx, fy, fw, fh = self.cutout.face
        scale = _FRAMING[framing] * h / fh
        cx = w * (0.5 if framing == "close" else rng.choice([1 / 3, 2 / 3])) + rng.uniform(-0.03, 0.03) * w
        cy = h * (0.42 if framing == "close" else 0.36 if framing == "medium_close" else 0.45)
        # continue the clothing down to the frame's bottom edge (replicate the last rows)
        need = int(np.ceil((h - cy) / scale - (cut.shape[0] - fy - fh / 2))) + 2
        if need > 0:
            cut = cv2.copyMakeBorder(cut, 0, need, 0, 0, cv2.BORDER_REPLICATE)
            mask = cv2.copyMakeBorder(mask, 0, need, 0, 0, cv2.BORDER_REPLICATE)
        cut = self._relight(cut, mask, scene)
        nw, nh = max(1, round(cut.shape[1] * scale)), max(1, round(cut.shape[0] * scale))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
        cut, mask = cv2.resize(cut, (nw, nh), interpolation=interp), cv2.resize(mask, (nw, nh))
        ox, oy = round(cx - (fx + fw / 2) * scale), round(cy - (fy + fh / 2) * scale)
        x0, y0, x1, y1 = max(0, ox), max(0, oy), min(w, ox + nw), min(h, oy + nh)
        if x1 > x0 and y1 > y0:
            a = mask[y0 - oy : y1 - oy, x0 - ox : x1 - ox, None]
            canvas[y0:y1, x0:x1] = (
                a * cut[y0 - oy : y1 - oy, x0 - ox : x1 - ox] + (1 - a) * canvas[y0:y1, x0:x1]
            )
        return [round(ox + fx * scale), round(oy + fy * scale), round(fw * scale), round(fh * scale)]

    @staticmethod
    def _relight(cut: np.ndarray, mask: np.ndarray, scene: str) -> np.ndarray:
        out = cut * np.float32(_KEY[scene])
        cw = cut.shape[1]
        side = np.linspace(1.0, 0.0, cw, dtype=np.float32)[None, :, None]
        if scene == "night_street":
            out += side * np.float32((70, 65, 50))  # headlights from the left
        elif scene == "window":
            out *= 0.55 + 0.6 * side  # window on the left
        elif scene == "alley":
            out *= side * np.float32((1.2, 0.6, 1.1)) + (1 - side) * np.float32((0.6, 1.1, 1.2))
        elif scene == "rooftop_silhouette":  # rim light on the outline
            rim = np.clip(mask - cv2.erode(mask, np.ones((5, 5), np.uint8)), 0, 1)
            out += cv2.GaussianBlur(rim, (0, 0), 1.5)[..., None] * np.float32((255, 170, 90))
        return np.clip(out, 0, 255)

    @staticmethod
    def _photo_finish(canvas: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        h, w = canvas.shape[:2]
        ys, xs = np.ogrid[-1 : 1 : complex(0, h), -1 : 1 : complex(0, w)]
        vignette = 1.0 - 0.35 * np.clip((xs**2 + ys**2) / 2.0, 0, 1)
        grain = rng.normal(0.0, 3.0, (h, w, 1)).astype(np.float32)
        return canvas * vignette[..., None].astype(np.float32) + grain
