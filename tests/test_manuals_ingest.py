"""Ingest: real PDFs/DOCX/HTML rendered from the sample sources, structure-aware chunks, faults."""
from __future__ import annotations

import re

import pypdfium2 as pdfium
import pytest

from engine.manuals import ingest
from engine.manuals.tokenize import normalize, terms
from test_manuals_support import encrypted_pdf, sample_dir, scanned_pdf, truncated


@pytest.fixture(scope="module")
def qa():
    return ingest.parse(sample_dir() / "qa_book.pdf")


def _page_text(pdf_path, page):
    pdf = pdfium.PdfDocument(str(pdf_path))
    try:
        return normalize(pdf[page - 1].get_textpage().get_text_range()).replace("\r\n", "").replace("\n", "")
    finally:
        pdf.close()


def test_pdf_qa_pairs_keep_question_and_answer_with_number(qa):
    by_key = {c.cite_key: c for c in qa.chunks}
    src = (ingest.Path(__file__).resolve().parent.parent / "resources/manuals/qa_book.txt").read_text("utf-8")
    expected = re.findall(r"^## (問\d+-\d+)", src, re.M)
    assert len(expected) >= 50
    assert [k for k in by_key if k.startswith("問")] == expected       # every 問, in order, none invented
    c = by_key["問3-2"]
    assert c.text.startswith("問3-2 自動車の保有")
    assert "(問)" in c.text and "(答)" in c.text                      # the pair stays together
    assert "任意保険" in c.text                                        # …through the end of the answer
    assert "問3-3" not in c.text
    assert c.heading == ["第3章 資産の活用"]
    assert c.citation == "サンプル生活保護問答集 問3-2"


def test_pdf_pages_are_where_the_text_is(qa):
    for c in qa.chunks[1:]:
        head = c.text[:12]
        assert head in _page_text(sample_dir() / "qa_book.pdf", c.page_start), c.cite_key
        span = "".join(_page_text(sample_dir() / "qa_book.pdf", p) for p in range(c.page_start, c.page_end + 1))
        span = re.sub(r"- \d+ -|サンプル生活保護問答集", "", span)      # running footer/header between pages
        assert c.text[-10:] in span, c.cite_key
        if c.page_end > c.page_start:          # the last page really holds the end of the passage
            assert c.text[-1] in _page_text(sample_dir() / "qa_book.pdf", c.page_end)
    assert any(c.page_end > c.page_start for c in qa.chunks), "some answers run over a page break"


def test_pdf_running_header_footer_and_toc_are_not_text(qa):
    joined = "".join(c.text for c in qa.chunks)
    assert "- 5 -" not in joined and "- 12 -" not in joined          # page numbers
    assert not re.search(r"\.{5,}", joined)                            # 目次 dot leaders
    # the running header (short title on every page) does not break into the middle of answers
    assert sum(joined.count(h) for h in ["サンプル生活保護問答集"]) <= 2
    assert qa.title.startswith("サンプル生活保護問答集") and qa.pages >= 25


def test_docx_notice_numbering_heading_path_and_pages():
    d = ingest.parse(sample_dir() / "notice.docx")
    by_key = {c.cite_key: c for c in d.chunks}
    c = by_key["第3の2の(2)"]
    assert c.text.startswith("(2) 公共交通機関")
    assert c.heading == ["第3 資産の活用", "2 自動車"]
    assert c.citation == "サンプル課長通知 第3の2の(2)"
    assert {"第1の1の(1)", "第2の1の(2)", "第5の1の(1)"} <= set(by_key)
    pages = [c.page_start for c in d.chunks]
    assert pages == sorted(pages) and pages[-1] >= 6            # page breaks between 第N sections


def test_html_fullwidth_question_numbers():
    d = ingest.parse(sample_dir() / "casebook.html")
    keys = [c.cite_key for c in d.chunks]
    assert {"問1-1", "問1-3", "問2-2"} <= set(keys)              # （問１－１） → 問1-1
    c = next(c for c in d.chunks if c.cite_key == "問1-2")
    assert "ハローワーク" in c.text and c.page_start is None
    assert c.heading == ["第1 就労支援"]


