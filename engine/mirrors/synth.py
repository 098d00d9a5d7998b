"""Procedural synthetic curve-mirror scenes with labels (training data and the benchmark).

No labelled curve-mirror photo set can be had offline, so scenes are drawn: a background
(road, wall, vegetation, sky …), a pole, its bracket, a round or square convex mirror with an
orange/red rim and hood reflecting a fish-eye-warped part of the scene, every defect of
:mod:`engine.mirrors.defects` at graded severities (alone and combined), then lighting,
distance, camera angle, sensor noise and JPEG compression. :func:`generate` returns the
RGB image and its labels; :func:`write_dataset` writes ``NNNNN.jpg`` + ``NNNNN.json`` files.

Styles used for training are :data:`TRAIN_STYLES`; :data:`HELDOUT_STYLES` are never used in
training, only by ``bench/mirrors.py``.
"""
from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from . import scenery
from .defects import CNN_DEFECTS, DEFECTS

BASE_STYLES = ["road", "wall", "vegetation", "sky"]     # generate()'s default when no style is given
# Training styles: the base ones plus domain-randomised backgrounds (random hues and layouts) so the
# benchmark's held-out styles are not out of distribution. The held-out styles' own drawing code is
# never run for training.
TRAIN_STYLES = BASE_STYLES + ["town", "field", "riverside"]
HELDOUT_STYLES = ["residential", "coast", "autumn"]

# Sampling bands (value ranges) per severity, with gaps around the grading thresholds so a label
# is never a coin toss. Tilt thresholds in grading.toml are 3 / 7.5 / 12.5 degrees.
TILT_BANDS = [(0.0, 1.5), (4.0, 6.5), (8.5, 11.5), (14.0, 22.0)]
DEFORM_BANDS = [(0.0, 0.0), (0.045, 0.06), (0.085, 0.11), (0.17, 0.24)]   # radial amplitude / r
VEG_THRESHOLDS = (0.08, 0.25, 0.5)    # fraction of the face hidden → severity 1, 2, 3
# Visible coverage bands per severity 1..3 (fraction of the member's own pixels that show the
# defect; the blotches are thresholded inside the member, so the label follows what is visible).
POLE_RUST_BANDS = [(0.07, 0.12), (0.2, 0.3), (0.45, 0.6)]
POLE_PAINT_BANDS = [(0.05, 0.09), (0.15, 0.22), (0.32, 0.42)]
BRACKET_RUST_BANDS = [(0.15, 0.25), (0.4, 0.55), (0.75, 0.9)]
DIRT_BANDS = [(0.12, 0.18), (0.3, 0.4), (0.6, 0.7)]
# Hood: fraction of the hood torn away per severity (the tear lies inside the hood's arc).
HOOD_TEAR = [0.0, 0.22, 0.5, 0.82]
# Rotation of a sound mirror's face (radians): installation tolerance only, well below the 5° a
# bent bracket (取付金具の変形, severity 1) gives it, so a sound mirror never looks deformed.
SOUND_FACE_ANGLE = 0.03
BRACKET_DROOP_DEG = [0, 10, 20, 32]   # per severity; the face turns by half of it


@dataclass
class Scene:
    image: np.ndarray          # H×W×3 uint8 RGB
    labels: dict



def _outline(n, shape, a, b, angle, amp, rng_phase):
    """Face outline points (float, centred at 0) for a superellipse with low-frequency dents."""
    th = np.linspace(0, 2 * np.pi, n, endpoint=False)
    p = 2.0 if shape == "round" else 6.0
    base = (np.abs(np.cos(th)) ** p + np.abs(np.sin(th)) ** p) ** (-1 / p)
    pert = np.zeros_like(th)
    if amp > 0:
        ks, phs, ws = rng_phase
        for k, ph, wgt in zip(ks, phs, ws):
            pert += wgt * np.cos(k * th + ph)
        pert = pert / np.max(np.abs(pert)) * amp
        # plus one local dent (inward)
        c = phs[0]
        d = np.angle(np.exp(1j * (th - c)))
        pert -= amp * np.exp(-(d / 0.35) ** 2)
    rr = base * (1 + pert)
    x, y = a * rr * np.cos(th), b * rr * np.sin(th)
    ca, sa = math.cos(angle), math.sin(angle)
    return np.stack([x * ca - y * sa, x * sa + y * ca], 1)


