"""Search the manual index: FTS5 on Sudachi terms + dense vectors, fused by Reciprocal Rank Fusion.

* An exact citation in the query (問9-1, 課長通知第3の6, 法第4条, 第2章第1節) jumps straight to
  that item (the document named beside it, if any, wins).
* 表記ゆれ is normalised by :mod:`tokenize`; abbreviations and synonym groups from the editable
  ``resources/synonyms.toml`` expand the query.
* Each :class:`Hit` carries the absolute document path, the 1-based page, the heading path, the
  citation and a snippet with highlight spans (for the desktop's page view).
"""
from __future__ import annotations

import re
import threading
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import MadoguchiError
from . import index as index_mod
from .tokenize import normalize, tokens

RRF_K = 60
CANDIDATES = 50
SNIPPET_CHARS = 120
MODES = ("hybrid", "fts", "vector", "trigram")
MARK_OPEN, MARK_CLOSE = "«", "»"


class SearchError(MadoguchiError):
    ja_default = "検索できませんでした。検索語を変えてもう一度試してください。"


@dataclass
class Hit:
    chunk_id: int
    doc: str                       # document title
    path: str                      # absolute path of the document file
    page: int | None               # 1-based page where the passage starts (None: HTML/TXT)
    page_end: int | None
    heading: str                   # heading path, ' > '-joined
    citation: str                  # e.g. "サンプル生活保護問答集 問3-2"
    snippet: str                   # plain text
    highlights: list[tuple[int, int]] = field(default_factory=list)   # spans in ``snippet``
    score: float = 0.0
    text: str = ""                 # the whole chunk
    cite_key: str = ""
    jump: bool = False             # found by an exact citation in the query
    ranks: dict = field(default_factory=dict)   # rank in each list: {"fts": 1, "vector": 4}
    similarity: float | None = None             # cosine similarity to the query (when vectors exist)

    @property
    def matched(self) -> bool:
        """Found by words of the query or by its citation (not only by meaning)."""
        return self.jump or "fts" in self.ranks or "trigram" in self.ranks

    def marked(self, open: str = MARK_OPEN, close: str = MARK_CLOSE) -> str:
        out, pos = [], 0
        for a, b in self.highlights:
            out += [self.snippet[pos:a], open, self.snippet[a:b], close]
            pos = b
        out.append(self.snippet[pos:])
        return "".join(out)

    def as_json(self) -> dict:
        """The CLI's JSON shape: exactly {doc, page, heading, citation, snippet, score}."""
        return {"doc": self.doc, "page": self.page, "heading": self.heading, "citation": self.citation,
                "snippet": self.marked(), "score": round(self.score, 6)}


# --------------------------------------------------------------------------- synonyms

@dataclass
class Synonyms:
    abbreviations: dict[str, str] = field(default_factory=dict)
    groups: list[list[str]] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path | None = None) -> "Synonyms":
        path = path or synonyms_path()
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls()
        except tomllib.TOMLDecodeError as e:
            raise SearchError(f"synonym list {path} is not valid TOML: {e}",
                              ja=f"同義語リスト（{path.name}）の書き方に誤りがあります: {e}") from e
        abbr = {normalize(k): normalize(v) for k, v in (raw.get("abbreviations") or {}).items()}
        groups = [[normalize(t) for t in g.get("terms", [])] for g in raw.get("groups", [])]
        return cls(abbr, [g for g in groups if len(g) > 1])


def synonyms_path() -> Path:
    from ..models import app_root
    return app_root() / "resources" / "synonyms.toml"


_syn_cache: dict[str, tuple[float, Synonyms]] = {}


def default_synonyms() -> Synonyms:
    p = synonyms_path()
    try:
        m = p.stat().st_mtime
    except OSError:
        return Synonyms()
    c = _syn_cache.get(str(p))
    if c is None or c[0] != m:
        c = (m, Synonyms.load(p))
        _syn_cache[str(p)] = c
    return c[1]


def _on_boundaries(text: str, needle: str, bounds: tuple[set, set]) -> bool:
    starts, ends = bounds
    i = text.find(needle)
    while i >= 0:
        if i in starts and i + len(needle) in ends:
            return True
        i = text.find(needle, i + 1)
    return False


@dataclass
class Query:
    text: str                  # normalised query
    expanded: str              # abbreviations spelled out (for the embedder)
    terms: list[str]           # FTS terms (query + synonyms), unique
    highlight: set[str]        # forms to highlight in snippets
    surfaces: set[str] = field(default_factory=set)   # how those words were written in the query


