"""Backgrounds of the synthetic curve-mirror scenes (:mod:`synth`): smooth value noise, sky,
foliage, the styled backgrounds (road, wall, vegetation, sky, town, field, riverside and the
held-out residential, coast, autumn) with randomised colours, and distractor objects (signs,
posts) that are not mirrors. What the mirror reflects is drawn from these too.
"""
from __future__ import annotations

import cv2
import numpy as np


def noise(rng, h, w, scale, octaves=3):
    """Smooth value noise in [0, 1] (upsampled random grids)."""
    out = np.zeros((h, w), np.float32)
    amp, tot = 1.0, 0.0
    for o in range(octaves):
        gh, gw = max(2, int(h / scale * 2 ** o)), max(2, int(w / scale * 2 ** o))
        g = rng.random((gh, gw), dtype=np.float32)
        out += amp * cv2.resize(g, (w, h), interpolation=cv2.INTER_CUBIC)
        tot += amp
        amp *= 0.5
    out /= tot
    return np.clip(out, 0, 1)


def vgrad(h, w, top, bottom):
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    return (np.array(top, np.float32) * (1 - t) + np.array(bottom, np.float32) * t) * np.ones((1, w, 1), np.float32)


def sky(rng, h, w):
    top = np.array([90, 140, 210]) + rng.integers(-20, 20, 3)
    bot = np.array([190, 210, 235]) + rng.integers(-15, 15, 3)
    img = vgrad(h, w, top, bot)
    if rng.random() < 0.7:
        cl = noise(rng, h, w, 180, 4)
        cl = np.clip((cl - 0.5) * 3, 0, 1)[..., None]
        img = img * (1 - cl) + 240 * cl
    return img


def foliage(rng, h, w, hues):
    n = noise(rng, h, w, 40, 4)
    n2 = noise(rng, h, w, 12, 2)
    base = np.array(hues[rng.integers(len(hues))], np.float32)
    img = base[None, None, :] * (0.45 + 0.9 * n[..., None]) * (0.8 + 0.4 * n2[..., None])
    return img


