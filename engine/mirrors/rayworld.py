"""The street world renderer B casts its rays into (dev only): ground with a road, kerbs and a
pavement, building façades with windows, tree crowns, a utility pole, sky and sun; and the ray
intersections (plane, sphere, finite cylinder) renderer B also uses for the mirror assembly.
See :mod:`engine.mirrors.renderb`."""
from __future__ import annotations

import math

import numpy as np


def unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def value_noise(x, y, scale, seed):
    """Smooth-ish value noise from sines (cheap, deterministic, no drawing library)."""
    a = np.sin(x * scale * 1.7 + seed) * np.cos(y * scale * 2.3 - seed * 0.7)
    b = np.sin((x + y) * scale * 3.1 + seed * 1.3) * 0.5
    c = np.sin(x * scale * 7.9 - y * scale * 5.3 + seed * 2.1) * 0.25
    return (a + b + c) / 1.75


class World:
    """The static scene: ground, façades, trees, a utility pole, sky and sun."""

    def __init__(self, rng: np.random.Generator, pole_y: float):
        self.seed = float(rng.uniform(0, 100))
        self.overcast = rng.random() < 0.4
        el, az = math.radians(rng.uniform(15, 65)), rng.uniform(0, 2 * math.pi)
        self.sun = np.array([math.cos(el) * math.sin(az), math.cos(el) * math.cos(az), math.sin(el)])
        self.sky_top = np.array([0.62, 0.64, 0.68]) if self.overcast else np.array(
            [rng.uniform(0.15, 0.35), rng.uniform(0.35, 0.55), rng.uniform(0.75, 0.95)])
        self.sky_hor = np.array([0.82, 0.83, 0.85]) if self.overcast else np.array([0.78, 0.85, 0.93])
        self.road_y = (rng.uniform(1.0, 2.0), pole_y - rng.uniform(0.8, 1.5))
        self.asphalt = rng.uniform(0.22, 0.38)
        self.pave = np.array([0.62, 0.6, 0.56]) * rng.uniform(0.8, 1.1)
        # façades: planes y = const facing the camera, x from x0 to x1, height h
        self.facades = []
        x = -rng.uniform(25, 35)
        while x < 35:
            wdt = rng.uniform(5, 14)
            col = np.array([rng.uniform(0.45, 0.9), rng.uniform(0.4, 0.85), rng.uniform(0.35, 0.8)])
            self.facades.append((pole_y + rng.uniform(2.5, 9), x, x + wdt, rng.uniform(3, 12), col,
                                 rng.uniform(1.2, 2.2)))
            x += wdt + rng.uniform(0, 4)
        self.trees = [(np.array([rng.uniform(-12, 12), pole_y + rng.uniform(1.5, 6), rng.uniform(2.5, 5)]),
                       rng.uniform(1.2, 2.6)) for _ in range(int(rng.integers(0, 4)))]
        self.upole = (np.array([rng.choice([-1, 1]) * rng.uniform(2.5, 7), pole_y + rng.uniform(0.5, 3), 0.0]),
                      0.14, rng.uniform(7, 10)) if rng.random() < 0.6 else None

    def sky(self, d):
        t = np.clip(d[:, 2], 0, 1)[:, None] ** 0.6
        c = self.sky_hor * (1 - t) + self.sky_top * t
        if not self.overcast:
            sun = np.clip(d @ self.sun, 0, 1)[:, None]
            c = c + 0.5 * sun ** 64
        else:
            c = c * (0.93 + 0.07 * value_noise(d[:, 0] * 20, d[:, 2] * 20, 1.0, self.seed))[:, None]
        return c

    def light(self, n):
        amb = 0.75 if self.overcast else 0.45
        dif = 0.3 if self.overcast else 0.7
        return amb + dif * np.clip(n @ self.sun, 0, 1)


def box_corners(points, pad):
    """The 8 corners of the axis-aligned box around ``points`` (k×3), grown by ``pad`` metres."""
    lo, hi = np.min(points, 0) - pad, np.max(points, 0) + pad
    return np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])


def on_subset(fn, cand, n, *args):
    """Run a ray intersection on the rays of ``cand`` only (a conservative screen-space cull) and
    scatter its arrays back to all ``n`` rays (misses: t = inf)."""
    if cand is None:
        return fn(*args)
    o, d = args[0], args[1]
    idx = np.flatnonzero(cand)
    res = fn(o[idx], d[idx], *args[2:])
    out = []
    for k, r in enumerate(res if isinstance(res, tuple) else (res,)):
        full = np.full((n,) + r.shape[1:], np.inf if k == 0 else 0.0)
        full[idx] = r
        out.append(full)
    return tuple(out) if isinstance(res, tuple) else out[0]


def cylinder(o, d, base, axis, radius, length):
    """Ray ∩ finite cylinder: (t, normal, height) with t = inf where missed."""
    w = o - base
    da, wa = d @ axis, w @ axis
    dp = d - da[:, None] * axis
    wp = w - wa[:, None] * axis
    a = np.einsum("ij,ij->i", dp, dp)
    b = 2 * np.einsum("ij,ij->i", dp, wp)
    c = np.einsum("ij,ij->i", wp, wp) - radius ** 2
    disc = b * b - 4 * a * c
    ok = (disc > 0) & (a > 1e-12)
    sq = np.sqrt(np.where(ok, disc, 0))
    t = np.where(ok, (-b - sq) / (2 * np.where(a > 1e-12, a, 1)), np.inf)
    h = wa + t * da
    t = np.where((t > 1e-4) & (h >= 0) & (h <= length), t, np.inf)
    p = wp + np.where(np.isfinite(t), t, 0)[:, None] * dp
    n = p / radius
    return t, n, h


