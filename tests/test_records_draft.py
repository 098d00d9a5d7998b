"""Templates, the extractive draft, the deterministic checks and `madoguchi draft` without an LLM."""
import json
import time

import pytest

from engine.cli import main
from engine.records import checks, draft, template
from engine.records.model import Draft, Section, Segment, Statement

SEGS = [
    Segment(1, 0, 3, "staff", "本日はどうされましたか。"),
    Segment(2, 3, 9, "citizen", "先月仕事を解雇されて、所持金が３千円しかなくて困っています。"),
    Segment(3, 9, 12, "staff", "家賃はおいくらですか。"),
    Segment(4, 12, 15, "citizen", "家賃は月四万五千円です。預金はもうありません。"),
    Segment(5, 15, 19, "staff", "ご家族に連絡してからでないと申請はできません。"),
    Segment(6, 19, 22, "citizen", "兄が北九州市にいますが、十年以上連絡をとっていません。"),
]


@pytest.mark.parametrize("a,b", [("6万円", "六万円"), ("60,000円", "６万円"), ("3万5千円", "三万五千円"),
                                 ("12万3000円", "十二万三千円"), ("45歳", "四十五歳"), ("1.5万円", "15000円")])
def test_numbers_normalise(a, b):
    assert checks.numbers(a) == checks.numbers(b) != set()


def test_numbers_ignore_words_that_are_not_numerals():
    assert checks.numbers("一緒に行きます、万一のため") == set()
    assert checks.numbers("3月15日に") == {3, 15}


def test_faithfulness_flags():
    by = {g.seq: g for g in SEGS}
    ok = Statement("家賃は月4万5千円。", [4])
    assert checks.check_statement(ok, by) == []
    invented = Statement("家賃は月5万円。", [4])
    assert [f.code for f in checks.check_statement(invented, by)] == ["number_mismatch"]
    assert checks.check_statement(invented, by)[0].detail == "50000"
    bad = Statement("所持金は3000円。", [2, 99])
    assert [f.code for f in checks.check_statement(bad, by)] == ["bad_evidence"]
    none = Statement("困窮している。", [])
    assert [f.code for f in checks.check_statement(none, by)] == ["no_evidence"]
    name = Statement("兄は大阪市に住む。", [6])
    assert "name_mismatch" in [f.code for f in checks.check_statement(name, by)]
    assert checks.check_statement(Statement("兄は北九州市に住む。", [6]), by) == []
    # staff-written statements are the person's own: not checked against evidence
    assert checks.check_statement(Statement("来週訪問する。", [], source="staff"), by) == []


def test_compliance_flags():
    tpl = template.load("seikatsu_hogo")
    d = draft.extractive(SEGS, tpl)
    checks.check(d, tpl)
    codes = [(f.code, f.detail) for f in d.flags]
    assert ("intent_not_confirmed", "transcript") in codes
    obstruction = [f for f in d.flags if f.code == "obstruction_phrase"]
    assert obstruction and all(f.evidence == [5] for f in obstruction)
    assert any(f.code == "required_empty" for f in d.flags)
    # a citizen saying the same words is not the office obstructing
    cit = [Segment(1, 0, 1, "citizen", "親に連絡してからでないと申請できないと思っていました。"),
           Segment(2, 1, 2, "staff", "そんなことはありません。申請されますか。"),
           Segment(3, 2, 3, "citizen", "はい、申請します。")]
    d2 = draft.extractive(cit, tpl)
    checks.check(d2, tpl)
    assert not [f for f in d2.flags if f.code == "obstruction_phrase"]
    assert not [f for f in d2.flags if f.code == "intent_not_confirmed"]


def test_obstruction_patterns():
    assert checks.obstruction_hits("通帳を持ってこないと受け付けできないです") == ["documents_first"]
    assert checks.obstruction_hits("まずハローワークで仕事を探してからにしてください") == ["work_first"]
    assert checks.obstruction_hits("申請は今日できます。通帳は後で持ってきてください。") == []


