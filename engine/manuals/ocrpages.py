"""The OCR text layer of the manual index (``manual_ocr_pages`` in ``ctx.local``): the page cache
the indexer reads scans and photos through, and what OCR made of each file (confidence, the
pages a person should check, vertical pages)."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable

from . import ingest
from . import ocr as ocr_mod


@dataclass
class OcrDoc:
    """What OCR made of one file in this run."""
    path: str
    pages: list[int]                 # the pages read by OCR (all of the file's pages)
    read_now: int                    # of them read in this run (the rest came from the page cache)
    confidence: float                # mean of the pages' confidences, 0–100
    low_confidence_pages: list[int]  # pages below ocr.LOW_CONFIDENCE: a person should check them
    vertical_pages: list[int]        # pages read as vertical writing (縦書き)


class PageReader:
    """The ``ocr`` callable of :func:`ingest.parse` for one file: a page already read from the same
    content by the same method comes from ``manual_ocr_pages``; a new one is read and saved at once
    (its own transaction), so a cancelled run loses nothing and resumes at the next page."""

    def __init__(self, store, sha: str, engine: Callable[[], ocr_mod.Ocr], cancel: threading.Event | None,
                 on_page: Callable[[int], None] = lambda page: None):
        self.store, self.sha, self.engine, self.cancel, self.on_page = store, sha, engine, cancel, on_page
        self.read_now = 0

    def __call__(self, page: int, render) -> ocr_mod.PageText:
        row = self.store.query_one("SELECT text, confidence, vertical, seconds FROM manual_ocr_pages "
                                   "WHERE sha256 = ? AND page = ? AND method = ?", (self.sha, page, ocr_mod.METHOD))
        if row:
            return ocr_mod.PageText(page, row["text"], row["confidence"], bool(row["vertical"]), row["seconds"])
        if self.cancel is not None and self.cancel.is_set():
            raise ingest.OcrCancelled()
        self.on_page(page)
        image = render()
        pt = self.engine().read(image, page, dpi=image_dpi(image))
        self.store.execute("INSERT OR REPLACE INTO manual_ocr_pages (sha256, page, method, text, confidence, "
                           "vertical, seconds) VALUES (?,?,?,?,?,?,?)",
                           (self.sha, page, ocr_mod.METHOD, pt.text, pt.confidence, int(pt.vertical), pt.seconds))
        self.read_now += 1
        return pt


def image_dpi(image) -> int | None:
    d = image.info.get("dpi")
    try:
        return int(round(float(d[0]))) if d and float(d[0]) >= 100 else None
    except (TypeError, ValueError):
        return None


def ocr_summary(path: str, pages: list[ocr_mod.PageText], read_now: int) -> OcrDoc:
    return OcrDoc(path=path, pages=[p.page for p in pages], read_now=read_now,
                  confidence=round(sum(p.confidence for p in pages) / len(pages), 1) if pages else 0.0,
                  low_confidence_pages=[p.page for p in pages if p.low],
                  vertical_pages=[p.page for p in pages if p.vertical])


class LazyOcr:
    """The OCR engine, loaded when the first page needs it (most runs read no scan)."""

    def __init__(self, engine, config):
        self._engine, self.config = engine, config

    def __call__(self) -> ocr_mod.Ocr:
        if self._engine is None:
            from ..models import ModelError, model_path
            try:
                self._engine = ocr_mod.Ocr(model_path(ocr_mod.OCR_MODEL, self.config))
            except ModelError as e:
                raise ocr_mod.OcrError(str(e)) from e
        return self._engine


def page_confidences(store, sha: str) -> list[tuple[int, float]]:
    """(page, confidence) of every page of content ``sha`` read by the current method, in page order."""
    return [(r["page"], r["confidence"]) for r in store.query(
        "SELECT page, confidence FROM manual_ocr_pages WHERE sha256 = ? AND method = ? ORDER BY page",
        (sha, ocr_mod.METHOD))]


def forget_pages(store, sha: str) -> None:
    """Drop the OCR pages of content ``sha`` (the file changed or left the index)."""
    store.execute("DELETE FROM manual_ocr_pages WHERE sha256 = ?", (sha,))
