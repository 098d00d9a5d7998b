"""OCR in the manual index (issue 29 a): scanned PDFs and photos are read by Tesseract with its
Japanese data (the ``ocr-jpn`` model) in the indexing job — pages keep their numbers, each page's
text is stored with a confidence, weak pages are listed, vertical writing is read as such, a
cancelled job resumes at the next page, and a corrupt image is one clear skip.

The paper is made from the sample manuals (devkit/scans.py): pages rendered at 200 dpi with a
scanner's skew, blur, dust and JPEG, or photographed at an angle under uneven light.
"""
from __future__ import annotations

import json
import random
import re
import threading

import pytest

from devkit import scans
from engine import models, users
from engine.cli import main
from engine.manuals import index, ingest, ocr
from test_manuals_support import sample_dir

QA_TITLE = "サンプル生活保護問答集（架空）"


@pytest.fixture(scope="module")
def engine():
    e = ocr.Ocr(models.model_path(ocr.OCR_MODEL))
    yield e
    e.close()


def _body(text: str) -> str:
    """The page without its page-number line (the index drops those too)."""
    return "\n".join(ln for ln in text.splitlines() if not re.fullmatch(r"\s*-\s*\d+\s*-\s*", ln))


def _signed_in_data_dir(tmp_path, monkeypatch) -> str:
    from engine.context import open_context
    dd = str(tmp_path / "data")
    c = open_context(dd)
    users.add_user(c.store, None, "kanri", "管理", "admin", "password-123")
    c.close()
    monkeypatch.setenv("MADOGUCHI_PASSWORD", "password-123")
    monkeypatch.setenv("MADOGUCHI_USER", "kanri")
    return dd


def test_the_ocr_model_is_a_known_kind_and_reads_a_rendered_image():
    spec = models.manifest_entry(ocr.OCR_MODEL)
    assert spec.kind == "tessdata" and "tessdata" in models.KINDS
    assert {f.name for f in spec.files} == {"jpn.traineddata", "jpn_vert.traineddata"}
    assert models.verify(ocr.OCR_MODEL, deep=True).ok
    assert models.load_check(ocr.OCR_MODEL).startswith("reads Japanese")


def test_a_missing_ocr_data_folder_is_a_clear_failure(tmp_path):
    with pytest.raises(ocr.OcrError, match="could not load 'jpn"):
        ocr.check(tmp_path)


def test_photo_of_a_page_is_read_with_its_text(tmp_path, engine):
    import pillow_heif
    pillow_heif.register_heif_opener()
    (n, img, truth), = scans.render_pages(sample_dir() / "qa_book.pdf", 200, [9])
    photo = scans.phone_photo(img, random.Random(7))
    for suffix in (".jpg", ".heic"):
        f = tmp_path / f"photo{suffix}"
        photo.convert("RGB").save(f, quality=90)
        doc = ingest.parse(f, ocr=lambda page, render: engine.read(render(), page))
        assert doc.kind == "image" and len(doc.ocr) == 1
        acc = scans.char_accuracy(_body(truth), doc.ocr[0].text)
        assert acc >= 0.9, (suffix, acc, doc.ocr[0].text)
        assert not doc.ocr[0].vertical and doc.ocr[0].confidence > ocr.LOW_CONFIDENCE


def test_vertical_writing_is_measured_and_read_as_such(tmp_path, engine):
    from engine.records.export import japanese_font
    text = ("申請を受けたら、原則として七日以内に家庭訪問を行い、居住の実態と生活の状況を確認する。"
            "訪問は二人で行うことを基本とし、訪問の日時はあらかじめ申請者と調整する。")
    f = tmp_path / "tategaki.png"
    scans.vertical_page(text, japanese_font(), seed=3).save(f)
    doc = ingest.parse(f, ocr=lambda page, render: engine.read(render(), page))
    (pt,) = doc.ocr
    assert pt.vertical
    assert scans.char_accuracy(text, pt.text) >= 0.9, pt.text
    # the same text set horizontally is read horizontally
    from PIL import Image, ImageDraw, ImageFont
    img = Image.new("L", (1400, 300), 255)
    font = ImageFont.truetype(str(japanese_font()), 40)
    ImageDraw.Draw(img).text((30, 30), text[:30] + "\n" + text[30:60], fill=0, font=font, spacing=20)
    assert not engine.read(img).vertical


