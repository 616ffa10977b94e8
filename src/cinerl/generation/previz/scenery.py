"""Scenery: the location behind the figures, drawn once per clip for each scenery type.

It exists so the previz renderer can show *where* a scene is: each scenery word of the prompt
(forest, harbour, castle, ...) has a layout of flat shapes, and the palette colours (named in the
prompt or drawn from the seed) fill them. A named place keeps its layout seed across scenes, so
"the Old Harbour" looks alike in every scene; an unnamed one gets a new layout each seed. The
canvas is larger than the frame, room for the camera to move.
"""

from __future__ import annotations

import cv2
import numpy as np

from cinerl.generation.previz.look import STUDIO_GREY, rng, smooth_series

__all__ = ["background"]


# --------------------------------------------------------------------------------------------
# background layouts: a label map whose elements are later coloured from the palette


class _Painter:
    """Draws layout elements into a label map in frame-relative units (fx, fy in [0, 1] is the
    home view; the canvas spans about [-0.25, 1.25]). Each element has a rank (base + slope * fy)
    that orders it for palette assignment, and a brightness shade that keeps shapes readable when
    neighbouring elements share a colour."""

    def __init__(self, wc: int, hc: int, ox: float, oy: float, w: int, h: int):
        self.wc, self.hc, self.ox, self.oy, self.w, self.h = wc, hc, ox, oy, w, h
        self.lab = np.zeros((hc, wc), np.uint8)
        self.detail = np.ones((hc, wc), np.float32)
        self.base: list[float] = []
        self.slope: list[float] = []
        self.shade: list[float] = []
        self.colfx = (np.arange(wc, dtype=np.float32) - ox) / w

    def element(self, base: float, slope: float = 0.04, shade: float = 1.0) -> int:
        self.base.append(base)
        self.slope.append(slope)
        self.shade.append(shade)
        return len(self.base) - 1

    def _pts(self, pts) -> np.ndarray:
        arr = np.asarray(pts, np.float64)
        x = (self.ox + arr[:, 0] * self.w) * 16
        y = (self.oy + arr[:, 1] * self.h) * 16
        return np.round(np.stack([x, y], 1)).astype(np.int32)

    def poly(self, eid: int, pts, img=None, value=None):
        img = self.lab if img is None else img
        cv2.fillPoly(img, [self._pts(pts)], eid if value is None else value, cv2.LINE_8, 4)

    def rect(self, eid: int, x0, y0, x1, y1):
        self.poly(eid, [(x0, y0), (x1, y0), (x1, y1), (x0, y1)])

    def shade_rect(self, value: float, x0, y0, x1, y1):
        self.poly(0, [(x0, y0), (x1, y0), (x1, y1), (x0, y1)], img=self.detail, value=value)

    def ellipse(self, eid: int, fx, fy, rx_h, ry_h, img=None, value=None):
        """Ellipse centred at (fx, fy) with radii in frame-height units (so circles stay round)."""
        img = self.lab if img is None else img
        c = (int(round((self.ox + fx * self.w) * 16)), int(round((self.oy + fy * self.h) * 16)))
        ax = (max(1, int(round(rx_h * self.h * 16))), max(1, int(round(ry_h * self.h * 16))))
        cv2.ellipse(img, c, ax, 0, 0, 360, eid if value is None else value, -1, cv2.LINE_8, 4)

    def below(self, eid: int, xs, ys):
        """Fill everything below the curve y(x) (x, y in frame units, linearly interpolated)."""
        thr = self.oy + np.interp(self.colfx, xs, ys).astype(np.float32) * self.h
        rows = np.arange(self.hc, dtype=np.float32)[:, None]
        self.lab[rows >= thr[None, :]] = eid

    def curve_shade(self, value: float, xs, ys, thickness_h: float):
        pts = self._pts(np.stack([xs, ys], 1)).reshape(-1, 1, 2)
        t = max(1, int(round(thickness_h * self.h)))
        cv2.polylines(self.detail, [pts], False, value, t, cv2.LINE_8, 4)


_XS = np.linspace(-0.3, 1.3, 97)


