"""The defect CNN (torch) and what it learns from: the network (a shared trunk, one head per
defect with 4 severity classes, a grade head), synthetic scenes from :mod:`synth` turned into
crops + measurements + labels (in memory or as cached chunks on disk), camera augmentation, and
the evaluation and validation loss that training watches. Training itself is :mod:`train`.
Development/office-PC only: the shipped model runs with onnxruntime, without torch.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import geometry as geo
from . import synth
from .defects import CNN_DEFECTS, GRADES
from .model import N_MEASURES, crops, measure_vector

TRAIN_SEED_BASE = 1_000_000      # training scenes use seeds from here; the benchmark uses ≥ 50,000,000
VAL_SEED_BASE = 2_000_000
# Severity classes are rare (each defect is present in ~7 % of scenes) and the severe class costs
# most when missed (it is the one that makes a Ⅳ): weight the damaged classes, severe most.
CLASS_WEIGHTS = torch.tensor([1.0, 3.0, 3.0, 4.0])
GRADE_WEIGHTS = torch.tensor([1.0, 1.2, 1.2, 2.0])


# ------------------------------------------------------------------ network

def _block(cin, cout, stride=1):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Trunk(nn.Module):
    def __init__(self, width=(16, 32, 48, 64)):
        super().__init__()
        a, b, c, d = width
        self.body = nn.Sequential(_block(3, a, 2), nn.MaxPool2d(2), _block(a, b), nn.MaxPool2d(2), _block(b, c),
                                  _block(c, c), nn.MaxPool2d(2), _block(c, d))
        self.out = 2 * d

    def forward(self, x):
        x = self.body(x)
        return torch.cat([x.mean((2, 3)), x.amax((2, 3))], 1)


class MirrorNet(nn.Module):
    def __init__(self, n_heads=len(CNN_DEFECTS)):
        super().__init__()
        self.n_heads = n_heads
        self.mirror = Trunk()
        self.pole = Trunk()
        feat = self.mirror.out + self.pole.out + N_MEASURES
        self.fc = nn.Sequential(nn.Linear(feat, 160), nn.ReLU(inplace=True), nn.Dropout(0.1))
        self.heads = nn.Linear(160, n_heads * 4)
        self.grade = nn.Linear(160, 4)

    def forward(self, mirror, pole, measures):
        h = self.fc(torch.cat([self.mirror(mirror), self.pole(pole), measures], 1))
        return self.heads(h), self.grade(h)


# ------------------------------------------------------------------ data

def camera_augment(img: np.ndarray, rng) -> np.ndarray:
    """What differs between cameras and days more than the generator's own lighting does: colour
    temperature, gamma, saturation, contrast, resolution loss and JPEG quality (training only)."""
    import cv2
    x = img.astype(np.float32) / 255
    if rng.random() < 0.8:
        warm = rng.uniform(-0.12, 0.12)
        x = x * np.array([1 + warm, 1 + rng.uniform(-0.04, 0.04), 1 - warm], np.float32)
    if rng.random() < 0.6:
        x = np.clip(x, 0, 1) ** rng.uniform(0.7, 1.4)
    if rng.random() < 0.5:
        grey = x.mean(2, keepdims=True)
        x = grey + (x - grey) * rng.uniform(0.6, 1.4)
    if rng.random() < 0.4:
        x = (x - 0.5) * rng.uniform(0.75, 1.2) + 0.5 + rng.uniform(-0.06, 0.06)
    out = (np.clip(x, 0, 1) * 255).astype(np.uint8)
    h, w = out.shape[:2]
    if rng.random() < 0.25:   # a softer lens / digital zoom
        f = rng.uniform(0.55, 0.85)
        out = cv2.resize(cv2.resize(out, (int(w * f), int(h * f)), interpolation=cv2.INTER_AREA), (w, h),
                         interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.9:   # the camera's JPEG
        q = int(rng.integers(40, 96))
        ok, buf = cv2.imencode(".jpg", out[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, q])
        out = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
    return np.ascontiguousarray(out)


def _sample(args):
    seed, styles = args
    rng = np.random.default_rng(seed)
    style = styles[int(rng.integers(len(styles)))]
    size = [(1024, 768), (768, 1024), (1024, 768), (800, 600), (600, 800)][int(rng.integers(5))]
    sc = synth.generate(seed, style=style, size=size)
    img = camera_augment(sc.image, rng)
    g = geo.analyse(img)
    if not g.faces:
        return None
    m, p = crops(g)
    y = np.array([sc.labels["defects"][k] for k in CNN_DEFECTS], np.int8)
    f = g.face
    off = geo.mirror_offset_pct(f, g.pole)
    meas = np.array([f.deformation_pct, float(f.method == "hole"), abs(g.pole.tilt_deg) if g.pole else -1,
                     g.pole.bend_pct if g.pole else -1, sc.labels["defects"]["pole.tilt"],
                     -1 if off is None else off], np.float32)
    return m, p, y, GRADES.index(sc.labels["grade"]), meas


def make_dataset(seeds, styles=None, processes: int = 2) -> dict[str, np.ndarray]:
    styles = styles or synth.TRAIN_STYLES
    jobs = [(int(s), styles) for s in seeds]
    if processes > 1:
        with mp.get_context("fork").Pool(processes) as pool:
            out = pool.map(_sample, jobs, chunksize=16)
    else:
        out = [_sample(j) for j in jobs]
    out = [o for o in out if o is not None]
    # "measures": the geometry's deformation %, hole-fit flag, |tilt|°, pole bend %, the true tilt
    # severity (for calibrating the measured defects on the validation split) and the mirror's offset
    # from the pole's axis % (-1: no pole; chunks written before it have 5 columns)
    return {"mirror": np.stack([o[0] for o in out]), "pole": np.stack([o[1] for o in out]),
            "y": np.stack([o[2] for o in out]).astype(np.int64), "grade": np.array([o[3] for o in out], np.int64),
            "measures": np.stack([o[4] for o in out])}


def generate_chunks(cache_dir: Path | str, start: int, count: int, chunk: int = 200, processes: int = 2,
                    styles=None) -> list[Path]:
    """Write the dataset as ``chunk_<first seed>.npz`` files (resumable; training can start on the
    chunks written so far)."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for a in range(start, start + count, chunk):
        p = cache_dir / f"chunk_{a}.npz"
        if not p.is_file():
            ds = make_dataset(range(a, min(start + count, a + chunk)), styles, processes)
            tmp = p.with_suffix(".tmp.npz")
            np.savez(tmp, **ds)
            os.replace(tmp, p)
            print(f"chunk {p.name}: {len(ds['y'])} samples", flush=True)
        out.append(p)
    return out


