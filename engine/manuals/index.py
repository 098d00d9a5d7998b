"""The manual index in this PC's own SQLite file (``ctx.local``): documents, chunks, FTS5 and vectors.

:func:`index_paths` walks files/folders, re-reads only files whose content hash changed, stores
chunks (FTS5 rows follow by trigger) one document per transaction, then embeds chunks that have
no vector yet. Both phases check a cancel event between documents/batches, so a cancelled run
loses nothing: running it again skips unchanged files and embeds what is left (resume).
:class:`IndexJob` runs the same in a background thread with a progress callback and a row in the
``jobs`` table. Unreadable files are recorded with their reason and skipped.

Scanned PDFs and photos are read by OCR (:mod:`.ocr`) in the same run, page by page; each page's
text and confidence is saved in ``manual_ocr_pages`` as soon as it is read (:class:`PageReader`),
so a cancelled run resumes at the next page, and the pages below the confidence bar are listed
(:class:`OcrDoc`, ``status``).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..users import get_user
from . import ingest
from . import ocr as ocr_mod
from .ocrpages import LazyOcr, OcrDoc, PageReader, forget_pages, ocr_summary, page_confidences
from .tokenize import index_text

log = logging.getLogger(__name__)

EMBED_BATCH = 16
EMBED_CHARS = 256          # passage text given to the embedder: heading path + start of the chunk (cost ∝ length)
GENERATION_KEY = "manuals.generation"


@dataclass
class Progress:
    phase: str            # "read" | "embed" | "done"
    done: int
    total: int
    path: str = ""        # file being read (phase "read")
    message: str = ""

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


@dataclass
class Skipped:
    path: str
    reason: str           # scanned | encrypted | broken | unsupported | empty | missing
    message: str
    message_ja: str


@dataclass
class IndexReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    chunks: int = 0           # chunks written in this run
    pages: int = 0            # pages read in this run
    embedded: int = 0         # vectors computed in this run
    ocr: list[OcrDoc] = field(default_factory=list)   # files read by OCR in this run
    cancelled: bool = False
    seconds: float = 0.0


ProgressFn = Callable[[Progress], None]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def scan(paths) -> tuple[list[Path], list[Skipped]]:
    """Files to index under ``paths`` (folders recursively; hidden and ~$ lock files ignored)."""
    files: list[Path] = []
    bad: list[Skipped] = []
    for p in paths:
        p = Path(p).expanduser().resolve()
        if p.is_dir():
            for root, dirs, names in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for n in sorted(names):
                    f = Path(root) / n
                    if not n.startswith((".", "~$")) and ingest.kind_of(f):
                        files.append(f)
        elif p.is_file():
            if ingest.kind_of(p):
                files.append(p)
            else:
                e = ingest.unreadable("unsupported", p, f"unsupported file type '{p.suffix}'")
                bad.append(Skipped(str(p), e.reason, str(e), e.ja))
        else:
            bad.append(Skipped(str(p), "missing", f"{p}: no such file or folder",
                               f"{p.name}: ファイルまたはフォルダが見つかりません。"))
    seen, out = set(), []
    for f in files:
        if f not in seen:
            seen.add(f)
            out.append(f)
    return out, bad


RETRY_REASONS = ("scanned", "ocr")    # skipped before OCR existed or while it failed: read again


def _bump(store) -> None:
    store.set_setting(GENERATION_KEY, (store.get_setting(GENERATION_KEY, 0) or 0) + 1)


def store_document(store, doc: ingest.Document, sha: str, st: os.stat_result) -> int:
    """Replace the document's chunks in one transaction. Returns the doc id."""
    rows = [(c.seq, c.page_start, c.page_end, " > ".join(c.heading), c.cite_key, c.citation, c.text,
             index_text(c.text), index_text(" ".join(c.heading) + " " + c.cite_key)) for c in doc.chunks]
    with store.transaction():
        old = store.query_one("SELECT id, sha256 FROM manual_docs WHERE path = ?", (str(doc.path),))
        if old:
            if old["sha256"] != sha:   # the old content's OCR pages are of no further use
                _forget_ocr(store, old["sha256"], old["id"])
            store.execute("DELETE FROM manual_chunks WHERE doc_id = ?", (old["id"],))
            store.execute("UPDATE manual_docs SET title=?, kind=?, sha256=?, size=?, mtime=?, pages=?, status='indexed', "
                          "reason='', message='', message_ja='', indexed_at=? WHERE id=?",
                          (doc.title, doc.kind, sha, st.st_size, st.st_mtime, doc.pages, time.time(), old["id"]))
            doc_id = old["id"]
        else:
            doc_id = store.insert("manual_docs", {"path": str(doc.path), "title": doc.title, "kind": doc.kind,
                                                  "sha256": sha, "size": st.st_size, "mtime": st.st_mtime,
                                                  "pages": doc.pages, "status": "indexed", "indexed_at": time.time()})
        store.executemany("INSERT INTO manual_chunks (doc_id, seq, page_start, page_end, heading, cite_key, citation, "
                          "text, tokens, heading_tokens) VALUES (?,?,?,?,?,?,?,?,?,?)",
                          [(doc_id, *r) for r in rows])
        _bump(store)
    return doc_id


