"""文書要約: a short summary (5–8 points) of one document where every point cites its page(s).

The document is a file (read like the indexer reads it — a scan or photo through OCR) or a
manual already in the index (its stored passages, no re-reading). Long documents are handled as
map-reduce within the model's context: the *map* step picks, passage by passage, the sentences
that carry the document's content (term weight against the whole document, numbers, dates and
deadlines, diversity), each with the page(s) it is on; the *reduce* step gives the local LLM at
most :data:`MAX_CANDIDATES` numbered sentences to pick from and rephrase in plain Japanese, each
point ending in the numbers it rests on. The model picks and rephrases; it does not add: every
point then passes the content-support check the record statements pass (numbers, dates and
amounts, names and content words must be on the cited pages), and a point that fails is kept and
flagged. Without the LLM (or when it gives too few usable points) the summary is the candidate
sentences themselves, labelled ``extractive``.
"""
from __future__ import annotations

import logging
import math
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import MadoguchiError
from .tokenize import terms

log = logging.getLogger(__name__)

MIN_POINTS, MAX_POINTS = 5, 8
MAX_CANDIDATES = 14            # sentences given to the LLM in the reduce step
SENTENCE_MIN = 10
SENTENCE_MAX = 160
SUPPORT_MIN = 0.5              # share of a point's content words that must be on its cited pages
EXTRACTIVE_LABEL = "【抽出による要約（原文の文をそのまま並べたもの・AIによる言い換えなし）】"
LLM_LABEL = "【要約（AIによる下書き・要確認）】"
SYSTEM = ("あなたは区役所の窓口職員を手伝う補助者です。与えられた番号付きの文だけを根拠に、文書の要点を"
          "5〜8個、やさしい日本語の短い箇条書きにしてください。各行は「・」で始め、行末に根拠の文の番号を"
          "[1]のように必ず付けてください。数字・日付・金額・名前は元の文のとおりに書き、"
          "元の文にないことは書かないでください。")
# words that make a sentence worth a point at the counter (deadlines, money, what to do)
CUE = re.compile(r"期限|まで|までに|締切|円|金額|支給|納付|支払|返還|提出|申請|必要|できます|できません|"
                 r"してください|こと。|とする。|ものとする|場合|対象|日から|月から|以内|停止|廃止")


class SummaryError(MadoguchiError):
    ja_default = "文書を要約できませんでした。ファイルを確認してください。"

    def __init__(self, message: str, ja: str | None = None, reason: str = ""):
        super().__init__(message, ja)
        self.reason = reason       # an unreadable file: the indexer's reason (broken, empty, …)


@dataclass
class Passage:
    text: str
    pages: list[int]
    heading: str = ""


@dataclass
class Candidate:
    text: str
    pages: list[int]
    score: float
    order: int                 # position in the document


@dataclass
class Point:
    text: str
    pages: list[int]
    flags: list[str] = field(default_factory=list)


@dataclass
class Summary:
    doc: str
    title: str
    points: list[Point]
    method: str                # llm | extractive
    ocr_pages: list[int] = field(default_factory=list)
    model: str = ""
    seconds: float = 0.0

    @property
    def label(self) -> str:
        return LLM_LABEL if self.method == "llm" else EXTRACTIVE_LABEL

    def as_json(self) -> dict:
        return {"doc": self.doc, "title": self.title, "method": self.method, "label": self.label,
                "model": self.model, "ocr_pages": self.ocr_pages,
                "points": [{"text": p.text, "pages": p.pages, "flags": p.flags} for p in self.points]}

    def format(self) -> str:
        lines = [self.label, self.title]
        for p in self.points:
            pages = ", ".join(f"p.{n}" for n in p.pages) if p.pages else "-"
            flag = f"  [要確認: {', '.join(p.flags)}]" if p.flags else ""
            lines.append(f"・{p.text}（{pages}）{flag}")
        if self.ocr_pages:
            lines.append(f"（OCRで読み取ったページ: {', '.join(map(str, self.ocr_pages))}）")
        return "\n".join(lines)


# --------------------------------------------------------------------------- the document

def _pages(a: int | None, b: int | None) -> list[int]:
    if a is None:
        return [1]          # a document without pages (TXT, HTML, one photo) is one page
    return list(range(a, (b if b is not None else a) + 1))


def indexed(store, doc: str) -> tuple[str, str, list[Passage], list[int]] | None:
    """(path, title, passages, OCR pages) of a manual in the index, by path or by title."""
    from .index import document_chunks
    from .ocrpages import page_confidences
    found = document_chunks(store, str(Path(doc).expanduser().resolve()) if doc else "", doc)
    if found is None:
        return None
    d, rows = found
    return d["path"], d["title"], [Passage(r["text"], _pages(r["page_start"], r["page_end"]), r["heading"])
                                   for r in rows], [p for p, _c in page_confidences(store, d["sha256"])]


def ocr_reader(ocr_engine):
    """The indexer's page reader over ``ocr_engine()`` (a callable giving an :class:`~.ocr.Ocr`)."""
    from .ocrpages import image_dpi
    if ocr_engine is None:
        return None

    def reader(page, render):
        image = render()
        return ocr_engine().read(image, page, dpi=image_dpi(image))
    return reader


