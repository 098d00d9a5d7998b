"""One caller's question, answered or handed off: the use-case behind ``madoguchi phone ask`` (and,
later, each turn of a call). :class:`Inquiries` holds what a phone line keeps loaded — the
office's FAQ from the data folder, its search index, the embedder — and :meth:`Inquiries.ask`
returns an :class:`InquiryResult` with the stable JSON shape of the CLI contract::

    {"action": "answer"|"transfer"|"callback", "answer": str, "faq": [{"id", "title"}],
     "score": float, "handoff": bool, "reason": str|null, "best": str|null,
     "follow_up": str|null, "question": str, "seconds": float}

``answer`` is the FAQ item's own text, or the ``[handoff]`` sentence (transfer within office
hours, callback request outside them). ``seconds`` is the decision time (from the end of the
question's text to the answer); for audio, ``asr_seconds`` is added (transcription after the end
of the recording).
"""
from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import MadoguchiError
from . import faq as faq_mod
from .decide import Decision, Thresholds, decide
from .faqindex import open_index
from .hours import parse as parse_hours

MAX_QUESTION = 500       # characters; a longer "question" is not one caller's question


class InquiryError(MadoguchiError):
    ja_default = "問い合わせの内容を確認してください。"


@dataclass
class InquiryResult:
    action: str                 # answer | transfer | callback
    decision: Decision
    seconds: float
    asr_seconds: float | None = None

    def as_json(self) -> dict:
        d = self.decision
        out = {"action": self.action, "answer": d.answer,
               "faq": [{"id": d.item.id, "title": d.item.title}] if d.item else [],
               "score": d.score, "handoff": d.handoff, "reason": d.reason, "best": d.best,
               "follow_up": d.item.follow_up if d.item else None, "question": d.question,
               "seconds": round(self.seconds, 4)}
        if self.asr_seconds is not None:
            out["asr_seconds"] = round(self.asr_seconds, 3)
        return out


class Inquiries:
    """The phone line's loaded FAQ. ``data_dir``: the data folder (its phone/faq.toml is used)."""

    def __init__(self, config, data_dir: Path | str, embedder=None, thresholds: Thresholds | None = None,
                 faq: faq_mod.Faq | None = None):
        from ..models import load_embedder
        self.config = config
        self.hours = parse_hours(config.get("phone.office_hours", "mon-fri 08:30-17:15") if config is not None
                                 else "mon-fri 08:30-17:15")
        self.faq = faq or faq_mod.load_office(data_dir)
        if embedder is None:
            embedder = load_embedder(config.get("embed.model", "embed-ja") if config is not None else "embed-ja", config)
        self.index = open_index(data_dir, self.faq, embedder)
        self.thresholds = thresholds or Thresholds()

    def ask(self, question: str, at: dt.datetime | None = None) -> InquiryResult:
        if not isinstance(question, str) or not question.strip():
            raise InquiryError("the question is empty", ja="問い合わせの文が空です。")
        if len(question) > MAX_QUESTION:
            raise InquiryError(f"the question has {len(question)} characters (at most {MAX_QUESTION})",
                               ja=f"問い合わせの文が長すぎます（{MAX_QUESTION}字まで）。")
        t0 = time.perf_counter()
        d = decide(self.faq, self.index, question, self.thresholds)
        return InquiryResult(self._action(d, at), d, time.perf_counter() - t0)

    def _action(self, d: Decision, at: dt.datetime | None) -> str:
        if not d.handoff:
            return "answer"
        if d.reason == "not_understood":
            return "transfer" if self.hours.open_at(at or dt.datetime.now()) else "callback"
        if self.hours.open_at(at or dt.datetime.now()):
            return "transfer"
        d.answer = self.faq.handoff.callback
        return "callback"

    def ask_audio(self, path: Path | str, at: dt.datetime | None = None) -> InquiryResult:
        """A spoken question (a WAV/FLAC/… file, e.g. 8 kHz μ-law from the phone system),
        transcribed by the live Whisper path, then :meth:`ask`. Nothing heard → not_understood."""
        from .listen import transcribe_question
        t0 = time.perf_counter()
        text = transcribe_question(self.config, path, self.faq.hotwords)
        asr = time.perf_counter() - t0
        if not text.strip():
            d = Decision("", True, "not_understood", None, None, 0.0, self.faq.handoff.not_understood)
            return InquiryResult(self._action(d, at), d, 0.0, asr)
        r = self.ask(text[:MAX_QUESTION], at)
        r.asr_seconds = asr
        return r


def ask(ctx, question: str | None = None, audio: Path | str | None = None,
        at: dt.datetime | None = None) -> InquiryResult:
    """``madoguchi phone ask``: one typed (or recorded) question against the office's FAQ."""
    inq = Inquiries(ctx.config, ctx.data_dir)
    if audio is not None:
        return inq.ask_audio(audio, at)
    return inq.ask(question or "", at)
