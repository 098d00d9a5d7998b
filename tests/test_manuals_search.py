"""Full-text search, citation jump, synonyms, incremental re-index and the CLI — real files, real SQLite."""
from __future__ import annotations

import json
import os
import shutil

import pytest

from engine.cli import main
from engine.manuals import index, search
from test_manuals_support import copy_samples, scanned_pdf, truncated


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    """Sample corpus indexed without vectors (FTS only)."""
    from engine.context import open_context
    root = tmp_path_factory.mktemp("manuals-fts")
    docs = copy_samples(root / "manuals")
    ctx = open_context(root / "data", guard_network=False)
    rep = index.index_paths(ctx.store, [docs], embed=False)
    assert len(rep.added) == 4 and not rep.skipped
    yield ctx, docs
    ctx.close()


def cites(hits):
    return [h.citation for h in hits]


@pytest.mark.parametrize("query,expected", [
    ("家賃が上限を超えてるんだけど", "サンプル生活保護問答集 問6-1"),
    ("こどもの給食費って出る？", "サンプル生活保護問答集 問8-1"),         # こども → 子供
    ("子供の給食費って出る？", "サンプル生活保護問答集 問8-1"),
    ("ＤＶの人の扶養照会", "サンプル生活保護問答集 問4-3"),               # 全角 ＤＶ
    ("所持金ゼロで今夜泊まるところがない人", "サンプル生活保護問答集 問1-4"),
    ("国民健康保險に入れる？病院にかかりたい", "サンプル生活保護問答集 問7-1"),   # 旧字 險
])
def test_fts_finds_the_passage(indexed, query, expected):
    ctx, _ = indexed
    hits = search.search(ctx.store, query, top=5, mode="fts")
    assert expected in cites(hits)


def test_hit_carries_path_page_heading_and_highlights(indexed):
    ctx, docs = indexed
    h = search.search(ctx.store, "住宅扶助の限度額", top=1, mode="fts")[0]
    assert h.path == str((docs / "qa_book.pdf").resolve()) and os.path.isabs(h.path)
    assert isinstance(h.page, int) and h.page >= 1
    assert h.heading == "第6章 住宅扶助"
    marked = [h.snippet[a:b] for a, b in h.highlights]
    assert "限度" in marked and "住宅" in marked
    assert h.marked().count("«") == len(h.highlights)
    assert set(h.as_json()) == {"doc", "page", "heading", "citation", "snippet", "score"}


@pytest.mark.parametrize("query,expected_first", [
    ("問6-2", "サンプル生活保護問答集 問6-2"),
    ("問６－２の転居費用", "サンプル生活保護問答集 問6-2"),
    ("課長通知第3の2", "サンプル課長通知 第3の2の(1)"),
    ("第３の２の（２）", "サンプル課長通知 第3の2の(2)"),
    ("法第24条", "窓口事務手順書 法第24条"),
    ("手順書 第3章第2節", "窓口事務手順書 第3章第2節"),
    ("事例集の問1-2", "サンプル運用事例集 問1-2"),                     # the named document wins
    ("問答集の問1-2", "サンプル生活保護問答集 問1-2"),
])
def test_exact_citation_jumps_to_the_item(indexed, query, expected_first):
    ctx, _ = indexed
    hits = search.search(ctx.store, query, top=3, mode="fts")
    assert hits[0].citation == expected_first and hits[0].jump


def test_synonyms_expand_abbreviations_and_groups(indexed, tmp_path):
    ctx, _ = indexed
    q = search.prepare("生保の人の住扶")
    assert "生活" in q.terms and "家賃" in q.terms and "生活保護の人の住宅扶助" == q.expanded
    assert search.prepare("自動車の保有").expanded == "自動車の保有"    # 車 is not replaced inside 自動車
    # an edited list is honoured, a broken one is a clear error
    f = tmp_path / "syn.toml"
    f.write_text('[abbreviations]\n"ランドセル代" = "入学準備金"\n', "utf-8")
    syn = search.Synonyms.load(f)
    hits = search.search(ctx.store, "ランドセル代", top=3, mode="fts", synonyms=syn)
    assert "サンプル生活保護問答集 問9-5" in cites(hits)
    f.write_text("[abbreviations\n", "utf-8")
    with pytest.raises(search.SearchError) as ei:
        search.Synonyms.load(f)
    assert "syn.toml" in ei.value.ja


def test_trigram_mode_and_no_hits(indexed):
    ctx, _ = indexed
    assert "サンプル運用事例集 問1-3" in cites(search.search(ctx.store, "就労自立給付金", top=3, mode="trigram"))
    assert search.search(ctx.store, "量子コンピュータ", top=3, mode="fts") == []
    with pytest.raises(search.SearchError):
        search.search(ctx.store, "  ", mode="fts")