def _forget_ocr(store, sha: str, doc_id: int) -> None:
    """Drop the OCR pages of content ``sha`` unless another indexed file has the same content."""
    if not store.query_one("SELECT 1 AS x FROM manual_docs WHERE sha256 = ? AND id != ?", (sha, doc_id)):
        forget_pages(store, sha)


def _store_skipped(store, path: Path, sha: str, st: os.stat_result | None, e: ingest.UnreadableFile) -> None:
    with store.transaction():
        old = store.query_one("SELECT id FROM manual_docs WHERE path = ?", (str(path),))
        if old:
            store.execute("DELETE FROM manual_chunks WHERE doc_id = ?", (old["id"],))
            store.execute("UPDATE manual_docs SET status='skipped', reason=?, message=?, message_ja=?, sha256=?, "
                          "size=?, mtime=?, pages=0, indexed_at=? WHERE id=?",
                          (e.reason, str(e), e.ja, sha, st.st_size if st else 0, st.st_mtime if st else 0,
                           time.time(), old["id"]))
        else:
            store.insert("manual_docs", {"path": str(path), "title": path.stem, "kind": ingest.kind_of(path) or "",
                                         "sha256": sha, "size": st.st_size if st else 0,
                                         "mtime": st.st_mtime if st else 0, "status": "skipped", "reason": e.reason,
                                         "message": str(e), "message_ja": e.ja, "indexed_at": time.time()})
        _bump(store)


def index_paths(store, paths, *, embed: bool = True, embedder=None, progress: ProgressFn | None = None,
                cancel: threading.Event | None = None, prune: bool = False, ocr: "ocr_mod.Ocr | None" = None,
                config=None) -> IndexReport:
    """Index files and folders incrementally. ``embedder`` defaults to ``load_embedder("embed-ja")``.

    ``store``: the store that keeps the index (``ctx.local``).
    ``prune``: forget documents that lived under the given folders and are gone from disk.
    ``ocr``: the OCR engine for scans and photos; by default the ``ocr-jpn`` model of ``config``,
    loaded when the first page needs it.
    """
    engine = LazyOcr(ocr, config)
    t0 = time.perf_counter()
    rep = IndexReport()
    files, bad = scan(paths)
    rep.skipped.extend(bad)
    progress = progress or (lambda p: None)
    known = {r["path"]: r for r in store.query("SELECT id, path, sha256, size, mtime, status, reason, message, "
                                                 "message_ja FROM manual_docs")}
    for i, f in enumerate(files):
        if cancel is not None and cancel.is_set():
            rep.cancelled = True
            break
        progress(Progress("read", i, len(files), str(f)))
        try:
            st = f.stat()
        except OSError as e:
            rep.skipped.append(Skipped(str(f), "broken", f"{f.name}: {e}", f"{f.name}: ファイルを読めません。"))
            continue
        row = known.get(str(f))
        retry = row is not None and row["status"] == "skipped" and row["reason"] in RETRY_REASONS
        if row and not retry and row["size"] == st.st_size and row["mtime"] == st.st_mtime:
            _unchanged(rep, row, f)
            continue
        sha = sha256_file(f)
        if row and not retry and row["sha256"] == sha:
            store.execute("UPDATE manual_docs SET mtime = ? WHERE id = ?", (st.st_mtime, row["id"]))
            _unchanged(rep, row, f)
            continue
        reader = PageReader(store, sha, engine, cancel,
                            lambda page, f=f, i=i: progress(Progress("read", i, len(files), str(f), f"OCR p.{page}")))
        try:
            doc = ingest.parse(f, ocr=reader)
        except ingest.OcrCancelled:
            rep.cancelled = True
            break
        except ingest.UnreadableFile as e:
            log.warning("manual skipped (%s): %s", e.reason, f.name)
            if e.reason != "ocr":      # OCR missing on this PC: nothing to remember, read it again next time
                _store_skipped(store, f, sha, st, e)
            rep.skipped.append(Skipped(str(f), e.reason, str(e), e.ja))
            continue
        store_document(store, doc, sha, st)
        (rep.updated if row else rep.added).append(str(f))
        rep.chunks += len(doc.chunks)
        rep.pages += doc.pages or len(doc.ocr)
        if doc.ocr:
            rep.ocr.append(ocr_summary(str(f), doc.ocr, reader.read_now))
    else:
        progress(Progress("read", len(files), len(files)))
    if prune and not rep.cancelled:
        rep.removed = prune_missing(store, [Path(p).expanduser().resolve() for p in paths if Path(p).is_dir()])
    if embed and not rep.cancelled:
        rep.embedded, cancelled = embed_pending(store, embedder, progress, cancel)
        rep.cancelled = rep.cancelled or cancelled
    rep.seconds = time.perf_counter() - t0
    progress(Progress("done", 1, 1, message="cancelled" if rep.cancelled else "done"))
    return rep


