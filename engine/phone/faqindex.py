"""The FAQ as a search index of the manuals search engine (:mod:`engine.manuals`).

Each FAQ item becomes chunks of one document in a small SQLite file of its own
(``<data>/phone/faq-index.db``, derived from faq.toml and rebuilt when the file or the embedding
model changes): one chunk for the title and answer, one for each example question, all with the
item's id as their ``cite_key``. A caller's question is searched with :func:`manuals.search.search`
(Sudachi FTS + e5 vectors, fused) with the FAQ's own synonyms; the hits are grouped by item into
:class:`Candidate` s with the features the decision rule uses. There is no second search engine.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..manuals import index as mindex
from ..manuals import ingest
from ..manuals.search import Synonyms, search
from ..manuals.tokenize import normalize
from .faq import Faq

INDEX_NAME = "faq-index.db"
STAMP_KEY = "phone.faq_index"
DOC_PATH = "phone-faq"          # the one document's key in manual_docs (not a file on disk)
TOP_CHUNKS = 60
OUTSIDE = "_outside"            # the cite_key of [outside] examples: business the phone never answers


@dataclass
class Candidate:
    """One FAQ item as found for a question."""
    id: str
    rank: int                      # 1 = the best item
    fused: float                   # best reciprocal-rank-fusion score of its chunks
    similarity: float              # best cosine similarity of its chunks to the question (0 without vectors)
    lexical: bool                  # found by words of the question (FTS), not only by meaning
    chunks: list[int] = field(default_factory=list)
    fts_rank: int | None = None    # best rank of its chunks in the full-text list (None: not there)
    vector_rank: int | None = None # best rank of its chunks in the vector list


def first_by(cands: list[Candidate], name: str) -> str | None:
    """The item ranked first by one retriever alone ("fts" or "vector")."""
    ranked = [c for c in cands if getattr(c, f"{name}_rank") is not None]
    return min(ranked, key=lambda c: getattr(c, f"{name}_rank")).id if ranked else None


def _document(faq: Faq) -> ingest.Document:
    chunks, seq = [], 0
    for it in faq.items:
        texts = [f"{it.title}。{it.answer}"] + list(it.examples)
        for t in texts:
            chunks.append(ingest.Chunk(seq=seq, text=normalize(t), heading=[it.title], cite_key=it.id,
                                       citation=it.title, page_start=None, page_end=None))
            seq += 1
    for t in faq.outside:
        chunks.append(ingest.Chunk(seq=seq, text=normalize(t), heading=["対象外"], cite_key=OUTSIDE,
                                   citation="対象外", page_start=None, page_end=None))
        seq += 1
    return ingest.Document(path=Path(DOC_PATH), title="電話FAQ", kind="txt", pages=0, chunks=chunks)


class FaqIndex:
    """The searchable FAQ. ``embedder``: the e5 sentence embedder (``models.load_embedder``)."""

    def __init__(self, faq: Faq, store, embedder=None):
        self.faq, self.store, self.embedder = faq, store, embedder
        self.synonyms = Synonyms({normalize(k): normalize(v) for k, v in faq.abbreviations.items()},
                                 [[normalize(t) for t in g] for g in faq.synonym_groups if len(g) > 1])
        self._item_of: dict[int, str] = {}
        self._text_of: dict[int, str] = {}
        self._lock = threading.Lock()

    def stamp(self) -> str:
        model = getattr(self.embedder, "model_path", "") or type(self.embedder).__name__
        return f"{self.faq.sha256}:{model}"

    def build(self) -> bool:
        """(Re)build the index if the FAQ or the embedder changed. Returns True if it was rebuilt."""
        with self._lock:
            st = self.store
            if st.get_setting(STAMP_KEY) == self.stamp() and self._item_of:
                return False
            if st.get_setting(STAMP_KEY) != self.stamp():
                with st.transaction():
                    for path in mindex.document_paths(st):
                        mindex.remove(st, path)
                doc = _document(self.faq)
                stat = _Stat(len(self.faq.sha256), time.time())
                mindex.store_document(st, doc, self.faq.sha256, stat)
                if self.embedder is not None:
                    mindex.embed_pending(st, self.embedder)
                st.set_setting(STAMP_KEY, self.stamp())
            rows = mindex.passages(st)
            self._item_of = {r["id"]: r["cite_key"] for r in rows}
            self._text_of = {r["id"]: r["text"] for r in rows}
            return True

    def candidates(self, question: str, exclude: str | None = None) -> list[Candidate]:
        """The FAQ items for ``question``, best first (empty if nothing matches at all).
        ``exclude``: leave out the example with this text (leave-one-out calibration on questions
        that are themselves examples of the FAQ)."""
        self.build()
        hits = search(self.store, question, top=TOP_CHUNKS, embedder=self.embedder, synonyms=self.synonyms,
                      jump=False)
        if exclude is not None:
            gone = normalize(exclude)
            hits = [h for h in hits if self._text_of.get(h.chunk_id) != gone]
        out: dict[str, Candidate] = {}
        for h in hits:
            iid = self._item_of.get(h.chunk_id) or h.cite_key
            c = out.get(iid)
            if c is None:
                c = out[iid] = Candidate(iid, len(out) + 1, h.score, h.similarity or 0.0, False)
            c.fused = max(c.fused, h.score)
            c.similarity = max(c.similarity, h.similarity or 0.0)
            c.lexical = c.lexical or h.matched
            c.chunks.append(h.chunk_id)
            for name in ("fts", "vector"):
                r = h.ranks.get(name)
                if r is not None:
                    old = getattr(c, f"{name}_rank")
                    setattr(c, f"{name}_rank", r if old is None else min(old, r))
        ranked = sorted(out.values(), key=lambda c: (-c.fused, -c.similarity))
        for i, c in enumerate(ranked, 1):
            c.rank = i
        return ranked


@dataclass
class _Stat:                 # what store_document reads of an os.stat_result
    st_size: int
    st_mtime: float


def open_index(data_dir: Path | str, faq: Faq, embedder=None) -> FaqIndex:
    """The FAQ index kept in the data folder (derived data: plain SQLite, no personal data)."""
    from ..store import Store
    store = Store(Path(data_dir) / "phone" / INDEX_NAME)
    idx = FaqIndex(faq, store, embedder)
    idx.build()
    return idx
