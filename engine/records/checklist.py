"""The live interview checklist: which of the template's required record items the conversation has
covered so far, and where 申請意思 stands — so that the caseworker sees, before 停止, what has not
been asked yet.

It is the item drafter's own per-exchange extraction (:func:`engine.records.items.extract`) run on
the segments final so far: an item is covered when the extraction found a value for it, with the
segments that value rests on as evidence. The same words that make a statement in the draft tick
the item, so the checklist and the draft cannot disagree. 申請意思 is one of:

- ``expressed``: the citizen said they apply (「申請したいです」, or 「はい」 to 「申請されますか」);
- ``undecided``: the citizen asked for time or declined for today (「考えさせてください」);
- ``asked``: staff spoke of the application (the right to apply, 「申請されますか」) and the citizen
  has not answered either way yet;
- ``not_asked``: nothing about the application yet.

A later statement supersedes an earlier one (「考えさせて」 … 「やっぱり申請します」 → expressed).

During a consultation :func:`engine.records.draft.incremental_job` reports a :class:`Coverage` each
time new segments arrive (a job progress event), which the counter screen shows.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from . import checks
from . import items as ritems
from .model import Segment

INTENT_STATES = ("expressed", "undecided", "asked", "not_asked")


@dataclass
class ItemCoverage:
    key: str                   # a catalogue item (engine.records.items.CATALOGUE)
    title: str
    covered: bool
    evidence: list[int] = field(default_factory=list)     # segment seq numbers


@dataclass
class Coverage:
    """The checklist at one moment of a consultation (a plain, picklable event)."""
    items: list[ItemCoverage]
    intent: str = "not_asked"                              # one of INTENT_STATES
    intent_evidence: list[int] = field(default_factory=list)
    segments: int = 0                                      # how many segments it was computed from

    def item(self, key: str) -> ItemCoverage:
        return next(it for it in self.items if it.key == key)

    @property
    def missing(self) -> list[str]:
        """Keys of the required items not covered yet (申請意思: not expressed or undecided)."""
        return [it.key for it in self.items if not it.covered]

    def same_as(self, other: "Coverage | None") -> bool:
        """The same ticks, evidence and intent state (the segment count aside)."""
        return other is not None and (self.items, self.intent, self.intent_evidence) == (
            other.items, other.intent, other.intent_evidence)


def required_items(template) -> list[str]:
    """The catalogue items feeding the template's required sections, in template order (once each)."""
    plan = ritems.section_items(template)
    out: list[str] = []
    for s in template.sections:
        if s.required and s.kind != "judgement":
            out += [k for k in plan.get(s.key, []) if k not in out]
    return out


def _intent_state(ex: list[ritems.Exchange], found: list[ritems.Found]) -> tuple[str, list[int]]:
    said = [f for f in found if f.item == "intent"]
    if said:
        last = max(said, key=lambda f: max(f.evidence or [0]))
        return ("expressed" if last.text.startswith("申請の意思あり") else "undecided"), list(last.evidence)
    asked = [g.seq for e in ex for g in e.staff if re.search(r"申請", checks.normalize(g.text))]
    return ("asked", asked[-1:]) if asked else ("not_asked", [])


def coverage(segments: list[Segment], template) -> Coverage:
    """The checklist for ``segments`` (the final lines so far, in order) and ``template``'s required
    items. Costs what the item drafter's extraction costs: milliseconds for a 10-minute consultation."""
    keys = required_items(template)
    segs = ritems.labelled(sorted(segments, key=lambda g: g.seq))
    found = ritems.extract(segs, set(keys) | {"intent"})
    state, ev = _intent_state(ritems.exchanges(segs), found)
    out = []
    for k in keys:
        if k == "intent":
            out.append(ItemCoverage(k, ritems.ITEMS[k].title, state in ("expressed", "undecided"),
                                    ev if state in ("expressed", "undecided") else []))
            continue
        hits = [f for f in found if f.item == k]
        out.append(ItemCoverage(k, ritems.ITEMS[k].title, bool(hits), sorted({e for f in hits for e in f.evidence})))
    return Coverage(out, state, ev, len(segs))


def reporter(template, progress):
    """A function of the segments so far that reports their ``("coverage", Coverage)`` through
    ``progress`` (a job's progress callback). Called when new segments arrive (at most once a second
    in :func:`~engine.records.draft.incremental_job`), so ``Coverage.segments`` also tells the screen
    how far the checklist has read."""
    def report(segments: list[Segment]) -> Coverage:
        cov = coverage(segments, template)
        progress(("coverage", cov))
        return cov
    return report