def update(ctx, user, paths, **kw) -> IndexReport:
    """The office's manual index changed for a signed-in user (``madoguchi manuals add``, the
    索引を更新 button): the user must be an active account (any role — every role has the manual
    search), and the run is appended to the audit log (``manuals.index``) with what changed.
    Keyword arguments as :func:`index_paths`; the store-level :func:`index_paths` stays the
    primitive the self-test and benchmarks use on their own stores."""
    from .. import audit
    from ..roles import require
    require(user, "read_manuals")
    kw.setdefault("config", ctx.config)
    rep = index_paths(ctx.local, paths, **kw)
    audit.append(ctx.store, user.username, "manuals.index", "manuals", "",
                 {"paths": [str(Path(p).expanduser().resolve()) for p in paths], "added": len(rep.added),
                  "updated": len(rep.updated), "removed": len(rep.removed), "skipped": len(rep.skipped),
                  "cancelled": rep.cancelled})
    return rep


def index_folder(store, folder, **kw) -> IndexReport:
    """Index one folder into ``store`` (``ctx.local``); keyword arguments as :func:`index_paths`."""
    kw.setdefault("prune", True)
    return index_paths(store, [folder], **kw)


def _unchanged(rep: IndexReport, row: dict, f: Path) -> None:
    if row["status"] == "skipped":
        rep.skipped.append(Skipped(str(f), row["reason"], row["message"], row["message_ja"]))
    else:
        rep.unchanged.append(str(f))


def prune_missing(store, folders: list[Path]) -> list[str]:
    gone = []
    for r in store.query("SELECT id, path FROM manual_docs"):
        p = Path(r["path"])
        if any(p.is_relative_to(d) for d in folders) and not p.exists():
            gone.append(r["path"])
            remove(store, r["path"])
    return gone


def remove(store, path: str | Path) -> bool:
    with store.transaction():
        r = store.query_one("SELECT id, sha256 FROM manual_docs WHERE path = ?", (str(Path(path).resolve()),))
        if not r:
            return False
        _forget_ocr(store, r["sha256"], r["id"])
        store.execute("DELETE FROM manual_chunks WHERE doc_id = ?", (r["id"],))
        store.execute("DELETE FROM manual_docs WHERE id = ?", (r["id"],))
        _bump(store)
    return True


def document_paths(store) -> list[str]:
    """The keys (paths) of every indexed document."""
    return [r["path"] for r in store.query("SELECT path FROM manual_docs")]


def passages(store) -> list[dict]:
    """Every passage of the index: ``id``, ``cite_key``, ``text``."""
    return store.query("SELECT id, cite_key, text FROM manual_chunks")


def passage_text(heading: str, text: str) -> str:
    return (heading.replace(" > ", " ") + "\n" + text)[:EMBED_CHARS]