def prepare(query: str, synonyms: Synonyms | None = None) -> Query:
    syn = synonyms if synonyms is not None else default_synonyms()
    q = normalize(query).strip()
    toks = tokens(q, normalized=True)
    bounds = ({t.begin for t in toks}, {t.end for t in toks})
    expanded = q
    extra: list[str] = []
    for abbr, full in syn.abbreviations.items():
        if abbr in q and _on_boundaries(q, abbr, bounds):
            expanded = expanded.replace(abbr, full)
            extra.append(full)
    for g in syn.groups:
        if any(t in expanded and (t not in q or _on_boundaries(q, t, bounds)) for t in g):
            extra.extend(g)
    terms: list[str] = []
    for t in toks:
        if t.content and t.form not in terms:
            terms.append(t.form)
    for e in extra:
        for t in tokens(e, normalized=True):
            if t.content and t.form not in terms:
                terms.append(t.form)
    hl = {t for t in terms if not t.isdigit() and t not in _NO_HIGHLIGHT}
    surf = {t.surface for t in toks if t.content and t.form in hl} | {e for e in extra}
    return Query(q, expanded, terms, hl, surf)


_NO_HIGHLIGHT = {"問", "答", "第", "条", "章", "節", "法"}


# --------------------------------------------------------------------------- citations

_NUM = r"\d+"
CITATION_RX = re.compile(
    r"(?P<qa>問\s*(?:第\d+の\d+(?:の\d+)?|\d+-\d+(?:-\d+)?))"
    r"|(?P<art>(?:法|施行令|施行規則)?第\d+条(?:の\d+)?)"
    r"|(?P<chap>第\d+章(?:第\d+節)?)"
    r"|(?P<note>第\d+(?:の\d+)+(?:の\(\d+\))?|第\d+の\(\d+\))")


def find_citations(q: str) -> list[tuple[str, str, str]]:
    """(kind, key, hint) for each citation in the normalised query; hint = words just before it."""
    q = re.sub(r"(?<=\d)\s*の\s*(?=\d|\()", "の", q)
    out = []
    for m in CITATION_RX.finditer(q):
        kind = m.lastgroup
        key = re.sub(r"\s+", "", m.group(0))
        hint = q[max(0, m.start() - 12):m.start()]
        out.append((kind, key, hint))
    return out


def citation_jump(store, q: str) -> list[int]:
    """Chunk ids named by an exact citation in ``q``, best first."""
    found: list[int] = []
    for kind, key, hint in find_citations(q):
        if kind == "art":
            if key.startswith("第"):
                rows = store.query("SELECT c.id, d.title FROM manual_chunks c JOIN manual_docs d ON d.id = c.doc_id "
                                   "WHERE c.cite_key LIKE ? ORDER BY c.doc_id, c.seq", ("%" + key,))
            else:
                rows = store.query("SELECT c.id, d.title FROM manual_chunks c JOIN manual_docs d ON d.id = c.doc_id "
                                   "WHERE c.cite_key = ? ORDER BY c.doc_id, c.seq", (key,))
        else:
            rows = store.query("SELECT c.id, d.title FROM manual_chunks c JOIN manual_docs d ON d.id = c.doc_id "
                               "WHERE c.cite_key = ? OR c.cite_key LIKE ? ORDER BY c.doc_id, c.seq",
                               (key, key + "の%" if kind != "chap" else key + "第%"))
        if not rows:
            continue
        hint_terms = {t.form for t in tokens(hint, normalized=True) if t.content and len(t.form) >= 2}
        def hinted(r):
            title = normalize(r["title"])
            return any(h in title for h in hint_terms)
        rows.sort(key=lambda r: not hinted(r))
        for r in rows:
            if r["id"] not in found:
                found.append(r["id"])
    return found


# --------------------------------------------------------------------------- retrievers

def _fts_match(terms: list[str]) -> str:
    safe = [re.sub(r"[^\w]", "", t) for t in terms]
    return " OR ".join(f'"{t}"' for t in safe if t)


COMMON_DF = 0.2     # in a large index, terms in more than this share of chunks are left out of the FTS query…
KEEP_TERMS = 2      # …unless fewer than this many terms would remain (the rarest are kept)
PRUNE_FROM = 5000   # chunks; below this the FTS query is fast anyway and every term helps ranking


def _doc_freqs(store, terms: list[str]) -> tuple[int, dict[str, int]]:
    """Chunk count and per-term document frequency, from an fts5vocab view of the index."""
    store.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.manual_fts_vocab USING fts5vocab(main, manual_fts, row)")
    n = store.query_one("SELECT COUNT(*) AS n FROM manual_chunks")["n"]
    rows = store.query(f"SELECT term, doc FROM temp.manual_fts_vocab WHERE term IN ({','.join('?' * len(terms))})",
                       tuple(terms))
    return n, {r["term"]: r["doc"] for r in rows}


