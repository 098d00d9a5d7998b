"""Manual search benchmark (issue 5) → docs/benchmarks.md, section "manuals".

* Quality on the evaluation set (resources/manuals/eval.toml): recall@5 and MRR for the hybrid
  and for FTS-only, vector-only and trigram-only, on the sample manuals built into real PDF/DOCX/HTML.
* Tokeniser choice (``--tokenizers``): FTS recall/MRR for SudachiPy split modes A/B/C × normalized/surface form.
* Query latency (p50/p95, query embedding included) with the index scaled synthetically to
  ``--chunks`` (default 50,000) chunks.
* Indexing throughput (pages/s) with and without embeddings; database size per 1,000 pages.

Usage: .venv/bin/python bench/manuals.py [--quick] [--tokenizers] [--chunks N] [--no-write]
"""
from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
import time
import tomllib
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
warnings.filterwarnings("ignore", message="Dimensions for page format")

from engine.manuals import index, samples, search, tokenize  # noqa: E402
from engine.models import load_embedder  # noqa: E402
from engine.store import Store  # noqa: E402

MODES = [("hybrid", "hybrid (FTS + vector, RRF, citation jump)", True),
         ("hybrid", "hybrid without citation jump", False),
         ("fts", "FTS only (SudachiPy terms, BM25)", True),
         ("vector", "vector only (embed-ja, exact cosine)", True),
         ("trigram", "trigram only (FTS5 trigram, BM25)", True)]


def load_eval() -> list[tuple[str, list[str]]]:
    raw = tomllib.loads((ROOT / "resources" / "manuals" / "eval.toml").read_text(encoding="utf-8"))
    return [(q["q"], list(q["cite"])) for q in raw["q"]]


def always_trigram(store, q, embedder):
    """Hybrid with the trigram list always in the fusion (to show whether it earns its place)."""
    qq = search.prepare(q)
    lists = {"fts": search.fts_ranked(store, qq.terms), "vector": search.vector_ranked(store, qq.expanded, embedder),
             "trigram": search.trigram_ranked(store, qq.text)}
    return [cid for cid, _s, _r in search.rrf(lists)]


def evaluate_ids(store, questions, ranker, embedder, k=5):
    cite = {r["id"]: r["citation"] for r in store.query("SELECT id, citation FROM manual_chunks")}
    found = rr = 0.0
    for q, cites in questions:
        ids = ranker(store, q, embedder)[:10]
        ranks = [i for i, cid in enumerate(ids, 1) if cite.get(cid) in cites]
        found += bool(ranks and ranks[0] <= k)
        rr += 1 / ranks[0] if ranks else 0.0
    return {"recall": found / len(questions), "mrr": rr / len(questions)}


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, math.ceil(p / 100 * len(xs)) - 1))]


def evaluate(store, questions, mode, embedder, jump=True, k=5):
    found = rr = 0.0
    lat, misses = [], []
    for q, cites in questions:
        t = time.perf_counter()
        hits = search.search(store, q, top=10, mode=mode, embedder=embedder, jump=jump)
        lat.append((time.perf_counter() - t) * 1000)
        ranks = [i for i, h in enumerate(hits, 1) if h.citation in cites]
        if ranks and ranks[0] <= k:
            found += 1
        else:
            misses.append((q, cites[0], [h.citation for h in hits[:3]]))
        if ranks:
            rr += 1 / ranks[0]
    n = len(questions)
    return {"recall": found / n, "mrr": rr / n, "p50": pct(lat, 50), "p95": pct(lat, 95), "misses": misses}


def load_note() -> str:
    try:
        return " / ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def db_bytes(store) -> int:
    store.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return store.path.stat().st_size


def build(tmp: Path, embedder):
    docs = tmp / "manuals"
    samples.build(docs)
    empty = Store(tmp / "empty.db")
    empty_size = db_bytes(empty)
    empty.close()
    store = Store(tmp / "madoguchi.db")
    t = time.perf_counter()
    rep = index.index_paths(store, [docs], embed=False)
    t_read = time.perf_counter() - t
    size_fts = db_bytes(store) - empty_size
    t = time.perf_counter()
    n_emb, _ = index.embed_pending(store, embedder)
    t_emb = time.perf_counter() - t
    size_all = db_bytes(store) - empty_size
    pages = rep.pages
    chunks = index.status(store).chunks
    return store, {"pages": pages, "chunks": chunks, "docs": len(rep.added), "t_read": t_read, "t_emb": t_emb,
                   "n_emb": n_emb, "size_fts": size_fts, "size_all": size_all}