def _blotches(rng, h, w, coverage, scale, mask=None, bias=None):
    """Blotch alpha in [0, 1] covering ``coverage`` of the pixels (of ``mask``'s pixels when given,
    so the damage visible on a member is what its severity says). ``bias`` (h×w) is added to the
    noise to make blotches likelier somewhere (rust at the pole's base and joints)."""
    n = scenery.noise(rng, h, w, scale, 3)
    if bias is not None:
        n = n + bias
    inside = n[mask > 0] if mask is not None and (mask > 0).any() else n
    thr = np.quantile(inside, 1 - coverage) if coverage > 0 else np.inf
    return np.clip((n - thr) / 0.04, 0, 1)


def _in_band(rng, bands, sev):
    return float(rng.uniform(*bands[sev - 1])) if sev else 0.0


def sample_defects(rng) -> dict[str, int]:
    """Severity per defect: ~22 % sound, ~45 % one defect, the rest two or three combined."""
    sev = {d: 0 for d in DEFECTS}
    u = rng.random()
    n = 0 if u < 0.22 else 1 if u < 0.67 else int(rng.integers(2, 4))
    picks = rng.choice(len(DEFECTS), size=n, replace=False) if n else []
    for i in picks:
        d = DEFECTS[i]
        sev[d] = 3 if d == "mirror.missing" else int(rng.integers(1, 4))
    if sev["mirror.missing"]:
        for d in ("mirror.dirt", "mirror.clouding", "mirror.crack"):
            sev[d] = 0
    return sev


# ------------------------------------------------------------------ the scene

