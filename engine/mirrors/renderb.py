"""Renderer B: a second, independent curve-mirror scene renderer (ray-cast 3-D, dev only).

Written apart from :mod:`synth` / :mod:`scenery` (none of their drawing code is used), so a model that
learned their drawing style cannot pass on style alone. Every pixel is a ray from a pinhole camera
(field of view, height, pitch, roll) into a small 3-D world: a ground plane with a road, kerbs and a
pavement, building façades with windows, tree crowns (spheres), a utility pole, and the curve mirror
itself — a pole (a cylinder, possibly leaning), a bracket arm, and a round or square convex face (a
plane region whose normals bulge like a spherical cap) with its rim and hood. The face reflects the
same world (secondary rays). Sun direction, overcast/clear sky, exposure and white balance vary; then
lens artefacts: barrel distortion, vignetting, motion blur, sensor noise, an "HDR" local-contrast
look, JPEG (sometimes twice).

Defects are drawn in the members' own coordinates (cracks and dirt on the face plane, rust in the
pole's height × angle), and the label follows what is drawn (coverages are measured on the
rendered pixels).

Ground truth. The grade follows the inspection criteria of the issue and the rule table
(``resources/mirrors/grading.toml``), written down here before any model was run on these scenes:

* Ⅳ 緊急: the mirror face missing (鏡面欠落), the face shattered with shards gone (割れ 重度), or the
  pole leaning 15° or more (傾き 重度, 15–24°).
* Ⅲ 早期措置: cracks across the face (割れ 中度), heavy clouding (くもり 中度/重度), heavy pole rust
  (25–40 % of the visible pole), vegetation hiding 28–70 % of the face, a clear lean (8.5–11.5°).
* Ⅱ 予防保全: light dirt on the face (汚れ 中度, 25–35 % of the face), light haze (くもり 軽度),
  light pole rust (8–15 %), a branch over 11–19 % of the face, a small lean (4–6.5°).
* Ⅰ 健全: none of these (sound mirror, upright pole within 1.5°).

Each scene draws one main defect of its target grade (grades balanced by seed) and sometimes one
lesser one; the label's grade is then computed from the drawn severities by the rule table
(:func:`grading.grade_severities`); the tests check that it equals the target.
"""
from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .defects import DEFECTS, GRADES
from .rayworld import World, box_corners, cylinder, on_subset, trace_world, unit, value_noise

RENDERER = "B"
# Seeds: below DEV_SEEDS_END for development and tests; the cross-renderer benchmark uses
# BENCH_SEED and up, never looked at while writing this renderer.
DEV_SEEDS_END = 60_000_000
BENCH_SEED = 70_000_000

# Drawn value bands per (defect, severity): with gaps around the rule thresholds.
TILT_BANDS = {0: (0.0, 1.5), 1: (4.0, 6.5), 2: (8.5, 11.5), 3: (15.0, 24.0)}
VEG_BANDS = {1: (0.11, 0.19), 2: (0.28, 0.42), 3: (0.56, 0.70)}     # share of the face hidden
VEG_THRESHOLDS = (0.08, 0.25, 0.5)
RUST_BANDS = {1: (0.08, 0.15), 2: (0.25, 0.40)}                     # share of the visible pole
DIRT_BANDS = {2: (0.25, 0.35)}                                      # share of the face
CLOUD_ALPHA = {1: (0.28, 0.36), 2: (0.55, 0.65), 3: (0.75, 0.85)}

# What each grade's main defect may be (defect, severity) — the inspection criteria above.
GRADE_DEFECTS = {
    "Ⅱ": [("mirror.dirt", 2), ("mirror.clouding", 1), ("pole.rust", 1), ("pole.tilt", 1),
          ("view.vegetation", 1)],
    "Ⅲ": [("mirror.crack", 2), ("mirror.clouding", 2), ("mirror.clouding", 3), ("pole.rust", 2),
          ("view.vegetation", 2), ("view.vegetation", 3), ("pole.tilt", 2)],
    "Ⅳ": [("mirror.missing", 3), ("mirror.crack", 3), ("pole.tilt", 3)],
}
SIZES = [(1024, 768), (768, 1024), (800, 600), (960, 720)]   # rendered; write_dataset enlarges some


