"""Photo intake: JPEG/PNG/HEIC decoding (pillow-heif), EXIF orientation, GPS and time, and the
quality gate that says *why* a photo cannot be judged so that the inspector can re-shoot.

The file type is taken from the content, not the name (a PNG called ``.jpg`` loads). JPEGs are
decoded at a reduced DCT scale (``Image.draft``) — the analysis needs ~1,300 px, not 12 MP.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import MadoguchiError

LOAD_SIZE = 1000          # long side decoded for analysis (JPEG draft: DCT scaling keeps ≥ this)
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".heic", ".heif", ".jpe"}

_heif_registered = False


class PhotoError(MadoguchiError):
    ja_default = "写真を読み込めませんでした。ファイルが壊れていないか確認し、撮り直してください。"


def _register_heif() -> None:
    global _heif_registered
    if not _heif_registered:
        try:
            import pillow_heif
            pillow_heif.register_heif_opener()
        except ImportError:   # HEIC support is optional at run time; JPEG/PNG still work
            pass
        _heif_registered = True


@dataclass
class Photo:
    path: Path
    rgb: np.ndarray                  # decoded, orientation applied, long side ≤ ~LOAD_SIZE*2
    size: tuple[int, int]            # full-resolution (w, h) after orientation
    scale: float                     # full-resolution px per px of ``rgb``
    sha256: str
    format: str                      # "JPEG", "PNG", "HEIF" …
    taken_at: str | None = None      # ISO 8601 local time from EXIF DateTimeOriginal
    gps: tuple[float, float] | None = None   # (lat, lon) decimal degrees
    orientation: int = 1


def file_sha256(path: Path | str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _ratio(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError, ZeroDivisionError):
        num, den = v
        return float(num) / float(den)


def _gps(exif) -> tuple[float, float] | None:
    try:
        g = exif.get_ifd(0x8825)
    except Exception:
        return None
    if not g or 2 not in g or 4 not in g:
        return None
    try:
        def dms(x):
            d, m, s = (_ratio(v) for v in x)
            return d + m / 60 + s / 3600
        lat, lon = dms(g[2]), dms(g[4])
        if str(g.get(1, "N")).upper().startswith("S"):
            lat = -lat
        if str(g.get(3, "E")).upper().startswith("W"):
            lon = -lon
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return round(lat, 7), round(lon, 7)


def _taken_at(exif) -> str | None:
    raw = None
    try:
        raw = exif.get_ifd(0x8769).get(36867)      # DateTimeOriginal
    except Exception:
        pass
    raw = raw or exif.get(306)                      # DateTime
    if not raw:
        return None
    try:
        return _dt.datetime.strptime(str(raw).strip("\x00 "), "%Y:%m:%d %H:%M:%S").isoformat()
    except ValueError:
        return None


def load_photo(path: Path | str, load_size: int = LOAD_SIZE, sha256: str | None = None) -> Photo:
    """Decode a photo. Raises :class:`PhotoError` (English + Japanese) for anything unreadable."""
    _register_heif()
    path = Path(path)
    if not path.is_file():
        raise PhotoError(f"{path}: no such file", ja=f"写真ファイルが見つかりません: {path.name}")
    try:
        digest = sha256 or file_sha256(path)
        with Image.open(path) as im:
            fmt = im.format or "?"
            full = im.size
            exif = im.getexif()
            orientation = int(exif.get(0x0112, 1) or 1)
            if fmt == "JPEG":
                im.draft("RGB", (max(1, full[0] * load_size // max(full)), max(1, full[1] * load_size // max(full))))
            im.load()
            decoded = im.size
            if orientation != 1:
                im = ImageOps.exif_transpose(im)
            rgb = np.asarray(im if im.mode == "RGB" else im.convert("RGB"))
    except UnidentifiedImageError as e:
        raise PhotoError(f"{path}: not a JPEG, PNG or HEIC image", ja=f"画像ファイルではありません（JPEG・PNG・HEICのみ対応）: {path.name}") from e
    except (OSError, SyntaxError, ValueError) as e:
        raise PhotoError(f"{path}: image is damaged or truncated ({e})",
                         ja=f"写真が壊れているか、途中までしかありません: {path.name}。撮り直すか、元の写真をコピーし直してください。") from e
    except Image.DecompressionBombError as e:
        raise PhotoError(f"{path}: image is too large ({e})", ja=f"画像が大きすぎます: {path.name}") from e
    if orientation in (5, 6, 7, 8):
        full = (full[1], full[0])
    scale = full[0] / rgb.shape[1]
    if max(rgb.shape[:2]) > 2 * load_size:      # PNG/HEIC: no draft mode, shrink here
        f = load_size / max(rgb.shape[:2])
        rgb = cv2.resize(rgb, (round(rgb.shape[1] * f), round(rgb.shape[0] * f)), interpolation=cv2.INTER_AREA)
        scale = full[0] / rgb.shape[1]
    del decoded
    return Photo(path, np.ascontiguousarray(rgb), full, scale, digest, fmt, _taken_at(exif), _gps(exif), orientation)


# ------------------------------------------------------------------ quality gate

QUALITY_MESSAGES = {
    "too_dark": "暗すぎて判定できません。明るい時間帯に撮り直すか、フラッシュを使ってください。",
    "overexposed": "明るすぎて（白とび）判定できません。逆光を避けて撮り直してください。",
    "motion_blur": "ぶれています。カメラを固定して撮り直してください。",
    "out_of_focus": "ピントが合っていません。鏡面にピントを合わせて撮り直してください。",
    "mirror_not_found": "カーブミラーが見つかりません。鏡面と支柱の全体が写るように撮り直してください。",
    "mirror_too_small": "ミラーが小さすぎます。もっと近づいて、鏡面が大きく写るように撮り直してください。",
}

# Thresholds (working copy, long side 640 px); calibrated on synthetic scenes, see bench/mirrors.py.
MIN_BRIGHTNESS = 30.0
MAX_OVEREXPOSED = 0.35
MIN_ANISOTROPY = 0.09      # min/max of directional second-derivative energy (motion blur → ~0.02)
MIN_DETAIL = 4.0           # max directional energy (defocus → everything low)
MIN_MIRROR_PX = 14.0       # face radius on the working copy


@dataclass
class Quality:
    ok: bool
    reasons: list[str] = field(default_factory=list)     # codes, see QUALITY_MESSAGES
    brightness: float = 0.0
    anisotropy: float = 0.0
    detail: float = 0.0
    mirror_px: float = 0.0

    @property
    def messages(self) -> list[str]:
        return [QUALITY_MESSAGES[c] for c in self.reasons]

    def to_json(self) -> dict:
        return {"ok": self.ok, "reasons": list(self.reasons), "messages": self.messages,
                "brightness": round(self.brightness, 1), "anisotropy": round(self.anisotropy, 3),
                "detail": round(self.detail, 1), "mirror_px": round(self.mirror_px, 1)}


_KERNELS = [np.array([[1, -2, 1]], np.float32), np.array([[1], [-2], [1]], np.float32),
            np.diag([1, -2, 1]).astype(np.float32), np.fliplr(np.diag([1, -2, 1])).astype(np.float32).copy()]


def sharpness(work_rgb: np.ndarray) -> tuple[float, float]:
    """(anisotropy, detail): directional second-derivative energies; motion blur kills one direction."""
    g = cv2.cvtColor(work_rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    e = [float((cv2.filter2D(g, -1, k) ** 2).mean()) for k in _KERNELS]
    return min(e) / max(max(e), 1e-6), max(e)


def check_quality(work_rgb: np.ndarray, geom) -> Quality:
    """Quality gate on the working copy and the geometry (:class:`geometry.Geometry`)."""
    aniso, detail = sharpness(work_rgb)
    q = Quality(True, [], geom.brightness, aniso, detail, 0.0)
    if geom.brightness < MIN_BRIGHTNESS:
        q.reasons.append("too_dark")
    elif geom.overexposed > MAX_OVEREXPOSED:
        q.reasons.append("overexposed")
    if detail < MIN_DETAIL and "too_dark" not in q.reasons:
        q.reasons.append("out_of_focus")
    elif aniso < MIN_ANISOTROPY and "too_dark" not in q.reasons:
        q.reasons.append("motion_blur")
    if geom.face is None:
        q.reasons.append("mirror_not_found")
    else:
        q.mirror_px = geom.face.radius / geom.scale
        if q.mirror_px < MIN_MIRROR_PX:
            q.reasons.append("mirror_too_small")
    q.ok = not q.reasons
    return q