def _wavy(r, base, amp, fmin=1.0, fmax=4.0, k=3):
    return base + amp * smooth_series(r, _XS, fmin, fmax, k)


def _lay_forest(p: _Painter, r):
    h = r.uniform(0.5, 0.6)
    far = p.element(0.45, shade=0.88)
    p.below(far, _XS, _wavy(r, h - 0.14, 0.03, 2, 6))
    ground = p.element(0.8, 0.3, 0.97)
    p.below(ground, _XS, _wavy(r, h, 0.01))
    canopy, trunk = p.element(0.35, shade=0.95), p.element(0.62, shade=0.8)
    for _ in range(int(r.integers(9, 15))):
        x, yb = r.uniform(-0.3, 1.3), h + r.uniform(0.0, 0.35)
        w = 0.012 + 0.06 * (yb - h)
        p.ellipse(canopy, x, r.uniform(-0.15, 0.12), r.uniform(0.1, 0.2), r.uniform(0.1, 0.2))
        p.rect(trunk, x - w / 2, -0.35, x + w / 2, yb)


def _lay_city(p: _Painter, r):
    h = r.uniform(0.6, 0.68)
    back, front = p.element(0.5, shade=0.86), p.element(0.62, shade=1.0)
    x = -0.3
    while x < 1.3:
        w = r.uniform(0.06, 0.14)
        p.rect(back, x, r.uniform(0.05, 0.35), x + w, h)
        x += w
    x = -0.3 + r.uniform(0, 0.1)
    while x < 1.3:
        w, top = r.uniform(0.1, 0.2), r.uniform(-0.1, 0.3)
        p.rect(front, x, top, x + w, h)
        for wy in np.arange(top + 0.04, h - 0.08, 0.07):
            for wx in np.arange(x + 0.02, x + w - 0.03, 0.04):
                p.shade_rect(0.72, wx, wy, wx + 0.018, wy + 0.035)
        x += w + r.uniform(0.02, 0.12)
    street = p.element(0.85, 0.3, 0.95)
    p.below(street, _XS, np.full_like(_XS, h))
    p.shade_rect(0.85, -0.3, h, 1.3, h + 0.015)


def _lay_harbour(p: _Painter, r):
    h = r.uniform(0.42, 0.5)
    bld = p.element(0.45, shade=0.9)
    x = -0.3
    while x < 1.3:
        w, top = r.uniform(0.05, 0.12), h - r.uniform(0.07, 0.2)
        p.rect(bld, x, top, x + w, h)
        if r.random() < 0.5:
            p.poly(bld, [(x, top), (x + w, top), (x + w / 2, top - 0.05)])
        x += w + r.uniform(0.0, 0.05)
    water = p.element(0.7, 0.15, 0.93)
    p.below(water, _XS, np.full_like(_XS, h))
    qy = r.uniform(0.74, 0.8)
    for k in range(9):
        y = h + (k + 1) * (qy - h) / 10
        p.curve_shade(0.86, _XS, y + 0.006 * np.sin(_XS * (20 + k) + r.uniform(0, 6)), 0.004)
    boat = p.element(0.58, shade=0.88)
    for _ in range(int(r.integers(2, 4))):
        bx, by = r.uniform(-0.1, 1.1), r.uniform(h + 0.05, qy - 0.02)
        s = 0.5 + (by - h) / (qy - h)
        bw = 0.16 * s
        p.poly(
            boat,
            [
                (bx - bw / 2, by - 0.04 * s),
                (bx + bw / 2, by - 0.04 * s),
                (bx + bw * 0.38, by),
                (bx - bw * 0.38, by),
            ],
        )
        p.rect(boat, bx - bw * 0.15, by - 0.08 * s, bx + bw * 0.1, by - 0.04 * s)
        p.rect(boat, bx - 0.003, by - 0.3 * s, bx + 0.003, by - 0.04 * s)
    quay = p.element(0.92, 0.3, 1.0)
    p.below(quay, _XS, np.full_like(_XS, qy))
    p.shade_rect(0.8, -0.3, qy, 1.3, qy + 0.012)


