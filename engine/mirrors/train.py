"""Training the defect CNN (torch, development/office-PC only) and exporting it to ONNX.

* :func:`train_synthetic` — scenes from :mod:`synth` (training styles only; the benchmark's
  styles and seeds are never used here), localised by the same :mod:`geometry` code as at run
  time, cropped by :func:`model.crops`, one head per defect (4 severity classes) + a grade head.
* :func:`train_from_ledger` — fine-tunes on the office's own photos: inspector-confirmed grades
  become grade labels; where the inspector confirmed the AI grade unchanged, the AI's findings
  become defect labels too (an override only teaches the grade head). Synthetic samples are mixed in
  so the model does not forget. The result goes to ``<data>/mirrors/`` and is used from then on.

The exported model is small (~0.3 MB) and runs with onnxruntime; torch is not needed at run time.
"""
from __future__ import annotations

import datetime
import json
import logging
import multiprocessing as mp
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import geometry as geo
from . import synth
from .defects import CNN_DEFECTS, GRADES
from .model import META_FILE, MODEL_FILE, MIRROR_SIZE, POLE_SIZE, crops, resources_dir

log = logging.getLogger(__name__)

TRAIN_SEED_BASE = 1_000_000      # training scenes use seeds from here; the benchmark uses ≥ 50,000,000
VAL_SEED_BASE = 2_000_000
CLASS_WEIGHTS = torch.tensor([1.0, 3.0, 3.0, 3.0])


# ------------------------------------------------------------------ network

def _block(cin, cout, stride=1):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Trunk(nn.Module):
    def __init__(self, width=(16, 32, 48, 64)):
        super().__init__()
        a, b, c, d = width
        self.body = nn.Sequential(_block(3, a, 2), nn.MaxPool2d(2), _block(a, b), nn.MaxPool2d(2), _block(b, c),
                                  nn.MaxPool2d(2), _block(c, d))
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
        feat = self.mirror.out + self.pole.out
        self.fc = nn.Sequential(nn.Linear(feat, 128), nn.ReLU(inplace=True), nn.Dropout(0.1))
        self.heads = nn.Linear(128, n_heads * 4)
        self.grade = nn.Linear(128, 4)

    def forward(self, mirror, pole):
        h = self.fc(torch.cat([self.mirror(mirror), self.pole(pole)], 1))
        return self.heads(h), self.grade(h)


# ------------------------------------------------------------------ data

def _sample(args):
    seed, styles = args
    rng = np.random.default_rng(seed)
    style = styles[int(rng.integers(len(styles)))]
    size = [(800, 600), (600, 800), (640, 480), (480, 640), (640, 480)][int(rng.integers(5))]
    sc = synth.generate(seed, style=style, size=size)
    img = sc.image
    if rng.random() < 0.7:   # the camera's JPEG
        import cv2
        q = int(rng.integers(55, 95))
        ok, buf = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, q])
        img = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
    g = geo.analyse(np.ascontiguousarray(img))
    if not g.faces:
        return None
    m, p = crops(g)
    y = np.array([sc.labels["defects"][k] for k in CNN_DEFECTS], np.int8)
    return m, p, y, GRADES.index(sc.labels["grade"])


def make_dataset(seeds, styles=None, processes: int = 2) -> dict[str, np.ndarray]:
    styles = styles or synth.TRAIN_STYLES
    jobs = [(int(s), styles) for s in seeds]
    if processes > 1:
        with mp.get_context("fork").Pool(processes) as pool:
            out = pool.map(_sample, jobs, chunksize=16)
    else:
        out = [_sample(j) for j in jobs]
    out = [o for o in out if o is not None]
    return {"mirror": np.stack([o[0] for o in out]), "pole": np.stack([o[1] for o in out]),
            "y": np.stack([o[2] for o in out]).astype(np.int64), "grade": np.array([o[3] for o in out], np.int64)}


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


def load_chunks(cache_dir: Path | str) -> dict[str, np.ndarray]:
    parts = [dict(np.load(p)) for p in sorted(Path(cache_dir).glob("chunk_*.npz")) if ".tmp" not in p.name]
    return {k: np.concatenate([d[k] for d in parts]) for k in parts[0]}


def _tensors(ds, idx, augment, rng):
    m = torch.from_numpy(ds["mirror"][idx]).permute(0, 3, 1, 2).float() / 255
    p = torch.from_numpy(ds["pole"][idx]).permute(0, 3, 1, 2).float() / 255
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
    return m, p, torch.from_numpy(ds["y"][idx]), torch.from_numpy(ds["grade"][idx])


