"""A citizen's paper at the counter (督促状, 年金の通知, 賃貸借契約書, 給与明細 …): a photo, a scan or a
PDF is read like a manual page (scans and photos through OCR), and the caseworker gets its text
page by page, a cited summary (:mod:`.summarize`) and the key fields — 差出人, 金額, 期限, 宛先 —
each with the page it was found on, so 「この督促状の期限は？」 is answered from the paper itself.

Nothing of the paper is stored here: the result lives with the open consultation on the screen
(see ``desktop/views/paperdialog.py``); only the fact that a paper was read is written to the audit
trail (page counts and the reading method, never its text or file name).
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from .summarize import (Summary, SummaryError, default_ocr, passages_of, read_document,
                        summarize_passages)

# what the caseworker is told when a paper cannot be read (reason of the indexer → what to do)
JA_UNREADABLE = {
    "unsupported": "この形式のファイルは読み取れません。写真（JPEG・PNG・HEIC）、スキャン画像（TIFF）または PDF を選んでください。",
    "broken": "ファイルが壊れているか、画像として開けません。もう一度スキャン（撮影）してください。",
    "encrypted": "パスワードで保護された PDF は読み取れません。保護のない版か、紙をスキャンしたものを使ってください。",
    "empty": "書類の文字を読み取れませんでした。書類全体が明るくまっすぐ写るように撮り直すか、スキャンし直してください。",
    "ocr": "文字認識（OCR）の部品が使えません。システム管理者に連絡してください（madoguchi doctor）。",
}
JA_TOO_LITTLE = "書類の文字がほとんど読み取れませんでした。書類全体が明るくまっすぐ写るように撮り直してください。"
JA_NO_FILE = "ファイルが見つかりません。もう一度選んでください。"
FIELD_NAMES = ("差出人", "宛先", "金額", "期限")
MIN_CHARS = 20          # fewer characters read than this: the photo is not a readable paper

_AMOUNT = re.compile(r"[0-9０-９]+(?:\s*[,，、]\s*[0-9０-９]{3})*\s*円")   # OCR puts spaces in "23, 700円"
_DATE = re.compile(r"(?:(?:令和|平成|昭和)\s*(?:元|[0-9０-９]{1,2})\s*年(?:度)?\s*)?(?:[0-9０-９]{4}\s*年\s*)?"
                   r"[0-9０-９]{1,2}\s*月\s*[0-9０-９]{1,2}\s*日")
_DEADLINE_CUE = re.compile(r"期限|納期|まで|締切|以内|満了")
_AMOUNT_CUE = re.compile(r"未納|合計|請求|総支給|差引|手取|年税額|保険料|賃料|支給見込|給付金の額|金額|年額|月額")
_SENDER = re.compile(r"(?:差出人|発行者|発信者)\s*[：:]\s*([^\s。、]{2,30})")
_SENDER_ORG = re.compile(r"([^\s。、「」（）()]{1,16}?(?:区長|市長|町長|村長|知事|区役所|市役所|年金機構|年金事務所|"
                         r"水道局|税事務所|保険年金課[^\s。、]{0,8}|株式会社[^\s。、]{1,12}|不動産|センター))")
_ADDRESSEE = re.compile(r"([^\s。、「」:：]{1,12}?)\s*(?:様|殿)(?:[のへあ\s。、]|$)")


@dataclass
class KeyField:
    name: str              # 差出人 | 宛先 | 金額 | 期限
    value: str             # "" when not found
    page: int | None = None


@dataclass
class Paper:
    """What the counter shows of one paper; ``pages``: (page number, its text)."""
    name: str
    title: str
    pages: list[tuple[int, str]]
    fields: list[KeyField]
    summary: Summary | None
    ocr_pages: list[int] = field(default_factory=list)
    low_confidence: list[int] = field(default_factory=list)
    seconds: float = 0.0

    def get(self, name: str) -> KeyField:
        return next(f for f in self.fields if f.name == name)

    def text(self) -> str:
        return "\n\n".join(t for _p, t in self.pages)


def _sentences(pages: list[tuple[int, str]]):
    for page, text in pages:
        for s in re.findall(r"[^。\n]+[。]?", text):
            if s.strip():
                yield page, s.strip()


def key_fields(pages: list[tuple[int, str]]) -> list[KeyField]:
    """差出人, 宛先, 金額, 期限 found in the text, each with its page ("" when not found). A field is
    what the text says, never computed: the amount and the date are copied as written."""
    sents = list(_sentences(pages))

    def first(pattern, cue=None):
        for want_cue in ((True, False) if cue is not None else (False,)):
            for page, s in sents:
                if want_cue and not cue.search(s):
                    continue
                m = pattern.search(s)
                if m:
                    return m.group(1) if m.groups() else m.group(0), page
        return "", None

    sender = first(_SENDER)
    if not sender[0]:
        sender = first(_SENDER_ORG)
    out = [KeyField("差出人", *sender), KeyField("宛先", *first(_ADDRESSEE)),
           KeyField("金額", *first(_AMOUNT, _AMOUNT_CUE)), KeyField("期限", *first(_DATE, _DEADLINE_CUE))]
    for f in out:
        f.value = re.sub(r"\s+", "", f.value)
    return out


def page_texts(doc) -> list[tuple[int, str]]:
    """The text of each page of an :class:`~.ingest.Document` (OCR pages as read, others from the passages)."""
    by_page: dict[int, list[str]] = {}
    for p in passages_of(doc):
        by_page.setdefault(p.pages[0], []).append(p.text)
    for pt in doc.ocr:
        by_page[pt.page] = [pt.text]
    return sorted((n, "\n".join(ts).strip()) for n, ts in by_page.items())


def read_paper(ctx, path: str | Path, *, user=None, config=None, llm=None, ocr_engine=None,
               summarize: bool = True, cancelled=lambda: False) -> Paper:
    """Read a citizen's paper: its text, key fields and a cited summary (the LLM when enabled,
    else extractive). Raises :class:`SummaryError` with a Japanese message saying what to do."""
    from .ocr import LOW_CONFIDENCE
    t0 = time.perf_counter()
    if user is not None:          # a citizen's paper is casework (要配慮個人情報): the welfare roles only
        from ..roles import require
        require(user, "record")
    config = config if config is not None else ctx.config
    path = Path(path).expanduser()
    if not path.is_file():
        raise SummaryError(f"{path}: no such file", ja=JA_NO_FILE, reason="missing")
    try:
        doc = read_document(path, ocr_engine or default_ocr(config))
    except SummaryError as e:
        raise SummaryError(str(e), ja=JA_UNREADABLE.get(e.reason, e.ja), reason=e.reason) from e
    pages = page_texts(doc)
    if sum(len(re.sub(r"\s", "", t)) for _n, t in pages) < MIN_CHARS:
        raise SummaryError(f"{path.name}: too little text read", ja=JA_TOO_LITTLE, reason="empty")
    if cancelled():               # the caseworker closed the window while Tesseract read the paper
        raise SummaryError(f"{path.name}: cancelled", ja="読み取りを中止しました。", reason="cancelled")
    summary = None
    if summarize:
        summary = summarize_passages(config, str(doc.path), doc.title, passages_of(doc),
                                     [p.page for p in doc.ocr], llm=llm)
    paper = Paper(path.name, doc.title, pages, key_fields(pages), summary, [p.page for p in doc.ocr],
                  [p.page for p in doc.ocr if p.confidence < LOW_CONFIDENCE], round(time.perf_counter() - t0, 2))
    if user is not None:
        from .. import audit
        audit.append(ctx.store, user.username, "paper.read", "paper", "",
                     {"pages": len(pages), "ocr_pages": len(paper.ocr_pages),
                      "summary": summary.method if summary else "none"})
    return paper


def paper_job(ctx, progress, cancel, path: str, username: str) -> Paper:
    """Child-process entry point of :func:`read_paper` (:func:`engine.jobs.run_in_child`): Tesseract
    and the model run outside the counter window's process."""
    from ..users import get_user
    return read_paper(ctx, path, user=get_user(ctx.store, username), cancelled=cancel.is_set)