def test_incremental_reindex_by_content_hash(tmp_path):
    from engine.context import open_context
    docs = copy_samples(tmp_path / "m")
    ctx = open_context(tmp_path / "d", guard_network=False)
    try:
        r1 = index.index_paths(ctx.store, [docs], embed=False)
        n_chunks = index.status(ctx.store).chunks
        r2 = index.index_paths(ctx.store, [docs], embed=False)
        assert len(r2.unchanged) == 4 and not r2.added and not r2.updated and r2.chunks == 0
        os.utime(docs / "notice.docx", (1, 1))          # touched, same content: not re-read
        r3 = index.index_paths(ctx.store, [docs], embed=False)
        assert len(r3.unchanged) == 4
        md = docs / "local.md"
        md.write_text("# 係の決まり\n\n## 問1-1 鍵\n\n(問) 書庫の鍵は？\n\n(答) 係長が管理する。\n", "utf-8")
        r4 = index.index_paths(ctx.store, [docs], embed=False)
        assert r4.added == [str(md.resolve())]
        md.write_text("# 係の決まり\n\n## 問1-1 鍵\n\n(問) 書庫の鍵は？\n\n(答) 課長補佐が管理する。\n", "utf-8")
        r5 = index.index_paths(ctx.store, [docs], embed=False)
        assert r5.updated == [str(md.resolve())]
        assert search.search(ctx.store, "課長補佐 書庫", top=1, mode="fts")[0].doc == "係の決まり"
        assert not search.search(ctx.store, "係長が管理", top=5, mode="trigram") or all(
            "係長が管理" not in h.text for h in search.search(ctx.store, "係長が管理", top=5, mode="trigram"))
        md.unlink()
        r6 = index.index_paths(ctx.store, [docs], embed=False, prune=True)
        assert r6.removed == [str(md.resolve())]
        assert index.status(ctx.store).chunks == n_chunks
        assert r1.pages >= 38
    finally:
        ctx.close()


def test_folder_with_bad_files_still_indexes_the_rest(tmp_path):
    from engine.context import open_context
    docs = copy_samples(tmp_path / "m")
    scanned_pdf(docs / "scan.pdf")
    truncated(docs / "handbook.pdf", docs / "old_broken.pdf")
    ctx = open_context(tmp_path / "d", guard_network=False)
    try:
        rep = index.index_paths(ctx.store, [docs], embed=False)
        assert len(rep.added) == 4
        assert sorted((os.path.basename(s.path), s.reason) for s in rep.skipped) == [
            ("old_broken.pdf", "broken"), ("scan.pdf", "empty")]      # OCR finds no text on the black bar
        st = index.status(ctx.store)
        assert st.documents == 4 and st.skipped == 2
        # still listed (with reason) on the next run, without re-reading
        rep2 = index.index_paths(ctx.store, [docs], embed=False)
        assert len(rep2.skipped) == 2 and len(rep2.unchanged) == 4
        # a fixed file replaces the skipped entry
        shutil.copy2(docs / "handbook.pdf", docs / "old_broken.pdf")
        rep3 = index.index_paths(ctx.store, [docs], embed=False)
        assert rep3.updated == [str((docs / "old_broken.pdf").resolve())]
    finally:
        ctx.close()


def test_cli_add_status_search_json(tmp_path, capsys, monkeypatch):
    from engine import audit, users
    from engine.context import open_context
    docs = copy_samples(tmp_path / "m")
    scanned_pdf(docs / "scan.pdf")
    dd = str(tmp_path / "data")
    c = open_context(dd)
    users.add_user(c.store, None, "kanri", "管理", "admin", "password-123")
    c.close()
    assert main(["--data-dir", dd, "manuals", "add", str(docs), "--no-embed"]) == 2     # who is changing the index?
    assert "needs --user" in capsys.readouterr().err
    monkeypatch.setenv("MADOGUCHI_PASSWORD", "password-123")
    monkeypatch.setenv("MADOGUCHI_USER", "kanri")
    assert main(["--data-dir", dd, "manuals", "add", str(docs), "--no-embed"]) == 0
    c = open_context(dd)
    (entry,) = [e for e in audit.entries(c.store) if e.action == "manuals.index"]
    assert entry.actor == "kanri" and entry.detail["added"] == 4 and entry.detail["skipped"] == 1
    c.close()
    out = capsys.readouterr().out
    assert "added 4" in out and "skipped (empty)" in out and "scan.pdf: no text found by OCR" in out
    assert main(["--data-dir", dd, "manuals", "status"]) == 0
    out = capsys.readouterr().out
    assert "4 documents" in out and "SKIPPED (empty)" in out
    assert main(["--data-dir", dd, "manuals", "search", "車 持ってて大丈夫？", "--top", "3", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert len(hits) == 3
    assert all(list(h) == ["doc", "page", "heading", "citation", "snippet", "score"] for h in hits)
    assert any(h["citation"] == "サンプル生活保護問答集 問3-2" for h in hits)
    assert main(["--data-dir", dd, "manuals", "search", "問3-2"]) == 0
    assert capsys.readouterr().out.startswith("1. サンプル生活保護問答集 問3-2")
    assert main(["--data-dir", dd, "manuals", "search", " "]) == 2
    assert "empty" in capsys.readouterr().err
    assert main(["--data-dir", dd, "manuals", "add", str(tmp_path / "nope"), "--no-embed"]) == 1
    assert "no such file" in capsys.readouterr().out


def test_common_terms_are_pruned_only_in_large_indexes(indexed, monkeypatch):
    ctx, _ = indexed
    terms = search.prepare("生活保護の申請で家賃の限度額").terms
    assert search.selective_terms(ctx.store, terms) == terms          # small index: every term kept
    monkeypatch.setattr(search, "PRUNE_FROM", 1)
    kept = search.selective_terms(ctx.store, terms)
    assert "家賃" in kept and "保護" not in kept and len(kept) >= search.KEEP_TERMS


def test_partial_words_fall_back_to_trigram(indexed):
    ctx, _ = indexed
    # a cut-off katakana word: no Sudachi term matches it, the trigram index does
    q = search.prepare("プログラ")
    assert search.fts_ranked(ctx.store, q.terms) == []
    hits = search.search(ctx.store, "プログラ", top=3)
    assert hits and all("プログラム" in h.text and "trigram" in h.ranks for h in hits[:2])
