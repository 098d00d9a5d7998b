"""The item drafter (engine/records/items.py) and the content-support check (records/support.py):
exchanges, the deterministic merge, record register, and the checks on real eval-set cases."""
from __future__ import annotations

import json
import time

import pytest

from devkit import recordfacts as rf
from engine.cli import main
from engine.records import checks, draft, items, template
from engine.records.model import Segment, Statement


@pytest.fixture(scope="module")
def tpl():
    return template.load("seikatsu_hogo")


def segs(*lines):
    out = []
    for i, (sp, text) in enumerate(lines, 1):
        out.append(Segment(i, float(i), i + 0.9, "staff" if sp == "S" else "citizen", text))
    return out


def texts(d, key):
    return [st.text for st in d.section(key).statements]


def test_exchange_carries_the_question(tpl):
    d = draft.draft(segs(("S", "家賃はおいくらですか。"), ("C", "さんまんろくせんえんです。"),
                         ("S", "お一人ですか。"), ("C", "はい。")), tpl, drafter="items")
    assert d.method == "items"
    assert "家賃は3万6千円とのこと。" in texts(d, "income_assets")
    assert "一人とのこと。" in texts(d, "situation") or "1人とのこと。" in texts(d, "situation")
    st = next(st for st in d.section("income_assets").statements if "家賃" in st.text)
    assert st.evidence == [1, 2] and not st.needs_review      # the question is cited with the answer


def test_self_correction_keeps_the_corrected_value(tpl):
    d = draft.draft(segs(("S", "家賃はおいくらですか。"), ("C", "家賃は五万…いや、ちがうちがう、四万八千円やった。")),
                    tpl, drafter="items")
    found = [t for t in texts(d, "income_assets") if "家賃" in t]
    assert found and all("4万8千円" in t and "5万" not in t for t in found), found


def test_denial_and_death_are_recorded_as_such(tpl):
    d = draft.draft(segs(("S", "車はお持ちですか。"), ("C", "いいえ。"),
                         ("S", "ご家族は。"), ("C", "両親はもう亡くなってて。")), tpl, drafter="items")
    assert "車はないとのこと。" in texts(d, "income_assets")
    sup = texts(d, "supporters")
    assert any("亡くな" in t for t in sup) and not any("援助" in t for t in sup)


def test_later_amount_supersedes_and_is_kept_as_correction():
    found = items.merge([items.Found("rent", "家賃は5万円とのこと。", [2], topic="家賃", amount=50000),
                         items.Found("rent", "家賃は4万8千円とのこと。", [5], topic="家賃", amount=48000)])
    assert [f.text for f in found] == ["家賃は4万8千円とのこと。"]
    assert found[0].evidence == [2, 5] and found[0].corrected == ["家賃は5万円とのこと。"]


def test_intent_needs_the_citizens_words(tpl):
    s = segs(("S", "申請されますか。"), ("C", "はい、申請したいです。"))
    d = draft.draft(s, tpl, drafter="items")
    st = d.section("intent").statements[0]
    assert 2 in st.evidence and not st.needs_review and rf.EXPRESSED.search(checks.normalize(st.text))
    # the LLM's boilerplate, cited to a staff line only: flagged
    by = {g.seq: g for g in s}
    fl = checks.support_flags(Statement("職員が申請の意思を確認した。", [1]), by, intent=True)
    assert "intent_unsupported" in [f.code for f in fl]


def test_content_support_flags_words_not_in_the_cited_lines():
    by = {g.seq: g for g in segs(("S", "お仕事は。"), ("C", "私はアパートで一人暮らしです。"))}
    # the template's own instruction written as a statement (issue 26): flagged, naming the words
    fl = checks.support_flags(Statement("相談者本人と世帯員の状況を書く。", [2]), by)
    assert fl and fl[0].code == "unsupported_content" and "書く" in fl[0].detail
    fl = checks.support_flags(Statement("資産は家賃と電気代です。", [2]), by)
    assert fl and fl[0].code == "unsupported_content" and "家賃" in fl[0].detail
    assert checks.support_flags(Statement("アパートで単身とのこと。", [2]), by) == []   # synonym + register