def background(rng, style, h, w):
    hz = int(h * rng.uniform(0.3, 0.55))     # horizon
    img = np.zeros((h, w, 3), np.float32)
    img[:hz] = sky(rng, hz, w)
    if style in ("road", "residential", "sky", "coast"):
        if style == "sky":
            hz2 = int(h * rng.uniform(0.7, 0.85))
            img[:hz2] = sky(rng, hz2, w)
            hz = hz2
        if style == "residential":
            x = 0
            while x < w:
                bw = int(rng.uniform(0.12, 0.3) * w)
                bh = int(rng.uniform(0.15, 0.4) * h)
                col = rng.choice([(225, 215, 195), (240, 240, 235), (150, 110, 80), (180, 185, 190), (200, 190, 160)])
                y0 = max(0, hz - bh)
                img[y0:hz, x:x + bw] = np.array(col) + rng.integers(-15, 15, 3)
                roof = rng.choice([(60, 70, 90), (90, 60, 50), (70, 70, 70), (40, 80, 120)])
                img[max(0, y0 - int(0.04 * h)):y0 + 2, x:x + bw] = roof
                for _ in range(rng.integers(1, 4)):   # windows
                    wx, wy = x + int(rng.uniform(0.1, 0.7) * bw), y0 + int(rng.uniform(0.15, 0.6) * (hz - y0))
                    img[wy:wy + int(0.05 * h), wx:wx + int(0.05 * w)] = (70, 90, 110)
                x += bw + int(rng.uniform(0, 0.05) * w)
        elif style == "coast":
            sea = int(hz + rng.uniform(0.08, 0.15) * h)
            img[hz:sea] = vgrad(sea - hz, w, (40, 90, 140), (70, 130, 170)) * (0.9 + 0.2 * noise(rng, sea - hz, w, 20, 2)[..., None])
            hz = sea
        else:
            img[max(0, hz - int(0.12 * h)):hz] = foliage(rng, min(hz, int(0.12 * h)), w, [(60, 100, 50), (80, 110, 70)])
        # asphalt with lane markings
        g = rng.uniform(85, 130)
        road = np.full((h - hz, w, 3), g, np.float32) * (0.85 + 0.3 * noise(rng, h - hz, w, 8, 2)[..., None])
        img[hz:] = road
        vx = rng.uniform(0.2, 0.8) * w
        for side in (-1, 1, 0):
            x1 = vx + side * rng.uniform(0.6, 1.2) * w
            col = (235, 235, 230) if side else (230, 190, 60)
            cv2.line(img, (int(vx), hz), (int(x1), h), col, max(2, int(0.01 * w)))
        if rng.random() < 0.6:   # white guardrail
            gy = hz + int(rng.uniform(0.02, 0.1) * h)
            cv2.rectangle(img, (0, gy), (w, gy + int(0.02 * h)), (230, 230, 225), -1)
    elif style == "wall":
        wy = int(h * rng.uniform(0.25, 0.5))
        img[:wy] = sky(rng, wy, w)
        g = rng.uniform(140, 190)
        wall = np.full((h - wy, w, 3), g, np.float32) * (0.9 + 0.2 * noise(rng, h - wy, w, 10, 3)[..., None])
        bh, bw = int(rng.uniform(0.05, 0.09) * h), int(rng.uniform(0.12, 0.2) * w)
        for r, y in enumerate(range(0, h - wy, bh)):
            cv2.line(wall, (0, y), (w, y), (g * 0.7,) * 3, 2)
            off = (r % 2) * bw // 2
            for x in range(off, w, bw):
                cv2.line(wall, (x, y), (x, y + bh), (g * 0.7,) * 3, 2)
        img[wy:] = wall
        ry = h - int(rng.uniform(0.1, 0.2) * h)
        img[ry:] = rng.uniform(90, 120) * (0.85 + 0.3 * noise(rng, h - ry, w, 8, 2)[..., None])
    elif style in ("vegetation", "autumn"):
        hues = [(60, 110, 45), (40, 90, 40), (90, 130, 60)] if style == "vegetation" else \
               [(160, 140, 60), (140, 110, 60), (120, 120, 55)]
        vy = int(h * rng.uniform(0.1, 0.35))
        img[:vy] = sky(rng, vy, w)
        img[vy:] = foliage(rng, h - vy, w, hues)
        ry = h - int(rng.uniform(0.12, 0.25) * h)
        img[ry:] = rng.uniform(90, 120) * (0.85 + 0.3 * noise(rng, h - ry, w, 8, 2)[..., None])
    elif style in ("town", "field", "riverside"):
        img = randomised_background(rng, style, img, hz, h, w)
    return np.clip(img, 0, 255)


def random_colour(rng, sat=(0.1, 0.8), val=(90, 245)) -> np.ndarray:
    """Any hue (HSV sampled uniformly), as RGB float."""
    hsv = np.uint8([[[rng.integers(0, 180), int(rng.uniform(*sat) * 255), int(rng.uniform(*val))]]])
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)