def generate(seed: int, style: str | None = None, size: tuple[int, int] | None = None,
             defects: dict[str, int] | None = None, distractor: float = 0.25,
             lighting: float | None = None, blur: float = 0.0, shape: str | None = None,
             mirror_scale: float | None = None) -> Scene:
    """Draw one scene. ``defects`` fixes severities (others 0); ``lighting`` fixes the global gain
    (e.g. 0.12 for a photo too dark to judge); ``blur`` > 0 adds motion blur of that many pixels
    (per 1000 px of width); ``mirror_scale`` fixes the mirror radius as a fraction of the short side."""
    rng = np.random.default_rng(seed)
    style = style or BASE_STYLES[int(rng.integers(len(BASE_STYLES)))]
    if size is None:
        size = (1024, 768) if rng.random() < 0.7 else (768, 1024)
    w, h = size
    sev = dict(defects) if defects is not None else sample_defects(rng)
    for d in DEFECTS:
        sev.setdefault(d, 0)
    img = scenery.background(rng, style, h, w)
    bg = img.copy()

    # --- geometry of the installation
    short = min(w, h)
    r = short * (mirror_scale if mirror_scale else rng.uniform(0.075, 0.17))
    shape = shape or ("round" if rng.random() < 0.8 else "square")
    squash = rng.uniform(0.78, 1.0)        # camera off-axis → ellipse
    a, b = r * squash, r
    face_angle = rng.uniform(-SOUND_FACE_ANGLE, SOUND_FACE_ANGLE)
    tilt_deg = rng.uniform(*TILT_BANDS[sev["pole.tilt"]]) * rng.choice([-1, 1])
    roll = rng.uniform(-0.8, 0.8)          # camera roll adds to the apparent tilt (kept small)
    tilt = math.radians(tilt_deg + roll)
    base_x = rng.uniform(0.3, 0.7) * w
    base_y = h + rng.uniform(0, 0.05) * h
    cy_target = rng.uniform(0.25, 0.42) * h
    L = base_y - (cy_target + 1.25 * r)
    top_x, top_y = base_x + L * math.sin(tilt), base_y - L * math.cos(tilt)
    br_def = sev["bracket.deformation"]
    droop = BRACKET_DROOP_DEG[br_def] * rng.choice([-1, 1])
    off = math.radians(droop)
    cx = top_x + 1.25 * r * math.sin(tilt) + 0.55 * r * math.sin(off)
    cy = top_y - 1.25 * r * math.cos(tilt) + 0.25 * r * (1 - math.cos(off))
    if sev["bracket.deformation"]:
        face_angle += off * 0.5

    # --- pole
    pw = r * rng.uniform(0.2, 0.27)
    pole_orange = rng.random() < 0.55
    rim_col = np.array([rng.uniform(220, 250), rng.uniform(50, 110), rng.uniform(10, 45)], np.float32)
    pole_col = (rim_col * rng.uniform(0.9, 1.0)) if pole_orange else np.full(3, rng.uniform(165, 205), np.float32)
    bend = [0, 0.025, 0.06, 0.11][sev["pole.bend"]] * L * rng.choice([-1, 1])
    y0, y1 = int(max(0, top_y)), h
    ys = np.arange(y0, y1, dtype=np.float32)
    t = np.clip((base_y - ys) / max(L, 1), 0, 1)              # 0 at base, 1 at top
    xc = base_x + (base_y - ys) * math.tan(tilt) + bend * 4 * t * (1 - t)
    # drawn in the columns around the pole only (the rest of the row is untouched)
    px0 = int(np.clip(xc.min() - 1.5 * pw, 0, w - 1))
    px1 = int(np.clip(xc.max() + 1.5 * pw + 1, px0 + 1, w))
    xs = np.arange(px0, px1, dtype=np.float32)
    pwid = px1 - px0
    across = (xs[None, :] - xc[:, None]) / (pw / 2)
    halfw = np.ones_like(across)
    dent_t = None
    if sev["pole.dent"]:
        dent_t = rng.uniform(0.25, 0.7)
        depth = [0, 0.18, 0.35, 0.55][sev["pole.dent"]]
        ext = [0, 0.03, 0.045, 0.06][sev["pole.dent"]] * 1.0
        side = rng.choice([-1, 1])
        bump = depth * np.exp(-((t - dent_t) / ext) ** 2)[:, None]
        # the dented side moves inwards
        halfw = np.where(np.sign(across) == side, 1 - bump, 1)
    pmask = (np.abs(across) <= halfw).astype(np.float32)
    shade = 0.72 + 0.42 * np.cos(np.clip(across, -1.2, 1.2) * 1.2)
    if dent_t is not None:
        shade = shade * (1 - 0.55 * np.exp(-((t - dent_t) / (ext * 1.4)) ** 2)[:, None] * (np.sign(across) == side))
    pole = pole_col[None, None, :] * shade[..., None]
    region_h = y1 - y0
    visible = {}
    if sev["pole.paint"]:
        cov = _in_band(rng, POLE_PAINT_BANDS, sev["pole.paint"])
        m = _blotches(rng, region_h, pwid, cov, max(8, pw * 1.2), mask=pmask)
        m = (m > 0.5).astype(np.float32)
        visible["pole.paint"] = float(m[pmask > 0].mean())
        m = m[..., None]
        bare = np.array([200, 200, 205], np.float32) if pole_orange else np.array([95, 95, 100], np.float32)
        pole = pole * (1 - m) + bare * shade[..., None] * m
    if sev["pole.rust"]:
        cov = _in_band(rng, POLE_RUST_BANDS, sev["pole.rust"])
        focus = np.clip(1.6 * (1 - t) ** 2 + 0.8 * np.exp(-((1 - t) / 0.12) ** 2), 0, 1)[:, None]  # base + top joint
        # worst at the base and the top joint: the noise is biased there before the coverage is cut
        m = _blotches(rng, region_h, pwid, cov, max(6, pw), mask=pmask, bias=0.25 * focus)
        visible["pole.rust"] = float((m[pmask > 0] > 0.5).mean())
        m = np.clip(m * (0.7 + 0.3 * focus), 0, 1)[..., None]
        rust = np.array([120, 62, 30], np.float32) * (0.7 + 0.6 * scenery.noise(rng, region_h, pwid, 4, 2)[..., None])
        pole = pole * (1 - m) + rust * m
    sub = img[y0:y1, px0:px1]
    pm = pmask[..., None]
    img[y0:y1, px0:px1] = sub * (1 - pm) + pole * pm
    pole_box = [float(min(xc.min(), xc.max()) - pw), float(y0), float(max(xc.min(), xc.max()) + pw), float(h)]

    # --- bracket (grey clamp between the pole top and the mirror back)
    bx, by = top_x, top_y
    bw_, bh_ = 0.55 * r, 0.2 * r
    brk = cv2.boxPoints(((bx, by - 0.1 * r), (bw_, bh_), droop * 0.6))
    arm = np.array([[bx - 0.08 * r, by], [bx + 0.08 * r, by], [cx + 0.08 * r, cy + 0.5 * r], [cx - 0.08 * r, cy + 0.5 * r]])
    bcol = np.array([rng.uniform(120, 160)] * 3, np.float32)
    bmask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(bmask, [np.round(brk).astype(np.int32), np.round(arm).astype(np.int32)], 1)
    if br_def >= 2:   # a visibly bent arm
        kink = np.array([[cx, cy + 0.5 * r], [bx + droop / 30 * 0.5 * r, by - 0.6 * r], [bx, by]], np.int32)
        cv2.polylines(bmask, [kink], False, 1, max(2, int(0.1 * r)))
    kx, ky, kw, kh = cv2.boundingRect(bmask)
    kw, kh = max(kw, 1), max(kh, 1)
    bmask = bmask[ky:ky + kh, kx:kx + kw]
    bm = bmask.astype(np.float32)
    if sev["bracket.rust"]:
        cov = _in_band(rng, BRACKET_RUST_BANDS, sev["bracket.rust"])
        rm = _blotches(rng, kh, kw, cov, max(4, 0.1 * r), mask=bmask)
        visible["bracket.rust"] = float((rm[bmask > 0] > 0.5).mean())
        rm = rm[..., None] * bm[..., None]
        bimg = bcol * (1 - rm) + np.array([125, 60, 28], np.float32) * rm
    else:
        bimg = np.broadcast_to(bcol, (kh, kw, 3))
    sub = img[ky:ky + kh, kx:kx + kw]
    img[ky:ky + kh, kx:kx + kw] = sub * (1 - bm[..., None]) + bimg * bm[..., None]

    # --- mirror: hood, rim, face (and the vegetation over it): all within 2.3 radii of the face's
    # centre, so they are drawn on that part of the picture only, in its own coordinates
    full, H, W, CX, CY = img, h, w, cx, cy
    mx0, my0 = int(np.clip(cx - 2.3 * r, 0, w - 1)), int(np.clip(cy - 2.3 * r, 0, h - 1))
    mx1, my1 = int(np.clip(cx + 2.3 * r + 1, mx0 + 1, w)), int(np.clip(cy + 2.3 * r + 1, my0 + 1, h))
    img = full[my0:my1, mx0:mx1].copy()
    h, w = img.shape[:2]
    cx, cy = cx - mx0, cy - my0
    amp = 0.0
    if sev["mirror.deformation"]:
        amp = rng.uniform(*DEFORM_BANDS[sev["mirror.deformation"]])
    phase = (rng.integers(3, 6, 3), rng.uniform(0, 2 * np.pi, 3), rng.uniform(0.3, 1, 3))
    inner = _outline(360, shape, a, b, face_angle, amp, phase)
    rim_t = rng.uniform(0.09, 0.13)
    outer = inner * (1 + rim_t)
    c = np.array([cx, cy])
    face_mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(face_mask, [np.round(inner + c).astype(np.int32)], 1)
    rim_mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(rim_mask, [np.round(outer + c).astype(np.int32)], 1)
    rim_mask[face_mask > 0] = 0
    # hood: a crescent over the top of the rim
    hood = np.zeros((h, w), np.uint8)
    hood_outer = inner * (1 + rim_t + 0.16) + np.array([0, -0.05 * r])
    cv2.fillPoly(hood, [np.round(hood_outer + c).astype(np.int32)], 1)
    hood[(face_mask > 0) | (rim_mask > 0)] = 0
    hood[int(max(0, cy - 0.25 * b)):] = 0
    hd = sev["hood.damage"]
    if hd:
        ang = np.arctan2(np.arange(h)[:, None] - cy, np.arange(w)[None, :] - cx)
        # the tear lies inside the hood's own arc (above the face), so its visible size is the severity's
        hood_ang = ang[hood > 0]
        lo_a, hi_a = (float(hood_ang.min()), float(hood_ang.max())) if hood_ang.size else (-math.pi, 0.0)
        span = HOOD_TEAR[hd] * (hi_a - lo_a)
        start = rng.uniform(lo_a, max(lo_a, hi_a - span))
        jag = 0.12 * (scenery.noise(rng, h, w, max(4, 0.2 * r), 2) - 0.5)
        tear = ((ang - start + jag) >= 0) & ((ang - start + jag) < span)
        n_hood = max(1, int((hood > 0).sum()))
        visible["hood.damage"] = float(((hood > 0) & tear).sum() / n_hood)
        hood[tear] = 0
        if hd == 3:   # rim broken too: a gap in the ring
            g0 = rng.uniform(-math.pi, math.pi)
            gap = np.abs(np.angle(np.exp(1j * (ang - g0)))) < 0.22
            rim_mask[gap] = 0
    rim_shade = (0.8 + 0.25 * scenery.noise(rng, h, w, max(6, 0.3 * r), 2))[..., None]
    face_box = cv2.boundingRect(np.round(outer + c).astype(np.int32))
    # face content: the scene, mirrored, through a convex (fish-eye) mirror
    fx0, fy0, fw, fh = face_box
    fx1, fy1 = min(w, fx0 + fw), min(h, fy0 + fh)
    fx0, fy0 = max(0, fx0), max(0, fy0)
    fw, fh = max(1, fx1 - fx0), max(1, fy1 - fy0)
    gx, gy = np.meshgrid(np.arange(fx0, fx0 + fw, dtype=np.float32), np.arange(fy0, fy0 + fh, dtype=np.float32))
    # (local coordinates; the reflected scene is the whole picture: W, H)
    u, v = (gx - cx) / a, (gy - cy) / b
    rho2 = u * u + v * v
    src_c = (rng.uniform(0.3, 0.7) * W, rng.uniform(0.45, 0.75) * H)
    R = rng.uniform(0.2, 0.35) * W
    mapx = (src_c[0] - u * R * (1 + 1.4 * rho2)).astype(np.float32)
    mapy = (src_c[1] + v * R * 0.8 * (1 + 1.4 * rho2)).astype(np.float32)
    face = cv2.remap(bg.astype(np.float32), mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    face = face * 0.85 + np.array([20, 30, 45], np.float32)
    face = face * (1 - 0.25 * np.clip(rho2, 0, 1))[..., None] + 35 * np.clip(rho2, 0, 1)[..., None]
    fm_local = face_mask[fy0:fy0 + fh, fx0:fx0 + fw].astype(np.float32)
    lr = max(2.0, r)
    # the reflection is soft (a small convex mirror seen from the camera, at its focus distance):
    # lane markings and edges reflected in it never look like the sharp lines of a crack
    face = cv2.GaussianBlur(face, (0, 0), max(1.2, 0.025 * lr))
    if sev["mirror.missing"]:
        face = np.full_like(face, 55) + 20 * scenery.noise(rng, fh, fw, max(4, 0.3 * r), 2)[..., None]
        for _ in range(rng.integers(2, 5)):   # shards left in the frame
            th0 = rng.uniform(0, 2 * np.pi)
            p0 = np.array([cx + a * math.cos(th0), cy + b * math.sin(th0)])
            pts = np.array([p0, p0 + rng.uniform(-0.5, 0.5, 2) * lr, p0 + rng.uniform(-0.5, 0.5, 2) * lr]) - [fx0, fy0]
            sh = np.zeros((fh, fw), np.uint8)
            cv2.fillPoly(sh, [np.round(pts).astype(np.int32)], 1)
            face[sh > 0] = 200
    if sev["mirror.clouding"]:
        al = [0, 0.3, 0.5, 0.72][sev["mirror.clouding"]]
        k = int(max(3, lr * [0, 0.04, 0.08, 0.12][sev["mirror.clouding"]])) | 1
        face = cv2.GaussianBlur(face, (k, k), 0) * (1 - al) + 215 * al
    if sev["mirror.dirt"]:
        cov = _in_band(rng, DIRT_BANDS, sev["mirror.dirt"])
        dm = _blotches(rng, fh, fw, cov, max(4, 0.15 * lr), mask=fm_local) * rng.uniform(0.75, 0.95)
        visible["mirror.dirt"] = float((dm[fm_local > 0] > 0.4).mean())
        streak = np.zeros((fh, fw), np.float32)
        for _ in range(sev["mirror.dirt"] * 3):   # run-off streaks
            x = rng.integers(0, fw)
            cv2.line(streak, (int(x), int(rng.integers(0, fh // 2))), (int(x + rng.integers(-3, 4)), fh), 0.6, max(1, int(0.03 * lr)))
        dm = np.clip(dm + streak * (sev["mirror.dirt"] > 1), 0, 0.95)[..., None]
        face = face * (1 - dm) + np.array([105, 90, 70], np.float32) * dm
    if sev["mirror.crack"]:
        s = sev["mirror.crack"]
        crack = np.zeros((fh, fw), np.uint8)
        ox, oy = cx - fx0 + rng.uniform(-0.4, 0.4) * a, cy - fy0 + rng.uniform(-0.4, 0.4) * b
        rays = [0, 3, 7, 12][s]
        lw = max(1, int(0.018 * lr))
        for _ in range(rays):
            th0 = rng.uniform(0, 2 * np.pi)
            ln = lr * rng.uniform(0.4, 1.0) * (0.8 if s == 1 else 1.2)
            pts = [(ox, oy)]
            for k in range(1, 5):
                th0 += rng.uniform(-0.25, 0.25)
                pts.append((ox + ln * k / 4 * math.cos(th0), oy + ln * k / 4 * math.sin(th0)))
            cv2.polylines(crack, [np.round(pts).astype(np.int32)], False, 1, lw)
        if s >= 2:
            for k in range(s - 1):
                rad = lr * rng.uniform(0.15, 0.45)
                cv2.ellipse(crack, (int(ox), int(oy)), (int(rad), int(rad)), 0, rng.uniform(0, 360), rng.uniform(0, 360) + 200, 1, lw)
        # a crack is a sharp bright line with a dark edge, radiating from a white impact point
        cv2.circle(crack, (int(ox), int(oy)), max(2, int(0.035 * lr)), 1, -1)
        edge = cv2.dilate(crack, np.ones((3, 3), np.uint8)) > 0
        face[edge] = face[edge] * 0.45
        face[crack > 0] = face[crack > 0] * 0.3 + 185
        if s == 3:   # pieces fallen out
            for _ in range(rng.integers(2, 4)):
                p0 = np.array([ox, oy]) + rng.uniform(-0.5, 0.5, 2) * lr
                pts = p0 + rng.uniform(-0.35, 0.35, (4, 2)) * lr
                cv2.fillPoly(face, [np.round(pts).astype(np.int32)], (50, 50, 55))
    reg = img[fy0:fy0 + fh, fx0:fx0 + fw]
    img[fy0:fy0 + fh, fx0:fx0 + fw] = reg * (1 - fm_local[..., None]) + face * fm_local[..., None]
    hood_col = rim_col * 0.85
    rm = rim_mask.astype(np.float32)[..., None]
    img = img * (1 - rm) + (rim_col * rim_shade) * rm
    hm = hood.astype(np.float32)[..., None]
    img = img * (1 - hm) + (hood_col * rim_shade) * hm
    if hd:   # dents / scratches on what is left of the hood
        for _ in range(hd * 2):
            p = (int(cx + rng.uniform(-1, 1) * a), int(cy - rng.uniform(0.9, 1.2) * b))
            cv2.circle(img, p, max(1, int(0.05 * r)), (80, 55, 40), -1)

    # --- vegetation over the face (支障木)
    veg_cov = 0.0
    if sev["view.vegetation"]:
        target = [0, rng.uniform(0.13, 0.2), rng.uniform(0.32, 0.42), rng.uniform(0.6, 0.8)][sev["view.vegetation"]]
        vm = np.zeros((h, w), np.uint8)
        side = rng.uniform(0, 2 * np.pi)
        dx, dy = math.cos(side), math.sin(side)
        # leaves fill the half-plane beyond a line across the face, grown until the target is hidden
        face_area = max(1, int(face_mask.sum()))
        X, Y = np.meshgrid(np.arange(w) - cx, np.arange(h) - cy)
        proj = (X * dx + Y * dy) / r
        leaf_noise = scenery.noise(rng, h, w, max(4, 0.12 * r), 2)
        lo, hi = -1.5, 1.5
        for _ in range(12):
            mid = (lo + hi) / 2
            m = (proj + 0.35 * (leaf_noise - 0.5) > mid)
            cov = (m & (face_mask > 0)).sum() / face_area
            if cov > target:
                lo = mid
            else:
                hi = mid
        vm = (proj + 0.35 * (leaf_noise - 0.5) > (lo + hi) / 2) & (np.hypot(X, Y) < 2.2 * r)
        veg_cov = float((vm & (face_mask > 0)).sum() / face_area)
        leaves = scenery.foliage(rng, h, w, [(55, 105, 40), (70, 120, 50), (40, 85, 35)])
        vmf = vm.astype(np.float32)[..., None]
        img = img * (1 - vmf) + leaves * vmf
        sev["view.vegetation"] = int(sum(veg_cov >= t_ for t_ in VEG_THRESHOLDS))

    full[my0:my1, mx0:mx1] = img
    img, h, w, cx, cy = full, H, W, CX, CY

    if rng.random() < distractor:
        scenery.distractor(rng, img, cx, r)

    # --- camera: lighting, noise, blur
    gain = lighting if lighting is not None else rng.uniform(0.6, 1.2)
    img = img.astype(np.float32) * (gain * (np.array([1, 1, 1]) + rng.uniform(-0.06, 0.06, 3))).astype(np.float32)
    if rng.random() < 0.4:   # a soft shadow across the scene
        sh = scenery.noise(rng, h, w, w / 2, 1)
        img = img * (0.75 + 0.25 * sh[..., None])
    img = img.astype(np.float32) + rng.uniform(1.5, 6) * rng.standard_normal(img.shape, dtype=np.float32)
    img = np.clip(img, 0, 255).astype(np.uint8)
    if blur > 0:
        k = max(3, int(blur * w / 1000)) | 1
        kern = np.zeros((k, k), np.float32)
        kern[k // 2] = 1.0 / k
        img = cv2.filter2D(img, -1, kern)
    else:
        sig = rng.uniform(0, 0.9)
        if sig > 0.3:
            img = cv2.GaussianBlur(img, (0, 0), sig)

    oxs, oys = outer[:, 0] + cx, outer[:, 1] + cy
    mirror_box = [float(oxs.min()), float(oys.min()), float(oxs.max()), float(oys.max())]
    from .grading import grade_severities, load_table
    labels = {
        "seed": int(seed), "style": style, "size": [w, h],
        "mirror": {"center": [float(cx), float(cy)], "axes": [float(a), float(b)], "shape": shape,
                   "box": mirror_box, "radius": float(r)},
        "pole": {"box": pole_box, "tilt_deg": float(tilt_deg), "camera_roll_deg": float(roll),
                 "orange": bool(pole_orange)},
        "defects": {d: int(sev[d]) for d in DEFECTS},
        "vegetation_coverage": veg_cov, "deformation_amplitude": float(amp),
        "face_angle_deg": float(math.degrees(face_angle)), "visible": visible,
        "lighting": float(gain), "blur": float(blur),
        "grade": grade_severities(sev, _table_cache(load_table)),
    }
    return Scene(img, labels)


_TABLE = None


def _table_cache(loader):
    global _TABLE
    if _TABLE is None:
        _TABLE = loader()
    return _TABLE


def encode_jpeg(img: np.ndarray, quality: int = 88) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def write_dataset(out_dir: Path | str, seeds, styles=None, size=None, upscale_to=None,
                  jpeg_quality: tuple[int, int] = (60, 95)) -> list[Path]:
    """Write ``<seed>.jpg`` and ``<seed>.json`` per seed. ``upscale_to`` (w, h) resizes the photo
    (e.g. to 4000×3000 = 12 MP) and scales the labels' coordinates with it."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed in seeds:
        rng = np.random.default_rng(seed + 7_777_777)
        style = None if styles is None else styles[int(rng.integers(len(styles)))]
        sc = generate(int(seed), style=style, size=size)
        img, lab = sc.image, sc.labels
        if upscale_to:
            f = upscale_to[0] / img.shape[1]
            img = cv2.resize(img, upscale_to, interpolation=cv2.INTER_LINEAR)
            # full-resolution sensor grain, so the file size and decode cost are those of a phone photo
            grain = rng.normal(0, 4, (upscale_to[1] // 2, upscale_to[0] // 2, 1)).astype(np.float32)
            grain = cv2.resize(grain, upscale_to, interpolation=cv2.INTER_NEAREST)[..., None]
            img = np.clip(img.astype(np.float32) + grain + rng.normal(0, 2.5, img.shape).astype(np.float32),
                          0, 255).astype(np.uint8)
            lab = scale_labels(lab, f)
        p = out / f"{seed:08d}.jpg"
        p.write_bytes(encode_jpeg(img, int(rng.integers(*jpeg_quality))))
        p.with_suffix(".json").write_text(json.dumps(lab, ensure_ascii=False), encoding="utf-8")
        paths.append(p)
    return paths


def scale_labels(lab: dict, f: float) -> dict:
    lab = json.loads(json.dumps(lab))
    lab["size"] = [int(round(v * f)) for v in lab["size"]]
    m = lab["mirror"]
    m["center"] = [v * f for v in m["center"]]
    m["axes"] = [v * f for v in m["axes"]]
    m["box"] = [v * f for v in m["box"]]
    m["radius"] *= f
    lab["pole"]["box"] = [v * f for v in lab["pole"]["box"]]
    return lab


__all__ = ["Scene", "generate", "write_dataset", "encode_jpeg", "sample_defects", "TRAIN_STYLES", "BASE_STYLES",
           "HELDOUT_STYLES", "CNN_DEFECTS"]
