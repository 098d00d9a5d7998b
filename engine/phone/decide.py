"""Answer from the FAQ or hand off to staff: the phone's decision rule.

In order: nothing usable heard → hand off (``not_understood``); the caller asks for a person
(``asked_for_person``) or sounds angry, urgent or distressed (``upset``) → hand off; the question is
searched in the FAQ (:mod:`engine.phone.faqindex`); the best match is the office's [outside]
business (``out_of_scope``) or not clearly an FAQ item (``unsure``: too dissimilar, too close to
another item or to [outside]) → hand off. Only then is the item answered — with its own text.

A wrong answer costs more than a hand-off, so the thresholds below were set on the dev split of
``resources/eval/phone/dev.toml`` (``bench/phone.py --tune``) for no wrong answer there with a
margin, and are reported on the separate test split (docs/benchmarks.md, section ``phone``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..manuals.tokenize import normalize
from .faq import Faq, FaqItem
from .faqindex import OUTSIDE, Candidate, FaqIndex, first_by

# Calibrated on the dev split (bench/phone.py --tune); cosine similarities of multilingual-e5-small.
AGREED_SIMILARITY = 0.8875    # the best item's similarity when full-text and vector search agree on it
SIMILARITY = 0.9125           # … when they do not
MIN_MARGIN_SECOND = 0.0025    # … above the next item
MIN_MARGIN_OUTSIDE = 0.030    # … above the nearest [outside] example
MIN_CHARS = 4                 # a shorter question is not a question
# hesitation words callers put before and between the words of a question (they carry no meaning
# and pull the question's embedding away from the FAQ's examples)
FILLERS = re.compile(r"(?:えー+と?|えっと|ええと|あのー+|あのう|あの、|そのー+|まあ、?|なんか、?|うーん|んー|すみません、?|"
                     r"もしもし、?|ちょっと、?お?聞きしたいんですけど、?)")

REASONS = ("not_understood", "asked_for_person", "upset", "out_of_scope", "unsure")
REASON_JA = {"not_understood": "聞き取れなかった", "asked_for_person": "職員との通話を希望", "upset": "怒り・緊急の様子",
             "out_of_scope": "FAQの対象外", "unsure": "FAQの該当が不確か"}


@dataclass
class Thresholds:
    agreed_similarity: float = AGREED_SIMILARITY
    similarity: float = SIMILARITY
    margin_second: float = MIN_MARGIN_SECOND
    margin_outside: float = MIN_MARGIN_OUTSIDE


@dataclass
class Decision:
    """What the phone does with one question. ``answer`` is always FAQ text: the item's answer, or
    the hand-off sentence of ``[handoff]``."""
    question: str
    handoff: bool
    reason: str | None                    # one of REASONS when handed off
    item: FaqItem | None                  # the FAQ item answered (None when handed off)
    best: str | None                      # the best-matching FAQ item id, also when handed off
    score: float                          # the best item's similarity to the question (0..1)
    answer: str = ""
    candidates: list[Candidate] = field(default_factory=list)


def _phrase_hit(text: str, phrases) -> str | None:
    t = re.sub(r"\s+", "", normalize(text))
    for p in phrases:
        if re.sub(r"\s+", "", normalize(p)) in t:
            return p
    return None


def strip_fillers(text: str) -> str:
    return FILLERS.sub("", text).strip("、。 　") or text


def decide(faq: Faq, index: FaqIndex, question: str, th: Thresholds | None = None,
           exclude: str | None = None) -> Decision:
    th = th or Thresholds()
    q = (question or "").strip()

    def handoff(reason: str, cands=None, best=None, score=0.0) -> Decision:
        text = faq.handoff.not_understood if reason == "not_understood" else faq.handoff.transfer
        return Decision(q, True, reason, None, best, score, text, cands or [])

    if len(re.sub(r"[\s\W_]+", "", q)) < MIN_CHARS:
        return handoff("not_understood")
    if _phrase_hit(q, faq.handoff.person):
        return handoff("asked_for_person")
    if _phrase_hit(q, faq.handoff.upset):
        return handoff("upset")
    cands = index.candidates(strip_fillers(q), exclude)
    verdict, top = judge(cands, th)
    if verdict != "answer":
        return handoff(verdict, cands, top.id if top else None, round(top.similarity, 4) if top else 0.0)
    item = faq.item(top.id)
    return Decision(q, False, None, item, top.id, round(top.similarity, 4), item.answer, cands)


def judge(cands: list[Candidate], th: Thresholds) -> tuple[str, Candidate | None]:
    """("answer" | "out_of_scope" | "unsure", the best FAQ item) from the search's candidates."""
    items = [c for c in cands if c.id != OUTSIDE]
    if not items:
        return "out_of_scope", None
    top = items[0]
    if cands[0].id == OUTSIDE or OUTSIDE in (first_by(cands, "fts"), first_by(cands, "vector")):
        return "out_of_scope", top
    agreed = first_by(cands, "fts") == top.id and first_by(cands, "vector") == top.id
    second = max((c.similarity for c in items[1:]), default=0.0)
    outside = next((c for c in cands if c.id == OUTSIDE), None)
    # [outside] not among the hits: its nearest example is no closer than the farthest hit
    out_sim = outside.similarity if outside is not None else min((c.similarity for c in cands), default=0.0)
    need = th.agreed_similarity if agreed else th.similarity
    if top.similarity < need or top.similarity - second < th.margin_second or top.similarity - out_sim < th.margin_outside:
        return "unsure", top
    return "answer", top