def default_ocr(config):
    """A callable giving the ``ocr-jpn`` Tesseract, loaded on first use."""
    from . import ocr as ocr_mod
    from ..models import model_path
    cache = {}

    def engine():
        if "e" not in cache:
            cache["e"] = ocr_mod.Ocr(model_path(ocr_mod.OCR_MODEL, config))
        return cache["e"]
    return engine


def read_document(path: Path, ocr_engine=None):
    """The file as the indexer reads it (an :class:`~.ingest.Document`; scans and photos through
    OCR). An unreadable file raises :class:`SummaryError` with the indexer's ``reason``."""
    from . import ingest
    try:
        return ingest.parse(path, ocr=ocr_reader(ocr_engine))
    except ingest.UnreadableFile as e:
        raise SummaryError(str(e), ja=e.ja, reason=e.reason) from e


def passages_of(d) -> list[Passage]:
    return [Passage(c.text, _pages(c.page_start, c.page_end), " > ".join(c.heading)) for c in d.chunks]


def from_file(path: Path, ocr_engine=None) -> tuple[str, str, list[Passage], list[int]]:
    """Read a file as the indexer does (scans and photos through OCR)."""
    d = read_document(path, ocr_engine)
    return str(d.path), d.title, passages_of(d), [p.page for p in d.ocr]


def page_range(spec: str | None) -> tuple[int, int] | None:
    if not spec:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+))?\s*", spec)
    if not m or int(m.group(1)) < 1 or (m.group(2) and int(m.group(2)) < int(m.group(1))):
        raise SummaryError(f"bad page range {spec!r} (expected A-B, e.g. 3-7)", ja="ページの範囲が正しくありません（例: 3-7）。")
    a = int(m.group(1))
    return a, int(m.group(2) or a)


# --------------------------------------------------------------------------- map: candidate sentences

def sentences(passages: list[Passage]) -> list[tuple[str, list[int]]]:
    out = []
    for p in passages:
        text = p.text
        for label in reversed([h.strip() for h in p.heading.split(" > ") if h.strip()]):
            for head in (label, label.split(" ", 1)[-1]):
                if head and text.startswith(head):
                    text = text[len(head):].lstrip()
        for s in re.findall(r"[^。！？]+[。！？]?", text):
            s = re.sub(r"^[(（]?(?:問|答)[)）]?\s*", "", s.strip())
            s = re.sub(r"^(?:第\d+(?:の\d+)*|\d+|[(（]\d+[)）]|[ア-ト])\s+", "", s)
            if len(s) >= SENTENCE_MIN:
                out.append((s[:SENTENCE_MAX], p.pages))
    return out


