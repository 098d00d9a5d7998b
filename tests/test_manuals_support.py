"""Shared helpers for the manual-search tests (no tests here): the sample corpus is rendered to
real PDF/DOCX/HTML once per test session, and fault files are made with the same libraries."""
from __future__ import annotations

import functools
import shutil
import tempfile
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", message="Dimensions for page format")


@functools.lru_cache(maxsize=None)
def sample_dir() -> Path:
    from engine.manuals import samples
    d = Path(tempfile.mkdtemp(prefix="madoguchi-manuals-"))
    samples.build(d)
    return d


def copy_samples(dst: Path) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for f in sample_dir().iterdir():
        shutil.copy2(f, dst / f.name)
    return dst


def scanned_pdf(path: Path, pages: int = 2) -> Path:
    from fpdf import FPDF
    from PIL import Image, ImageDraw
    img = Image.new("L", (600, 800), 255)
    ImageDraw.Draw(img).rectangle((50, 50, 550, 120), fill=0)   # a "scanned" black bar, no text layer
    pdf = FPDF()
    for _ in range(pages):
        pdf.add_page()
        pdf.image(img, x=10, y=10, w=150)
    pdf.output(str(path))
    return path


def encrypted_pdf(path: Path) -> Path:
    from engine.manuals.samples import japanese_font
    from fpdf import FPDF
    pdf = FPDF()
    pdf.add_font("jp", "", str(japanese_font()))
    pdf.set_font("jp", size=12)
    pdf.add_page()
    pdf.multi_cell(0, 8, "問1-1 パスワード付きの資料\n(答) この文書は開けないはずである。")
    pdf.set_encryption(owner_password="owner", user_password="user")
    pdf.output(str(path))
    return path


def truncated(src: Path, dst: Path) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 3])
    return dst
