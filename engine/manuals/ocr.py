"""OCR of scanned pages and photos: Tesseract (through tesserocr) with its Japanese data.

:class:`Ocr` reads one page image into a :class:`PageText` — the text, Tesseract's mean word
confidence (0–100) and whether the page was read as vertical writing (縦書き). Per page it
measures the layout (ink profiles along rows and columns: horizontal lines leave blank rows,
vertical columns leave blank columns) and reads with ``jpn`` (automatic layout) or ``jpn_vert``
(one block of vertical text, right to left); when that reading is weak it also tries the other
and keeps the more confident one. Before reading, uneven light is flattened (the paper's own
brightness, estimated by a large closing, is divided out) — photos taken at the counter have it.

The Japanese data is the model ``ocr-jpn`` of the manifest (kind ``tessdata``: ``jpn``,
``jpn_vert`` and ``osd`` from Debian's tesseract-ocr-jpn / -jpn-vert / -osd, assembled into the
models folder by ``make models`` and carried by the installer).
"""
from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

OCR_MODEL = "ocr-jpn"
LANGS = ("jpn", "jpn_vert")
LOW_CONFIDENCE = 75.0     # mean word confidence below which a page is listed for a person to check
RETRY_BELOW = 80.0        # a reading weaker than this is tried the other way (vertical ↔ horizontal)
METHOD = "tesseract-jpn/1"   # stored with each page; a cached page read by another method is read again
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".heic", ".heif", ".tif", ".tiff")
SCAN_DPI = 300            # a scanned PDF page is rendered at this resolution for reading


@dataclass
class PageText:
    page: int
    text: str
    confidence: float     # Tesseract's mean word confidence, 0–100
    vertical: bool
    seconds: float = 0.0

    @property
    def low(self) -> bool:
        return self.confidence < LOW_CONFIDENCE

    @property
    def lines(self) -> list[str]:
        return [ln for ln in self.text.splitlines() if ln.strip()]


class OcrError(Exception):
    """The OCR engine or its Japanese data is missing or does not load."""


# --------------------------------------------------------------------------- image preparation

def to_gray(image) -> np.ndarray:
    from PIL import ImageOps
    image = ImageOps.exif_transpose(image)
    return np.asarray(image.convert("L"), dtype=np.uint8)