def test_corrupt_image_is_one_clear_skip_and_nothing_is_lost(tmp_path, monkeypatch, capsys):
    dd = _signed_in_data_dir(tmp_path, monkeypatch)
    docs = tmp_path / "m"
    docs.mkdir()
    (docs / "notice.txt").write_text("# 第1章 保護の申請\n申請は口頭でも受け付ける。\n", encoding="utf-8")
    assert main(["--data-dir", dd, "manuals", "add", str(docs), "--no-embed"]) == 0
    capsys.readouterr()
    bad = docs / "督促状.jpg"
    good = tmp_path / "photo.jpg"
    scans.render_pages(sample_dir() / "qa_book.pdf", 100, [9])[0][1].save(good, quality=80)
    bad.write_bytes(good.read_bytes()[:2000])          # the phone's upload broke off
    assert main(["--data-dir", dd, "manuals", "add", str(docs), "--no-embed"]) == 0
    out = capsys.readouterr().out
    assert "skipped (broken): 督促状.jpg: the image cannot be read" in out
    assert main(["--data-dir", dd, "manuals", "status", "--json"]) == 0
    st = json.loads(capsys.readouterr().out)
    assert st["documents"] == 1 and st["chunks"] >= 1 and st["skipped"] == 1
    (skipped,) = [d for d in st["docs"] if d["status"] == "skipped"]
    assert skipped["reason"] == "broken" and "督促状.jpg" in skipped["message_ja"]


@pytest.mark.slow
def test_scanned_manual_is_indexed_by_ocr_and_found_by_search(tmp_path, monkeypatch, capsys):
    dd = _signed_in_data_dir(tmp_path, monkeypatch)
    pages = list(range(1, 9))
    scan = scans.scanned_pdf(sample_dir() / "qa_book.pdf", tmp_path / "m" / "scan.pdf", dpi=200, pages=pages,
                             seed=11, title=QA_TITLE)
    truth = {n: t for n, _img, t in scans.render_pages(sample_dir() / "qa_book.pdf", 72, pages)}
    assert main(["--data-dir", dd, "manuals", "add", str(scan), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    (o,) = rep["ocr"]
    assert o["pages"] == pages and o["read_now"] == len(pages) and rep["added"] == [str(scan)]
    assert set(o["low_confidence_pages"]) <= set(pages) and o["confidence"] > ocr.LOW_CONFIDENCE
    # the stored text layer: one row per page, with its confidence; body pages read almost exactly
    from engine.context import open_context
    c = open_context(dd)
    try:
        rows = {r["page"]: r for r in c.local.query("SELECT page, text, confidence FROM manual_ocr_pages")}
        assert sorted(rows) == pages
        assert [p for p in pages if rows[p]["confidence"] < ocr.LOW_CONFIDENCE] == o["low_confidence_pages"]
        for p in (4, 5, 6):
            assert scans.char_accuracy(_body(truth[p]), rows[p]["text"]) >= 0.95, p
    finally:
        c.close()
    # found by search with its own citation and the page it is on in the scan
    assert main(["--data-dir", dd, "manuals", "search", "体調が悪くて申請書を書けない人は口頭で申請できる？",
                 "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    top = [h for h in hits if h["citation"] == "サンプル生活保護問答集 問1-2"]
    assert top, hits
    assert "口頭" in truth[top[0]["page"]]                          # the page number is the scan's page
    assert main(["--data-dir", dd, "manuals", "status"]) == 0
    out = capsys.readouterr().out
    assert f"OCR {len(pages)} p confidence" in out and "low-confidence pages:" in out
    # a second add reads nothing again
    assert main(["--data-dir", dd, "manuals", "add", str(scan), "--json"]) == 0
    rep2 = json.loads(capsys.readouterr().out)
    assert rep2["unchanged"] == [str(scan)] and rep2["ocr"] == []


@pytest.mark.slow
def test_cancelled_ocr_job_keeps_its_pages_and_resumes_at_the_next(tmp_path):
    from engine.context import open_context
    pages = [3, 4, 5, 6, 7]
    scan = scans.scanned_pdf(sample_dir() / "qa_book.pdf", tmp_path / "m" / "scan.pdf", pages=pages, seed=5,
                             title=QA_TITLE)
    ctx = open_context(tmp_path / "d", guard_network=False)
    try:
        job = None
        started = threading.Event()

        def on_progress(p):
            if p.message == "OCR p.3":              # the third page is being read: stop after it
                job.cancel()
                started.set()
        job = index.IndexJob(ctx.local, [scan], embed=False, on_progress=on_progress)
        job.start()
        rep = job.wait(300)
        assert started.is_set() and job.error is None and rep.cancelled
        assert ctx.local.query_one("SELECT state FROM jobs WHERE id = ?", (job.job_id,))["state"] == "cancelled"
        kept = [r["page"] for r in ctx.local.query("SELECT page FROM manual_ocr_pages ORDER BY page")]
        assert kept == [1, 2, 3]                        # read and kept, though the document is not indexed yet
        assert index.status(ctx.local).documents == 0
        seen = []
        job2 = index.IndexJob(ctx.local, [scan], embed=False, on_progress=seen.append).start()
        rep2 = job2.wait(300)
        assert job2.error is None and not rep2.cancelled and rep2.added == [str(scan)]
        (o,) = rep2.ocr
        assert o.pages == [1, 2, 3, 4, 5] and o.read_now == 2
        assert [p.message for p in seen if p.message.startswith("OCR")] == ["OCR p.4", "OCR p.5"]
        st = index.status(ctx.local)
        assert st.documents == 1 and st.docs[0].ocr_pages == 5 and st.docs[0].chunks >= 3
    finally:
        ctx.close()