@dataclass
class Scene:
    image: np.ndarray          # H×W×3 uint8 RGB
    labels: dict


# ----------------------------------------------------------------------------- defect sampling

def sample_defects(rng: np.random.Generator, grade: str) -> dict[str, int]:
    """Severities for a scene of ``grade``: one main defect of that grade, sometimes one lesser."""
    sev = {d: 0 for d in DEFECTS}
    if grade == "Ⅰ":
        return sev
    key, s = GRADE_DEFECTS[grade][int(rng.integers(len(GRADE_DEFECTS[grade])))]
    sev[key] = s
    if grade != "Ⅱ" and rng.random() < 0.35:
        lesser = GRADE_DEFECTS["Ⅱ"] + (GRADE_DEFECTS["Ⅲ"] if grade == "Ⅳ" else [])
        k2, s2 = lesser[int(rng.integers(len(lesser)))]
        exclusive = {"mirror.missing", "mirror.crack", "mirror.clouding", "mirror.dirt"}
        if sev[k2] == 0 and not (k2 in exclusive and key in exclusive) and not (k2 == key):
            sev[k2] = s2
    return sev


# ----------------------------------------------------------------------------- the scene

def generate(seed: int, grade: str | None = None, size: tuple[int, int] | None = None,
             defects: dict[str, int] | None = None) -> Scene:
    """Render scene ``seed``. ``grade`` (default: by seed, balanced over consecutive seeds) picks the
    defects; ``defects`` overrides them (severities per defect key)."""
    from .grading import grade_severities, load_table
    rng = np.random.default_rng([seed, 0xB])
    drng = np.random.default_rng([seed, 0xD])     # defect drawing only: the scene stays the same without it
    grade = grade or GRADES[seed % 4]
    sev = {d: 0 for d in DEFECTS}
    if defects is not None:
        sev.update(defects)
    else:
        sev = sample_defects(np.random.default_rng([seed, 0x5]), grade)
    w, h = size or SIZES[int(rng.integers(len(SIZES)))]

    # --- camera and pole placement (metres)
    hfov = math.radians(rng.uniform(48, 72) if w >= h else rng.uniform(38, 55))
    f = (w / 2) / math.tan(hfov / 2)
    cam_h = rng.uniform(1.0, 1.8)
    pole_len = rng.uniform(2.6, 3.4)
    radius = rng.uniform(0.28, 0.45)
    vfov = 2 * math.atan((h / 2) / f)
    dist = rng.uniform(4.0, 8.0)
    while True:   # step back until the mirror top and the pole base both fit, with margins
        top = math.atan((pole_len + 1.2 * radius - cam_h) / dist)
        bot = math.atan(-cam_h / dist)
        if top - bot < 0.82 * vfov:
            break
        dist *= 1.1
    pitch = (top + bot) / 2 + rng.uniform(-0.05, 0.05) * (vfov - (top - bot))
    roll = math.radians(rng.uniform(-1.0, 1.0))
    pole_x = dist * math.tan(hfov / 2) * rng.uniform(-0.3, 0.3)
    world = World(rng, dist)

    cp, sp = math.cos(pitch), math.sin(pitch)
    fwd = np.array([0.0, cp, sp])
    right0 = np.array([1.0, 0.0, 0.0])
    up0 = np.cross(right0, fwd)
    right = math.cos(roll) * right0 + math.sin(roll) * up0
    up = -math.sin(roll) * right0 + math.cos(roll) * up0
    cam = np.array([0.0, 0.0, cam_h])

    # --- the mirror assembly
    tilt_deg = rng.uniform(*TILT_BANDS[sev["pole.tilt"]])
    lean_az = math.radians(rng.uniform(-20, 20))
    lean_dir = np.array([math.cos(lean_az), math.sin(lean_az), 0.0]) * rng.choice([-1, 1])
    t_rad = math.radians(tilt_deg)
    axis = math.cos(t_rad) * np.array([0, 0, 1.0]) + math.sin(t_rad) * lean_dir
    base = np.array([pole_x, dist, 0.0])
    pole_r = rng.uniform(0.035, 0.05)
    top_pt = base + pole_len * axis
    yaw = math.radians(rng.uniform(-35, 35))
    normal = np.array([math.sin(yaw), -math.cos(yaw), rng.uniform(-0.08, 0.12)])
    normal = normal / np.linalg.norm(normal)
    # face frame: e1 horizontal, e2 "up" in the face plane (the face leans with the pole)
    e1 = unit(np.cross(np.array([0, 0, 1.0]), normal) * -1)
    e2 = np.cross(normal, e1)
    if e2[2] < 0:
        e1, e2 = -e1, -e2
    # the face turns with the leaning pole about its normal
    lean_sign = float(np.sign(lean_dir @ e1) or 1.0)
    ang = -lean_sign * t_rad * abs(lean_dir @ e1)
    e1, e2 = math.cos(ang) * e1 + math.sin(ang) * e2, -math.sin(ang) * e1 + math.cos(ang) * e2
    center = top_pt + 0.1 * axis + 0.12 * normal
    shape = "round" if rng.random() < 0.7 else "square"
    curv = rng.uniform(2.5, 4.0) * radius
    rim_col = np.array([0.85, 0.3, 0.12]) * rng.uniform(0.8, 1.1) if rng.random() < 0.8 else np.array([0.9, 0.75, 0.15])
    pole_col = (np.array([0.62, 0.63, 0.64]) if rng.random() < 0.5 else
                np.array([0.9, 0.45, 0.12]) if rng.random() < 0.6 else np.array([0.85, 0.85, 0.82]))
    pole_col = pole_col * rng.uniform(0.85, 1.1)

    # --- primary rays
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    dirs = ((xs - w / 2 + 0.5)[..., None] * right + (h / 2 - ys - 0.5)[..., None] * up + f * fwd).reshape(-1, 3)
    dirs = unit(dirs.astype(np.float64))
    orig = np.broadcast_to(cam, dirs.shape)
    pix_x, pix_y = xs.ravel(), ys.ravel()
    n_rays = len(dirs)

    def cull(corners):
        """Camera rays whose pixel lies in the screen box of these 3-D corners (None: all rays)."""
        rel = corners - cam
        z = rel @ fwd
        if (z <= 0.05).any():
            return None
        px = w / 2 - 0.5 + f * (rel @ right) / z
        py = h / 2 - 0.5 - f * (rel @ up) / z
        x0, x1, y0, y1 = px.min() - 2, px.max() + 2, py.min() - 2, py.max() + 2
        return (pix_x >= x0) & (pix_x <= x1) & (pix_y >= y0) & (pix_y <= y1)

    img = trace_world(world, orig, dirs, cull)
    depth_world = np.full(len(dirs), np.inf)   # only the assembly's own depths below
    obj = np.zeros(len(dirs), np.uint8)        # 0 world, 1 pole, 2 face, 3 rim/hood, 4 bracket

    # pole (cylinder) with rust in (height, angle)
    tp, npole, hp = on_subset(cylinder, cull(box_corners(np.array([base, top_pt]), pole_r)), n_rays,
                               orig, dirs, base, axis, pole_r, pole_len)
    m = np.isfinite(tp)
    rust_cov = 0.0
    pole_px = np.flatnonzero(m)
    if m.any():
        pc = np.repeat(pole_col[None], m.sum(), 0)
        ref = unit(np.cross(axis, np.array([0, 0, 1.0])) + np.array([1e-3, 0, 0]))
        angle = np.arctan2(npole[m] @ np.cross(axis, ref), npole[m] @ ref)
        if sev["pole.rust"]:
            field = (value_noise(angle * 3, hp[m] * 6, 1.0, float(seed % 97))
                     + 0.6 * value_noise(angle * 9, hp[m] * 17, 1.0, float(seed % 89))
                     + 0.9 * (1 - hp[m] / pole_len) ** 2)       # worst at the base
            target = drng.uniform(*RUST_BANDS[sev["pole.rust"]])
            thr = np.quantile(field, 1 - target)
            rust = field >= thr
            rust_cov = float(rust.mean())
            tone = 0.75 + 0.25 * value_noise(angle * 20, hp[m] * 40, 1, 3.0)[rust]
            pc[rust] = np.array([0.45, 0.22, 0.08])[None] * tone[:, None]
        img[m] = pc * world.light(npole[m])[:, None]
        if not world.overcast:   # a specular streak along the sunlit side
            dm_ = dirs[m]
            refl = dm_ - 2 * np.einsum("ij,ij->i", dm_, npole[m])[:, None] * npole[m]
            img[m] += 0.25 * np.clip(refl @ world.sun, 0, 1)[:, None] ** 20
        depth_world[m] = tp[m]
        obj[m] = 1
    # bracket: a short horizontal arm from the pole top to the face's back
    arm_dir = center - 0.12 * normal - top_pt
    arm_len = float(np.linalg.norm(arm_dir))
    arm0 = top_pt - 0.05 * axis
    tb, nb, _ = on_subset(cylinder, cull(box_corners(np.array([arm0, arm0 + arm_dir * (1 + 0.05 / arm_len)]), 0.03)),
                           n_rays, orig, dirs, arm0, arm_dir / arm_len, 0.03, arm_len + 0.05)
    mb = np.isfinite(tb) & (tb < depth_world)
    img[mb] = np.array([0.55, 0.55, 0.55])[None] * world.light(nb[mb])[:, None]
    depth_world[mb] = tb[mb]
    obj[mb] = 4

    # face plane (face, rim, hood)
    dn = dirs @ normal
    with np.errstate(divide="ignore", invalid="ignore"):
        tf = ((center - cam) @ normal) / dn
    pf = cam + np.where(np.isfinite(tf), tf, 0)[:, None] * dirs - center
    u, v = (pf @ e1) / radius, (pf @ e2) / radius
    rr = np.hypot(u, v) if shape == "round" else np.maximum(np.abs(u), np.abs(v))
    front = (tf > 0) & (dn < 0) & (tf < depth_world)
    face = front & (rr <= 1.0)
    rim = front & (rr > 1.0) & (rr <= 1.07)
    hood = front & (rr > 1.07) & (rr <= 1.22) & (v > 0.25)
    shade = world.light(normal[None])[0]
    img[rim] = rim_col * shade
    img[hood] = rim_col * 0.8 * shade * (0.9 + 0.1 * v[hood, None])
    obj[rim | hood] = 3
    fi = np.flatnonzero(face)
    fu, fv = u[fi], v[fi]
    if len(fi):
        nrm = unit(normal[None] + ((fu * radius)[:, None] * e1 + (fv * radius)[:, None] * e2) / curv)
        dd = dirs[fi]
        refl = dd - 2 * np.einsum("ij,ij->i", dd, nrm)[:, None] * nrm
        po = cam + tf[fi, None] * dd
        fc = trace_world(world, po + 0.02 * normal, refl) * 0.9 + 0.04
        if sev["mirror.clouding"]:
            a = drng.uniform(*CLOUD_ALPHA[sev["mirror.clouding"]])
            haze = np.array([0.82, 0.82, 0.8]) * (0.92 + 0.08 * value_noise(fu * 3, fv * 3, 1, 5.0))[:, None]
            fc = fc.mean(1, keepdims=True) * 0.3 + fc * 0.7 if a > 0.5 else fc
            fc = (1 - a) * fc + a * haze
        if sev["mirror.dirt"]:
            field = value_noise(fu * 4, fv * 4, 1.0, float(seed % 31)) + 0.5 * value_noise(fu * 11, fv * 9, 1, 2.0) - 0.6 * fv
            target = drng.uniform(*DIRT_BANDS[sev["mirror.dirt"]])
            dirt = field >= np.quantile(field, 1 - target)
            fc[dirt] = fc[dirt] * 0.45 + np.array([0.42, 0.34, 0.22]) * 0.55
        if sev["mirror.crack"] or sev["mirror.missing"]:
            backing = np.array([0.16, 0.16, 0.17]) * (0.9 + 0.1 * value_noise(fu * 30, fv * 30, 1, 7.0))[:, None]
            if sev["mirror.missing"]:
                fc = np.repeat(backing, 1, 0) * np.ones((1, 3))
                bolts = np.zeros(len(fu), bool)
                for k in range(4):
                    bx, by = 0.45 * math.cos(k * math.pi / 2 + 0.4), 0.45 * math.sin(k * math.pi / 2 + 0.4)
                    bolts |= np.hypot(fu - bx, fv - by) < 0.05
                fc[bolts] = 0.55
                if drng.random() < 0.5:   # a few shards left at the rim
                    ang = np.arctan2(fv, fu)
                    a0 = drng.uniform(-math.pi, math.pi)
                    shard = (np.hypot(fu, fv) > 0.8) & (np.abs(np.angle(np.exp(1j * (ang - a0)))) < 0.4)
                    fc[shard] = 0.6
            else:
                cx, cy = drng.uniform(-0.4, 0.4), drng.uniform(-0.4, 0.4)
                n_cr = int(drng.integers(3, 6)) if sev["mirror.crack"] == 2 else int(drng.integers(9, 15))
                crack = np.zeros(len(fu), bool)
                for _ in range(n_cr):
                    a0 = drng.uniform(0, 2 * math.pi)
                    px, py = cx, cy
                    for _ in range(int(drng.integers(3, 7))):
                        a0 += drng.uniform(-0.5, 0.5)
                        step = drng.uniform(0.15, 0.35)
                        qx, qy = px + step * math.cos(a0), py + step * math.sin(a0)
                        sx, sy = qx - px, qy - py
                        tt = np.clip(((fu - px) * sx + (fv - py) * sy) / (sx * sx + sy * sy), 0, 1)
                        crack |= np.hypot(fu - px - tt * sx, fv - py - tt * sy) < 0.012
                        px, py = qx, qy
                fc[crack] = np.where(drng.random() < 0.5, 0.92, 0.1)
                if sev["mirror.crack"] == 3:   # shattered: shards gone around the impact
                    ang = np.arctan2(fv - cy, fu - cx)
                    gone = np.zeros(len(fu), bool)
                    for _ in range(int(drng.integers(3, 6))):
                        a0 = drng.uniform(-math.pi, math.pi)
                        gone |= (np.abs(np.angle(np.exp(1j * (ang - a0)))) < drng.uniform(0.3, 0.6)) & (
                            np.hypot(fu - cx, fv - cy) < drng.uniform(0.6, 1.3))
                    fc[gone] = backing[gone]
        img[fi] = fc
        obj[fi] = 2
    img = img.reshape(h, w, 3)
    face_mask = (obj == 2).reshape(h, w)
    pole_mask = (obj == 1).reshape(h, w)

    # --- vegetation in front of the face (image space, leaves from one side)
    veg_cov = 0.0
    if sev["view.vegetation"] and face_mask.any():
        target = drng.uniform(*VEG_BANDS[sev["view.vegetation"]])
        yy, xx = np.nonzero(face_mask)
        x0, x1, y0, y1 = xx.min(), xx.max(), yy.min(), yy.max()
        rad = max(x1 - x0, y1 - y0) / 2
        side = drng.uniform(0, 2 * math.pi)
        leafmask = Image.new("L", (w, h), 0)
        leafcol = Image.new("RGB", (w, h))
        dm, dc = ImageDraw.Draw(leafmask), ImageDraw.Draw(leafcol)
        reach = 1.3
        for _ in range(300):
            for _ in range(4):
                px = (x0 + x1) / 2 + rad * (math.cos(side) * reach + drng.normal(0, 0.45))
                py = (y0 + y1) / 2 + rad * (math.sin(side) * reach + drng.normal(0, 0.45))
                lr = rad * drng.uniform(0.05, 0.11)
                la = drng.uniform(0, math.pi)
                pts = [(px + lr * math.cos(la + k * math.pi / 4) * (1 if k % 4 in (0, 2) else 0.45) * (1 if k % 2 == 0 else 0.9),
                        py + lr * math.sin(la + k * math.pi / 4) * (1 if k % 4 in (0, 2) else 0.45))
                       for k in range(8)]
                g = drng.uniform(0.25, 0.6)
                dm.polygon(pts, fill=255)
                dc.polygon(pts, fill=(int(255 * g * 0.45), int(255 * g), int(255 * g * 0.3)))
            cov = float((np.asarray(leafmask)[face_mask] > 0).mean())
            if cov >= target:
                break
            reach = max(0.0, reach - 0.01)
        lm = np.asarray(leafmask) > 0
        img[lm] = np.asarray(leafcol, np.float64)[lm] / 255 * world.light(np.array([[0, -1.0, 0.3]]))[0]
        veg_cov = float(lm[face_mask].mean())
        sev["view.vegetation"] = int(sum(veg_cov >= t for t in VEG_THRESHOLDS))

    # --- camera: exposure, white balance, lens, blur, noise, HDR look, JPEG
    gain = rng.uniform(0.75, 1.2)
    wb = 1 + rng.uniform(-0.07, 0.07, 3)
    img = np.clip(img * gain * wb, 0, 1.2)
    img = img / (1 + 0.25 * img)             # soft highlight roll-off (a tone curve, not a clip)
    img = np.clip(img * rng.uniform(1.05, 1.2), 0, 1)   # fixed exposure (no auto-levels on the whole frame)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    nx, ny = (xx - w / 2) / (w / 2), (yy - h / 2) / (w / 2)
    r2 = nx * nx + ny * ny
    img = img * (1 - rng.uniform(0.05, 0.3) * r2 / r2.max())[..., None]
    k1 = rng.uniform(-0.07, 0.01)
    if abs(k1) > 0.005:   # barrel distortion: sample the undistorted image at r (1 + k1 r²)
        sx = np.clip(w / 2 + nx * (1 + k1 * r2) * (w / 2), 0, w - 1).astype(np.int32)
        sy = np.clip(h / 2 + ny * (1 + k1 * r2) * (w / 2), 0, h - 1).astype(np.int32)
        img = img[sy, sx]
    out = Image.fromarray((img * 255).astype(np.uint8))
    blur = 0.0
    if rng.random() < 0.3:   # hand shake: a short straight smear
        blur = rng.uniform(1, 4) * w / 1000
        ang = rng.uniform(0, math.pi)
        arr = np.asarray(out, np.float32)
        acc = np.zeros_like(arr)
        n = max(2, int(round(blur * 2)))
        for k in range(n):
            off = (k - (n - 1) / 2) * blur / n * 2
            acc += np.roll(arr, (int(round(off * math.sin(ang))), int(round(off * math.cos(ang)))), (0, 1))
        out = Image.fromarray(np.clip(acc / n, 0, 255).astype(np.uint8))
    else:
        out = out.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.9)))
    if rng.random() < 0.3:   # phone "HDR": strong local contrast
        out = out.filter(ImageFilter.UnsharpMask(radius=int(w / 40), percent=int(rng.uniform(40, 90)), threshold=2))
    arr = np.asarray(out, np.float32)
    arr = arr + rng.normal(0, rng.uniform(1.0, 4.5), (h, w, 1)) + rng.normal(0, 1.5, arr.shape)
    out_img = np.clip(arr, 0, 255).astype(np.uint8)

    ys_f, xs_f = np.nonzero(face_mask | (obj.reshape(h, w) == 3))
    ys_p, xs_p = np.nonzero(pole_mask)
    truth = grade_severities(sev, load_table())
    labels = {
        "seed": int(seed), "renderer": RENDERER, "size": [w, h], "target_grade": grade,
        "defects": {d: int(sev[d]) for d in DEFECTS}, "grade": truth,
        "mirror": {"shape": shape, "radius_m": round(radius, 3),
                   "box": [float(xs_f.min()), float(ys_f.min()), float(xs_f.max()), float(ys_f.max())] if len(xs_f) else None,
                   "yaw_deg": round(math.degrees(yaw), 1)},
        "pole": {"tilt_deg": round(tilt_deg, 2), "lean_azimuth_deg": round(math.degrees(lean_az), 1),
                 "box": [float(xs_p.min()), float(ys_p.min()), float(xs_p.max()), float(ys_p.max())] if len(xs_p) else None},
        "camera": {"height_m": round(cam_h, 2), "distance_m": round(dist, 2), "hfov_deg": round(math.degrees(hfov), 1),
                   "pitch_deg": round(math.degrees(pitch), 1), "roll_deg": round(math.degrees(roll), 2),
                   "distortion_k1": round(k1, 3), "blur_px": round(blur, 2), "gain": round(gain, 2)},
        "vegetation_coverage": round(veg_cov, 3), "pole_rust_coverage": round(rust_cov, 3),
        "overcast": world.overcast, "face_px": int(face_mask.sum()), "pole_px": int(len(pole_px)),
    }
    return Scene(out_img, labels)