def test_templates_load_and_validate(tmp_path):
    names = template.available()
    assert {"seikatsu_hogo", "jido_fuyo"} <= set(names)
    t = template.load("seikatsu_hogo")
    assert t.intent_section == "intent" and t.section("intent").required
    assert len(t.sections) >= 9
    office = tmp_path / "templates"
    office.mkdir()
    (office / "kaigo.toml").write_text('title = "介護保険 相談記録"\n[[sections]]\nkey = "need"\n'
                                       'title = "相談内容"\ninstruction = "困りごと"\nkeywords = ["介護"]\n',
                                       encoding="utf-8")
    assert template.load("kaigo", tmp_path).title == "介護保険 相談記録"
    (office / "bad.toml").write_text('[[sections]]\nkey = "a"\ntitle = "A"\n', encoding="utf-8")
    with pytest.raises(template.TemplateError, match="instruction"):
        template.load("bad", tmp_path)
    with pytest.raises(template.TemplateError) as e:
        template.load("nope")
    assert "seikatsu_hogo" in str(e.value) and e.value.ja


def test_extractive_draft_is_labelled_and_cites_lines():
    tpl = template.load("seikatsu_hogo")
    d = draft.extractive(SEGS, tpl)
    assert d.method == "extractive"
    income = d.section("income_assets").statements
    assert any("四万五千円" in s.text and s.evidence == [4] for s in income)
    for _sec, st in d.statements():
        assert st.source == "extractive" and st.flags[0].code == "extractive" and len(st.evidence) == 1
    assert not d.section("assessment").statements   # judgement is never extracted
    assert Draft.from_dict(json.loads(json.dumps(d.to_dict()))) == d


def test_missing_model_falls_back_to_extractive_with_flag(ctx):
    tpl = template.load("seikatsu_hogo")
    d = draft.draft(SEGS, tpl, ctx.config, model="no-such-model")
    assert d.method == "extractive"
    assert d.flags[0].code == "llm_failed" and "no-such-model" in d.flags[0].detail


def test_draft_from_stored_session(ctx):
    s = ctx.store
    sid = s.insert("sessions", {"uid": "u1", "started_at": time.time(), "state": "stopped"})
    for g in SEGS:
        s.insert("segments", {"session_id": sid, "seq": g.seq * 10, "start": g.start, "end": g.end,
                              "speaker": g.speaker, "text": g.text, "created_at": time.time()})
    segs = draft.segments_from_session(s, sid)
    assert [g.seq for g in segs] == [10, 20, 30, 40, 50, 60]
    d = draft.draft(segs, template.load("seikatsu_hogo"), ctx.config, use_llm=False)
    assert {e for _s, st in d.statements() for e in st.evidence} <= {10, 20, 30, 40, 50, 60}
    with pytest.raises(draft.DraftError):
        draft.segments_from_session(s, 999)


def test_cli_draft_json_without_llm(tmp_path, data_dir, capsys):
    f = tmp_path / "t.json"
    f.write_text(json.dumps([{"start": g.start, "end": g.end, "speaker": g.speaker, "text": g.text, "final": True}
                             for g in SEGS] + [{"start": 22, "end": 23, "speaker": "staff", "text": "えー",
                                                "final": False}], ensure_ascii=False), encoding="utf-8")
    assert main(["--data-dir", str(data_dir), "draft", str(f), "--no-llm", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["method"] == "extractive" and out["template"] == "seikatsu_hogo"
    assert [s["key"] for s in out["sections"]][:2] == ["situation", "complaint"]
    assert len(out["segments"]) == 6
    st = out["sections"][3]["statements"][0]
    assert set(st) >= {"text", "evidence", "flags"}
    assert any(fl["code"] == "obstruction_phrase" for fl in out["flags"])
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    assert main(["--data-dir", str(data_dir), "draft", str(bad), "--no-llm"]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    assert main(["--data-dir", str(data_dir), "draft", str(f), "--no-llm", "--template", "jido_fuyo"]) == 0
    assert "児童扶養手当" in capsys.readouterr().out
