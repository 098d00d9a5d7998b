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
from .faqindex import OUTSIDE, Candidate, FaqIndex

# Calibrated on the dev split (bench/phone.py --tune); cosine similarities of multilingual-e5-small.
MIN_SIMILARITY = 0.885        # the best item's similarity to the question
MIN_MARGIN_OUTSIDE = 0.030    # … above the nearest [outside] example
MIN_MARGIN_SECOND = 0.000     # … above the next item
MIN_CHARS = 4                 # a shorter question is not a question

REASONS = ("not_understood", "asked_for_person", "upset", "out_of_scope", "unsure")
REASON_JA = {"not_understood": "聞き取れなかった", "asked_for_person": "職員との通話を希望", "upset": "怒り・緊急の様子",
             "out_of_scope": "FAQの対象外", "unsure": "FAQの該当が不確か"}


@dataclass
class Thresholds:
    similarity: float = MIN_SIMILARITY
    margin_outside: float = MIN_MARGIN_OUTSIDE
    margin_second: float = MIN_MARGIN_SECOND


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


def decide(faq: Faq, index: FaqIndex, question: str, th: Thresholds | None = None) -> Decision:
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
    cands = index.candidates(q)
    items = [c for c in cands if c.id != OUTSIDE]
    outside = next((c for c in cands if c.id == OUTSIDE), None)
    if not items:
        return handoff("out_of_scope", cands)
    top = items[0]
    score = round(top.similarity, 4)
    if outside is not None and outside.rank < top.rank:
        return handoff("out_of_scope", cands, top.id, score)
    second = max((c.similarity for c in items[1:]), default=0.0)
    out_sim = outside.similarity if outside is not None else 0.0
    if (top.similarity < th.similarity or top.similarity - out_sim < th.margin_outside
            or top.similarity - second < th.margin_second):
        return handoff("unsure", cands, top.id, score)
    item = faq.item(top.id)
    return Decision(q, False, None, item, top.id, score, item.answer, cands)