def _lay_sea(p: _Painter, r):
    h = r.uniform(0.38, 0.48)
    sea = p.element(0.55, 0.4, 0.95)
    p.below(sea, _XS, np.full_like(_XS, h))
    beach_y = r.uniform(0.8, 0.9)
    for k in range(12):
        y = h + (beach_y - h) * ((k + 1) / 13) ** 1.3
        p.curve_shade(1.12, _XS, y + 0.01 * np.sin(_XS * (9 + k) + r.uniform(0, 6)), 0.005)
    beach = p.element(0.92, 0.3, 1.02)
    p.below(beach, _XS, _wavy(r, beach_y, 0.015))


def _lay_desert(p: _Painter, r):
    h = r.uniform(0.45, 0.55)
    for k, (base, shade) in enumerate(((0.5, 1.0), (0.65, 0.92), (0.8, 1.05))):
        d = p.element(base, 0.2, shade)
        p.below(d, _XS, _wavy(r, h + k * 0.12, 0.035, 0.5, 2.5))


def _zigzag(r, lo, hi, vlo, vhi):
    xs, ys, x, peak = [-0.35], [vhi], -0.35, True
    while x < 1.35:
        x += r.uniform(0.08, 0.2)
        xs.append(x)
        ys.append(r.uniform(lo, hi) if peak else r.uniform(vlo, vhi))
        peak = not peak
    return xs + [1.4, -0.35], ys + [1.4, 1.4]


def _lay_mountain(p: _Painter, r):
    h = r.uniform(0.55, 0.65)
    for base, shade, lo, hi in ((0.45, 0.88, h - 0.45, h - 0.25), (0.6, 1.0, h - 0.3, h - 0.15)):
        e = p.element(base, 0.1, shade)
        xs, ys = _zigzag(r, lo, hi, h - 0.12, h - 0.02)
        p.poly(e, list(zip(xs, ys)))
    ground = p.element(0.85, 0.3, 0.95)
    p.below(ground, _XS, _wavy(r, h + 0.08, 0.02))


def _lay_snow(p: _Painter, r):
    h = r.uniform(0.5, 0.58)
    hills = p.element(0.45, 0.1, 0.9)
    p.below(hills, _XS, _wavy(r, h - 0.1, 0.04, 0.5, 2))
    field = p.element(0.8, 0.3, 1.03)
    p.below(field, _XS, _wavy(r, h, 0.015, 0.5, 2))
    pine = p.element(0.62, 0.05, 0.8)
    for _ in range(int(r.integers(4, 9))):
        x, yb = r.uniform(-0.3, 1.3), h + r.uniform(0.0, 0.2)
        s = 0.12 + 0.6 * (yb - h)
        p.poly(pine, [(x, yb - s * 1.6), (x + s * 0.3, yb), (x - s * 0.3, yb)])


def _lay_interior(p: _Painter, r):
    fy = r.uniform(0.64, 0.72)
    lt, rt = r.uniform(0.05, 0.2), r.uniform(0.8, 0.95)
    ceil_y = r.uniform(0.08, 0.18)
    ceiling = p.element(-0.1, 0.05, 0.92)
    p.poly(ceiling, [(-0.35, -0.35), (1.35, -0.35), (rt, ceil_y), (lt, ceil_y)])
    side = p.element(0.55, 0.05, 0.88)
    p.poly(side, [(-0.35, -0.35), (lt, ceil_y), (lt, fy), (-0.35, 1.35)])
    p.poly(side, [(1.35, -0.35), (rt, ceil_y), (rt, fy), (1.35, 1.35)])
    floor = p.element(0.85, 0.3, 0.96)
    p.poly(floor, [(-0.35, 1.35), (1.35, 1.35), (rt, fy), (lt, fy)])
    win = p.element(0.3, 0.05, 1.08)
    wx = r.uniform(lt + 0.05, rt - 0.25)
    p.rect(win, wx, ceil_y + 0.1, wx + 0.2, ceil_y + 0.32)
    p.shade_rect(0.75, wx + 0.097, ceil_y + 0.1, wx + 0.103, ceil_y + 0.32)
    door = p.element(0.62, 0.05, 0.85)
    dx = r.choice([lt + 0.03, rt - 0.15])
    p.rect(door, dx, fy - 0.33, dx + 0.12, fy)
    table = p.element(0.7, 0.05, 0.8)
    tx = r.uniform(-0.2, 0.9)
    p.rect(table, tx, fy + 0.05, tx + 0.35, fy + 0.1)
    p.rect(table, tx + 0.02, fy + 0.1, tx + 0.04, fy + 0.22)
    p.rect(table, tx + 0.31, fy + 0.1, tx + 0.33, fy + 0.22)


