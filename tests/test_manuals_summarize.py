"""文書要約 (issue 29 b): `madoguchi manuals summarize DOC [--pages A-B] [--json]` — 5–8 points, each
citing its pages and passing the content-support check; the LLM picks and rephrases (llm-small
here, a real model), the extractive fallback is labelled as such; a file (scans through OCR) or
an indexed manual."""
from __future__ import annotations

import json
import random

import pytest

from devkit import scans
from engine.cli import main
from engine.manuals import index, summarize as S
from test_manuals_support import sample_dir

NOTICE = """%title 国民健康保険料の納付について（例）
# 納付のお願い
あなたの令和6年度の国民健康保険料は、年額96,000円です。
第1期の納期限は令和6年6月30日です。納付書により金融機関またはコンビニエンスストアで納付してください。
口座振替を希望される方は、通帳と届出印を持って保険年金課にお申し込みください。
\f
# 納付が難しいとき
失業や災害で納付が難しい場合は、減免を受けられることがあります。納期限までにご相談ください。
納期限を過ぎると延滞金が加算されることがあります。
お問い合わせ先は北区役所保険年金課です。
"""
KEYS = ["points", "method", "ocr_pages"]


@pytest.fixture()
def notice(tmp_path):
    f = tmp_path / "notice.txt"
    f.write_text(NOTICE, encoding="utf-8")
    return f


def _ctx(tmp_path, **overrides):
    from engine.context import open_context
    return open_context(tmp_path / "d", overrides=overrides, guard_network=False)


def test_extractive_summary_is_labelled_and_every_point_cites_its_page(tmp_path, notice):
    ctx = _ctx(tmp_path, **{"llm.enabled": False})
    try:
        s = S.summarize(ctx, str(notice))
        js = s.as_json()
        assert all(k in js for k in KEYS) and js["method"] == "extractive" and "抽出" in js["label"]
        assert S.MIN_POINTS <= len(js["points"]) <= S.MAX_POINTS
        assert all(p["pages"] and set(p["pages"]) <= {1, 2} and p["flags"] == [] for p in js["points"])
        assert any("96,000円" in p["text"] and p["pages"] == [1] for p in js["points"])
        assert any("減免" in p["text"] and p["pages"] == [2] for p in js["points"])
        only2 = S.summarize(ctx, str(notice), pages="2-2")
        assert only2.points and all(p.pages == [2] for p in only2.points)
        with pytest.raises(S.SummaryError, match="bad page range"):
            S.summarize(ctx, str(notice), pages="3-1")
    finally:
        ctx.close()


def test_points_the_pages_do_not_support_are_flagged():
    cited = "あなたの保険料は年額96,000円です。納期限は6月30日です。"
    assert S.support_flags("保険料は年額96,000円です。", cited) == []
    assert "number_unsupported" in S.support_flags("保険料は年額69,000円です。", cited)
    assert "number_unsupported" in S.support_flags("納期限は7月31日です。", cited)
    assert "content_unsupported" in S.support_flags("介護サービスの利用料は全額負担になります。", cited)
    cands = [S.Candidate("保険料は年額96,000円です。", [1], 1.0, 0), S.Candidate("減免を受けられます。", [2], 1.0, 1)]
    pts = S.parse_points("・保険料は年額96,000円です。[1]\n・減免を受けられることがあります\n・宇宙旅行の補助があります。", cands)
    assert [(p.text, p.pages) for p in pts] == [("保険料は年額96,000円です。", [1]), ("減免を受けられることがあります", [2])]


@pytest.mark.slow
def test_llm_summary_of_a_notice_and_of_an_indexed_manual(tmp_path, notice, capsys):
    ctx = _ctx(tmp_path, **{"llm.model": "llm-small"})
    try:
        s = S.summarize(ctx, str(notice))
        assert s.method == "llm" and s.model == "llm-small" and "AI" in s.label
        assert 3 <= len(s.points) <= S.MAX_POINTS and all(p.pages for p in s.points)
        text = "".join(p.text for p in s.points)
        assert "96,000" in text or "6月30日" in text
        for p in s.points:         # a number not on the cited page never goes unflagged
            if "number_unsupported" not in p.flags:
                assert S.support_flags(p.text, S.page_text(S.from_file(notice)[2], p.pages)) == p.flags
        rep = index.index_paths(ctx.local, [sample_dir() / "notice.docx"], embed=False)
        assert rep.added
        title = index.status(ctx.local).docs[0].title
        s2 = S.summarize(ctx, title, pages="1-3")
        assert s2.title == title and s2.points and all(p.pages and max(p.pages) <= 3 for p in s2.points)
    finally:
        ctx.close()


def test_a_photo_is_read_by_ocr_then_summarised(tmp_path):
    (n, img, _t), = scans.render_pages(sample_dir() / "qa_book.pdf", 200, [9])
    f = tmp_path / "paper.jpg"
    scans.phone_photo(img, random.Random(3)).save(f, quality=85)
    ctx = _ctx(tmp_path, **{"llm.enabled": False})
    try:
        s = S.summarize(ctx, str(f))
        assert s.ocr_pages == [1] and s.points and all(p.pages == [1] for p in s.points)
    finally:
        ctx.close()


def test_cli_summarize_json_contract_and_errors(tmp_path, notice, capsys, monkeypatch):
    cfg = tmp_path / "user.toml"
    cfg.write_text("[llm]\nenabled = false\n", encoding="utf-8")
    monkeypatch.setenv("MADOGUCHI_USER_CONFIG", str(cfg))
    dd = str(tmp_path / "data")
    assert main(["--data-dir", dd, "manuals", "summarize", str(notice), "--json"]) == 0
    js = json.loads(capsys.readouterr().out)
    assert all(k in js for k in KEYS) and js["method"] == "extractive"
    assert all(list(p) == ["text", "pages", "flags"] for p in js["points"])
    assert main(["--data-dir", dd, "manuals", "summarize", str(notice), "--pages", "1-1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(S.EXTRACTIVE_LABEL) and "（p.1）" in out and "p.2" not in out
    assert main(["--data-dir", dd, "manuals", "summarize", str(tmp_path / "nothing.pdf"), "--json"]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    assert main(["--data-dir", dd, "manuals", "summarize", str(notice), "--pages", "x"]) == 2
    assert "bad page range" in capsys.readouterr().err