def _chunk_seed_range(cache_dir: Path | str) -> list[int]:
    """[first seed, last seed + 1] of the chunk files (each ``chunk_<first seed>.npz`` of ≤ 200 seeds)."""
    firsts = sorted(int(p.stem.split("_")[1]) for p in Path(cache_dir).glob("chunk_*.npz") if ".tmp" not in p.name)
    return [firsts[0], firsts[-1] + 200] if firsts else []


def load_chunks(cache_dir: Path | str) -> dict[str, np.ndarray]:
    parts = [dict(np.load(p)) for p in sorted(Path(cache_dir).glob("chunk_*.npz")) if ".tmp" not in p.name]
    # older chunks have fewer measure columns: pad with -1 (= not measured)
    width = max(d["measures"].shape[1] for d in parts) if "measures" in parts[0] else 0
    for d in parts:
        if "measures" in d and d["measures"].shape[1] < width:
            m = d["measures"]
            d["measures"] = np.concatenate([m, np.full((len(m), width - m.shape[1]), -1, m.dtype)], 1)
    return {k: np.concatenate([d[k] for d in parts]) for k in parts[0]}


def _measure_inputs(ds, idx) -> torch.Tensor:
    """The network's geometry input from the stored measures (see :func:`model.measure_vector`)."""
    if "measures" not in ds:
        return torch.zeros(len(idx), N_MEASURES)
    me = ds["measures"][idx]
    return torch.from_numpy(np.stack([measure_vector(d, bool(h), t if t >= 0 else None, b if b >= 0 else None)
                                      for d, h, t, b in me[:, :4]]).astype(np.float32))


def _tensors(ds, idx, augment, rng):
    m = torch.from_numpy(ds["mirror"][idx]).permute(0, 3, 1, 2).float() / 255
    p = torch.from_numpy(ds["pole"][idx]).permute(0, 3, 1, 2).float() / 255
    me = _measure_inputs(ds, idx)
    if augment:
        flip = torch.from_numpy(rng.random(len(idx)) < 0.5)
        m[flip] = m[flip].flip(3)
        p[flip] = p[flip].flip(3)
        # brightness and colour cast per sample (scene styles and cameras differ more than the
        # generator's training styles do)
        gain = rng.uniform(0.75, 1.25, (len(idx), 1, 1, 1)) * rng.uniform(0.88, 1.12, (len(idx), 3, 1, 1))
        gain = torch.from_numpy(gain.astype(np.float32))
        m = (m * gain).clamp(0, 1)
        p = (p * gain).clamp(0, 1)
    return m, p, me, torch.from_numpy(ds["y"][idx]), torch.from_numpy(ds["grade"][idx])


def evaluate(net, ds) -> dict:
    net.eval()
    n = len(ds["y"])
    preds, gpred = [], []
    with torch.no_grad():
        for i in range(0, n, 256):
            idx = np.arange(i, min(n, i + 256))
            m, p, me, _, _ = _tensors(ds, idx, False, None)
            lg, gr = net(m, p, me)
            preds.append(lg.view(len(idx), -1, 4).argmax(-1).numpy())
            gpred.append(gr.argmax(-1).numpy())
    pr, gp = np.concatenate(preds), np.concatenate(gpred)
    y = ds["y"]
    per = {}
    for j, k in enumerate(CNN_DEFECTS):
        valid = y[:, j] >= 0
        t, q = y[valid, j] > 0, pr[valid, j] > 0
        per[k] = {"precision": float((t & q).sum() / max(1, q.sum())), "recall": float((t & q).sum() / max(1, t.sum())),
                  "severity_exact": float((y[valid, j] == pr[valid, j]).mean())}
    valid = ds["grade"] >= 0
    return {"samples": int(n), "grade_head_exact": float((gp[valid] == ds["grade"][valid]).mean()), "defects": per}


def validation_loss(net, val) -> float:
    """The training loss (unweighted) on the validation split: what early stopping watches."""
    net.eval()
    n, tot = len(val["y"]), 0.0
    with torch.no_grad():
        for i in range(0, n, 256):
            idx = np.arange(i, min(n, i + 256))
            m, p, me, y, g = _tensors(val, idx, False, None)
            lg, gr = net(m, p, me)
            tot += float(F.cross_entropy(lg.view(-1, 4), y.view(-1), ignore_index=-1, reduction="sum")) / len(CNN_DEFECTS)
            tot += float(F.cross_entropy(gr, g, ignore_index=-1, reduction="sum"))
    return tot / max(1, n)


