"""Training the defect CNN (torch, development/office-PC only) and exporting it to ONNX.

* :func:`train_synthetic` — scenes from :mod:`synth` (training styles only; the benchmark's
  styles and seeds are never used here), localised by the same :mod:`geometry` code as at run
  time, cropped by :func:`model.crops` from the photo itself, plus the geometry's measurements
  (deformation, tilt, pole bend) as a third input; one head per defect (4 severity classes) + a
  grade head. Training scenes get camera augmentation (colour temperature, gamma, saturation,
  softness, JPEG quality 40–95) on top of the generator's own lighting.
* :func:`calibrate` — on the validation split (seeds from ``VAL_SEED_BASE``, training styles, never
  the benchmark's held-out set): per-head prior correction and the Ⅳ safety-net thresholds, written
  into the model's metadata and applied by :func:`diagnose.judge`.
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
import math
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
from .network import (CLASS_WEIGHTS, GRADE_WEIGHTS, TRAIN_SEED_BASE, VAL_SEED_BASE, MirrorNet, _chunk_seed_range,
                      _tensors, camera_augment, evaluate, generate_chunks, load_chunks, make_dataset, validation_loss)
from .model import MODEL_FILE, MIRROR_SIZE, N_MEASURES, POLE_SIZE, crops, resources_dir

log = logging.getLogger(__name__)


def fit(ds, val=None, minutes: float = 12.0, epochs: int = 30, seed: int = 1, net: MirrorNet | None = None,
        lr: float = 3e-3, threads: int | None = 2, reload=None, keep_best: bool = False) -> tuple[MirrorNet, dict]:
    """Train ``net`` (a new one by default) for ``epochs`` or ``minutes``, whichever ends first.
    ``reload``: a callable returning a (larger) dataset, called before each epoch — training can
    start while the scenes are still being generated. ``keep_best``: evaluate the loss on ``val``
    after each epoch and return the network of the epoch where it was lowest (early stopping)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    if threads:
        torch.set_num_threads(threads)
    net = net or MirrorNet()
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    n = len(ds["y"])
    bs = 64
    steps_per_epoch = max(1, n // bs)
    # with a growing dataset the epoch length is unknown: the time budget alone sets the schedule
    total_steps = epochs * steps_per_epoch if reload is None else float("inf")
    budget = minutes * 60
    t0 = time.time()
    done_epochs = 0
    step = 0
    progress = 0.0
    best = (float("inf"), None, 0.0)   # (validation loss, weights, epochs done)
    history = []

    def set_lr(progress: float) -> None:
        # one cycle (10 % warm-up, cosine down) over whichever runs out first, the epochs or the
        # time budget, so a slow (shared) machine still ends with a fully annealed network
        f = progress / 0.1 if progress < 0.1 else 0.5 * (1 + math.cos(math.pi * min(1.0, (progress - 0.1) / 0.9)))
        for gr_ in opt.param_groups:
            gr_["lr"] = lr * max(0.002, (0.04 + 0.96 * f) if progress < 0.1 else f)

    for ep in range(epochs):
        if reload is not None and ep:
            ds = reload()
            n = len(ds["y"])
            steps_per_epoch = max(1, n // bs)
        net.train()
        perm = rng.permutation(n)
        tot = 0.0
        for s in range(steps_per_epoch):
            progress = max(step / total_steps, (time.time() - t0) / budget)
            if progress >= 1:
                break
            set_lr(progress)
            step += 1
            idx = np.sort(perm[s * bs:(s + 1) * bs])
            m, p, me, y, g = _tensors(ds, idx, True, rng)
            lg, gr = net(m, p, me)
            # defects are rare (each ~7 % of scenes): weight the damaged classes so recall is not traded away
            loss = F.cross_entropy(lg.view(-1, 4), y.view(-1), weight=CLASS_WEIGHTS, ignore_index=-1) \
                * len(CNN_DEFECTS) / 4
            if (g >= 0).any():
                loss = loss + F.cross_entropy(gr, g, weight=GRADE_WEIGHTS, ignore_index=-1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot += float(loss.detach())
        done_epochs = round(step / steps_per_epoch, 2)
        log.info("epoch %d loss %.3f (%.0f s)", ep + 1, tot / max(1, s + 1), time.time() - t0)
        vl = None
        if keep_best and val is not None:
            vl = validation_loss(net, val)
            history.append(round(vl, 4))
            if vl < best[0]:
                best = (vl, {k: v.detach().clone() for k, v in net.state_dict().items()}, done_epochs)
        print(f"epoch {ep + 1}/{epochs} loss {tot / max(1, s + 1):.3f}"
              + (f" val {vl:.3f}" if vl is not None else "")
              + f" ({time.time() - t0:.0f} s, progress {progress:.0%})", flush=True)
        if progress >= 1:
            break
    info = {"epochs": done_epochs, "train_seconds": round(time.time() - t0, 1), "train_samples": int(n),
            "sample_passes": int(step * bs)}
    if keep_best and best[1] is not None:
        net.load_state_dict(best[1])
        info.update({"kept_epoch": best[2], "validation_loss": round(best[0], 4), "validation_loss_history": history})
    if val is not None:
        info["validation"] = evaluate(net, val)
    return net, info


def export(net: MirrorNet, out_dir: Path, meta: dict) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    net.eval()
    m = torch.zeros(1, 3, MIRROR_SIZE, MIRROR_SIZE)
    p = torch.zeros(1, 3, POLE_SIZE[1], POLE_SIZE[0])
    me = torch.zeros(1, N_MEASURES)
    path = out_dir / MODEL_FILE
    tmp = path.with_suffix(".onnx.tmp")
    kw = {}
    try:
        import inspect
        if "dynamo" in inspect.signature(torch.onnx.export).parameters:
            kw["dynamo"] = False
    except (TypeError, ValueError):
        pass
    torch.onnx.export(net, (m, p, me), str(tmp), input_names=["mirror", "pole", "measures"],
                      output_names=["logits", "grade"],
                      dynamic_axes={"mirror": {0: "n"}, "pole": {0: "n"}, "measures": {0: "n"}, "logits": {0: "n"},
                                    "grade": {0: "n"}},
                      opset_version=17, **kw)
    os.replace(tmp, path)
    meta = dict(meta, heads=CNN_DEFECTS, inputs={"mirror": [3, MIRROR_SIZE, MIRROR_SIZE],
                                                   "pole": [3, POLE_SIZE[1], POLE_SIZE[0]],
                                                   "measures": [N_MEASURES]})
    path.with_suffix(".json").write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")
    return path


def train_synthetic(samples: int = 6000, minutes: float = 12.0, seed: int = 1, out_dir: Path | None = None,
                    cache: Path | None = None, val_samples: int = 600, epochs: int = 24,
                    init: Path | None = None) -> Path:
    """Generate (or reuse, from ``cache``) the synthetic set, train (from ``init``'s weights if given,
    at half the learning rate), export ONNX + metadata + weights."""
    import tempfile
    cache = Path(cache) if cache else Path(tempfile.gettempdir()) / "madoguchi-mirrors-train"
    t0 = time.time()
    generate_chunks(cache / "val", VAL_SEED_BASE, val_samples)
    generate_chunks(cache / "train", TRAIN_SEED_BASE + seed * 100_000, samples)
    return train_on_chunks(cache / "train", cache / "val", out_dir or resources_dir(), seed=seed, epochs=epochs,
                           minutes=minutes, generation_seconds=time.time() - t0, init=init,
                           lr=1.5e-3 if init else 3e-3)


def train_on_chunks(train_dir: Path, val_dir: Path, out_dir: Path, seed: int = 1, epochs: int = 24,
                    minutes: float = 12.0, generation_seconds: float | None = None, growing: bool = False,
                    init: Path | None = None, lr: float = 3e-3, keep_best: bool = True) -> Path:
    """Train on the chunk files in ``train_dir`` (``growing``: re-read them before each epoch while a
    generator is still writing). ``init``: a model (``.onnx`` or ``.pt``) whose weights to start from
    (warm start: a larger data set without paying again for what the network already learnt)."""
    ds, val = load_chunks(train_dir), load_chunks(val_dir)
    print(f"dataset: {len(ds['y'])} train / {len(val['y'])} validation samples", flush=True)
    reload = (lambda: load_chunks(train_dir)) if growing else None
    net, init_meta = None, {}
    if init is not None:
        init = Path(init)
        net = MirrorNet()
        net.load_state_dict(torch.load(init.with_suffix(".pt"), weights_only=True))
        if init.with_suffix(".json").is_file():
            init_meta = json.loads(init.with_suffix(".json").read_text(encoding="utf-8"))
    net, info = fit(ds, val, minutes=minutes, epochs=epochs, seed=seed, reload=reload, net=net, lr=lr,
                    keep_best=keep_best)
    if init is not None:
        info["init_from"] = {"version": init_meta.get("version"), "train_samples": init_meta.get("train_samples"),
                             "sample_passes": init_meta.get("sample_passes"), "lr": lr}
    meta = {"version": f"synthetic-{datetime.date.today().isoformat()}-s{seed}",
            "trained_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "training": "synthetic", "seed": seed,
            "train_seed_range": _chunk_seed_range(train_dir),
            "validation_seeds_from": VAL_SEED_BASE, "styles": synth.TRAIN_STYLES,
            "generation_seconds": round(generation_seconds, 1) if generation_seconds else None,
            "torch": torch.__version__, **info}
    path = export(net, out_dir, meta)
    torch.save(net.state_dict(), path.with_suffix(".pt"))
    calibrate(path, val_dir, likelihoods=cached_measure_likelihoods(Path(val_dir).parent / "measure_likelihoods.json"))
    return path


# ------------------------------------------------------------------ calibration (validation split)

def _raw_predictions(model, ds, flip: bool = False) -> list:
    """Per validation sample: the ONNX model's per-head probabilities and grade probabilities
    (no prior correction), run in batches; ``flip``: averaged with the mirror image's (as
    :meth:`model.MirrorModel.predict_crops` does when the metadata says ``"tta": "flip"``)."""
    from .model import Prediction, _softmax
    n = len(ds["y"])
    out = []
    for i in range(0, n, 128):
        idx = np.arange(i, min(n, i + 128))
        m, p, me, _, _ = _tensors(ds, idx, False, None)
        pr = gp = 0
        for f in ((False, True) if flip else (False,)):
            feed = {"mirror": (m.flip(3) if f else m).numpy(), "pole": (p.flip(3) if f else p).numpy()}
            if model.uses_measures:
                feed["measures"] = me.numpy()
            lg, gr = model.session.run(["logits", "grade"], feed)
            pr = pr + _softmax(lg.reshape(len(idx), len(model.heads), 4)) / (2 if flip else 1)
            gp = gp + _softmax(gr) / (2 if flip else 1)
        for j in range(len(idx)):
            out.append(Prediction({k: pr[j, h].astype(np.float64) for h, k in enumerate(model.heads)}, gp[j]))
    return out


def _none_scales(raw, y, heads, grid) -> tuple[dict, dict]:
    """Per head, the factor on P(no defect) with the best detection F1 on the validation split."""
    none_scale, f1s = {}, {}
    for h, k in enumerate(heads):
        t = y[:, h] > 0
        p0 = np.array([r.probs[k][0] for r in raw])
        pany = np.array([r.probs[k][1:].max() for r in raw])
        best = (-1.0, 1.0)
        for sc in grid:
            q = pany > p0 * sc          # the argmax is a damaged class
            f1 = 2 * float((t & q).sum()) / max(1.0, float(t.sum() + q.sum()))
            if f1 > best[0] + 1e-9 or (abs(f1 - best[0]) < 1e-9 and abs(np.log(sc)) < abs(np.log(best[1]))):
                best = (f1, sc)
        none_scale[k] = best[1]
        f1s[k] = round(best[0], 3)
    return none_scale, f1s


def _scaled(pred, none_scale: dict):
    from .model import Prediction
    probs = {}
    for k, p in pred.probs.items():
        p = p.copy()
        p[0] *= none_scale.get(k, 1.0)
        probs[k] = p / p.sum()
    return Prediction(probs, pred.grade_probs)


def _geometry_from_measures(me) -> "geo.Geometry":
    """A stand-in geometry carrying the stored measurements (deformation, fit method, tilt) so the
    validation samples go through the same :func:`diagnose.judge` as a photo."""
    deform, hole, tilt = float(me[0]), bool(me[1]), float(me[2])
    bend = float(me[3]) if len(me) > 3 and me[3] >= 0 else 0.0
    off = float(me[5]) if len(me) > 5 and me[5] >= 0 else 0.0
    face = geo.MirrorFace((100.0, 100.0), (40.0, 40.0), 0.0, "round", [50.0, 50.0, 150.0, 150.0], deform,
                          "hole" if hole else "ransac", 1.0)
    pole = None
    if tilt >= 0:
        t = math.radians(tilt)
        # the pole's top placed so that geo.mirror_offset_pct() gives back the stored offset
        top_x = 100.0 - off / 100 * 40.0 / math.cos(t) - 50.0 * math.tan(t)
        pole = geo.Pole((top_x, 150.0), (top_x - 250.0 * math.tan(t), 400.0), tilt, [90.0, 150.0, 110.0, 400.0],
                        1.0, bend)
    return geo.Geometry((640, 480), 1.0, [face], pole, 120.0, 500.0, 0.0)


def _judge_all(geoms, preds, table, safety=None, likelihoods=None) -> list:
    from .diagnose import MirrorInspection, judge
    from .intake import Quality
    out = []
    for g, pr in zip(geoms, preds):
        insp = MirrorInspection("", "", None, None, True, [], Quality(True), (640, 480))
        judge(insp, g, pr, table, safety, likelihoods=likelihoods)
        out.append(insp)
    return out


GEOMETRY_SEED_BASE = 3_000_000  # scenes for the measured-value likelihood tables (neither training nor validation)
# Defects with a geometric measurement that weighs in on the CNN's probabilities through a likelihood
# table: defect → (measure name as in diagnose.judge, bin edges)
MEASURED_DEFECTS = {
    "bracket.deformation": ("mirror_offset_pct", (4.0, 8.0, 13.0, 19.0, 26.0, 40.0)),   # % of the face radius
    "pole.bend": ("pole_bend_pct", (1.2, 1.8, 3.2, 4.2, 7.0, 11.0)),                    # % of the pole's length
}


def _geometry_sample(seed: int):
    rng = np.random.default_rng(seed)
    sev = synth.sample_defects(rng)
    # one defect per scene at balanced severities (seed modulo); every other defect as the generator
    # draws it, so the measurement's noise from other damage is as common as in the data
    keys = list(MEASURED_DEFECTS)
    target = keys[seed % len(keys)]
    sev[target] = (seed // len(keys)) % 4
    levels = {target: sev[target]}
    style = synth.TRAIN_STYLES[int(rng.integers(len(synth.TRAIN_STYLES)))]
    size = [(1024, 768), (768, 1024), (1024, 768), (800, 600), (600, 800)][int(rng.integers(5))]
    sc = synth.generate(seed, style=style, size=size, defects=sev)
    g = geo.analyse(camera_augment(sc.image, rng))
    from .diagnose import measured_value
    return levels, {k: measured_value(m, g) for k, (m, _) in MEASURED_DEFECTS.items()}


def measure_likelihoods(n: int = 480, processes: int = 2, seed_base: int = GEOMETRY_SEED_BASE) -> dict:
    """Per defect of :data:`MEASURED_DEFECTS`: P(bin of the measured value | severity), counted on ``n``
    scenes of the training styles (seeds of their own), each scene with one of these defects at a
    balanced severity and the rest as generated, with add-one smoothing — the measurement's likelihood
    that :func:`diagnose.judge` multiplies into the CNN's probabilities."""
    seeds = list(range(seed_base, seed_base + n))
    if processes > 1:
        with mp.get_context("fork").Pool(processes) as pool:
            out = pool.map(_geometry_sample, seeds, chunksize=8)
    else:
        out = [_geometry_sample(s) for s in seeds]
    tables = {}
    for k, (measure, edges) in MEASURED_DEFECTS.items():
        counts = np.ones((4, len(edges) + 1))
        for levels, values in out:
            if k in levels and values[k] is not None:
                counts[levels[k], int(np.searchsorted(edges, values[k], side="right"))] += 1
        p = counts / counts.sum(1, keepdims=True)
        tables[k] = {"measure": measure, "edges": list(edges), "p": [[round(float(v), 4) for v in row] for row in p],
                     "scenes": n, "seeds_from": seed_base}
    return tables


def cached_measure_likelihoods(path: Path, n: int = 480) -> dict:
    path = Path(path)
    if path.is_file():
        lik = json.loads(path.read_text(encoding="utf-8"))
        if set(lik) == set(MEASURED_DEFECTS) and all(v.get("scenes") == n for v in lik.values()):
            return lik
    lik = measure_likelihoods(n)
    path.write_text(json.dumps(lik), encoding="utf-8")
    return lik


NONE_SCALE_GRID = (0.5, 0.7, 1.0, 1.4, 2.0)
# (grade from the distribution over all defects?, weight of the grade head) tried by :func:`calibrate`
GRADE_MODES = ((False, 0.0), (True, 0.0), (True, 0.5), (True, 1.0))
IV_GRID = (0.005, 0.01, 0.02, 0.03, 0.05, 0.08, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.7, 2.0)   # 2.0 = that signal unused


def calibrate(model_path: Path, val_dir: Path, iv_recall_target: float = 0.985,
              none_scale_grid=NONE_SCALE_GRID, likelihoods: dict | None = None) -> dict:
    """Calibrate on the validation split (never the benchmark's held-out set) and write the result
    into the model's metadata:

    * ``none_scale`` per head: a factor on P(no defect) chosen to maximise that head's detection F1
      (the class weights used in training shift the priors; this undoes the shift where it hurts);
    * ``safety_net``: how the grade is formed — the findings' worst grade, or the most probable grade
      of :func:`diagnose.grade_distribution` over all defects together (escalation included), weighted
      by the grade head (``grade_from_distribution``, ``grade_head_weight``) — and thresholds on the Ⅳ
      evidence (largest probability of a Ⅳ-level severity of one defect, the grade head's P(Ⅳ), and
      P(Ⅳ) over all defects, which counts several Ⅲ findings at once) that bring the recall of Ⅳ to
      ``iv_recall_target`` on the validation split, choosing among those the best exact agreement;
    * ``tta``: whether the network also looks at the crops' mirror image (``"flip"``, averaged) —
      chosen together with the above;
    * ``calibration.operating_points``: the best exact agreement reachable at each Ⅳ recall level
      (the trade-off the safety net sits on).
    """
    from .grading import load_table
    from .model import MirrorModel
    table = load_table()
    model = MirrorModel(model_path)
    if likelihoods is None:
        likelihoods = model.meta.get("measure_likelihoods")
    ds = load_chunks(val_dir)
    geoms = [_geometry_from_measures(me) for me in ds["measures"]]
    truth = ds["grade"]
    is4 = truth == 3
    cands, before, scales = [], {}, {}
    for tta in ("none", "flip"):
        raw = _raw_predictions(model, ds, flip=tta == "flip")
        none_scale, f1s = _none_scales(raw, ds["y"], model.heads, none_scale_grid)
        scales[tta] = (none_scale, f1s)
        preds = [_scaled(r, none_scale) for r in raw]
        # how the grade is formed (the findings' worst grade, or the most probable grade over all
        # defects together, weighted by the grade head) and the safety-net thresholds, chosen together
        for use_dist, beta in GRADE_MODES:
            base = _judge_all(geoms, preds, table, {"grade_from_distribution": use_dist, "grade_head_weight": beta},
                              likelihoods)
            prov = np.array([GRADES.index(i.provisional_grade) for i in base])
            ivf = np.array([i.signals["iv_finding"] for i in base])
            ivg = np.array([i.signals["iv_grade_head"] for i in base])
            piv = np.array([i.signals["p_iv"] for i in base])
            before[(tta, use_dist, beta)] = prov
            for t1 in IV_GRID:
                for t2 in IV_GRID:
                    for t3 in IV_GRID:
                        pr = np.where((prov != 3) & ((ivf >= t1) | (ivg >= t2) | (piv >= t3)), 3, prov)
                        rec = float((pr[is4] == 3).mean()) if is4.any() else 1.0
                        cands.append((rec >= iv_recall_target, float((pr == truth).mean()), rec,
                                      float((np.abs(pr - truth) <= 1).mean()), tta, use_dist, beta, t1, t2, t3))
    ok = [c for c in cands if c[0]]
    # best exact agreement among those meeting the Ⅳ recall target (ties: better within-one, then the
    # highest thresholds); if none does, the best recall
    best = (max(ok, key=lambda c: (c[1], c[3], c[7] + c[8] + c[9])) if ok else
            max(cands, key=lambda c: (c[2], c[1], c[3])))
    _, exact, rec, within, tta, use_dist, beta, t1, t2, t3 = best
    prov = before[(tta, use_dist, beta)]
    none_scale, f1s = scales[tta]
    # the trade-off the chosen operating point sits on: best exact agreement at each Ⅳ recall level
    points = []
    for level in (0.8, 0.9, 0.95, 0.97, iv_recall_target):
        at = [c for c in cands if c[2] >= level]
        if at:
            c = max(at, key=lambda c: (c[1], c[3]))
            points.append({"iv_recall_at_least": level, "exact": round(c[1], 3), "within_one": round(c[3], 3),
                           "iv_recall": round(c[2], 3)})
    meta_path = Path(model_path).with_suffix(".json")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["none_scale"] = none_scale
    if likelihoods:
        meta["measure_likelihoods"] = likelihoods
    meta["tta"] = tta
    meta["safety_net"] = {"iv_finding": t1, "iv_grade_head": t2, "p_iv": t3,
                          "grade_from_distribution": bool(use_dist), "grade_head_weight": beta}
    meta["calibration"] = {
        "split": "validation", "samples": int(len(truth)), "iv_recall_target": iv_recall_target,
        "detection_f1": f1s,
        "before_safety_net": {"exact": float((prov == truth).mean()),
                              "within_one": float((np.abs(prov - truth) <= 1).mean()),
                              "iv_recall": float((prov[is4] == 3).mean()) if is4.any() else None},
        "after_safety_net": {"exact": exact, "within_one": within, "iv_recall": rec},
        "operating_points": points}
    meta_path.write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")
    from .model import _cache
    _cache.pop(str(Path(model_path).resolve()), None)
    print(f"calibrated: {json.dumps(meta['calibration'], ensure_ascii=False)}", flush=True)
    return meta["calibration"]


def ledger_dataset(ctx) -> dict[str, np.ndarray]:
    """Crops + labels from ledger inspections that have a confirmed grade."""
    from .intake import PhotoError, load_photo
    from .ledger import confirmed_inspections
    rows = confirmed_inspections(ctx)
    ms, ps, ys, gs, mes = [], [], [], [], []
    for r in rows:
        try:
            ph = load_photo(r["photo_path"])
        except PhotoError:
            continue
        g = geo.analyse(ph.rgb)
        if not g.faces:
            continue
        m, p = crops(g)
        f0 = g.face
        off = geo.mirror_offset_pct(f0, g.pole)
        mes.append([f0.deformation_pct, float(f0.method == "hole"), abs(g.pole.tilt_deg) if g.pole else -1,
                    g.pole.bend_pct if g.pole else -1, -1, -1 if off is None else off])
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
    return {"mirror": np.stack(ms), "pole": np.stack(ps), "y": np.stack(ys), "grade": np.array(gs, np.int64),
            "measures": np.array(mes, np.float32)}


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
    if meta_base.get("safety_net"):
        # no validation split of office photos to recalibrate on: keep the base model's Ⅳ safety net
        meta["safety_net"] = meta_base["safety_net"]
    for k in ("measure_likelihoods", "tta"):   # geometry's likelihoods do not depend on the network
        if k in meta_base:
            meta[k] = meta_base[k]
    path = export(net, out, meta)
    torch.save(net.state_dict(), path.with_suffix(".pt"))
    from .model import _cache
    _cache.pop(str(path.resolve()), None)
    return path


def save_weights(net: MirrorNet, onnx_path: Path) -> None:
    torch.save(net.state_dict(), Path(onnx_path).with_suffix(".pt"))
