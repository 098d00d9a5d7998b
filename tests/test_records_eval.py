"""The evaluation set is well-formed, and the deterministic checks find what was planted in it."""
import json
from pathlib import Path

import pytest

from engine.records import checks, draft, template

EVAL = Path(__file__).resolve().parent.parent / "resources" / "eval" / "records"
CASES = sorted(p for p in EVAL.glob("case_*.json") if not p.name.endswith(".ref.json"))


def test_eval_set_shape():
    assert len(CASES) >= 10
    tpl = template.load("seikatsu_hogo")
    keys = {s.key for s in tpl.sections}
    for p in CASES:
        items = json.loads(p.read_text(encoding="utf-8"))
        ref = json.loads(p.with_suffix(".ref.json").read_text(encoding="utf-8"))
        assert 300 <= items[-1]["end"] <= 1200, p.name          # 5–20 minutes
        assert {i["speaker"] for i in items} == {"staff", "citizen"}
        assert all(a["end"] <= b["start"] for a, b in zip(items, items[1:]))
        assert set(ref["sections"]) <= keys and ref["sections"]


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_compliance_flags_match_what_was_planted(case):
    ref = json.loads(case.with_suffix(".ref.json").read_text(encoding="utf-8"))
    tpl = template.load("seikatsu_hogo")
    d = draft.draft(draft.segments_from_file(case), tpl, use_llm=False)
    codes = {f.code for f in d.flags}
    assert ("obstruction_phrase" in codes) == ref["obstruction"]
    intent_missing = any(f.code == "intent_not_confirmed" and f.detail == "transcript" for f in d.flags)
    assert intent_missing == (not ref["intent"])
    # every planted trap leaves the amount/date unsaid: the transcript lines on that topic carry no number
    for trap in ref["traps"]:
        lines = [g for g in d.segments if trap["topic"] in g.text and g.speaker == "citizen"]
        assert lines and not any(checks.numbers(g.text) for g in lines if "わから" in g.text or "覚えて" in g.text)
