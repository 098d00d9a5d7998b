"""Classical localisation (OpenCV): the mirror face(s) inside their orange/red rim, the pole below,
pole tilt from vertical and the face's deformation (shape-fit residual).

Everything runs on a working copy whose long side is :data:`WORK_SIZE` pixels; results are
returned in the photo's own pixel coordinates.

Method
------
* Rim mask: orange/red hue (H ≤ 16 or ≥ 170 on OpenCV's 0–180 scale), saturation ≥ 110.
* Face = a *hole* in the rim mask (``RETR_CCOMP``) that is ellipse- or rounded-square-shaped and
  ringed by rim pixels. Holes ignore the pole and hood attached outside the ring. When the ring is
  broken (vegetation, a torn rim) a RANSAC ellipse is fitted to the outer contour instead.
* Mostly hidden face (leaves over most of it, 支障木): when neither finds a face, a RANSAC circle on a
  visible rim arc (≥ 20 % of the circle, dense along it) is kept if a pole stands under it
  (method ``"partial"``; the diagnosis then always asks for review and measures no deformation).
* Shape: the outline is fitted by an ellipse (``fitEllipse``) and by a superellipse of exponent 6
  in its ``minAreaRect``; the better fit names the shape (round/square).
* Deformation: radial residual of the outline against the fitted shape, averaged in 36 angular
  sectors; the 75th percentile of the sectors, in % of the radius (pole/gaps do not count).
* Pole: Canny + probabilistic Hough below the mirror; near-vertical segments whose extension meets
  the mirror's foot; tilt = length-weighted mean angle of that cluster.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

WORK_SIZE = 640


@dataclass
class MirrorFace:
    center: tuple[float, float]
    axes: tuple[float, float]        # semi-axes of the face (inner rim edge)
    angle: float                     # degrees
    shape: str                       # "round" | "square"
    box: list[float]                 # outer rim box [x0, y0, x1, y1]
    deformation_pct: float
    method: str                      # "hole" | "ransac" | "partial" (most of the rim hidden; circle on the arc)
    rim_coverage: float              # fraction of the ring around the face that is rim-coloured
    outline: list[list[float]] = field(default_factory=list, repr=False)   # face outline (photo px)

    @property
    def radius(self) -> float:
        return (self.axes[0] + self.axes[1]) / 2


@dataclass
class Pole:
    top: tuple[float, float]
    base: tuple[float, float]
    tilt_deg: float                  # signed: > 0 leans right (top right of base)
    box: list[float]
    support: float                   # total edge length found / visible pole length (0..2)
    bend_pct: float = 0.0            # largest deviation of the traced centre line from its chord, %


@dataclass
class Geometry:
    size: tuple[int, int]            # photo (w, h)
    scale: float                     # photo px per working px
    faces: list[MirrorFace]
    pole: Pole | None
    brightness: float                # mean luma 0..255
    sharpness: float                 # variance of the Laplacian on the working copy
    overexposed: float               # fraction of clipped pixels
    work: np.ndarray | None = field(default=None, repr=False)   # the working copy (RGB)
    src: np.ndarray | None = field(default=None, repr=False)    # the analysed photo itself (RGB, photo px)

    @property
    def face(self) -> MirrorFace | None:
        return self.faces[0] if self.faces else None


def work_copy(rgb: np.ndarray) -> tuple[np.ndarray, float]:
    h, w = rgb.shape[:2]
    s = max(h, w) / WORK_SIZE
    if s <= 1:
        return rgb, 1.0
    return cv2.resize(rgb, (round(w / s), round(h / s)), interpolation=cv2.INTER_AREA), s


# The wide rim colour, tried only when the orange/red one finds no mirror: yellow rims, and rims that
# shade, haze or a camera's colour rendering leave darker or paler than the usual orange.
WIDE_RIM = {"hue_max": 34, "hue_min": 165, "sat": 70, "val": 45, "outside_max": 0.9,
            "min_axis": 8.0, "max_ratio": 1.8}


def rim_mask(work: np.ndarray, wide: bool = False) -> np.ndarray:
    hsv = cv2.cvtColor(work, cv2.COLOR_RGB2HSV)
    H, S, V = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    if wide:
        c = WIDE_RIM
        m = (((H <= c["hue_max"]) | (H >= c["hue_min"])) & (S >= c["sat"]) & (V >= c["val"])).astype(np.uint8)
    else:
        m = (((H <= 16) | (H >= 170)) & (S >= 110) & (V >= 70)).astype(np.uint8)
    return cv2.morphologyEx(m, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))


def _normalised_radius(pts: np.ndarray, center, axes, angle_deg, p: float) -> np.ndarray:
    ca, sa = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
    d = pts - np.asarray(center)
    u = (d[:, 0] * ca + d[:, 1] * sa) / max(axes[0], 1e-6)
    v = (-d[:, 0] * sa + d[:, 1] * ca) / max(axes[1], 1e-6)
    return (np.abs(u) ** p + np.abs(v) ** p) ** (1 / p)


def _sector_residual(pts, center, rad, mean_r) -> float:
    """75th percentile over 36 sectors of the mean |radial residual|, % of the radius."""
    ang = np.arctan2(pts[:, 1] - center[1], pts[:, 0] - center[0])
    sec = ((ang + math.pi) / (2 * math.pi) * 36).astype(int) % 36
    res = np.abs(rad - 1)
    vals = [res[sec == k].mean() for k in range(36) if np.any(sec == k)]
    if len(vals) < 8:
        return float("nan")
    return float(np.percentile(vals, 75) * 100)


def _fit_shape(pts: np.ndarray):
    """Best of ellipse / rounded square. Returns (shape, center, semi-axes, angle, residual%)."""
    (ex, ey), (ew, eh), ea = cv2.fitEllipse(pts.astype(np.float32))
    e_axes = (ew / 2, eh / 2)
    r_e = _normalised_radius(pts, (ex, ey), e_axes, ea, 2.0)
    res_e = _sector_residual(pts, (ex, ey), r_e, np.mean(e_axes))
    (qx, qy), (qw, qh), qa = cv2.minAreaRect(pts.astype(np.float32))
    q_axes = (qw / 2, qh / 2)
    r_q = _normalised_radius(pts, (qx, qy), q_axes, qa, 6.0)
    res_q = _sector_residual(pts, (qx, qy), r_q, np.mean(q_axes))
    if res_q < res_e * 0.7:
        return "square", (qx, qy), q_axes, qa, res_q
    return "round", (ex, ey), e_axes, ea, res_e


def _ring_coverage(mask, hole_mask, r) -> float:
    k = max(3, int(0.16 * r)) | 1
    ring = cv2.dilate(hole_mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))) & (1 - hole_mask)
    n = int(ring.sum())
    return float((mask & ring).sum() / n) if n else 0.0


def _faces_from_holes(mask: np.ndarray) -> list[MirrorFace]:
    h, w = mask.shape
    min_r = 8
    contours, hier = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    out = []
    if hier is None:
        return out
    for i, c in enumerate(contours):
        if hier[0][i][3] < 0 or len(c) < 20:      # not a hole
            continue
        area = cv2.contourArea(c)
        if area < math.pi * min_r ** 2:
            continue
        pts = c[:, 0, :].astype(np.float64)
        shape, ctr, axes, ang, res = _fit_shape(pts)
        a, b = sorted(axes)
        if a < min_r or b / max(a, 1e-6) > 2.2:
            continue
        fill = area / (math.pi * axes[0] * axes[1] * (1.0 if shape == "round" else 4 / math.pi * 0.96))
        if not 0.75 <= fill <= 1.2 or not np.isfinite(res):
            continue
        hm = np.zeros_like(mask)
        cv2.drawContours(hm, [c], -1, 1, -1)
        cov = _ring_coverage(mask, hm, (a + b) / 2)
        if cov < 0.6:
            continue
        out.append((area, MirrorFace(ctr, axes, ang, shape, [], res, "hole", cov, pts.tolist())))
    out.sort(key=lambda t: -t[0])
    if not out:
        return []
    big = out[0][0]
    return [f for area, f in out if area >= 0.35 * big][:2]


def _ellipse_dist(pts, center, axes, angle):
    rad = _normalised_radius(pts, center, axes, angle, 2.0)
    return np.abs(rad - 1) * (axes[0] + axes[1]) / 2, rad


def _faces_ransac(mask: np.ndarray, rng: np.random.Generator) -> list[MirrorFace]:
    """Broken ring: fit an ellipse to the largest rim-coloured components' outer contours."""
    n, lab, stats, _ = cv2.connectedComponentsWithStats(mask, 8)
    order = np.argsort(-stats[1:, cv2.CC_STAT_AREA])[:4] + 1
    best = None
    for comp in order:
        if stats[comp, cv2.CC_STAT_AREA] < 150:
            continue
        cm = (lab == comp).astype(np.uint8)
        cs, _ = cv2.findContours(cm, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        pts = np.concatenate([c[:, 0, :] for c in cs]).astype(np.float64)
        if len(pts) < 30:
            continue
        for _ in range(150):
            sample = pts[rng.choice(len(pts), 6, replace=False)]
            try:
                (ex, ey), (ew, eh), ea = cv2.fitEllipse(sample.astype(np.float32))
            except cv2.error:
                continue
            if not (8 < ew < 4 * mask.shape[1] and 8 < eh < 4 * mask.shape[0]) or max(ew, eh) / min(ew, eh) > 2.2:
                continue
            d, _ = _ellipse_dist(pts, (ex, ey), (ew / 2, eh / 2), ea)
            tol = max(2.0, 0.08 * (ew + eh) / 2)     # both edges of the rim band count
            inl = d < tol
            perim = math.pi * (ew + eh) / 2
            score = inl.sum() / perim
            # the most rim pixels explained wins (a ratio alone favours tiny ellipses)
            if score > 0.5 and (best is None or inl.sum() > best[0]):
                best = (int(inl.sum()), pts[inl])
    if best is None:
        return []
    inl = best[1]
    (ex, ey), (ew, eh), ea = cv2.fitEllipse(inl.astype(np.float32))
    # the middle of the rim band was fitted: the face is inside the ring (~11 % rim width)
    outer_axes = (ew / 2, eh / 2)
    axes = (outer_axes[0] / 1.055, outer_axes[1] / 1.055)
    d, rad = _ellipse_dist(inl, (ex, ey), outer_axes, ea)
    res = _sector_residual(inl, (ex, ey), rad, np.mean(outer_axes))
    hm = np.zeros_like(mask)
    cv2.ellipse(hm, ((ex, ey), (2 * axes[0], 2 * axes[1]), ea), 1, -1)
    cov = _ring_coverage(mask, hm, np.mean(axes))
    if cov < 0.3:
        return []
    return [MirrorFace((ex, ey), axes, ea, "round", [], res if np.isfinite(res) else 0.0, "ransac", cov,
                       inl.tolist())]


PARTIAL_MIN_SPAN = 0.2        # a partly hidden rim: at least this share of the circle must show


def _faces_partial(mask: np.ndarray, rng: np.random.Generator) -> list[MirrorFace]:
    """Most of the ring hidden (leaves over the mirror, 支障木): a circle fitted to a visible rim arc.
    Only a candidate — :func:`analyse` keeps it when a pole stands under it."""
    h, w = mask.shape
    _, lab, stats, _ = cv2.connectedComponentsWithStats(mask, 8)
    # rim-sized components only: a red wall or a car body is not an arc
    comps = [c for c in np.argsort(-stats[1:, cv2.CC_STAT_AREA])[:6] + 1
             if 60 <= stats[c, cv2.CC_STAT_AREA] <= 0.05 * h * w]
    best = None
    for comp in comps:
        cs, _ = cv2.findContours((lab == comp).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        pts = np.concatenate([c[:, 0, :] for c in cs]).astype(np.float64)
        if len(pts) >= 30:
            best = _partial_circle(pts, h, w, rng, best)
    if best is None:
        return []
    _, (ux, uy, r), span = best
    r_face = r / 1.055            # the middle of the rim band was fitted
    outline = [[ux + r_face * math.cos(t), uy + r_face * math.sin(t)] for t in np.linspace(0, 2 * math.pi, 72, False)]
    return [MirrorFace((ux, uy), (r_face, r_face), 0.0, "round", [], 0.0, "partial", float(span), outline)]


def _partial_circle(pts: np.ndarray, h: int, w: int, rng: np.random.Generator, best):
    """RANSAC circle on one component's contour points; returns the better of it and ``best``."""
    for _ in range(150):
        a, b, c = pts[rng.choice(len(pts), 3, replace=False)]
        d = 2 * (a[0] * (b[1] - c[1]) + b[0] * (c[1] - a[1]) + c[0] * (a[1] - b[1]))
        if abs(d) < 1e-6:
            continue
        sa, sb, sc = a @ a, b @ b, c @ c
        ux = (sa * (b[1] - c[1]) + sb * (c[1] - a[1]) + sc * (a[1] - b[1])) / d
        uy = (sa * (c[0] - b[0]) + sb * (a[0] - c[0]) + sc * (b[0] - a[0])) / d
        r = math.hypot(a[0] - ux, a[1] - uy)
        if not (10 < r < 0.3 * min(h, w)):
            continue
        dist = np.abs(np.hypot(pts[:, 0] - ux, pts[:, 1] - uy) - r)
        inl = dist < max(2.0, 0.08 * r)
        # the share of the circle the inliers cover, in 10° sectors (both rim edges count once)
        ang = np.degrees(np.arctan2(pts[inl, 1] - uy, pts[inl, 0] - ux))
        span = len(np.unique((ang // 10).astype(int))) / 36
        # a rim arc gives at least one of its edges all along the sectors it covers (~1 point per px of
        # arc, both edges ~2; 0.8 leaves room for gaps); a large circle grazing scattered orange things
        # covers many sectors thinly
        dense = inl.sum() / max(1e-6, span * 2 * math.pi * r) >= 0.8
        if span >= PARTIAL_MIN_SPAN and dense and (best is None or inl.sum() > best[0]):
            best = (int(inl.sum()), (ux, uy, r), span)
    return best


def _outer_box(f: MirrorFace, w, h) -> list[float]:
    pts = np.asarray(f.outline)
    c = np.asarray(f.center)
    o = c + (pts - c) * 1.12
    return [float(max(0, o[:, 0].min())), float(max(0, o[:, 1].min())),
            float(min(w, o[:, 0].max())), float(min(h, o[:, 1].max()))]


BENT_CHORD_MAX_DEG = 26.0


def find_pole(work: np.ndarray, face: MirrorFace) -> Pole | None:
    h, w = work.shape[:2]
    cx, cy = face.center
    r = face.radius
    foot = cy + 1.15 * max(face.axes)
    y0 = int(min(h - 1, foot))
    if h - y0 < 2 * r * 0.5 or h - y0 < 12:
        return None
    half = max(2.5 * r, 0.45 * (h - y0))
    x0, x1 = int(max(0, cx - half)), int(min(w, cx + half))
    roi = work[y0:, x0:x1]
    gray = cv2.GaussianBlur(cv2.cvtColor(roi, cv2.COLOR_RGB2GRAY), (3, 3), 0)
    sat = cv2.GaussianBlur(cv2.cvtColor(roi, cv2.COLOR_RGB2HSV)[..., 1], (3, 3), 0)
    # an orange pole on grey asphalt differs in saturation more than in brightness
    edges = cv2.Canny(gray, 40, 110) | cv2.Canny(sat, 40, 110)
    rh = h - y0
    lines = cv2.HoughLinesP(edges, 1, np.pi / 360, threshold=25, minLineLength=max(10, int(0.15 * rh)),
                            maxLineGap=max(4, int(0.04 * h)))
    if lines is None:
        return None
    cands = []
    for x_a, y_a, x_b, y_b in np.asarray(lines).reshape(-1, 4).tolist():
        if y_a > y_b:
            x_a, y_a, x_b, y_b = x_b, y_b, x_a, y_a
        dy, dx = y_b - y_a, x_b - x_a
        if dy <= 0:
            continue
        ang = math.degrees(math.atan2(-dx, dy))   # > 0: top to the right of the bottom
        if abs(ang) > 35:
            continue
        x_top = x0 + x_a + (0 - y_a) * dx / dy    # where the line meets the mirror's foot
        ln = math.hypot(dx, dy)
        cands.append((ln, ang, x_top, (x0 + x_a, y0 + y_a, x0 + x_b, y0 + y_b)))
    # the pole starts right under the mirror: seed with the longest segment that does
    seeds = [c for c in cands if abs(c[2] - cx) < 0.75 * r and c[3][1] < y0 + 0.3 * rh + 2 * r]
    if not seeds:
        return None
    seeds.sort(key=lambda c: -c[0])
    best = seeds[0]
    bx_a, by_a, bx_b, by_b = best[3]

    def x_on_best(y):
        return bx_a + (y - by_a) * (bx_b - bx_a) / max(1e-6, by_b - by_a)

    # follow the pole: segments of similar direction lying along it (a bent pole changes angle)
    cluster = [c for c in cands if abs(c[1] - best[1]) < 8
               and abs((c[3][0] + c[3][2]) / 2 - x_on_best((c[3][1] + c[3][3]) / 2)) < 0.35 * r]
    pts = []
    for c in cluster:
        xa, ya, xb, yb = c[3]
        n = max(2, int(c[0] / 4))
        pts += [(xa + (xb - xa) * k / n, ya + (yb - ya) * k / n) for k in range(n + 1)]
    pts = np.asarray(pts, np.float32)
    vx, vy, px, py = cv2.fitLine(pts, cv2.DIST_L2, 0, 0.01, 0.01).ravel()
    if vy < 0:
        vx, vy = -vx, -vy
    # fit the pole's two edges separately (a left edge seen at the top and a right edge at the
    # bottom would otherwise skew one line through both)
    side = (pts[:, 0] - px) * vy - (pts[:, 1] - py) * vx
    angs, wts = [], []
    span = max(1.0, float(pts[:, 1].max() - pts[:, 1].min()))
    for sel in (side < 0, side >= 0):
        e = pts[sel]
        if len(e) < 6 or (e[:, 1].max() - e[:, 1].min()) < 0.3 * span:
            continue
        ex, ey, _, _ = cv2.fitLine(e, cv2.DIST_HUBER, 0, 0.01, 0.01).ravel()
        if ey < 0:
            ex, ey = -ex, -ey
        angs.append(math.degrees(math.atan2(-ex, ey)))
        wts.append(float(e[:, 1].max() - e[:, 1].min()))
    tilt = float(np.average(angs, weights=wts)) if angs else math.degrees(math.atan2(-vx, vy))
    top_y, base_y = float(pts[:, 1].min()), float(pts[:, 1].max())
    top_x = px + (foot - py) * vx / vy
    base_x = px + (base_y - py) * vx / vy
    pad = 0.2 * r
    wsum = sum(c[0] for c in cluster)
    bend = 0.0
    traced = _trace_pole(work, best[3], foot, r)
    if traced is not None:
        # the chord from the pole's top to its lowest traced point: robust to a bent pole
        (tx, ty), (bx2, by2), bend = traced
        chord = math.degrees(math.atan2(-(tx - bx2), by2 - ty))
        # only for a visibly bent pole: on a straight one the Hough edges are more precise. The Hough
        # segments of a badly bent pole follow one half of its bow, up to ~24° off the chord (a bow of
        # 11 % of the length), so the chord is trusted that far
        if by2 - ty > max(0.5 * (base_y - top_y), 3 * r) and abs(chord - tilt) < BENT_CHORD_MAX_DEG and bend > 2.0:
            tilt, top_x, base_x, base_y = chord, tx, bx2, max(base_y, by2)
    return Pole((float(top_x), float(foot)), (float(base_x), float(base_y)), float(tilt),
                [float(min(pts[:, 0].min(), base_x) - pad), float(foot), float(max(pts[:, 0].max(), base_x) + pad),
                 float(base_y)],
                float(min(2.0, wsum / max(1.0, (base_y - top_y)) / 2)), float(bend))


def _trace_pole(work: np.ndarray, seed_seg, foot: float, r: float):
    """Follow the pole's colour down from the mirror's foot. Returns ((top x, y), (bottom x, y),
    bend %) or None. Bend = largest distance of the centre line from the chord, % of its length."""
    h, w = work.shape[:2]
    xa, ya, xb, yb = seed_seg
    L = math.hypot(xb - xa, yb - ya)
    if L < 5:
        return None
    ux, uy = (xb - xa) / L, (yb - ya) / L
    nx, ny = uy, -ux
    lab = cv2.cvtColor(work, cv2.COLOR_RGB2LAB).astype(np.float32)
    off = max(1.5, 0.08 * r)
    best = None
    for sgn in (1, -1):
        cols = []
        for k in range(1, 10):
            x = xa + ux * L * k / 10 + sgn * off * nx
            y = ya + uy * L * k / 10 + sgn * off * ny
            if 0 <= int(x) < w and 0 <= int(y) < h:
                cols.append(lab[int(y), int(x)])
        if len(cols) < 5:
            continue
        cols = np.array(cols)
        spread = float(np.median(np.abs(cols - np.median(cols, 0)).sum(1)))
        if best is None or spread < best[0]:
            best = (spread, np.median(cols, 0), sgn)
    if best is None:
        return None
    pole_col = best[1]
    dist = np.abs(lab - pole_col).sum(2)
    mask = dist < max(18.0, 2.5 * best[0])
    x = xa + ux * ((foot - ya) / max(uy, 1e-3)) + best[2] * off * nx
    half = max(3.0, 0.3 * r)
    centres, miss = [], 0
    step = 2
    for y in range(int(foot) + 1, h, step):
        x0, x1 = int(max(0, x - half)), int(min(w, x + half + 1))
        row = mask[y, x0:x1]
        if row.any():
            xs = np.flatnonzero(row) + x0
            # the run of pole pixels nearest to the current position
            runs = np.split(xs, np.flatnonzero(np.diff(xs) > 1) + 1)
            run = min(runs, key=lambda rr: abs((rr[0] + rr[-1]) / 2 - x))
            if len(run) >= 2 and abs((run[0] + run[-1]) / 2 - x) < half:
                x = 0.5 * x + 0.5 * (run[0] + run[-1]) / 2
                centres.append((x, y))
                miss = 0
                continue
        miss += step
        if miss > max(6, 0.08 * h):
            break
    if len(centres) < 10:
        return None
    c = np.array(centres)
    k = max(3, len(c) // 12)
    top = c[:k].mean(0)
    bot = c[-k:].mean(0)
    d = bot - top
    ln = float(np.hypot(*d))
    if ln < 1:
        return None
    dev = np.abs((c[:, 0] - top[0]) * d[1] - (c[:, 1] - top[1]) * d[0]) / ln
    return (float(top[0]), float(top[1])), (float(bot[0]), float(bot[1])), float(dev.max() / ln * 100)


def mirror_offset_pct(face: MirrorFace | None, pole: Pole | None) -> float | None:
    """Sideways distance of the mirror's centre from the pole's axis extended up to it, in % of the
    face radius (absolute). A sound bracket holds the mirror on the pole's line; a bent or loosened
    one (取付金具の変形) lets it hang off to one side. None without a face or a pole."""
    if face is None or pole is None:
        return None
    cx, cy = face.center
    t = math.radians(pole.tilt_deg)
    x_axis = pole.top[0] + (pole.top[1] - cy) * math.tan(t)
    return float(abs(cx - x_axis) * math.cos(t) / max(1e-6, face.radius) * 100)


def _outside_share(mask: np.ndarray, f: MirrorFace) -> float:
    """Share of rim-coloured pixels in the upper half of the band 1.3–1.7 face radii around a face
    (above the face: not the pole, nor much of the hood; a wall the colour of the rim takes all)."""
    band = np.zeros_like(mask)
    c = (int(round(f.center[0])), int(round(f.center[1])))
    ax = (max(1, int(round(f.axes[0]))), max(1, int(round(f.axes[1]))))
    cv2.ellipse(band, c, (int(ax[0] * 1.7), int(ax[1] * 1.7)), f.angle, 0, 360, 1, -1)
    cv2.ellipse(band, c, (int(ax[0] * 1.3), int(ax[1] * 1.3)), f.angle, 0, 360, 0, -1)
    band[c[1]:] = 0
    n = int(band.sum())
    return float((mask & band).sum() / n) if n else 1.0


def _find_faces(work: np.ndarray, mask: np.ndarray, seed: int) -> tuple[list[MirrorFace], Pole | None]:
    """Faces (working px) in one rim mask and the pole under the first: a ringed hole, else a RANSAC
    ellipse on a broken ring, else a visible rim arc with a pole under it."""
    faces = _faces_from_holes(mask)
    if not faces:
        faces = _faces_ransac(mask, np.random.default_rng(seed))
    pole = find_pole(work, faces[0]) if faces else None
    if not faces:
        # a rim arc with a pole under it: a mirror mostly hidden (e.g. by leaves), not a stray orange thing
        faces = _faces_partial(mask, np.random.default_rng(seed))
        pole = find_pole(work, faces[0]) if faces else None
        if pole is None:
            faces = []
    return faces, pole


def analyse(rgb: np.ndarray, seed: int = 0) -> Geometry:
    """Localise the mirror face(s) and pole in an RGB photo (H×W×3 uint8)."""
    h, w = rgb.shape[:2]
    work, s = work_copy(rgb)
    gray = cv2.cvtColor(work, cv2.COLOR_RGB2GRAY)
    brightness = float(gray.mean())
    sharp = float(cv2.Laplacian(gray, cv2.CV_64F).var())
    over = float((gray >= 250).mean())
    wh, ww = work.shape[:2]
    faces, pole = _find_faces(work, rim_mask(work), seed)
    if not faces:    # no orange/red rim: a yellow, shaded or pale one
        wide = rim_mask(work, wide=True)
        faces, pole = _find_faces(work, wide, seed)
        # a wider colour also takes in ochre walls, whose windows are ringed holes too: a face found
        # this way needs a pole under it, a face of a mirror's size and shape, and must not sit inside
        # a wall of the rim's colour
        if (pole is None or min(faces[0].axes) < WIDE_RIM["min_axis"]
                or max(faces[0].axes) > WIDE_RIM["max_ratio"] * min(faces[0].axes)
                or _outside_share(wide, faces[0]) > WIDE_RIM["outside_max"]):
            faces, pole = [], None
    out_faces = []
    for f in faces:
        box = _outer_box(f, ww, wh)
        out_faces.append(MirrorFace((f.center[0] * s, f.center[1] * s), (f.axes[0] * s, f.axes[1] * s), f.angle,
                                    f.shape, [v * s for v in box], f.deformation_pct, f.method, f.rim_coverage,
                                    (np.asarray(f.outline) * s).tolist()))
    if pole is not None:
        pole = Pole((pole.top[0] * s, pole.top[1] * s), (pole.base[0] * s, pole.base[1] * s), pole.tilt_deg,
                    [v * s for v in pole.box], pole.support, pole.bend_pct)
    return Geometry((w, h), s, out_faces, pole, brightness, sharp, over, work, rgb)
