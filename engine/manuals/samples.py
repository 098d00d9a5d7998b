"""Build the project's own sample manual set (``resources/manuals/*.txt``) into real files.

The sources are original text written for Madoguchi (no copyrighted manual text) in a tiny markup:
``%title``/``%format``/``%page`` header lines, ``# `` chapter (new page), ``## `` sub-heading,
anything else a paragraph. :func:`build` renders each source as the office would receive it:
the 問答集 and the 手順書 as A5 PDF (fpdf2 + IPAGothic, with cover, 目次, running header and page
numbers), the 課長通知 as DOCX (python-docx, heading styles, page breaks), the 事例集 as HTML.
"""
from __future__ import annotations

import html
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import MadoguchiError
from ..models import app_root


def sources_dir() -> Path:
    return app_root() / "resources" / "manuals"


@dataclass
class Source:
    name: str
    title: str
    fmt: str
    page: str = "A5"
    blocks: list[tuple[str, str]] = field(default_factory=list)   # (kind: h1|h2|p, text)


def load_source(path: Path) -> Source:
    src = Source(path.stem, path.stem, "pdf")
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.rstrip()
        if not line.strip() or line.startswith("//"):
            continue
        if line.startswith("%"):
            k, _, v = line[1:].partition(" ")
            setattr(src, {"title": "title", "format": "fmt", "page": "page"}[k], v.strip())
        elif line.startswith("## "):
            src.blocks.append(("h2", line[3:].strip()))
        elif line.startswith("# "):
            src.blocks.append(("h1", line[2:].strip()))
        else:
            src.blocks.append(("p", line.strip()))
    return src


def sources() -> list[Source]:
    return [load_source(p) for p in sorted(sources_dir().glob("*.txt"))]