def _lay_castle(p: _Painter, r):
    h = r.uniform(0.6, 0.68)
    hills = p.element(0.4, 0.1, 0.9)
    p.below(hills, _XS, _wavy(r, h - 0.1, 0.03, 0.5, 2))
    wall = p.element(0.55, 0.05, 1.0)
    x0, x1, top = r.uniform(-0.25, 0.1), r.uniform(0.9, 1.25), h - r.uniform(0.25, 0.35)
    p.rect(wall, x0, top, x1, h)
    for cx in np.arange(x0, x1, 0.05):
        p.rect(wall, cx, top - 0.04, cx + 0.025, top)
    tower = p.element(0.62, 0.05, 0.92)
    for tx in (x0, (x0 + x1) / 2 + r.uniform(-0.2, 0.2), x1 - 0.1):
        tt = top - r.uniform(0.15, 0.3)
        p.rect(tower, tx, tt, tx + 0.1, h)
        for cx in np.arange(tx, tx + 0.1, 0.033):
            p.rect(tower, cx, tt - 0.035, cx + 0.017, tt)
    gate_x = (x0 + x1) / 2
    p.shade_rect(0.55, gate_x - 0.05, h - 0.16, gate_x + 0.05, h)
    ground = p.element(0.85, 0.3, 0.96)
    p.below(ground, _XS, _wavy(r, h, 0.01))


def _lay_meadow(p: _Painter, r):
    h = r.uniform(0.45, 0.55)
    far = p.element(0.45, 0.1, 0.9)
    p.below(far, _XS, _wavy(r, h, 0.04, 0.5, 2))
    near = p.element(0.75, 0.3, 1.0)
    p.below(near, _XS, _wavy(r, h + 0.12, 0.04, 0.5, 2))
    bush = p.element(0.6, 0.05, 0.82)
    for _ in range(int(r.integers(3, 7))):
        x, y = r.uniform(-0.3, 1.3), h + r.uniform(0.0, 0.1)
        p.ellipse(bush, x, y, r.uniform(0.04, 0.1), r.uniform(0.03, 0.06))
    fy = h + r.uniform(0.2, 0.3)
    p.shade_rect(0.8, -0.3, fy, 1.3, fy + 0.008)
    for px in np.arange(-0.3, 1.3, 0.08):
        p.shade_rect(0.8, px, fy - 0.05, px + 0.008, fy + 0.03)


def _lay_space(p: _Painter, r):
    n = int(60 * (p.wc * p.hc) / (640 * 360)) + 10
    xs, ys = r.uniform(0, p.wc, n).astype(int), r.uniform(0, p.hc * 0.8, n).astype(int)
    p.detail[ys, xs] = 1.8
    planet = p.element(0.5, 0.1, 1.0)
    cx, cy, rad = r.uniform(0.2, 0.8), r.uniform(0.15, 0.35), r.uniform(0.15, 0.3)
    p.ellipse(planet, cx, cy, rad, rad)
    p.ellipse(planet, cx, cy, rad * 1.7, rad * 0.18, img=p.detail, value=0.8)
    deck = p.element(0.85, 0.3, 0.95)
    dy = r.uniform(0.72, 0.8)
    p.below(deck, _XS, np.full_like(_XS, dy))
    for k in range(6):
        p.shade_rect(0.85, -0.3, dy + k * 0.06, 1.3, dy + k * 0.06 + 0.006)