def randomised_background(rng, style, img, hz, h, w):
    """Training-only backgrounds with random palettes: 'town' (shop fronts, signboards, fences),
    'field' (hills and crops of any season's hue), 'riverside' (embankment, water, railing)."""
    if style == "town":
        x = 0
        while x < w:
            bw = int(rng.uniform(0.08, 0.35) * w)
            top = min(int(rng.uniform(0.05, 0.45) * h), hz - 2)
            bot = min(h, hz + int(0.05 * h))
            col = random_colour(rng, (0.0, 0.6))
            img[top:bot, x:x + bw] = col * (0.9 + 0.2 * noise(rng, bot - top, min(bw, w - x), 15, 2)[..., None])
            for _ in range(int(rng.integers(0, 4))):   # signboards, shutters, windows
                sx0, sy0 = x + int(rng.uniform(0, 0.7) * bw), top + int(rng.uniform(0.05, 0.8) * (hz - top))
                sw, sh_ = int(rng.uniform(0.1, 0.5) * bw), int(rng.uniform(0.03, 0.12) * h)
                cv2.rectangle(img, (sx0, sy0), (sx0 + sw, sy0 + sh_), random_colour(rng).tolist(), -1)
            x += bw
        if rng.random() < 0.7:   # grey utility pole with wires
            ux = int(rng.uniform(0.05, 0.95) * w)
            cv2.line(img, (ux, 0), (ux, h), (rng.uniform(120, 170),) * 3, max(3, int(0.02 * w)))
            for _ in range(3):
                cv2.line(img, (0, int(rng.uniform(0.02, 0.2) * h)), (w, int(rng.uniform(0.02, 0.2) * h)), (40, 40, 40), 1)
        g = rng.uniform(70, 150)
        img[hz:] = np.full((h - hz, w, 3), g, np.float32) * (0.85 + 0.3 * noise(rng, h - hz, w, 6, 2)[..., None])
        if rng.random() < 0.5:   # mesh fence / block wall along the road
            fy = hz + int(rng.uniform(0.0, 0.08) * h)
            fh = int(rng.uniform(0.06, 0.15) * h)
            img[max(0, fy - fh):fy] = random_colour(rng, (0.0, 0.5))
    elif style == "field":
        hill = hz - int(rng.uniform(0.02, 0.15) * h)
        xs = np.arange(w)
        ridge = hill + (0.05 * h * np.sin(xs / w * rng.uniform(2, 7) + rng.uniform(0, 6))).astype(int)
        hill_col = random_colour(rng, (0.2, 0.7), (60, 170))
        tex = noise(rng, h, w, 30, 3)[..., None]
        img[:hz] = np.where((np.arange(hz)[:, None] >= ridge[None, :])[..., None], hill_col * (0.7 + 0.6 * tex[:hz]), img[:hz])
        crop_col = random_colour(rng, (0.2, 0.8), (80, 200))
        img[hz:] = crop_col * (0.6 + 0.7 * noise(rng, h - hz, w, 10, 3)[..., None])
        for _ in range(int(rng.integers(0, 4))):   # trees in any season's colour
            tx, ty, tr = rng.uniform(0, w), rng.uniform(0.2, 0.6) * h, rng.uniform(0.05, 0.15) * h
            cv2.circle(img, (int(tx), int(ty)), int(tr), (random_colour(rng, (0.3, 0.9), (60, 200))).tolist(), -1)
        ry = h - int(rng.uniform(0.1, 0.22) * h)
        img[ry:] = rng.uniform(100, 170) * (0.8 + 0.4 * noise(rng, h - ry, w, 5, 2)[..., None])
    else:   # riverside
        bank = hz + int(rng.uniform(0.05, 0.15) * h)
        water_col = random_colour(rng, (0.1, 0.6), (50, 160))
        img[hz:bank] = water_col * (0.8 + 0.4 * noise(rng, bank - hz, w, 25, 3)[..., None])
        slope = bank + int(rng.uniform(0.08, 0.2) * h)
        img[bank:slope] = rng.uniform(130, 200) * (0.85 + 0.3 * noise(rng, slope - bank, w, 6, 2)[..., None])
        img[slope:] = rng.uniform(80, 140) * (0.85 + 0.3 * noise(rng, h - slope, w, 8, 2)[..., None])
        ry = slope - int(0.03 * h)
        col = random_colour(rng, (0.0, 0.7))
        cv2.line(img, (0, ry), (w, ry), col.tolist(), max(2, int(0.006 * h)))
        for x in range(int(rng.uniform(0, 0.1) * w), w, max(8, int(rng.uniform(0.04, 0.1) * w))):
            cv2.line(img, (x, ry), (x, ry + int(0.04 * h)), col.tolist(), max(2, int(0.004 * w)))
    return img


def distractor(rng, img, avoid_x, r):
    """A red 止まれ sign or an orange cone somewhere else in the picture (not a mirror)."""
    h, w = img.shape[:2]
    for _ in range(5):
        x = int(rng.uniform(0.08, 0.92) * w)
        if abs(x - avoid_x) > 2.2 * r:
            break
    else:
        return
    s = int(r * rng.uniform(0.5, 0.9))
    if rng.random() < 0.5:
        y = int(rng.uniform(0.35, 0.6) * h)
        cv2.line(img, (x, y), (x, h), (150, 150, 150), max(2, s // 6))
        pts = np.array([[x - s, y - s], [x + s, y - s], [x, y + s // 2]], np.int32)
        cv2.fillPoly(img, [pts], (200, 30, 40))
        cv2.polylines(img, [pts], True, (240, 240, 240), max(1, s // 10))
    else:
        y = int(rng.uniform(0.75, 0.92) * h)
        pts = np.array([[x - s // 2, y], [x + s // 2, y], [x, y - int(1.4 * s)]], np.int32)
        cv2.fillPoly(img, [pts], (240, 110, 20))