def flatten_light(gray: np.ndarray) -> np.ndarray:
    """Divide out the paper's brightness (uneven light, shadows, a darker corner of a photo)."""
    import cv2
    h, w = gray.shape
    k = max(15, (min(h, w) // 40) | 1)
    paper = cv2.morphologyEx(gray, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
    paper = cv2.GaussianBlur(paper, (0, 0), k / 2)
    out = cv2.divide(gray, np.maximum(paper, 1), scale=255)
    return out


def find_page(gray: np.ndarray) -> np.ndarray | None:
    """The four corners of a sheet of paper photographed on a darker desk (TL, TR, BR, BL), or
    None when the image is the page itself (a scan) or no clear sheet is seen."""
    import cv2
    h, w = gray.shape
    f = 800 / max(h, w)
    small = cv2.resize(gray, (max(1, int(w * f)), max(1, int(h * f))), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), 3)
    _t, paper = cv2.threshold(small, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    paper = cv2.morphologyEx(paper, cv2.MORPH_CLOSE, np.ones((15, 15), np.uint8))
    contours, _h = cv2.findContours(paper, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    c = max(contours, key=cv2.contourArea)
    area = cv2.contourArea(c)
    if not 0.3 * small.size <= area <= 0.97 * small.size:
        return None
    quad = cv2.approxPolyDP(c, 0.02 * cv2.arcLength(c, True), True)
    if len(quad) != 4 or not cv2.isContourConvex(quad):
        return None
    pts = quad.reshape(4, 2).astype(np.float32) / f
    s, d = pts.sum(axis=1), np.diff(pts, axis=1).ravel()
    return np.float32([pts[np.argmin(s)], pts[np.argmin(d)], pts[np.argmax(s)], pts[np.argmax(d)]])


def flatten_page(gray: np.ndarray) -> np.ndarray:
    """A photographed sheet warped back to a straight rectangle (perspective undone)."""
    import cv2
    quad = find_page(gray)
    if quad is None:
        return gray
    tl, tr, br, bl = quad
    w = int(max(np.linalg.norm(tr - tl), np.linalg.norm(br - bl)))
    h = int(max(np.linalg.norm(bl - tl), np.linalg.norm(br - tr)))
    m = cv2.getPerspectiveTransform(quad, np.float32([[0, 0], [w, 0], [w, h], [0, h]]))
    return cv2.warpPerspective(gray, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)


def despeckle(gray: np.ndarray) -> np.ndarray:
    """Dust and sensor noise off (a 3×3 median keeps strokes, drops isolated dots)."""
    import cv2
    return cv2.medianBlur(gray, 3)


def rescale(gray: np.ndarray, dpi: int | None) -> np.ndarray:
    """Tesseract reads best at about 300 dpi: a 200 dpi scan is enlarged; a photo (resolution
    unknown) is brought to a page-sized long side of about 2400 px."""
    import cv2
    h, w = gray.shape
    f = (SCAN_DPI / dpi) if dpi else (2400 / max(h, w))
    if 0.9 <= f <= 1.1:
        return gray
    f = min(f, 3.0)
    return cv2.resize(gray, (int(w * f), int(h * f)), interpolation=cv2.INTER_CUBIC if f > 1 else cv2.INTER_AREA)


def _long_gaps(profile: np.ndarray, across: int) -> float:
    """Share of the profile in blank runs at least 0.3 × the median ink run: the gaps between
    lines (or columns), not the small ones between the characters of a line."""
    blank = profile <= 0.01 * across
    runs, cur, val = [], 0, None
    for b in blank:
        if b == val:
            cur += 1
        else:
            if val is not None:
                runs.append((val, cur))
            val, cur = b, 1
    runs.append((val, cur))
    ink = [n for v, n in runs if not v]
    if not ink:
        return 0.0
    need = 0.3 * float(np.median(ink))
    return sum(n for v, n in runs if v and n >= need) / len(profile)


def vertical_score(gray: np.ndarray) -> float:
    """> 0 when the page looks like vertical writing: long blank gaps run between its columns
    rather than between its rows (measured on the ink inside the text area, downscaled)."""
    import cv2
    h, w = gray.shape
    f = 1000 / max(h, w)
    small = cv2.resize(gray, (max(1, int(w * f)), max(1, int(h * f))), interpolation=cv2.INTER_AREA)
    _t, ink = cv2.threshold(small, 0, 1, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    ys, xs = np.nonzero(ink)
    if len(ys) < 50:
        return 0.0
    y0, y1 = np.percentile(ys, [2, 98]).astype(int)
    x0, x1 = np.percentile(xs, [2, 98]).astype(int)
    box = ink[y0:y1 + 1, x0:x1 + 1]
    if box.size == 0:
        return 0.0
    return _long_gaps(box.sum(axis=0), box.shape[0]) - _long_gaps(box.sum(axis=1), box.shape[1])


# --------------------------------------------------------------------------- text clean-up

_SPACE_BETWEEN_WIDE = re.compile(r"(?<=[^\x00-\x7f])[ \u3000]+(?=[^\x00-\x7f])")
_SPACE_IN_NUMBER = re.compile(r"(?<=[^\x00-\x7f]) (?=\d)|(?<=\d) (?=[章節条項号の])")


def clean_text(text: str) -> str:
    """Tesseract separates Japanese words by spaces; a Japanese page has none between wide
    characters (``保護 の 申請`` → ``保護の申請``, ``第 1 章`` → ``第1章``)."""
    out = []
    for ln in text.splitlines():
        ln = _SPACE_BETWEEN_WIDE.sub("", ln.strip())
        ln = re.sub(r"(?<=第) (?=\d)|(?<=\d) (?=[章節条])", "", ln)
        out.append(ln)
    return "\n".join(out).strip()


# --------------------------------------------------------------------------- the engine

class Ocr:
    """One Tesseract per language, loaded on first use; one page at a time (a lock).
    ``tessdata``: the folder of the ``ocr-jpn`` model (``models.model_path(OCR_MODEL, config)``)."""

    def __init__(self, tessdata: Path | str):
        self.tessdata = Path(tessdata)
        self._apis: dict[str, object] = {}
        self._lock = threading.Lock()

    def _api(self, lang: str):
        api = self._apis.get(lang)
        if api is None:
            try:
                import tesserocr
            except ImportError as e:
                raise OcrError(f"the OCR engine (tesserocr) is not installed: {e}") from e
            psm = tesserocr.PSM.SINGLE_BLOCK_VERT_TEXT if lang.endswith("_vert") else tesserocr.PSM.AUTO
            try:
                api = tesserocr.PyTessBaseAPI(path=str(self.tessdata), lang=lang, psm=psm,
                                              oem=tesserocr.OEM.LSTM_ONLY)
            except RuntimeError as e:
                raise OcrError(f"Tesseract could not load '{lang}' from {self.tessdata}: {e}") from e
            self._apis[lang] = api
        return api

    def version(self) -> str:
        import tesserocr
        return tesserocr.tesseract_version().splitlines()[0]

    def _read(self, gray: np.ndarray, lang: str) -> tuple[str, float]:
        from PIL import Image
        api = self._api(lang)
        api.SetImage(Image.fromarray(gray))
        api.SetSourceResolution(SCAN_DPI)
        text = api.GetUTF8Text()
        if not text.strip():
            api.Clear()
            return "", 0.0
        confs = [c for c in api.AllWordConfidences() if c >= 0]
        words = api.AllWords() if hasattr(api, "AllWords") else None
        if words and len(words) == len(confs):   # weight by word length: one-character noise weighs little
            n = [max(1, len(w)) for w in words]
            conf = float(sum(c * k for c, k in zip(confs, n)) / sum(n)) if n else 0.0
        else:
            conf = float(np.mean(confs)) if confs else 0.0
        api.Clear()
        return clean_text(text), conf

    def read(self, image, page: int = 1, dpi: int | None = None) -> PageText:
        """OCR one page (a PIL image). ``dpi``: the image's resolution when known (scans)."""
        t0 = time.perf_counter()
        gray = rescale(flatten_light(despeckle(flatten_page(to_gray(image)))), dpi)
        vertical = vertical_score(gray) > 0.1
        with self._lock:
            text, conf = self._read(gray, "jpn_vert" if vertical else "jpn")
            if conf < RETRY_BELOW:
                text2, conf2 = self._read(gray, "jpn" if vertical else "jpn_vert")
                if conf2 > conf + 5 and len(text2) >= 0.5 * len(text):
                    text, conf, vertical = text2, conf2, not vertical
        return PageText(page, text, round(conf, 1), vertical, round(time.perf_counter() - t0, 2))

    def close(self) -> None:
        with self._lock:
            for api in self._apis.values():
                api.End()
            self._apis.clear()


def check(tessdata: Path) -> str:
    """Read a tiny rendered Japanese image (doctor, the self-test): the engine and its data work."""
    from PIL import Image, ImageDraw, ImageFont
    from ..records.export import japanese_font
    want = "生活保護の申請"
    img = Image.new("L", (520, 90), 255)
    ImageDraw.Draw(img).text((20, 18), want, fill=0, font=ImageFont.truetype(str(japanese_font()), 52))
    ocr = Ocr(tessdata)
    try:
        got = ocr.read(img)
        for lang in LANGS:
            ocr._api(lang)
        ver = ocr.version()
    finally:
        ocr.close()
    if want not in got.text.replace(" ", ""):
        raise OcrError(f"OCR read {got.text!r} from an image of {want!r}")
    return f"reads Japanese ({ver}, confidence {got.confidence:.0f})"