def embed_pending(store, embedder=None, progress: ProgressFn | None = None,
                  cancel: threading.Event | None = None, batch: int | None = None) -> tuple[int, bool]:
    """Embed every chunk without a vector. Returns (number embedded, cancelled)."""
    batch = batch or EMBED_BATCH
    progress = progress or (lambda p: None)
    total = store.query_one("SELECT COUNT(*) AS n FROM manual_chunks WHERE embedding IS NULL")["n"]
    if not total:
        return 0, False
    if embedder is None:
        from ..models import load_embedder
        embedder = load_embedder("embed-ja")
    done = 0
    last_id = 0
    while True:
        if cancel is not None and cancel.is_set():
            return done, True
        rows = store.query("SELECT id, heading, text FROM manual_chunks WHERE embedding IS NULL AND id > ? "
                           "ORDER BY id LIMIT ?", (last_id, batch))
        if not rows:
            break
        vecs = np.asarray(embedder.passage([passage_text(r["heading"], r["text"]) for r in rows]), dtype=np.float32)
        with store.transaction():
            store.executemany("UPDATE manual_chunks SET embedding = ? WHERE id = ?",
                              [(v.tobytes(), r["id"]) for v, r in zip(vecs, rows)])
            _bump(store)
        done += len(rows)
        last_id = rows[-1]["id"]
        progress(Progress("embed", done, total))
    return done, False


# --------------------------------------------------------------------------- status

@dataclass
class DocStatus:
    path: str
    title: str
    kind: str
    pages: int
    chunks: int
    embedded: int
    status: str
    reason: str
    message: str
    message_ja: str
    ocr_pages: int = 0                     # pages whose text came from OCR
    ocr_confidence: float | None = None    # their mean confidence, 0–100
    low_confidence_pages: list[int] = field(default_factory=list)


@dataclass
class Status:
    documents: int
    pages: int
    chunks: int
    embedded: int
    skipped: int
    docs: list[DocStatus]
    job: dict | None = None        # the latest background indexing job, if any


def status(store) -> Status:
    """The index in ``store`` (``ctx.local``)."""
    rows = store.query(
        "SELECT d.path, d.sha256, d.title, d.kind, d.pages, d.status, d.reason, d.message, d.message_ja, "
        "COUNT(c.id) AS chunks, COUNT(c.embedding) AS embedded FROM manual_docs d "
        "LEFT JOIN manual_chunks c ON c.doc_id = d.id GROUP BY d.id ORDER BY d.path")
    docs = []
    for r in rows:
        r = dict(r)
        sha = r.pop("sha256")
        d = DocStatus(**r)
        pages = page_confidences(store, sha) if d.status == "indexed" else []
        if pages:
            d.ocr_pages = len(pages)
            d.ocr_confidence = round(sum(c for _p, c in pages) / len(pages), 1)
            d.low_confidence_pages = [p for p, c in pages if c < ocr_mod.LOW_CONFIDENCE]
        docs.append(d)
    job = store.query_one("SELECT id, state, progress, message, updated_at FROM jobs WHERE kind = 'manuals.index' "
                          "ORDER BY id DESC LIMIT 1")
    ok = [d for d in docs if d.status == "indexed"]
    return Status(documents=len(ok), pages=sum(d.pages for d in ok), chunks=sum(d.chunks for d in ok),
                  embedded=sum(d.embedded for d in ok), skipped=len(docs) - len(ok), docs=docs, job=job)


def document_chunks(store, path: str, title: str = "") -> tuple[dict, list[dict]] | None:
    """An indexed document by path (or title) and its passages in order: ({path, title, sha256},
    [{text, page_start, page_end, heading}]) — what the 文書要約 reads instead of the file."""
    d = store.query_one("SELECT id, path, title, sha256 FROM manual_docs WHERE status = 'indexed' AND "
                        "(path = ? OR title = ?) ORDER BY id LIMIT 1", (path, title))
    if d is None:
        return None
    rows = store.query("SELECT text, page_start, page_end, heading FROM manual_chunks WHERE doc_id = ? ORDER BY seq",
                       (d["id"],))
    return dict(d), [dict(r) for r in rows]


# --------------------------------------------------------------------------- vectors for search