def sphere(o, d, c, r):
    w = o - c
    b = np.einsum("ij,ij->i", d, w)
    cc = np.einsum("ij,ij->i", w, w) - r * r
    disc = b * b - cc
    t = np.where(disc > 0, -b - np.sqrt(np.maximum(disc, 0)), np.inf)
    return np.where(t > 1e-4, t, np.inf)


def trace_world(world: World, o: np.ndarray, d: np.ndarray, cull=None) -> np.ndarray:
    """Colour of rays ``o + t d`` in the static world (ground, façades, trees, utility pole, sky).
    ``cull(corners)``: for camera rays, the rays that may hit a convex object with these corners."""
    n = len(d)
    cull = cull or (lambda corners: None)
    col = world.sky(d)
    best = np.full(n, np.inf)
    # ground z = 0
    tg = np.where(d[:, 2] < -1e-6, -o[:, 2] / np.where(d[:, 2] < -1e-6, d[:, 2], -1), np.inf)
    hit = tg < best
    if hit.any():
        p = o[hit] + tg[hit, None] * d[hit]
        x, y = p[:, 0], p[:, 1]
        r0, r1 = world.road_y
        on_road = (y > r0) & (y < r1)
        g = world.asphalt * (1 + 0.12 * value_noise(x * 9, y * 9, 1.0, world.seed))
        c = np.repeat(g[:, None], 3, 1)
        line = on_road & ((np.abs(y - r0 - 0.25) < 0.07) | (np.abs(y - r1 + 0.25) < 0.07)
                          | ((np.abs(y - (r0 + r1) / 2) < 0.06) & (np.mod(x, 6) < 3)))
        c[line] = 0.85
        tiles = (~on_road)
        tex = 0.92 + 0.08 * ((np.floor(x * 3) + np.floor(y * 3)) % 2)
        c[tiles] = world.pave * tex[tiles, None]
        kerb = (~on_road) & ((np.abs(y - r0) < 0.15) | (np.abs(y - r1) < 0.15))
        c[kerb] = 0.7
        c = c * (0.85 + 0.15 * (1 if world.overcast else world.sun[2]))
        col[hit] = c
        best[hit] = tg[hit]
    # façades
    for fy, x0, x1, fh, fc, win in world.facades:
        cand = cull(np.array([[x0, fy, 0], [x1, fy, 0], [x0, fy, fh], [x1, fy, fh]], float))
        idx = np.arange(n) if cand is None else np.flatnonzero(cand)
        if not len(idx):
            continue
        oo, di = o[idx], d[idx]
        with np.errstate(divide="ignore", invalid="ignore"):
            ts = np.where(di[:, 1] > 1e-6, (fy - oo[:, 1]) / di[:, 1], np.inf)
        ps = oo + np.where(np.isfinite(ts), ts, 0)[:, None] * di
        ms = (ts < best[idx]) & (ps[:, 0] > x0) & (ps[:, 0] < x1) & (ps[:, 2] >= 0) & (ps[:, 2] < fh)
        m = np.zeros(n, bool)
        m[idx[ms]] = True
        t = np.full(n, np.inf)
        t[idx] = ts
        p = np.zeros((n, 3))
        p[idx] = ps
        if m.any():
            px, pz = p[m, 0], p[m, 2]
            c = np.repeat(fc[None], m.sum(), 0) * (0.9 + 0.1 * value_noise(px * 4, pz * 4, 1, world.seed))[:, None]
            wx, wz = np.mod(px - x0, win), np.mod(pz, 2.8)
            window = (wx > 0.3 * win) & (wx < 0.8 * win) & (wz > 0.9) & (wz < 2.1) & (pz > 0.5)
            c[window] = np.array([0.25, 0.3, 0.36]) + 0.25 * world.sky_top
            c = c * world.light(np.array([[0, -1.0, 0]]))[0]
            col[m] = c
            best[m] = t[m]
    # trees
    for cen, r in world.trees:
        t = on_subset(sphere, cull(box_corners(cen[None], r)), n, o, d, cen, r)
        m = t < best
        if m.any():
            p = o[m] + t[m, None] * d[m]
            nrm = (p - cen) / r
            leaf = 0.75 + 0.25 * value_noise(p[:, 0] * 25, p[:, 2] * 25 + p[:, 1] * 13, 1, world.seed)
            col[m] = np.array([0.18, 0.36, 0.14])[None] * (world.light(nrm) * leaf)[:, None]
            best[m] = t[m]
    if world.upole is not None:
        b, r, L = world.upole
        t, nrm, _ = on_subset(cylinder, cull(box_corners(np.array([b, b + [0, 0, L]]), r)), n,
                               o, d, b, np.array([0, 0, 1.0]), r, L)
        m = t < best
        if m.any():
            col[m] = np.array([0.5, 0.47, 0.42])[None] * world.light(nrm[m])[:, None]
            best[m] = t[m]
    return col


__all__ = ["World", "trace_world", "cylinder", "sphere", "on_subset", "box_corners", "unit", "value_noise"]