def selective_terms(store, terms: list[str]) -> list[str]:
    """Drop terms so common that they only slow the query down (their BM25 weight is near zero)."""
    safe = [t for t in dict.fromkeys(re.sub(r"[^\w]", "", t).lower() for t in terms) if t]
    if len(safe) <= KEEP_TERMS:
        return safe
    n = store.query_one("SELECT COUNT(*) AS n FROM manual_chunks")["n"]
    if n < PRUNE_FROM:
        return safe
    n, df = _doc_freqs(store, safe)
    present = [t for t in safe if df.get(t)]
    keep = [t for t in present if df[t] <= COMMON_DF * n]
    if len(keep) < KEEP_TERMS:
        keep = sorted(present, key=lambda t: df[t])[:KEEP_TERMS]
    return keep


def fts_ranked(store, terms: list[str], limit: int = CANDIDATES) -> list[int]:
    m = _fts_match(selective_terms(store, terms))
    if not m:
        return []
    rows = store.query("SELECT rowid AS id FROM manual_fts WHERE manual_fts MATCH ? "
                       "ORDER BY bm25(manual_fts, 1.0, 0.6) LIMIT ?", (m, limit))
    return [r["id"] for r in rows]


def trigram_ranked(store, q: str, limit: int = CANDIDATES) -> list[int]:
    s = re.sub(r"[\s\W_]+", "", q)
    grams = sorted({s[i:i + 3] for i in range(len(s) - 2)})
    if not grams:
        return []
    m = " OR ".join('"' + g.replace('"', '""') + '"' for g in grams)
    rows = store.query("SELECT rowid AS id FROM manual_tri WHERE manual_tri MATCH ? ORDER BY bm25(manual_tri) LIMIT ?",
                       (m, limit))
    return [r["id"] for r in rows]


def has_vectors(store) -> bool:
    """True once any passage of the index has its embedding (vector search can run)."""
    return bool(store.query_one("SELECT 1 AS x FROM manual_chunks WHERE embedding IS NOT NULL LIMIT 1"))


def vector_ranked(store, text: str, embedder=None, limit: int = CANDIDATES, sims: dict | None = None) -> list[int]:
    """Chunk ids by cosine similarity to the query (exact search over all vectors with numpy)."""
    ids, mat = index_mod.vector_cache(store).get(store)
    if not len(ids):
        return []
    if embedder is None:
        from ..models import load_embedder
        embedder = load_embedder("embed-ja")
    with _embed_lock:                     # one query embedding at a time per process
        v = np.asarray(embedder.query(text), dtype=np.float32)
    scores = mat @ v
    k = min(limit, len(ids))
    top = np.argpartition(-scores, k - 1)[:k]
    top = top[np.argsort(-scores[top])]
    if sims is not None:
        sims.update({int(ids[i]): float(scores[i]) for i in top})
    return [int(ids[i]) for i in top]


_embed_lock = threading.Lock()
_executor = None


def _pool():
    global _executor
    if _executor is None:
        from concurrent.futures import ThreadPoolExecutor
        _executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="manuals-vec")
    return _executor


def warm(store, embedder=None) -> None:
    """Load the vector matrix and the embedder ahead of the first search (the desktop calls this
    in the background at start; at 50,000 chunks the first search would otherwise take ~1.5 s).
    ``store``: the store that keeps the index (``ctx.local``)."""
    ids, _m = index_mod.vector_cache(store).get(store)
    if len(ids):
        if embedder is None:
            from ..models import load_embedder
            embedder = load_embedder("embed-ja")
        with _embed_lock:
            embedder.query("準備")


def rrf(lists: dict[str, list[int]], k: int = RRF_K, weights: dict[str, float] | None = None
        ) -> list[tuple[int, float, dict]]:
    scores: dict[int, float] = {}
    ranks: dict[int, dict] = {}
    for name, ids in lists.items():
        w = (weights or {}).get(name, 1.0)
        for r, cid in enumerate(ids, start=1):
            scores[cid] = scores.get(cid, 0.0) + w / (k + r)
            ranks.setdefault(cid, {})[name] = r
    return [(cid, s, ranks[cid]) for cid, s in sorted(scores.items(), key=lambda x: -x[1])]


# --------------------------------------------------------------------------- snippets

