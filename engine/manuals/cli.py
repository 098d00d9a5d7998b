"""``madoguchi manuals …``: add (index), status, search, answer, summarize."""
from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path


from ..cli_support import add_user_arg, signed_in

def _embedder(ctx):
    from ..models import load_embedder
    return load_embedder(ctx.config["embed.model"], ctx.config)


def cmd_add(args) -> int:
    from ..cli_support import context, print_json
    from . import index
    ctx = context(args)
    last = {"phase": None}

    def progress(p: index.Progress):
        if args.json or p.phase == "done":
            return
        if p.message.startswith("OCR"):
            print(f"\rreading {p.done}/{p.total} ({p.message} of {Path(p.path).name})", end="", file=sys.stderr,
                  flush=True)
        elif p.phase != last["phase"] or p.done == p.total or p.done % 10 == 0:
            label = {"read": "reading", "embed": "embedding"}[p.phase]
            print(f"\r{label} {p.done}/{p.total}", end="\n" if p.done == p.total else "", file=sys.stderr, flush=True)
        last["phase"] = p.phase

    embedder = None if args.no_embed else _LazyEmbedder(ctx)
    rep = index.update(ctx, signed_in(args, ctx), args.paths, embed=not args.no_embed, embedder=embedder,
                       progress=progress, prune=args.prune)
    if args.json:
        print_json(asdict(rep))
    else:
        print(f"added {len(rep.added)}, updated {len(rep.updated)}, unchanged {len(rep.unchanged)}, "
              f"removed {len(rep.removed)}, skipped {len(rep.skipped)}; {rep.chunks} chunks from {rep.pages} pages, "
              f"{rep.embedded} embedded in {rep.seconds:.1f} s")
        for o in rep.ocr:
            low = ", ".join(map(str, o.low_confidence_pages)) or "none"
            vert = f"; vertical: {', '.join(map(str, o.vertical_pages))}" if o.vertical_pages else ""
            print(f"ocr: {Path(o.path).name}: {len(o.pages)} pages ({o.read_now} read now), confidence "
                  f"{o.confidence:.0f}; low-confidence pages: {low}{vert}")
        for s in rep.skipped:
            print(f"skipped ({s.reason}): {s.message}")
    read_any = rep.added or rep.updated or rep.unchanged
    return 0 if read_any or not rep.skipped else 1


class _LazyEmbedder:
    """Load the embedding model only if something needs embedding."""

    def __init__(self, ctx):
        self.ctx, self._e = ctx, None

    def passage(self, texts):
        if self._e is None:
            self._e = _embedder(self.ctx)
        return self._e.passage(texts)


def cmd_status(args) -> int:
    from ..cli_support import context, print_json
    from . import index
    st = index.status(context(args).local)
    if args.json:
        print_json(asdict(st))
        return 0
    print(f"{st.documents} documents, {st.pages} pages, {st.chunks} chunks ({st.embedded} with vectors), "
          f"{st.skipped} skipped")
    for d in st.docs:
        if d.status == "indexed":
            ocr = ""
            if d.ocr_pages:
                low = ", ".join(map(str, d.low_confidence_pages)) or "none"
                ocr = f", OCR {d.ocr_pages} p confidence {d.ocr_confidence:.0f}, low-confidence pages: {low}"
            print(f"  {d.title}  [{d.kind}, {d.pages} p, {d.chunks} chunks, {d.embedded} vectors{ocr}]  {d.path}")
        else:
            print(f"  SKIPPED ({d.reason}) {d.path}: {d.message}")
    if st.job and st.job["state"] == "running":
        print(f"indexing in progress: {st.job['message']}")
    return 0


def cmd_search(args) -> int:
    from ..cli_support import context, print_json
    from .search import has_vectors, search
    ctx = context(args)
    emb = _embedder(ctx) if args.mode in ("hybrid", "vector") and has_vectors(ctx.local) else None
    hits = search(ctx.local, args.query, top=args.top, mode=args.mode, embedder=emb)
    if args.json:
        print_json([h.as_json() for h in hits])
        return 0
    if not hits:
        print("no results")
    for i, h in enumerate(hits, 1):
        page = f"p.{h.page}" if h.page else "-"
        print(f"{i}. {h.citation}  ({page})  {h.heading}")
        print(f"   {h.marked()}")
    return 0


def cmd_answer(args) -> int:
    from ..cli_support import context, print_json
    from .answer import answer
    from .search import has_vectors
    ctx = context(args)
    emb = _embedder(ctx) if has_vectors(ctx.local) else None
    a = answer(ctx, args.question, top=args.top, embedder=emb)
    if args.json:
        print_json(a.as_json())
        return 0
    print(a.format())
    return 0


def cmd_summarize(args) -> int:
    from ..cli_support import context, print_json
    from .summarize import summarize
    ctx = context(args)
    s = summarize(ctx, args.doc, pages=args.pages)
    if args.json:
        print_json(s.as_json())
        return 0
    print(s.format())
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("manuals", help="index and search the office's manuals")
    sub = p.add_subparsers(dest="manuals_cmd", required=True)

    a = sub.add_parser("add", help="index files or folders (PDF, DOCX, HTML, TXT, MD; scanned PDFs and images "
                                   "JPEG/PNG/HEIC/TIFF through OCR); unchanged files are skipped")
    a.add_argument("paths", nargs="+", metavar="PATH")
    a.add_argument("--no-embed", action="store_true", help="full-text index only (embed later with another add)")
    a.add_argument("--prune", action="store_true", help="forget indexed files that are gone from the given folders")
    a.add_argument("--json", action="store_true")
    add_user_arg(a)
    a.set_defaults(func=cmd_add)

    s = sub.add_parser("status", help="indexed documents and skipped files")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_status)

    q = sub.add_parser("search", help="search the manuals")
    q.add_argument("query", metavar="QUERY")
    q.add_argument("--top", type=int, default=5, metavar="K")
    q.add_argument("--json", action="store_true", help="hits as JSON: {doc, page, heading, citation, snippet, score}")
    q.add_argument("--mode", choices=("hybrid", "fts", "vector", "trigram"), default="hybrid")
    q.set_defaults(func=cmd_search)

    w = sub.add_parser("answer", help="a draft answer (回答案) from the top hits, each sentence cited")
    w.add_argument("question", metavar="QUESTION")
    w.add_argument("--top", type=int, default=3, metavar="K")
    w.add_argument("--json", action="store_true")
    w.set_defaults(func=cmd_answer)

    z = sub.add_parser("summarize", help="a short summary (5-8 points), each point citing its pages; DOC is a file "
                                         "(scans and photos through OCR) or an indexed manual (path or title)")
    z.add_argument("doc", metavar="DOC")
    z.add_argument("--pages", metavar="A-B", help="only these pages")
    z.add_argument("--json", action="store_true",
                   help='{"points": [{"text", "pages", "flags"}], "method": "llm"|"extractive", "ocr_pages", ...}')
    z.set_defaults(func=cmd_summarize)
