"""Paper made from the sample manuals, for the OCR tests and bench/documents.py: pages rendered
at a scanner's resolution with a scanner's faults (skew, blur, speckle, JPEG) gathered into a PDF
without a text layer, phone-photo-like pages (perspective, uneven light, blur, JPEG), and a page
of vertical writing (縦書き) drawn glyph by glyph. Everything is seeded, so a figure can be
reproduced. The ground truth of a rendered page is the text layer of the original PDF page.
"""
from __future__ import annotations

import io
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont


@dataclass
class Noise:
    skew_deg: float = 1.2       # the page lies at most this far off straight on the glass
    blur: float = 0.7           # Gaussian radius in pixels
    speckle: float = 0.004      # share of pixels flipped to dust
    jpeg: int = 70              # quality of the scanner's JPEG


def render_pages(pdf_path: Path, dpi: int = 200, pages: list[int] | None = None) -> list[tuple[int, Image.Image, str]]:
    """(1-based page number, grey image at ``dpi``, the page's own text layer) for each page."""
    import pypdfium2 as pdfium
    doc = pdfium.PdfDocument(str(pdf_path))
    out = []
    try:
        for i in range(len(doc)):
            if pages is not None and i + 1 not in pages:
                continue
            page = doc[i]
            img = page.render(scale=dpi / 72, grayscale=True).to_pil().convert("L")
            tp = page.get_textpage()
            text = tp.get_text_range()
            tp.close()
            page.close()
            out.append((i + 1, img, text))
    finally:
        doc.close()
    return out


def scanner(img: Image.Image, rng: random.Random, noise: Noise = Noise()) -> Image.Image:
    """The faults of an office scanner on one page image."""
    img = img.rotate(rng.uniform(-noise.skew_deg, noise.skew_deg), resample=Image.BICUBIC, expand=False,
                     fillcolor=255)
    img = img.filter(ImageFilter.GaussianBlur(noise.blur))
    a = np.asarray(img, dtype=np.int16).copy()
    nrng = np.random.default_rng(rng.randrange(1 << 30))
    a += nrng.normal(0, 6, a.shape).astype(np.int16)            # sensor noise
    dust = nrng.random(a.shape) < noise.speckle
    a[dust] = nrng.integers(0, 120, int(dust.sum()))
    img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    return _jpeg(img, noise.jpeg)


def phone_photo(img: Image.Image, rng: random.Random) -> Image.Image:
    """A page photographed at the counter: tilted phone (perspective), a lamp on one side (uneven
    light and a shadow), slight defocus, a grey desk around the page, phone JPEG."""
    import cv2
    page = np.asarray(img.convert("L"), dtype=np.float32)
    h, w = page.shape
    margin = int(0.08 * max(h, w))
    W, H = w + 2 * margin, h + 2 * margin
    j = lambda: rng.uniform(-0.045, 0.045) * max(h, w)   # noqa: E731
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = np.float32([[margin + j(), margin + j()], [margin + w + j(), margin + j()],
                      [margin + w + j(), margin + h + j()], [margin + j(), margin + h + j()]])
    m = cv2.getPerspectiveTransform(src, dst)
    photo = cv2.warpPerspective(page, m, (W, H), flags=cv2.INTER_CUBIC, borderValue=95.0)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    ang = rng.uniform(0, 2 * np.pi)
    grad = (np.cos(ang) * xx / W + np.sin(ang) * yy / H)
    grad = (grad - grad.min()) / (np.ptp(grad) or 1)
    light = 0.55 + 0.45 * grad                                    # one side at about half the light
    cx, cy = rng.uniform(0.2, 0.8) * W, rng.uniform(0.2, 0.8) * H
    shadow = 1 - 0.18 * np.exp(-(((xx - cx) / (0.25 * W)) ** 2 + ((yy - cy) / (0.25 * H)) ** 2))
    photo = photo * light * shadow
    photo = cv2.GaussianBlur(photo, (0, 0), rng.uniform(0.8, 1.3))
    photo += np.random.default_rng(rng.randrange(1 << 30)).normal(0, 4, photo.shape)
    return _jpeg(Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8)), 80)


def _jpeg(img: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    buf.seek(0)
    return Image.open(buf).convert("L")


def scanned_pdf(pdf_path: Path, out: Path, *, dpi: int = 200, pages: list[int] | None = None, seed: int = 0,
                noise: Noise = Noise(), title: str | None = None) -> Path:
    """``pdf_path`` printed and scanned back: every page an image with scanner noise, no text layer."""
    rng = random.Random(seed)
    imgs = [scanner(img, rng, noise) for _n, img, _t in render_pages(pdf_path, dpi, pages)]
    out.parent.mkdir(parents=True, exist_ok=True)
    kw = {"title": title} if title else {}
    imgs[0].save(out, "PDF", save_all=True, append_images=imgs[1:], resolution=float(dpi), **kw)
    return out


def vertical_page(text: str, font_path: Path, *, size: int = 40, height_chars: int = 24, seed: int = 0) -> Image.Image:
    """Vertical writing (縦書き): columns right to left, each top to bottom; 、。 sit at the top
    right of their cell as in print. Only characters with the same form in both directions
    should be given (ー would need its vertical form)."""
    font = ImageFont.truetype(str(font_path), size)
    cell = int(size * 1.05)
    gap = int(size * 0.9)
    cols = [text[i:i + height_chars] for i in range(0, len(text), height_chars)]
    W = len(cols) * (cell + gap) + 2 * size
    H = height_chars * cell + 2 * size
    img = Image.new("L", (W, H), 255)
    d = ImageDraw.Draw(img)
    for ci, col in enumerate(cols):
        x = W - size - (ci + 1) * (cell + gap) + gap
        for ri, ch in enumerate(col):
            y = size + ri * cell
            if ch in "、。":
                d.text((x + size * 0.55, y - size * 0.45), ch, fill=0, font=font)
            else:
                d.text((x, y), ch, fill=0, font=font)
    return scanner(img, random.Random(seed), Noise(skew_deg=0.5, blur=0.5, speckle=0.001, jpeg=80))


def char_accuracy(truth: str, got: str) -> float:
    """1 − character error rate on the text without whitespace (NFKC; punctuation counts)."""
    import unicodedata
    from engine.asr.metrics import edit_distance
    a = "".join(unicodedata.normalize("NFKC", truth).split())
    b = "".join(unicodedata.normalize("NFKC", got).split())
    if not a:
        return 1.0 if not b else 0.0
    return max(0.0, 1 - edit_distance(a, b) / len(a))