def snippet(text: str, forms: set[str], width: int = SNIPPET_CHARS,
            surfaces: set[str] | None = None) -> tuple[str, list[tuple[int, int]]]:
    """A window of ``text`` around the densest run of query terms, with highlight spans.

    The window is chosen by plain string search for the query's surfaces/forms; only the window is
    tokenised (so a 900-character chunk costs a 120-character Sudachi call), and a token is
    highlighted when its normalised form is one of the query's.
    """
    if len(text) <= width:
        start, end = 0, len(text)
    else:
        needles = [n for n in (surfaces or set()) | forms if len(n) >= 1]
        pos = sorted(i for n in needles for i in _find_all(text, n))
        best, start = -1, 0
        for a in pos or [0]:
            s0 = max(0, min(a - 20, len(text) - width))
            n = sum(1 for x in pos if s0 <= x < s0 + width)
            if n > best:
                best, start = n, s0
        end = start + width
    window = text[start:end]
    spans = [(t.begin, t.end) for t in tokens(window, normalized=True) if t.content and t.form in forms]
    pre = "…" if start > 0 else ""
    post = "…" if end < len(text) else ""
    off = len(pre)
    return pre + window + post, [(a + off, b + off) for a, b in spans]


def _find_all(text: str, needle: str):
    i = text.find(needle)
    while i >= 0:
        yield i
        i = text.find(needle, i + 1)


# --------------------------------------------------------------------------- search

def _hits(store, ranked: list[tuple[int, float, dict]], q: Query, jump_ids: set[int]) -> list[Hit]:
    if not ranked:
        return []
    ids = [cid for cid, _s, _r in ranked]
    rows = {r["id"]: r for r in store.query(
        "SELECT c.id, c.page_start, c.page_end, c.heading, c.citation, c.cite_key, c.text, d.title, d.path "
        f"FROM manual_chunks c JOIN manual_docs d ON d.id = c.doc_id WHERE c.id IN ({','.join('?' * len(ids))})",
        tuple(ids))}
    out = []
    for cid, score, ranks in ranked:
        r = rows.get(cid)
        if r is None:
            continue
        sn, hl = snippet(r["text"], q.highlight, surfaces=q.surfaces)
        out.append(Hit(chunk_id=cid, doc=r["title"], path=r["path"], page=r["page_start"], page_end=r["page_end"],
                       heading=r["heading"], citation=r["citation"], snippet=sn, highlights=hl, score=score,
                       text=r["text"], cite_key=r["cite_key"], jump=cid in jump_ids, ranks=ranks))
    return out


def search(store, query: str, top: int = 10, mode: str = "hybrid", embedder=None,
           synonyms: Synonyms | None = None, jump: bool = True) -> list[Hit]:
    """Search the manuals. ``mode``: hybrid (default) | fts | vector | trigram.

    ``store``: the store that keeps the index (``ctx.local``). ``embedder`` defaults to
    ``load_embedder("embed-ja")``, loaded only when vectors exist.
    """
    if mode not in MODES:
        raise SearchError(f"unknown search mode '{mode}' (choose from {', '.join(MODES)})")
    if not query or not query.strip():
        raise SearchError("the search query is empty", ja="検索する言葉を入力してください。")
    if top < 1:
        raise SearchError("--top must be at least 1", ja="表示件数は1以上にしてください。")
    q = prepare(query, synonyms)
    lists: dict[str, list[int]] = {}
    sims: dict[int, float] = {}
    pending = None
    if mode in ("hybrid", "vector"):
        # the query embedding runs in C without the GIL: overlap it with the FTS query
        pending = _pool().submit(vector_ranked, store, q.expanded, embedder, CANDIDATES, sims)
    if mode in ("hybrid", "fts"):
        lists["fts"] = fts_ranked(store, q.terms)
    if pending is not None:
        lists["vector"] = pending.result()
    if mode == "trigram":
        lists["trigram"] = trigram_ranked(store, q.text)
    if mode == "hybrid" and not lists["fts"]:
        # no whole-word match (a partial word, a long identifier Sudachi splits differently):
        # the trigram index joins the fusion. Always adding it lowers MRR (docs/benchmarks.md).
        lists["trigram"] = trigram_ranked(store, q.text)
    fused = rrf(lists)
    jump_ids: list[int] = citation_jump(store, q.text) if jump else []
    if jump_ids:
        top_score = (fused[0][1] if fused else 0.0) + 1.0
        ranks = {cid: (s, r) for cid, s, r in fused}
        head = [(cid, top_score - i * 1e-3, {**ranks.get(cid, (0, {}))[1], "citation": i + 1})
                for i, cid in enumerate(jump_ids)]
        fused = head + [f for f in fused if f[0] not in set(jump_ids)]
    hits = _hits(store, fused[:top], q, set(jump_ids))
    for h in hits:
        if h.chunk_id in sims:
            h.similarity = sims[h.chunk_id]
    return hits
