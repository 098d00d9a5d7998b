"""Read manuals (PDF, DOCX, HTML, TXT/Markdown; scanned PDFs and photos through OCR) into
structure-aware chunks.

Each format becomes a list of :class:`Line` (text + 1-based page + heading hint); :func:`chunk_lines`
turns lines into :class:`Chunk` objects that keep 問/答 pairs together with their number, carry
the heading path (第1章 …, 第1 世帯の認定 › 1 … › (1) …), recognise notice numbering and law
articles, and know their pages and citation string (``問答集 問3-2``, ``課長通知 第3の1の(2)``).

Files that cannot be read raise :class:`UnreadableFile` with a ``reason`` code
(``scanned``, ``encrypted``, ``broken``, ``unsupported``, ``empty``, ``ocr``).

A PDF without a text layer and an image (JPEG/PNG/HEIC/TIFF, one page per frame) are read by the
``ocr`` callable :func:`parse` is given — ``ocr(page_number, render) -> PageText``, ``render()``
giving the page's image — which the indexer backs with its page cache (``manuals.index``); the
pages keep their numbers. Without one, a scanned PDF is skipped as ``scanned`` as before.
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import MadoguchiError
from .ocr import IMAGE_SUFFIXES, SCAN_DPI, OcrError, PageText
from .tokenize import normalize

SUFFIXES = {".pdf": "pdf", ".docx": "docx", ".html": "html", ".htm": "html", ".txt": "txt", ".md": "md",
            **{s: "image" for s in IMAGE_SUFFIXES}}
OcrFn = Callable[[int, Callable[[], object]], PageText]     # (page number, render the page) -> its text
MAX_CHUNK = 900      # characters; longer sections are split at sentence ends
TARGET_CHUNK = 600


class UnreadableFile(MadoguchiError):
    """A manual file that is skipped; ``reason`` is a short code, the message says why."""
    ja_default = "読み込めないファイルがあります（スキャン画像のみ・パスワード付き・破損）。テキストを含む版に差し替えてください。"

    def __init__(self, reason: str, message: str, ja: str | None = None):
        super().__init__(message, ja)
        self.reason = reason


class OcrCancelled(Exception):
    """The ``ocr`` callable was told to stop (a cancelled indexing run); the pages read so far are kept."""


_JA_REASON = {
    "scanned": "文字情報のないスキャンPDFです。OCR処理した版を置いてください。",
    "encrypted": "パスワードで保護されています。保護を解除した版を置いてください。",
    "broken": "ファイルが壊れていて読めません。元のファイルを置き直してください。",
    "unsupported": "対応していない形式です（PDF・DOCX・HTML・TXT・MD・画像（JPEG・PNG・HEIC・TIFF）に対応）。",
    "empty": "本文がありません。",
    "ocr": "文字認識（OCR）を実行できませんでした。システム管理者に連絡してください（madoguchi doctor）。",
}


def unreadable(reason: str, path: Path, detail: str) -> UnreadableFile:
    return UnreadableFile(reason, f"{path.name}: {detail}", f"{path.name}: {_JA_REASON[reason]}")


@dataclass
class Line:
    text: str
    page: int | None = None
    heading: int = 0          # >0: the source marks this line as a heading of that level (DOCX/HTML/MD)


@dataclass
class Chunk:
    seq: int
    text: str
    heading: list[str]
    cite_key: str
    citation: str
    page_start: int | None
    page_end: int | None


@dataclass
class Document:
    path: Path
    title: str
    kind: str
    pages: int
    chunks: list[Chunk] = field(default_factory=list)
    ocr: list[PageText] = field(default_factory=list)     # the pages read by OCR (empty: a text layer)


# --------------------------------------------------------------------------- readers

def read_pdf(path: Path, ocr: OcrFn | None = None, read: list | None = None) -> tuple[str, int, list[Line]]:
    import pypdfium2 as pdfium
    try:
        pdf = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as e:
        msg = str(e)
        if "assword" in msg:
            raise unreadable("encrypted", path, "the PDF is password-protected") from e
        raise unreadable("broken", path, f"the PDF cannot be opened ({msg})") from e
    try:
        meta = pdf.get_metadata_dict() or {}
        pages: list[list[str]] = []
        for i in range(len(pdf)):
            page = pdf[i]
            tp = page.get_textpage()
            text = tp.get_text_range()
            tp.close()
            page.close()
            pages.append([ln for ln in re.split(r"\r\n|\r|\n", text)])
        n = len(pages)
        chars = sum(len("".join(p).strip()) for p in pages)
        if n and chars < 20 * n:
            if ocr is None:
                raise unreadable("scanned", path, f"no text layer ({n} pages, {chars} characters): "
                                                  "a scanned PDF needs OCR first")
            pages = []
            for i in range(n):
                pt = ocr(i + 1, lambda i=i: _render(pdf, i))
                read.append(pt)
                pages.append(pt.lines)
    finally:
        pdf.close()
    lines = []
    for pno, plines in enumerate(_strip_running(pages), start=1):
        lines.extend(Line(t, pno) for t in plines)
    return (meta.get("Title") or "").strip(), n, lines


def _render(pdf, i: int):
    """Page ``i`` of a scanned PDF as a grey image at :data:`SCAN_DPI` (its resolution in ``info``)."""
    page = pdf[i]
    try:
        img = page.render(scale=SCAN_DPI / 72, grayscale=True).to_pil()
    finally:
        page.close()
    img.info["dpi"] = (SCAN_DPI, SCAN_DPI)
    return img


def read_image(path: Path, ocr: OcrFn | None = None, read: list | None = None) -> tuple[str, int, list[Line]]:
    """A photo or scan image (JPEG/PNG/HEIC/TIFF): each frame one page, read by OCR."""
    from PIL import Image, UnidentifiedImageError
    if ocr is None:
        raise unreadable("scanned", path, "an image needs OCR, which this run does not have")
    try:
        import pillow_heif
        pillow_heif.register_heif_opener()
    except ImportError:   # HEIC photos then fail as unreadable images; the rest works
        pass
    try:
        img = Image.open(path)
        img.load()
        n = getattr(img, "n_frames", 1)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise unreadable("broken", path, f"the image cannot be read ({e.__class__.__name__}: {e})") from e
    pages = []
    with img:
        for i in range(n):
            def render(i=i):
                img.seek(i)
                return img.copy()
            pt = ocr(i + 1, render)
            read.append(pt)
            pages.append(pt.lines)
    lines = [Line(t, pno if n > 1 else None) for pno, plines in enumerate(_strip_running(pages), start=1)
             for t in plines]
    return "", n if n > 1 else 0, lines


def _strip_running(pages: list[list[str]]) -> list[list[str]]:
    """Drop running headers/footers (same line on most pages, digits ignored) and page numbers."""
    def key(s):
        return re.sub(r"\d+", "#", normalize(s).strip())
    edge = Counter()
    for p in pages:
        ne = [s for s in p if s.strip()]
        for s in set(ne[:2] + ne[-2:]):
            edge[key(s)] += 1
    running = {k for k, c in edge.items() if len(pages) >= 3 and c >= 0.5 * len(pages)}
    out = []
    for p in pages:
        keep = []
        for s in p:
            k = key(s)
            if not k or k in running or re.fullmatch(r"[-‐−–— ]*#[-‐−–— ]*|#\s*/\s*#|p\.?\s*#", k):
                continue
            keep.append(s)
        out.append(keep)
    return out


def read_docx(path: Path) -> tuple[str, int, list[Line]]:
    import zipfile
    import docx
    from docx.opc.exceptions import PackageNotFoundError
    try:
        d = docx.Document(str(path))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as e:
        if _is_ole(path):
            raise unreadable("encrypted", path, "the DOCX is password-protected") from e
        raise unreadable("broken", path, f"the DOCX cannot be opened ({e.__class__.__name__})") from e
    page = 1
    lines: list[Line] = []
    W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
    for block in d.iter_inner_content():
        if hasattr(block, "rows"):          # a table: one line per row, cells joined
            for row in block.rows:
                cells = []
                for c in row.cells:
                    t = c.text.strip()
                    if t and (not cells or cells[-1] != t):
                        cells.append(t)
                if cells:
                    lines.append(Line(" ｜ ".join(cells), page))
            continue
        p = block
        if p.paragraph_format.page_break_before and lines:
            page += 1
        style = (p.style.name if p.style is not None else "") or ""
        m = re.match(r"(?:Heading|見出し)\s*(\d)", style)
        level = int(m.group(1)) if m else (1 if style == "Title" else 0)
        text = ""
        for el in p._p.iter():
            if el.tag == W + "t":
                text += el.text or ""
            elif el.tag == W + "tab":
                text += " "
            elif el.tag == W + "br" and el.get(W + "type") == "page":
                if text.strip():
                    lines.append(Line(text, page, level))
                text = ""
                page += 1
            elif el.tag == W + "br":
                text += "\n"
        for t in text.split("\n"):
            if t.strip():
                lines.append(Line(t, page, level))
    title = (d.core_properties.title or "").strip()
    return title, page, lines


def _is_ole(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(8) == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


_BLOCKS = {"h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "dt", "dd", "pre", "blockquote", "tr", "caption",
           "div", "section", "article", "td", "th"}


def read_html(path: Path) -> tuple[str, int, list[Line]]:
    from bs4 import BeautifulSoup
    raw = path.read_bytes()
    soup = BeautifulSoup(raw, "html.parser")
    for t in soup(["script", "style", "nav", "header", "footer", "noscript"]):
        t.decompose()
    title = soup.title.get_text(strip=True) if soup.title else ""
    root = soup.body or soup
    lines: list[Line] = []
    for el in root.find_all(_BLOCKS):
        if el.find(_BLOCKS):            # only innermost blocks, so nothing is read twice
            continue
        if el.name == "tr":
            text = " ｜ ".join(c.get_text(" ", strip=True) for c in el.find_all(["td", "th"]))
        else:
            text = el.get_text("", strip=True)
        if not text:
            continue
        level = int(el.name[1]) if re.fullmatch(r"h\d", el.name) else 0
        for t in text.splitlines():
            if t.strip():
                lines.append(Line(t, None, level))
    return title, 0, lines


def read_text(path: Path) -> tuple[str, int, list[Line]]:
    raw = path.read_bytes()
    for enc in ("utf-8-sig", "cp932", "euc-jp"):
        try:
            text = raw.decode(enc)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise unreadable("broken", path, "the text is neither UTF-8 nor Shift_JIS/EUC-JP")
    md = path.suffix.lower() == ".md"
    pages = text.split("\f")
    lines: list[Line] = []
    title = ""
    for pno, ptext in enumerate(pages, start=1):
        for t in ptext.splitlines():
            level = 0
            if t.startswith("%title "):          # the sample sources' title line
                title = title or t[7:].strip()
                continue
            if t.startswith(("//", "%")):
                continue
            m = re.match(r"(#{1,6})\s+(.*)", t)  # Markdown headings (also common in plain-text notes)
            if m:
                level, t = len(m.group(1)), m.group(2)
                if md and level == 1 and not title:
                    title = t.strip()
            if md:
                t = re.sub(r"^\s*(?:[-*+]\s+|>\s*)", "", t).replace("**", "")
            if t.strip():
                lines.append(Line(t, pno if len(pages) > 1 else None, level))
    return title, (len(pages) if len(pages) > 1 else 0), lines


READERS = {"pdf": read_pdf, "docx": read_docx, "html": read_html, "txt": read_text, "md": read_text,
           "image": read_image}
OCR_READERS = ("pdf", "image")


# --------------------------------------------------------------------------- structure

KANJI_NUM = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10}
_N = r"(\d+|[一二三四五六七八九十]+)"
_KATA = "アイウエオカキクケコサシスセソタチツテト"

# (kind, regex, level). Checked in order on the NFKC-normalised line.
PATTERNS = [
    ("toc", re.compile(r".*(?:\.{3,}|…{2,}|・{3,}|‥{2,})\s*\d+\s*$"), 0),
    ("qa", re.compile(r"^(?:[(（]問\s*(?P<p>第\d+の\d+(?:の\d+)?|\d+(?:-\d+){0,2})[)）]"
                      r"|問\s*(?P<q>第\d+の\d+(?:の\d+)?|\d+(?:-\d+){0,2})(?=[\s(（]|$))\s*(?P<rest>.*)$"), 9),
    ("chapter", re.compile(rf"^第{_N}章\s*(.*)$"), 1),
    ("section", re.compile(rf"^第{_N}節\s*(.*)$"), 2),
    ("article", re.compile(r"^((?:法|施行令|施行規則|令|規則)?第\d+条(?:の\d+)?)\s*(.*)$"), 3),
    ("n1", re.compile(rf"^第{_N}(?![章節条\d])\s+(\S.*)$"), 1),
    ("n2", re.compile(r"^(\d{1,2})\s+(\S.*)$"), 2),
    ("n3", re.compile(r"^[(（](\d{1,2})[)）]\s*(\S.*)$"), 3),
    ("n4", re.compile(rf"^([{_KATA}])\s+(\S.*)$"), 4),
]


def _num(s: str) -> int:
    if s.isdigit():
        return int(s)
    if s in KANJI_NUM:
        return KANJI_NUM[s]
    if s.startswith("十"):
        return 10 + KANJI_NUM.get(s[1:], 0)
    if len(s) == 2 and s[1] == "十":
        return KANJI_NUM[s[0]] * 10
    return 10 * KANJI_NUM.get(s[0], 0) + KANJI_NUM.get(s[-1], 0)


def classify(text: str) -> tuple[str, str, str, int] | None:
    """(kind, key, title, level) for a structural line, else None. ``key`` is the citation part."""
    t = normalize(text).strip()
    for kind, rx, level in PATTERNS:
        m = rx.match(t)
        if not m:
            continue
        if kind == "toc":
            return ("toc", "", "", 0)
        if kind == "qa":
            return ("qa", "問" + (m.group("p") or m.group("q")), m.group("rest"), level)
        g1, rest = m.group(1), (m.group(2) if m.lastindex and m.lastindex >= 2 else "")
        if kind == "chapter":
            return ("chapter", f"第{_num(g1)}章", rest, level)
        if kind == "section":
            return ("section", f"第{_num(g1)}節", rest, level)
        if kind == "article":
            key = g1 if not g1.startswith("第") else g1
            return ("article", key, rest, level)
        if kind == "n1":
            return ("n1", f"第{_num(g1)}", rest, level)
        if kind == "n2":
            return ("n2", g1, rest, level)
        if kind == "n3":
            return ("n3", f"({g1})", rest, level)
        if kind == "n4":
            return ("n4", g1, rest, level)
    return None


def _label(key: str, title: str) -> str:
    title = re.split(r"[。]", title, maxsplit=1)[0]
    if len(title) > 30:
        title = title[:30] + "…"
    return f"{key} {title}".strip()


def _cite_from_path(path: list[tuple[int, str, str, str]]) -> str:
    """第3 › 1 › (2) → 第3の1の(2); 第2章 › 第1節 → 第2章第1節; 法第4条 stands alone."""
    keys = [(kind, key) for _lvl, kind, key, _label in path if key]
    if not keys:
        return ""
    for kind, key in reversed(keys):
        if kind == "article":
            return key
    if keys[0][0] in ("chapter", "section"):
        return "".join(k for kind, k in keys if kind in ("chapter", "section"))
    parts = [k for kind, k in keys if kind.startswith("n")]
    return "の".join(parts)


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[。！？])", text) if s]


def short_title(title: str) -> str:
    """The document name used in citations: the title without year/edition parentheses and 'サンプル'."""
    t = re.sub(r"[（(][^）)]*[）)]", "", normalize(title)).strip()
    return t or title


def chunk_lines(lines: list[Line], doc_title: str) -> list[Chunk]:
    cite_doc = short_title(doc_title)
    chunks: list[Chunk] = []
    path: list[tuple[int, str, str, str]] = []     # (level, kind, key, label)
    cur: dict | None = None

    def flush():
        nonlocal cur
        if cur is None:
            return
        body = [(t, p) for t, p in cur["lines"]]
        text = "".join(t for t, _ in body).strip()
        title_only = (len(body) == 1 and cur["kind"] not in ("qa", "text")
                      and "。" not in text and len(text) <= 40)
        if text and not title_only:
            pages = [p for _, p in body if p is not None]
            key = cur["key"]
            # the heading path: titles above the chunk; a numbered body item ((1) …, ア …) is not a title
            cp = cur["path"]
            heading = [lab for i, (_l, k, _k, lab) in enumerate(cp) if not (i == len(cp) - 1 and k in ("n3", "n4"))]
            parts = _split_long(body)
            for ptext, ppages in parts:
                chunks.append(Chunk(
                    seq=len(chunks), text=ptext, heading=heading, cite_key=key,
                    citation=_citation(cite_doc, key, heading, pages),
                    page_start=min(ppages) if ppages else (min(pages) if pages else None),
                    page_end=max(ppages) if ppages else (max(pages) if pages else None)))
        cur = None

    def start(kind, key, first_line, page):
        nonlocal cur
        cur = {"kind": kind, "key": key, "path": list(path), "lines": [(first_line, page)]}

    for ln in lines:
        raw = unicodedata.normalize("NFKC", ln.text).replace("\u3000", " ").strip()
        if not raw or raw == "目次":
            continue
        c = classify(raw)
        if c is None and ln.heading:
            c = ("heading", "", raw, ln.heading)
        if c is not None and c[0] == "toc":
            continue
        if c is None:
            if cur is None:
                start("text", _cite_from_path(path), raw, ln.page)
            else:
                cur["lines"].append((raw, ln.page))
            continue
        kind, key, title, level = c
        in_qa = cur is not None and cur["kind"] == "qa"
        if in_qa and kind in ("n2", "n3", "n4", "article") and not ln.heading:
            cur["lines"].append((raw, ln.page))       # numbered points inside an answer stay in the answer
            continue
        flush()
        if kind == "qa":
            start("qa", key, raw, ln.page)
            continue
        while path and path[-1][0] >= level:
            path.pop()
        path.append((level, kind, key, _label(key, title) if key else title))
        start(kind, _cite_from_path(path), raw, ln.page)
    flush()
    return chunks


def _citation(cite_doc: str, key: str, heading: list[str], pages: list[int]) -> str:
    if key:
        return f"{cite_doc} {key}"
    if heading:
        return f"{cite_doc} {heading[-1]}"
    return f"{cite_doc} p.{min(pages)}" if pages else cite_doc


def _split_long(body: list[tuple[str, int | None]]) -> list[tuple[str, list[int]]]:
    text = "".join(t for t, _ in body)
    if len(text) <= MAX_CHUNK:
        return [(text.strip(), [p for _, p in body if p is not None])]
    # sentence pieces with the page each starts on
    pieces: list[tuple[str, int | None]] = []
    for t, p in body:
        for s in _sentences(t):
            if pieces and not re.search(r"[。！？]$", pieces[-1][0]):
                pieces[-1] = (pieces[-1][0] + s, pieces[-1][1])
            else:
                pieces.append((s, p))
    out: list[tuple[str, list[int]]] = []
    buf, pg = "", []
    for s, p in pieces:
        if buf and len(buf) + len(s) > TARGET_CHUNK:
            out.append((buf.strip(), pg))
            buf, pg = "", []
        buf += s
        if p is not None:
            pg.append(p)
    if buf.strip():
        out.append((buf.strip(), pg))
    return out


# --------------------------------------------------------------------------- entry point

def kind_of(path: Path) -> str | None:
    return SUFFIXES.get(path.suffix.lower())


def parse(path: Path | str, ocr: OcrFn | None = None) -> Document:
    """Read and chunk one manual file; ``ocr`` reads pages without text (see the module doc).
    Raises :class:`UnreadableFile`, or :class:`OcrCancelled` from ``ocr``."""
    path = Path(path).resolve()
    kind = kind_of(path)
    if kind is None:
        raise unreadable("unsupported", path, f"unsupported file type '{path.suffix}'")
    read: list[PageText] = []
    try:
        if kind in OCR_READERS:
            title, pages, lines = READERS[kind](path, ocr, read)
        else:
            title, pages, lines = READERS[kind](path)
    except (UnreadableFile, OcrCancelled):
        raise
    except OcrError as e:
        raise unreadable("ocr", path, f"OCR is not available: {e}") from e
    except OSError as e:
        raise unreadable("broken", path, f"cannot be read ({e.strerror or e})") from e
    except Exception as e:  # a library choking on a malformed file: report it, keep the folder going
        raise unreadable("broken", path, f"cannot be parsed ({e.__class__.__name__}: {e})") from e
    title = title or path.stem
    chunks = chunk_lines(lines, title)
    if not chunks:
        raise unreadable("empty", path, "no text found" + (" by OCR" if read else ""))
    return Document(path, title, kind, pages, chunks, read)