def test_obstruction_restating_the_citizen_is_not_flagged():
    assert checks.obstruction_hits("お兄さんには連絡してほしくないと考えていないということですね。") == []
    assert checks.obstruction_hits("まずご家族に相談してからでないと申請はできません。")


def test_template_items_are_validated(tmp_path):
    bad = '[[sections]]\nkey = "a"\ntitle = "A"\ninstruction = "x"\nitems = ["rent", "nonsense"]\n'
    with pytest.raises(template.TemplateError, match="nonsense"):
        template.parse(bad)
    ok = template.parse(bad.replace(', "nonsense"', ""))
    assert ok.sections[0].items == ["rent"]
    assert tuple(items.ITEMS) == template.ITEM_KEYS


@pytest.mark.parametrize("split", ["dev", "test"])
def test_eval_cases_meet_the_clean_floors(tpl, split):
    """The whole eval split, clean: the issue's floors (critical ≥ 0.85, all ≥ 0.75, nothing wrong
    and ≤ 3 % unsupported left unflagged, intent and obstruction right), in well under a second a case."""
    scores = []
    for case in rf.cases(split):
        t0 = time.perf_counter()
        d = draft.draft(case.segments(), tpl, drafter="items")
        assert time.perf_counter() - t0 < 10
        scores.append(rf.score(d, case).to_dict())
    s = rf.summarize(scores)
    assert s["critical"][0] / s["critical"][1] >= 0.85
    assert s["all"][0] / s["all"][1] >= 0.75
    # unsupported content by the scorer's own, stricter rule (devkit/recordfacts.py): the floor, ≤ 3 %
    assert s["wrong_unflagged"] == 0 and s["unsupported_unflagged"] <= 0.03 * s["statements"]
    assert s["verbatim"] / s["statements"] <= 0.20
    assert s["obstruction_right"][0] == s["obstruction_right"][1]
    assert s["intent_right"][0] >= s["intent_right"][1] - 1


def test_incremental_items_finish_at_once(tpl):
    case = rf.cases("dev")[0]
    inc = draft.IncrementalDrafter(tpl, drafter="items")
    assert inc.drafter is None                 # no model loaded, no background thread
    inc.feed(case.segments())
    t0 = time.monotonic()
    d = inc.finish()
    assert time.monotonic() - t0 < 10 and d.method == "items" and d.stats["incremental"]
    assert sum(len(s.statements) for s in d.sections) > 10


def test_cli_draft_uses_the_configured_drafter(tmp_path, data_dir, capsys, tpl):
    case = rf.cases("dev")[1]
    f = tmp_path / "t.json"
    f.write_text(json.dumps([{"start": g.start, "end": g.end, "speaker": g.speaker, "text": g.text, "final": True}
                             for g in case.segments()], ensure_ascii=False), encoding="utf-8")
    assert main(["--data-dir", str(data_dir), "draft", str(f), "--json"]) == 0
    cap = capsys.readouterr()
    out = json.loads(cap.out)
    assert out["method"] == "items" and "warning" not in cap.err
    assert {s["key"] for s in out["sections"]} == {s.key for s in tpl.sections}
    assert all(st["evidence"] for s in out["sections"] for st in s["statements"])
    assert main(["--data-dir", str(data_dir), "draft", str(f), "--no-llm", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["method"] == "extractive"


def test_unlabelled_speakers_still_give_a_record(tpl):
    s = [Segment(g.seq, g.start, g.end, "unknown", g.text) for g in segs(
        ("S", "家賃はおいくらですか。"), ("C", "四万八千円です。"), ("S", "預金は。"), ("C", "ありません。"))]
    d = draft.draft(s, tpl, drafter="items")
    assert "家賃は4万8千円とのこと。" in texts(d, "income_assets")
    assert [g.speaker for g in d.segments] == ["unknown"] * 4        # the transcript itself is unchanged
