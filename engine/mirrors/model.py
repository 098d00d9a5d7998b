"""The defect CNN at run time: crops around the localised mirror and pole, ONNX inference with
onnxruntime (torch is not needed here). The network is trained by :mod:`engine.mirrors.train`.

Inputs: ``mirror`` 1×3×128×128 (square crop centred on the face, 3 face radii wide) and
``pole`` 1×3×192×64 (the strip from the mirror's foot down the pole), float32 RGB / 255. Crops are
cut from the analysed photo itself (≥ 1,000 px long side), not from the 640-px working copy, so
thin cracks and small dents survive. Older models (96×96 / 160×64) still load: the input size is
read from the model's metadata.
Outputs: ``logits`` 1×(len(heads)×4) — four severity classes (0 = none … 3 = 重度) per head, and
``grade`` 1×4 (Ⅰ–Ⅳ as the inspector would grade the photo; used to flag disagreement).
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import MadoguchiError
from ..models import ModelError

MIRROR_SIZE = 128
POLE_SIZE = (64, 192)    # (w, h)
MODEL_FILE = "mirror_cnn.onnx"
META_FILE = "mirror_cnn.json"


def resources_dir() -> Path:
    from ..models import app_root
    return app_root() / "resources" / "mirrors"


def _crop(img: np.ndarray, x0, y0, x1, y1, out_wh) -> np.ndarray:
    """Axis-aligned crop with edge padding, resized to ``out_wh``."""
    h, w = img.shape[:2]
    x0, y0, x1, y1 = int(round(x0)), int(round(y0)), int(round(x1)), int(round(y1))
    x1, y1 = max(x1, x0 + 2), max(y1, y0 + 2)
    pad = max(0, -x0, -y0, x1 - w, y1 - h)
    if pad:
        img = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        x0, y0, x1, y1 = x0 + pad, y0 + pad, x1 + pad, y1 + pad
    return cv2.resize(img[y0:y1, x0:x1], out_wh, interpolation=cv2.INTER_AREA)


def crops(geom, face_index: int = 0, mirror_size: int = MIRROR_SIZE,
          pole_size: tuple[int, int] = POLE_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """(mirror crop, pole crop) uint8 RGB from the analysed photo (or the working copy when the
    geometry does not hold the photo)."""
    if geom.src is not None:
        work, s = geom.src, 1.0
    else:
        work, s = geom.work, geom.scale
    f = geom.faces[face_index]
    cx, cy = f.center[0] / s, f.center[1] / s
    r = max(f.axes) / s
    half = 1.35 * r * 1.12
    m = _crop(work, cx - half, cy - half * 0.95, cx + half, cy + half * 1.05, (mirror_size, mirror_size))
    h = work.shape[0]
    top = cy + 0.75 * r
    if geom.pole is not None:
        tx, bx = geom.pole.top[0] / s, geom.pole.base[0] / s
        bottom = max(geom.pole.base[1] / s, top + 2 * r)
    else:
        tx = bx = cx
        bottom = h
    bottom = min(max(bottom, top + 2 * r), h + 0.2 * r)
    x0, x1 = min(tx, bx) - 0.8 * r, max(tx, bx) + 0.8 * r
    p = _crop(work, x0, top, x1, bottom, pole_size)
    return m, p


N_MEASURES = 5


def measure_vector(deformation_pct: float, hole_fit: bool, tilt_deg: float | None,
                   bend_pct: float | None) -> np.ndarray:
    """The geometry's measurements as the network's third input (scaled to ~0..1; a missing pole
    gives zeros and a 'no pole' flag)."""
    return np.array([min(deformation_pct, 30.0) / 10, float(hole_fit),
                     min(abs(tilt_deg), 40.0) / 20 if tilt_deg is not None else 0.0,
                     min(bend_pct, 40.0) / 10 if bend_pct is not None else 0.0,
                     float(tilt_deg is None)], np.float32)


def geometry_measures(geom, face_index: int = 0) -> np.ndarray:
    f = geom.faces[face_index]
    pole = geom.pole
    return measure_vector(f.deformation_pct, f.method == "hole", pole.tilt_deg if pole else None,
                          pole.bend_pct if pole else None)


def to_input(mirror: np.ndarray, pole: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    m = mirror.astype(np.float32).transpose(2, 0, 1)[None] / 255.0
    p = pole.astype(np.float32).transpose(2, 0, 1)[None] / 255.0
    return m, p


@dataclass
class Prediction:
    probs: dict[str, np.ndarray]     # defect key → 4 class probabilities
    grade_probs: np.ndarray          # Ⅰ..Ⅳ


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


class MirrorModel:
    """An ONNX defect model + its metadata (heads, training seed/date/metrics)."""

    def __init__(self, path: Path | str, threads: int = 1):
        import onnxruntime as ort
        self.path = Path(path)
        meta_path = self.path.with_suffix(".json")
        try:
            self.meta = json.loads(meta_path.read_text(encoding="utf-8"))
            self.heads: list[str] = self.meta["heads"]
            ins = self.meta.get("inputs", {})
            self.mirror_size = int(ins.get("mirror", [3, 96, 96])[1])
            self.pole_size = (int(ins.get("pole", [3, 160, 64])[2]), int(ins.get("pole", [3, 160, 64])[1]))
            # per-head prior correction calibrated on the validation split (1 = plain softmax)
            self.none_scale = {k: float(v) for k, v in self.meta.get("none_scale", {}).items()}
            self.uses_measures = "measures" in ins
            # test-time augmentation chosen by the calibration (see train.calibrate)
            self.tta_flip = self.meta.get("tta") == "flip"
            so = ort.SessionOptions()
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
            self.session = ort.InferenceSession(str(self.path), so, providers=["CPUExecutionProvider"])
        except (OSError, ValueError, KeyError) as e:
            raise ModelError(f"mirror model {self.path} cannot be loaded: {e}") from e
        except Exception as e:   # onnxruntime raises its own exception types
            raise ModelError(f"mirror model {self.path} cannot be loaded: {e}") from e
        self._lock = threading.Lock()

    @property
    def version(self) -> str:
        return str(self.meta.get("version", self.path.stem))

    def predict_crops(self, mirror: np.ndarray, pole: np.ndarray, measures: np.ndarray | None = None) -> Prediction:
        m, p = to_input(mirror, pole)
        if self.tta_flip:   # the photo and its mirror image (the network was trained on both)
            m, p = np.concatenate([m, m[..., ::-1]]), np.concatenate([p, p[..., ::-1]])
        feed = {"mirror": np.ascontiguousarray(m), "pole": np.ascontiguousarray(p)}
        if self.uses_measures:
            feed["measures"] = np.repeat((np.zeros(N_MEASURES, np.float32) if measures is None else
                                          np.asarray(measures, np.float32)).reshape(1, -1), len(m), 0)
        with self._lock:
            logits, grade = self.session.run(["logits", "grade"], feed)
        pr = _softmax(logits.reshape(len(m), len(self.heads), 4)).mean(0)
        gp = _softmax(grade).mean(0)
        probs = {}
        for i, k in enumerate(self.heads):
            p = pr[i].astype(np.float64)
            if k in self.none_scale:
                p[0] *= self.none_scale[k]
                p = p / p.sum()
            probs[k] = p
        return Prediction(probs, gp)

    def predict(self, geom, face_index: int = 0) -> Prediction:
        return self.predict_crops(*crops(geom, face_index, self.mirror_size, self.pole_size),
                                  geometry_measures(geom, face_index))


_cache: dict[str, MirrorModel] = {}
_cache_lock = threading.Lock()


def default_model_path(data_dir: Path | str | None = None) -> Path:
    """The office's retrained model (``<data>/mirrors/mirror_cnn.onnx``) if any, else the shipped one."""
    if data_dir is not None:
        p = Path(data_dir) / "mirrors" / MODEL_FILE
        if p.is_file() and p.with_suffix(".json").is_file():
            return p
    return resources_dir() / MODEL_FILE


def load_model(path: Path | str | None = None) -> MirrorModel | None:
    """Cached model, or None when no model file exists (geometry-only diagnosis)."""
    path = Path(path) if path else default_model_path()
    if not path.is_file():
        return None
    key = str(path.resolve())
    with _cache_lock:
        if key not in _cache:
            _cache[key] = MirrorModel(path)
        return _cache[key]


__all__ = ["MirrorModel", "Prediction", "crops", "measure_vector", "geometry_measures", "load_model", "default_model_path", "MadoguchiError"]