def retokenize(store, mode, form):
    tokenize.DEFAULT_MODE, tokenize.DEFAULT_FORM = mode, form
    rows = store.query("SELECT id, text, heading, cite_key FROM manual_chunks")
    with store.transaction():
        store.executemany("UPDATE manual_chunks SET tokens = ?, heading_tokens = ? WHERE id = ?",
                          [(tokenize.index_text(r["text"]),
                            tokenize.index_text(r["heading"].replace(" > ", " ") + " " + r["cite_key"]), r["id"])
                           for r in rows])


def bench_tokenizers(store, questions):
    out = []
    base = (tokenize.DEFAULT_MODE, tokenize.DEFAULT_FORM)
    for mode in ("A", "B", "C"):
        for form in ("normalized", "surface"):
            retokenize(store, mode, form)
            r = evaluate(store, questions, "fts", None, jump=False)
            out.append((mode, form, r))
            print(f"  tokenizer {mode}/{form}: recall@5 {r['recall']:.3f} MRR {r['mrr']:.3f}", flush=True)
    retokenize(store, *base)
    return out


def scale(src, tmp: Path, target: int, embedder, questions):
    """Copy the real chunks (text tagged, vectors jittered) until ``target`` chunks; time queries."""
    dst = Store(tmp / "scaled.db")
    docs = src.query("SELECT id, path, title, kind, pages FROM manual_docs WHERE status = 'indexed'")
    chunks = src.query("SELECT doc_id, seq, page_start, page_end, heading, cite_key, citation, text, tokens, "
                       "heading_tokens, embedding FROM manual_chunks")
    copies = math.ceil(target / len(chunks))
    rng = np.random.default_rng(0)
    t = time.perf_counter()
    n = 0
    for c in range(copies):
        with dst.transaction():
            idmap = {}
            for d in docs:
                idmap[d["id"]] = dst.insert("manual_docs", {
                    "path": f"{d['path']}#copy{c}", "title": f"{d['title']} 写{c}", "kind": d["kind"],
                    "pages": d["pages"], "status": "indexed"})
            rows = []
            for ch in chunks:
                if n >= target:
                    break
                v = np.frombuffer(ch["embedding"], dtype=np.float32)
                if c:
                    v = v + rng.normal(0, 0.02, v.shape).astype(np.float32)
                    v /= np.linalg.norm(v)
                rows.append((idmap[ch["doc_id"]], ch["seq"], ch["page_start"], ch["page_end"], ch["heading"],
                             ch["cite_key"], ch["citation"], ch["text"] + (f"（写{c}）" if c else ""),
                             ch["tokens"] + (f" 写{c}" if c else ""), ch["heading_tokens"], v.tobytes()))
                n += 1
            dst.executemany("INSERT INTO manual_chunks (doc_id, seq, page_start, page_end, heading, cite_key, citation, "
                            "text, tokens, heading_tokens, embedding) VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
        if n >= target:
            break
    dst.set_setting(index.GENERATION_KEY, 1)
    t_build = time.perf_counter() - t
    t = time.perf_counter()
    search.search(dst, "生活保護の申請", top=5, embedder=embedder)          # cold: loads the vector matrix
    cold = (time.perf_counter() - t) * 1000
    lat, cpu = [], []
    for q, _c in questions:
        t, c0 = time.perf_counter(), time.process_time()
        search.search(dst, q, top=10, embedder=embedder)
        lat.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    size = db_bytes(dst)
    dst.close()
    return {"chunks": n, "build_s": t_build, "cold_ms": cold, "p50": pct(lat, 50), "p95": pct(lat, 95),
            "max": max(lat), "size": size, "cpu50": pct(cpu, 50), "cpu95": pct(cpu, 95)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="skip the scaled-latency run")
    ap.add_argument("--tokenizers", action="store_true", help="also compare Sudachi split modes and forms")
    ap.add_argument("--chunks", type=int, default=50_000)
    ap.add_argument("--no-write", action="store_true", help="print only; do not touch docs/benchmarks.md")
    ap.add_argument("--misses", action="store_true", help="print the questions the hybrid misses")
    args = ap.parse_args(argv)

    questions = load_eval()
    embedder = load_embedder("embed-ja")
    embedder.query("準備")
    tmp = Path(tempfile.mkdtemp(prefix="bench-manuals-"))
    try:
        print("building and indexing the sample manuals…", flush=True)
        store, ix = build(tmp, embedder)
        print(f"  {ix['docs']} documents, {ix['pages']} pages, {ix['chunks']} chunks; read {ix['t_read']:.1f} s, "
              f"embedded {ix['n_emb']} in {ix['t_emb']:.1f} s", flush=True)
        results = []
        for mode, label, jump in MODES:
            r = evaluate(store, questions, mode, embedder, jump=jump)
            results.append((label, r))
            print(f"  {label}: recall@5 {r['recall']:.3f}  MRR {r['mrr']:.3f}  p95 {r['p95']:.0f} ms", flush=True)
            if args.misses and label.startswith("hybrid (") :
                for q, want, got in r["misses"]:
                    print(f"    MISS {q} → want {want}, got {got}")
        tri = evaluate_ids(store, questions, always_trigram, embedder)
        print(f"  hybrid + trigram always (no citation jump): recall@5 {tri['recall']:.3f}  MRR {tri['mrr']:.3f}",
              flush=True)
        toks = bench_tokenizers(store, questions) if args.tokenizers else []
        sc = None
        if not args.quick:
            print(f"scaling the index to {args.chunks} chunks…", flush=True)
            sc = scale(store, tmp, args.chunks, embedder, questions)
            print(f"  built in {sc['build_s']:.0f} s; cold first query {sc['cold_ms']:.0f} ms; "
                  f"p50 {sc['p50']:.0f} ms, p95 {sc['p95']:.0f} ms, max {sc['max']:.0f} ms; "
                  f"CPU p50 {sc['cpu50']:.0f} ms, p95 {sc['cpu95']:.0f} ms; load {load_note()}", flush=True)
        store.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    pages = ix["pages"]
    md = [f"Sample manuals (original text, built to PDF/DOCX/HTML): {ix['docs']} documents, {pages} pages, "
          f"{ix['chunks']} chunks. Evaluation set: {len(questions)} counter-staff questions "
          "(`resources/manuals/eval.toml`); a question counts as found when one of its accepted citations is in the "
          "top 5; MRR over the top 10.", "",
          "| retriever | recall@5 | MRR | p50 ms | p95 ms |", "|---|---|---|---|---|"]
    for label, r in results:
        md.append(f"| {label} | {r['recall']:.3f} | {r['mrr']:.3f} | {r['p50']:.0f} | {r['p95']:.0f} |")
    md += ["", f"Trigram as a third list in every fusion (no citation jump): recall@5 {tri['recall']:.3f}, "
           f"MRR {tri['mrr']:.3f} — so the trigram index joins the fusion only when the Sudachi FTS finds no "
           "whole-word match (partial words, long identifiers)."]
    if toks:
        md += ["", "FTS-only quality by SudachiPy split mode and token form (chosen: "
               f"{tokenize.DEFAULT_MODE}/{tokenize.DEFAULT_FORM}):", "",
               "| split mode | form | recall@5 | MRR |", "|---|---|---|---|"]
        md += [f"| {m} | {f} | {r['recall']:.3f} | {r['mrr']:.3f} |" for m, f, r in toks]
    if sc:
        md += ["", f"Latency at scale: the index copied synthetically to {sc['chunks']:,} chunks (text tagged per copy, "
               "vectors jittered); every evaluation question searched in hybrid mode, query embedding included.", "",
               "| chunks | p50 ms | p95 ms | max ms | CPU ms/query p50 / p95 | first query (loads vectors) ms | DB size MB |",
               "|---|---|---|---|---|---|---|",
               f"| {sc['chunks']:,} | {sc['p50']:.0f} | {sc['p95']:.0f} | {sc['max']:.0f} | "
               f"{sc['cpu50']:.0f} / {sc['cpu95']:.0f} | {sc['cold_ms']:.0f} | {sc['size'] / 1e6:.0f} |",
               "", f"Load average while measuring: {load_note()} (the machine's 2 cores are shared with other jobs; "
               "wall-clock figures are noisy, CPU time per query is the steadier figure)."]
    pps_fts = pages / ix["t_read"]
    pps_all = pages / (ix["t_read"] + ix["t_emb"])
    md += ["", "Indexing (PDF/DOCX pages; the HTML document has no pages):", "",
           "| | pages/s | chunks/s |", "|---|---|---|",
           f"| without embeddings (read, chunk, tokenise, FTS5 + trigram) | {pps_fts:.1f} | {ix['chunks'] / ix['t_read']:.1f} |",
           f"| with embeddings | {pps_all:.2f} | {ix['chunks'] / (ix['t_read'] + ix['t_emb']):.2f} |",
           "", f"Database size per 1,000 pages: {ix['size_fts'] / pages * 1000 / 1e6:.1f} MB without vectors, "
           f"{ix['size_all'] / pages * 1000 / 1e6:.1f} MB with vectors (growth over an empty database)."]
    text = "\n".join(md)
    print("\n" + text)
    if not args.no_write:
        sys.path.insert(0, str(ROOT / "bench"))
        from _report import write_section
        doc = write_section("manuals", "## Manual search (issue 5)\n\n" + text)
        print(f"written to {doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