def _lay_underground(p: _Painter, r):
    # element 0 is the opening (darkest, far); rock is everything else
    rock = p.element(0.5, 0.1, 0.88)
    p.rect(rock, -0.35, -0.35, 1.35, 1.35)
    cx = r.uniform(0.3, 0.7)
    opening = 0
    p.ellipse(opening, cx, 0.5, r.uniform(0.25, 0.35), r.uniform(0.3, 0.4))
    p.shade_rect(0.8, cx - 0.5, 0.0, cx + 0.5, 0.1)
    stal = p.element(0.62, 0.05, 0.8)
    for _ in range(int(r.integers(4, 9))):
        x = r.uniform(-0.3, 1.3)
        p.poly(stal, [(x - 0.03, -0.35), (x + 0.03, -0.35), (x, r.uniform(0.05, 0.25))])
    floor = p.element(0.85, 0.3, 0.95)
    p.below(floor, _XS, _wavy(r, r.uniform(0.7, 0.78), 0.02, 2, 8))


_LAYOUTS = {
    "forest": _lay_forest,
    "city": _lay_city,
    "harbour": _lay_harbour,
    "sea": _lay_sea,
    "desert": _lay_desert,
    "mountain": _lay_mountain,
    "snow": _lay_snow,
    "interior": _lay_interior,
    "castle": _lay_castle,
    "meadow": _lay_meadow,
    "space": _lay_space,
    "underground": _lay_underground,
}


def _texture(r, hc: int, wc: int, amp: float) -> np.ndarray:
    """Low-frequency multiplicative texture, 1 +- amp."""
    gh, gw = max(2, hc // 40), max(2, wc // 40)
    small = r.standard_normal((gh, gw)).astype(np.float32)
    return 1.0 + amp * cv2.resize(small, (wc, hc), interpolation=cv2.INTER_CUBIC)


def background(look: dict, w: int, h: int, wc: int, hc: int, ox: float, oy: float) -> np.ndarray:
    """Float32 RGB canvas (hc, wc, 3) before lighting. Palette colours split the visible
    background into (nearly) equal shares by quantiles of the layout's rank field."""
    r = rng(look["layout_seed"], "layout:" + look["scenery_type"])
    if look["scenery_type"] == "studio":
        canvas = np.empty((hc, wc, 3), np.float32)
        canvas[:] = STUDIO_GREY
        rows = (np.arange(hc, dtype=np.float32) - oy) / h
        floor = np.clip((rows - 0.8) / 0.1, 0, 1) * -8.0  # a faint floor line, still neutral
        canvas += floor[:, None, None]
        return canvas
    p = _Painter(wc, hc, ox, oy, w, h)
    sky = p.element(0.0, 0.3, 1.03)
    assert sky == 0
    _LAYOUTS[look["scenery_type"]](p, r)
    base, slope, shade = (np.asarray(v, np.float32) for v in (p.base, p.slope, p.shade))
    fy = ((np.arange(hc, dtype=np.float32) - oy) / h)[:, None]
    rank = base[p.lab] + slope[p.lab] * fy
    colours = np.asarray([c for _n, c in look["palette"]], np.float32)
    k = len(colours)
    if k > 1:
        view = rank[int(oy) : int(oy) + h : 2, int(ox) : int(ox) + w : 2]
        thresholds = np.quantile(view, np.arange(1, k) / k)
        idx = np.searchsorted(thresholds, rank, side="right")
    else:
        idx = np.zeros(rank.shape, np.intp)
    # thin dark outlines between elements keep shapes legible when neighbours share a colour
    edges = np.zeros(p.lab.shape, np.uint8)
    edges[:, 1:] |= p.lab[:, 1:] != p.lab[:, :-1]
    edges[1:, :] |= p.lab[1:, :] != p.lab[:-1, :]
    if w >= 400:
        edges = cv2.dilate(edges, np.ones((2, 2), np.uint8))
    p.detail[edges.astype(bool)] *= 0.8
    mult = shade[p.lab] * p.detail * _texture(r, hc, wc, 0.025)
    canvas = colours[idx] * mult[..., None]
    canvas += r.normal(0.0, 1.5, size=(hc, wc, 1)).astype(np.float32)
    return canvas