def evaluate(net, ds) -> dict:
    net.eval()
    n = len(ds["y"])
    preds, gpred = [], []
    with torch.no_grad():
        for i in range(0, n, 256):
            idx = np.arange(i, min(n, i + 256))
            m, p, _, _ = _tensors(ds, idx, False, None)
            lg, gr = net(m, p)
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


def fit(ds, val=None, minutes: float = 12.0, epochs: int = 30, seed: int = 1, net: MirrorNet | None = None,
        lr: float = 3e-3, threads: int | None = 1) -> tuple[MirrorNet, dict]:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    if threads:
        torch.set_num_threads(threads)
    net = net or MirrorNet()
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    n = len(ds["y"])
    bs = 64
    steps_per_epoch = max(1, n // bs)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch)
    t0 = time.time()
    done_epochs = 0
    for ep in range(epochs):
        net.train()
        perm = rng.permutation(n)
        tot = 0.0
        for s in range(steps_per_epoch):
            idx = np.sort(perm[s * bs:(s + 1) * bs])
            m, p, y, g = _tensors(ds, idx, True, rng)
            lg, gr = net(m, p)
            # defects are rare (each ~7 % of scenes): weight the damaged classes so recall is not traded away
            loss = F.cross_entropy(lg.view(-1, 4), y.view(-1), weight=CLASS_WEIGHTS, ignore_index=-1) \
                * len(CNN_DEFECTS) / 4
            if (g >= 0).any():
                loss = loss + F.cross_entropy(gr, g, ignore_index=-1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot += float(loss.detach())
        done_epochs = ep + 1
        log.info("epoch %d loss %.3f (%.0f s)", ep + 1, tot / steps_per_epoch, time.time() - t0)
        print(f"epoch {ep + 1}/{epochs} loss {tot / steps_per_epoch:.3f} ({time.time() - t0:.0f} s)", flush=True)
        if time.time() - t0 > minutes * 60:
            break
    info = {"epochs": done_epochs, "train_seconds": round(time.time() - t0, 1), "train_samples": int(n)}
    if val is not None:
        info["validation"] = evaluate(net, val)
    return net, info


def export(net: MirrorNet, out_dir: Path, meta: dict) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    net.eval()
    m = torch.zeros(1, 3, MIRROR_SIZE, MIRROR_SIZE)
    p = torch.zeros(1, 3, POLE_SIZE[1], POLE_SIZE[0])
    path = out_dir / MODEL_FILE
    tmp = path.with_suffix(".onnx.tmp")
    kw = {}
    try:
        import inspect
        if "dynamo" in inspect.signature(torch.onnx.export).parameters:
            kw["dynamo"] = False
    except (TypeError, ValueError):
        pass
    torch.onnx.export(net, (m, p), str(tmp), input_names=["mirror", "pole"], output_names=["logits", "grade"],
                      dynamic_axes={"mirror": {0: "n"}, "pole": {0: "n"}, "logits": {0: "n"}, "grade": {0: "n"}},
                      opset_version=17, **kw)
    os.replace(tmp, path)
    meta = dict(meta, heads=CNN_DEFECTS, inputs={"mirror": [3, MIRROR_SIZE, MIRROR_SIZE],
                                                   "pole": [3, POLE_SIZE[1], POLE_SIZE[0]]})
    path.with_suffix(".json").write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")
    return path


def train_synthetic(samples: int = 6000, minutes: float = 12.0, seed: int = 1, out_dir: Path | None = None,
                    cache: Path | None = None, val_samples: int = 400, epochs: int = 24) -> Path:
    """Generate (or reuse, from ``cache``) the synthetic set, train, export ONNX + metadata + weights."""
    import tempfile
    cache = Path(cache) if cache else Path(tempfile.gettempdir()) / "madoguchi-mirrors-train"
    t0 = time.time()
    generate_chunks(cache / "val", VAL_SEED_BASE, val_samples)
    generate_chunks(cache / "train", TRAIN_SEED_BASE + seed * 100_000, samples)
    return train_on_chunks(cache / "train", cache / "val", out_dir or resources_dir(), seed=seed, epochs=epochs,
                           minutes=minutes, generation_seconds=time.time() - t0)


def train_on_chunks(train_dir: Path, val_dir: Path, out_dir: Path, seed: int = 1, epochs: int = 24,
                    minutes: float = 12.0, generation_seconds: float | None = None) -> Path:
    ds, val = load_chunks(train_dir), load_chunks(val_dir)
    print(f"dataset: {len(ds['y'])} train / {len(val['y'])} validation samples", flush=True)
    net, info = fit(ds, val, minutes=minutes, epochs=epochs, seed=seed)
    meta = {"version": f"synthetic-{datetime.date.today().isoformat()}-s{seed}",
            "trained_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "training": "synthetic", "seed": seed,
            "train_seed_range": [TRAIN_SEED_BASE + seed * 100_000, "see chunk files"],
            "validation_seeds_from": VAL_SEED_BASE, "styles": synth.TRAIN_STYLES,
            "generation_seconds": round(generation_seconds, 1) if generation_seconds else None,
            "torch": torch.__version__, **info}
    path = export(net, out_dir, meta)
    torch.save(net.state_dict(), path.with_suffix(".pt"))
    return path


def ledger_dataset(ctx) -> dict[str, np.ndarray]:
    """Crops + labels from ledger inspections that have a confirmed grade."""
    from .intake import PhotoError, load_photo
    rows = ctx.store.query("SELECT photo_path, ai_grade, confirmed_grade, findings FROM mirror_inspections "
                           "WHERE confirmed_grade IS NOT NULL")
    ms, ps, ys, gs = [], [], [], []
    for r in rows:
        try:
            ph = load_photo(r["photo_path"])
        except PhotoError:
            continue
        g = geo.analyse(ph.rgb)
        if not g.faces:
            continue
        m, p = crops(g)
        y = np.full(len(CNN_DEFECTS), -1, np.int64)
        if r["confirmed_grade"] == r["ai_grade"]:
            y[:] = 0
            for f in json.loads(r["findings"] or "[]"):
                k = f"{f['member']}.{f['defect']}"
                if k in CNN_DEFECTS and not f.get("possible"):
                    y[CNN_DEFECTS.index(k)] = int(f["severity"])
        ms.append(m)
        ps.append(p)
        ys.append(y)
        gs.append(GRADES.index(r["confirmed_grade"]))
    if not ms:
        return {}
    return {"mirror": np.stack(ms), "pole": np.stack(ps), "y": np.stack(ys), "grade": np.array(gs, np.int64)}


def train_from_ledger(ctx, minutes: float = 10.0, seed: int = 1, synthetic_mix: int = 1500,
                      min_photos: int = 20, epochs: int = 8) -> Path:
    from ..errors import MadoguchiError
    from .model import default_model_path
    office = ledger_dataset(ctx)
    n = len(office.get("y", []))
    if n < min_photos:
        raise MadoguchiError(f"only {n} inspections with a confirmed grade and a readable photo; need {min_photos}",
                             ja=f"確定済みの点検が{n}件しかありません。{min_photos}件以上確定してから学習してください。")
    base = default_model_path(ctx.data_dir)
    net = MirrorNet()
    meta_base = {}
    pt = base.with_suffix(".pt")
    if pt.is_file():
        net.load_state_dict(torch.load(pt, weights_only=True))
        meta_base = json.loads(base.with_suffix(".json").read_text(encoding="utf-8"))
    syn = make_dataset(range(TRAIN_SEED_BASE + 900_000, TRAIN_SEED_BASE + 900_000 + synthetic_mix))
    reps = max(1, len(syn["y"]) // max(1, n))
    ds = {k: np.concatenate([syn[k]] + [office[k]] * min(reps, 4)) for k in syn}
    net, info = fit(ds, None, minutes=minutes, epochs=epochs, seed=seed, net=net, lr=1e-3)
    info["office_validation_on_training_photos"] = evaluate(net, office)
    out = Path(ctx.data_dir) / "mirrors"
    meta = {"version": f"office-{datetime.date.today().isoformat()}-s{seed}",
            "trained_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "training": "ledger", "base_model": meta_base.get("version"), "office_photos": n, "seed": seed,
            "synthetic_mix": int(len(syn["y"])), "torch": torch.__version__, **info}
    path = export(net, out, meta)
    torch.save(net.state_dict(), path.with_suffix(".pt"))
    from .model import _cache
    _cache.pop(str(path.resolve()), None)
    return path


def save_weights(net: MirrorNet, onnx_path: Path) -> None:
    torch.save(net.state_dict(), Path(onnx_path).with_suffix(".pt"))