def japanese_font() -> Path:
    """IPAGothic (or another Japanese TTF) through fontconfig."""
    for name in ("IPAGothic", "IPAexGothic", "Noto Sans CJK JP"):
        try:
            out = subprocess.run(["fc-match", "-f", "%{file}", name], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        p = Path(out.strip())
        if p.suffix.lower() in (".ttf", ".otf") and p.is_file():
            return p
    for p in ("/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf", "C:/Windows/Fonts/msgothic.ttc"):
        if Path(p).is_file():
            return Path(p)
    raise MadoguchiError("no Japanese TrueType font found (install fonts-ipafont-gothic)",
                         ja="日本語フォントが見つかりません。")


# --------------------------------------------------------------------------- PDF

PAGE_MM = {"A4": (210, 297), "A5": (148, 210), "B6": (128, 182)}


def render_pdf(src: Source, out: Path, font: Path | None = None) -> Path:
    from fpdf import FPDF
    from fpdf.enums import WrapMode

    font = font or japanese_font()
    short = re.sub(r"[（(].*?[）)]", "", src.title).strip()

    class Book(FPDF):
        def header(self):
            if self.page_no() > 1:
                self.set_font("jp", size=7)
                self.cell(0, 5, short, align="R", new_x="LMARGIN", new_y="NEXT")
                self.ln(2)

        def footer(self):
            if self.page_no() > 1:
                self.set_y(-12)
                self.set_font("jp", size=8)
                self.cell(0, 6, f"- {self.page_no()} -", align="C")

    pdf = Book(format=PAGE_MM.get(src.page, src.page))
    pdf.set_title(src.title)
    pdf.set_author("Madoguchi サンプル資料（架空）")
    pdf.add_font("jp", "", str(font))
    pdf.add_font("jp", "B", str(font))
    pdf.set_margins(14, 12, 14)
    pdf.set_auto_page_break(True, margin=16)

    pdf.add_page()
    pdf.set_font("jp", size=18)
    pdf.ln(50)
    pdf.multi_cell(0, 10, src.title, align="C", wrapmode=WrapMode.CHAR, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(20)
    pdf.set_font("jp", size=9)
    pdf.multi_cell(0, 6, "この資料は Madoguchi の試験用に書き下ろした架空の資料です。実在の通知・手帳・問答集の本文ではありません。",
                   align="C", wrapmode=WrapMode.CHAR, new_x="LMARGIN", new_y="NEXT")

    def toc(pdf_, outline):
        pdf_.set_font("jp", size=12)
        pdf_.cell(0, 10, "目次", new_x="LMARGIN", new_y="NEXT")
        pdf_.set_font("jp", size=9)
        for sec in outline:
            if sec.level > 0:
                continue
            label = f"{sec.name} "
            pdf_.cell(0, 6, label + "." * max(4, 40 - len(label) * 2) + f" {sec.page_number}",
                      new_x="LMARGIN", new_y="NEXT")

    n_h1 = sum(1 for k, _ in src.blocks if k == "h1")
    pdf.add_page()
    pdf.insert_toc_placeholder(toc, pages=max(1, (n_h1 + 19) // 20))

    for kind, text in src.blocks:
        if kind == "h1":
            pdf.add_page()
            pdf.start_section(text, level=0)
            pdf.set_font("jp", "B", size=13)
            pdf.multi_cell(0, 9, text, wrapmode=WrapMode.CHAR, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(2)
        elif kind == "h2":
            pdf.ln(2)
            pdf.set_font("jp", "B", size=11)
            pdf.multi_cell(0, 7, text, wrapmode=WrapMode.CHAR, new_x="LMARGIN", new_y="NEXT")
        else:
            pdf.set_font("jp", size=10.5)
            pdf.multi_cell(0, 6.8, text, wrapmode=WrapMode.CHAR, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(1.2)
    out.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(out))
    return out


# --------------------------------------------------------------------------- DOCX / HTML

def render_docx(src: Source, out: Path) -> Path:
    import docx
    d = docx.Document()
    d.core_properties.title = src.title
    d.core_properties.author = "Madoguchi サンプル資料（架空）"
    d.add_heading(src.title, level=0)
    d.add_paragraph("この資料は Madoguchi の試験用に書き下ろした架空の資料です。")
    for kind, text in src.blocks:
        if kind == "h1":
            d.add_page_break()
            d.add_heading(text, level=1)
        elif kind == "h2":
            d.add_heading(text, level=2)
        else:
            d.add_paragraph(text)
    out.parent.mkdir(parents=True, exist_ok=True)
    d.save(str(out))
    return out


def render_html(src: Source, out: Path) -> Path:
    parts = [f"<!DOCTYPE html><html lang='ja'><head><meta charset='utf-8'><title>{html.escape(src.title)}</title>"
             "</head><body>", f"<h1>{html.escape(src.title)}</h1>",
             "<p class='note'>この資料は Madoguchi の試験用に書き下ろした架空の資料です。</p>"]
    for kind, text in src.blocks:
        tag = {"h1": "h2", "h2": "h3", "p": "p"}[kind]
        parts.append(f"<{tag}>{html.escape(text)}</{tag}>")
    parts.append("</body></html>")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(parts), encoding="utf-8")
    return out


RENDERERS = {"pdf": render_pdf, "docx": render_docx, "html": render_html}
SUFFIX = {"pdf": ".pdf", "docx": ".docx", "html": ".html"}


def build(out_dir: Path | str, fmt: str | None = None) -> list[Path]:
    """Render every sample source into ``out_dir`` (in its own format, or all in ``fmt``)."""
    out_dir = Path(out_dir)
    made = []
    for src in sources():
        f = fmt or src.fmt
        made.append(RENDERERS[f](src, out_dir / (src.name + SUFFIX[f])))
    return made


def copy_sources(out_dir: Path) -> None:
    shutil.copytree(sources_dir(), out_dir, dirs_exist_ok=True)


if __name__ == "__main__":
    import sys
    for p in build(sys.argv[1] if len(sys.argv) > 1 else "sample-manuals"):
        print(p)