class VectorCache:
    """All chunk vectors as one float32 matrix, reloaded when the index generation changes."""

    def __init__(self):
        self._lock = threading.Lock()
        self._key = None
        self.ids = np.zeros(0, dtype=np.int64)
        self.matrix = np.zeros((0, 0), dtype=np.float32)

    def get(self, store) -> tuple[np.ndarray, np.ndarray]:
        key = (str(store.path), store.get_setting(GENERATION_KEY, 0))
        with self._lock:
            if key != self._key:
                rows = store.conn.execute(
                    "SELECT id, embedding FROM manual_chunks WHERE embedding IS NOT NULL ORDER BY id").fetchall()
                if rows:
                    self.ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
                    self.matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1)
                else:
                    self.ids = np.zeros(0, dtype=np.int64)
                    self.matrix = np.zeros((0, 0), dtype=np.float32)
                self._key = key
            return self.ids, self.matrix


_caches: dict[str, VectorCache] = {}


def vector_cache(store) -> VectorCache:
    return _caches.setdefault(str(store.path), VectorCache())


# --------------------------------------------------------------------------- background job

def lower_thread_priority() -> None:
    """Run the calling thread below normal priority, so background indexing leaves the 2-core PC's
    CPU to the UI and live transcription (OpenMP workers created from this thread inherit it)."""
    try:
        if sys.platform == "win32":
            import ctypes
            k = ctypes.windll.kernel32
            k.SetThreadPriority(k.GetCurrentThread(), -1)        # THREAD_PRIORITY_BELOW_NORMAL
        elif hasattr(os, "setpriority"):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)   # Linux: per thread
    except (OSError, AttributeError):
        pass


class IndexJob:
    """Index in a background thread: ``start()``, ``cancel()``, ``wait()``; progress via callback.

    The job is mirrored in the ``jobs`` table (kind ``manuals.index``) so the desktop can show it
    after a restart; a cancelled or interrupted job resumes by simply starting a new one.
    """

    def __init__(self, store, paths, *, embed: bool = True, embedder=None,
                 on_progress: ProgressFn | None = None, prune: bool = True):
        self.store, self.paths, self.embed, self.embedder = store, [str(p) for p in paths], embed, embedder
        self.on_progress = on_progress
        self.prune = prune
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self.report: IndexReport | None = None
        self.error: BaseException | None = None
        self.job_id: int | None = None
        self.last: Progress | None = None
        self._last_write = 0.0

    def start(self) -> "IndexJob":
        now = time.time()
        self.job_id = self.store.insert("jobs", {"kind": "manuals.index", "state": "running",
                                                 "params": json.dumps({"paths": self.paths}, ensure_ascii=False),
                                                 "created_at": now, "updated_at": now})
        self._thread = threading.Thread(target=self._run, name="manuals-index", daemon=True)
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> IndexReport | None:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.report

    def _progress(self, p: Progress) -> None:
        self.last = p
        now = time.time()
        if now - self._last_write > 0.5 or p.phase == "done":
            self._last_write = now
            frac = (0.5 * p.fraction) if p.phase == "read" and self.embed else (
                0.5 + 0.5 * p.fraction if p.phase == "embed" else p.fraction)
            self.store.execute("UPDATE jobs SET progress = ?, message = ?, updated_at = ? WHERE id = ?",
                               (frac, f"{p.phase} {p.done}/{p.total}", now, self.job_id))
        if self.on_progress is not None:
            try:
                self.on_progress(p)
            except Exception:  # a UI callback must not kill indexing
                log.exception("progress callback failed")

    def _run(self) -> None:
        state = "done"
        lower_thread_priority()
        try:
            self.report = index_paths(self.store, self.paths, embed=self.embed, embedder=self.embedder,
                                      progress=self._progress, cancel=self._cancel, prune=self.prune)
            if self.report.cancelled:
                state = "cancelled"
        except BaseException as e:  # reported through .error and the jobs row
            self.error = e
            state = "failed"
            log.exception("manual indexing failed")
        finally:
            msg = state if self.report is None else (
                f"{state}: {len(self.report.added) + len(self.report.updated)} read, "
                f"{len(self.report.skipped)} skipped, {self.report.embedded} embedded")
            try:
                self.store.execute("UPDATE jobs SET state = ?, message = ?, updated_at = ? WHERE id = ?",
                                   (state, msg, time.time(), self.job_id))
            except Exception:
                log.exception("could not record the indexing job state")


def index_job(ctx, progress, cancel, paths: list[str], username: str):
    """Child-process entry point of :func:`update` (:func:`engine.jobs.run_in_child`). ``username``:
    the signed-in user; the account is read again from the user store here."""
    return update(ctx, get_user(ctx.store, username), paths, progress=progress, cancel=cancel, prune=True)