def candidates(passages: list[Passage], limit: int = MAX_CANDIDATES) -> list[Candidate]:
    """The sentences that carry the document, best first by weight, then diverse (MMR)."""
    sents = sentences(passages)
    if not sents:
        return []
    toks = [set(terms(s)) for s, _p in sents]
    df = Counter(t for ts in toks for t in ts)
    tf = Counter(t for s, _p in sents for t in terms(s))
    n = len(sents)

    def weight(t):
        return math.log(1 + tf[t]) * math.log(1 + n / df[t])
    base = []
    for i, ((s, pages), ts) in enumerate(zip(sents, toks)):
        w = sum(weight(t) for t in ts) / math.sqrt(max(len(ts), 4))
        w *= 1.0 + 0.25 * len(CUE.findall(s)) + (0.3 if re.search(r"\d", s) else 0.0)
        w *= 1.15 if i < max(3, n // 10) else 1.0           # the opening says what the document is
        base.append(w)
    chosen: list[int] = []
    while len(chosen) < min(limit, n):
        def mmr(i):
            sim = max((len(toks[i] & toks[j]) / max(1, len(toks[i] | toks[j])) for j in chosen), default=0.0)
            return base[i] * (1 - 0.7 * sim)
        best = max((i for i in range(n) if i not in chosen), key=mmr)
        chosen.append(best)
    return [Candidate(sents[i][0], sents[i][1], round(base[i], 3), i) for i in chosen]


# --------------------------------------------------------------------------- support check

def support_flags(text: str, cited: str) -> list[str]:
    """The content-support check of record statements, on a point and the text of its pages."""
    from ..records.checks import normalize, numbers, proper_nouns
    flags = []
    if not cited:
        return ["no_pages"]
    if sorted(v for v in numbers(text) if v not in numbers(cited)):
        flags.append("number_unsupported")
    ncited = normalize(cited)
    if [p for p in dict.fromkeys(proper_nouns(text)) if p not in ncited]:
        flags.append("name_unsupported")
    mine = set(terms(text))
    if mine and len(mine & set(terms(cited))) / len(mine) < SUPPORT_MIN:
        flags.append("content_unsupported")
    return flags


def page_text(passages: list[Passage], pages: list[int]) -> str:
    if not pages:
        return " ".join(p.text for p in passages if not p.pages)
    return " ".join(p.text for p in passages if set(p.pages) & set(pages))


# --------------------------------------------------------------------------- reduce

def _prompt(title: str, cands: list[Candidate]) -> list[dict]:
    lines = "\n".join(f"[{i}] {c.text}" for i, c in enumerate(cands, 1))
    return [{"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"文書: {title}\n\n文:\n{lines}\n\n要点（各行「・」で始め、行末に[番号]）:"}]


def _overlap(a: str, b: str) -> float:
    ta = set(terms(a))
    return len(ta & set(terms(b))) / len(ta) if ta else 0.0


def parse_points(raw: str, cands: list[Candidate], title: str = "") -> list[Point]:
    out: list[Point] = []
    for line in raw.splitlines():
        line = line.strip()
        if not re.match(r"^(?:[・\-*●•]|\d+[.)．、])", line):
            continue
        nums = sorted({int(n) for n in re.findall(r"\[(\d+)\]", line) if 1 <= int(n) <= len(cands)})
        text = re.sub(r"\s*\[\d+\]", "", re.sub(r"^(?:[・\-*●•]|\d+[.)．、])\s*", "", line)).strip()
        if len(text) < 6 or any(p.text == text for p in out) or title and text.startswith(title):
            continue
        if not nums:     # small models drop the numbers: the sentence it rests on, if one clearly
            best = max(range(len(cands)), key=lambda i: _overlap(text, cands[i].text))
            if _overlap(text, cands[best].text) < 0.5:
                continue
            nums = [best + 1]
        pages = sorted({pg for n in nums for pg in cands[n - 1].pages})
        out.append(Point(text, pages))
    return out[:MAX_POINTS]


def extractive(cands: list[Candidate]) -> list[Point]:
    """The best candidates themselves, in document order (no model)."""
    top = sorted(cands[:MIN_POINTS + 1], key=lambda c: c.order)
    return [Point(c.text, list(c.pages)) for c in top]


def summarize(ctx, doc: str, *, pages: str | None = None, config=None, llm=None, ocr_engine=None,
              max_tokens: int = 360) -> Summary:
    """Summarise ``doc`` (an indexed manual's path or title, or any readable file)."""
    t0 = time.perf_counter()
    config = config if config is not None else ctx.config
    found = indexed(ctx.local, doc)
    if found is None:
        path = Path(doc).expanduser()
        if not path.is_file():
            raise SummaryError(f"{doc}: no such file and no indexed manual of that name",
                               ja=f"{Path(doc).name}: ファイルも索引済みの文書も見つかりません。")
        found = from_file(path, ocr_engine or default_ocr(config))
    path, title, passages, ocr_pages = found
    return summarize_passages(config, path, title, passages, ocr_pages, pages=pages, llm=llm,
                              max_tokens=max_tokens, started=t0)


def summarize_passages(config, path: str, title: str, passages: list[Passage], ocr_pages: list[int], *,
                       pages: str | None = None, llm=None, max_tokens: int = 360,
                       started: float | None = None) -> Summary:
    """The summary of a document already read (``config``: the LLM settings; None = llm-default)."""
    t0 = started if started is not None else time.perf_counter()
    rng = page_range(pages)
    if rng:
        passages = [p for p in passages if p.pages and rng[0] <= min(p.pages) and max(p.pages) <= rng[1]
                    or p.pages and set(p.pages) & set(range(rng[0], rng[1] + 1))]
        ocr_pages = [p for p in ocr_pages if rng[0] <= p <= rng[1]]
        if not passages:
            raise SummaryError(f"{title}: no text on pages {pages}", ja=f"{title}: 指定のページに本文がありません。")
    cands = candidates(passages)
    if not cands:
        raise SummaryError(f"{title}: no sentences to summarise", ja=f"{title}: 要約できる本文がありません。")
    points: list[Point] = []
    method, model_name = "extractive", ""
    use_llm = config is None or config["llm.enabled"]
    if use_llm:
        model_name = config["llm.model"] if config is not None else "llm-default"
        try:
            if llm is None:
                from ..models import load_llm
                llm = load_llm(model_name, config, n_ctx=4096, threads=config["llm.threads"] if config else 2)
            out = llm.create_chat_completion(messages=_prompt(title, cands), temperature=0.0,
                                             max_tokens=max_tokens, seed=0)
            points = parse_points(out["choices"][0]["message"]["content"] or "", cands, title)
            method = "llm"
        except MadoguchiError:
            raise
        except Exception as e:  # the model failing must not lose the summary
            log.warning("summary by LLM failed: %s", e.__class__.__name__)
    if len(points) < 3:
        points, method, model_name = extractive(cands), "extractive", ""
    for p in points:
        p.flags = support_flags(p.text, page_text(passages, p.pages))
    return Summary(path, title, points, method, ocr_pages, model_name, round(time.perf_counter() - t0, 2))


def summarize_job(ctx, progress, cancel, doc: str, pages: str | None = None) -> Summary:
    """Child-process entry point of :func:`summarize` (:func:`engine.jobs.run_in_child`): the model
    and Tesseract run outside the counter window's process."""
    return summarize(ctx, doc, pages=pages)