def encode_jpeg(img: np.ndarray, rng: np.random.Generator) -> bytes:
    """JPEG at a phone-like quality, sometimes re-compressed (shared by a chat app)."""
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=int(rng.integers(70, 96)))
    if rng.random() < 0.25:
        again = io.BytesIO()
        Image.open(io.BytesIO(buf.getvalue())).save(again, "JPEG", quality=int(rng.integers(55, 80)))
        buf = again
    return buf.getvalue()


def write_dataset(out_dir: Path | str, seeds, size: tuple[int, int] | None = None,
                  upscale_to: tuple[int, int] | None = None) -> list[Path]:
    """``<seed>.jpg`` + ``<seed>.json`` per seed. ``upscale_to`` (w, h): rendered at ``size`` and
    resized with sensor grain to that size (a 12-MP phone photo is 4000×3000)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed in seeds:
        sc = generate(int(seed), size=size)
        img, lab = sc.image, sc.labels
        rng = np.random.default_rng([int(seed), 0xB1])
        target = upscale_to
        if not target and size is None and rng.random() < 0.35:   # a higher-resolution phone
            k = (1.25, 1.5625)[int(rng.integers(2))]
            target = (round(img.shape[1] * k), round(img.shape[0] * k))
        if target:
            img = np.asarray(Image.fromarray(img).resize(target, Image.BICUBIC), np.float32)
            img = np.clip(img + rng.normal(0, 3.0, img.shape[:2] + (1,)), 0, 255).astype(np.uint8)
            fct = target[0] / lab["size"][0]
            lab["size"] = list(target)
            for part in ("mirror", "pole"):
                if lab[part]["box"]:
                    lab[part]["box"] = [v * fct for v in lab[part]["box"]]
        p = out / f"B{seed:08d}.jpg"
        p.write_bytes(encode_jpeg(img, rng))
        p.with_suffix(".json").write_text(json.dumps(lab, ensure_ascii=False), encoding="utf-8")
        paths.append(p)
    return paths


__all__ = ["Scene", "generate", "write_dataset", "sample_defects", "GRADE_DEFECTS", "BENCH_SEED", "DEV_SEEDS_END"]