def test_handbook_sections_and_law_articles():
    d = ingest.parse(sample_dir() / "handbook.pdf")
    keys = {c.cite_key: c for c in d.chunks}
    assert "第3章第2節" in keys and "金融機関" in keys["第3章第2節"].text
    assert keys["法第24条"].heading[-1].startswith("法第24条")
    assert "14日以内" in keys["法第24条"].text


def test_txt_in_shift_jis_and_markdown(tmp_path):
    t = tmp_path / "memo.txt"
    t.write_bytes("第1 窓口メモ\n1 受付\n(1) 来所者には番号札を渡すこと。\n(2) 待ち時間を伝えること。\n".encode("cp932"))
    d = ingest.parse(t)
    assert [c.cite_key for c in d.chunks] == ["第1の1の(1)", "第1の1の(2)"]
    m = tmp_path / "faq.md"
    m.write_text("# 係内FAQ\n\n## 問1-1 鍵の場所\n\n(問) 書庫の鍵はどこか。\n\n(答) **係長の机**の引き出しにある。\n", "utf-8")
    d = ingest.parse(m)
    assert d.title == "係内FAQ"
    c = next(c for c in d.chunks if c.cite_key == "問1-1")
    assert "係長の机" in c.text and "**" not in c.text


def test_long_sections_are_split_at_sentence_ends(tmp_path):
    body = "".join(f"これは長い説明の第{i}文であり、内容を確認するためのものである。" for i in range(60))
    f = tmp_path / "long.txt"
    f.write_text("第1章 長い章\n" + body, "utf-8")
    d = ingest.parse(f)
    assert len(d.chunks) >= 3
    assert all(len(c.text) <= ingest.MAX_CHUNK for c in d.chunks)
    assert all(c.text.endswith("。") for c in d.chunks)
    assert all(c.cite_key == "第1章" for c in d.chunks)


@pytest.mark.parametrize("make,reason", [
    (lambda p: scanned_pdf(p / "scan.pdf"), "scanned"),
    (lambda p: encrypted_pdf(p / "locked.pdf"), "encrypted"),
    (lambda p: truncated(sample_dir() / "handbook.pdf", p / "cut.pdf"), "broken"),
    (lambda p: truncated(sample_dir() / "notice.docx", p / "cut.docx"), "broken"),
    (lambda p: (p / "x.pdf").write_bytes(b"%PDF-1.4\ngarbage") and p / "x.pdf", "broken"),
    (lambda p: (p / "empty.txt").write_text("   \n", "utf-8") and p / "empty.txt", "empty"),
    (lambda p: (p / "a.xls").write_bytes(b"\x00") and p / "a.xls", "unsupported"),
])
def test_unreadable_files_have_a_reason(tmp_path, make, reason):
    f = make(tmp_path)
    with pytest.raises(ingest.UnreadableFile) as ei:
        ingest.parse(f)
    assert ei.value.reason == reason
    assert f.name in str(ei.value) and ei.value.ja and f.name in ei.value.ja


def test_tokenizer_normalises_variants():
    assert terms("子ども") == terms("子供") == terms("こども")
    assert terms("ｹｰｽﾜｰｶｰ") == terms("ケースワーカー")
    assert terms("國民健康保險") == terms("国民健康保険")
    assert terms("申込み") == terms("申し込み")
    assert "って" not in terms("家賃っていくらまで大丈夫なんだっけ")
    assert normalize("問１－１") == "問1-1"


def test_kyuji_and_okurigana_variants_meet():
    assert terms("醫療券の發行") == terms("医療券の発行")
    assert terms("年金證書") == terms("年金証書")
    assert terms("取り下げ") == terms("取下げ")
    assert terms("振り込み") == terms("振込み")
    assert len(normalize("醫療證明")) == 4                       # one character each: offsets stay valid


def test_sample_corpus_is_sixty_pages_or_more():
    total = sum(ingest.parse(p).pages for p in sample_dir().iterdir())
    assert total >= 60
