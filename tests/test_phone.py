"""The AI phone's inquiry FAQ and ``madoguchi phone ask`` (issue 28, slice a): the real FAQ file,
the real manuals search engine and e5 embedder, real Whisper on a real μ-law 8 kHz recording."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest

from engine.phone import faq as faq_mod
from engine.phone.g711 import telephone_band, ulaw_decode, ulaw_encode, write_ulaw_wav
from tests.test_cli_contract import run

WEEKDAY_10 = "2026-12-07T10:00"     # a Monday, office hours
EVENING = "2026-12-07T20:00"


def ask_json(capsys, data_dir, *argv):
    out, _ = run(capsys, ["--data-dir", str(data_dir), "phone", "ask", *argv, "--json"], 0)
    return json.loads(out)


def test_default_faq_covers_the_card_topics_and_reads_aloud():
    f = faq_mod.load()
    ids = set(f.ids)
    for topic in ("card-pickup", "pickup-items", "pin-reset", "pin-lock", "lost-stop", "card-expiry", "cert-expiry",
                  "address-change", "hours-place"):
        assert topic in ids
    for it in f.items:
        assert len(it.answer) <= faq_mod.MAX_ANSWER and it.follow_up and it.examples
        for rx, _what in faq_mod.UNSPEAKABLE:
            assert not rx.search(it.answer), (it.id, it.answer)
    assert f.handoff.transfer and f.handoff.callback and f.handoff.person and f.handoff.upset and f.outside


@pytest.mark.parametrize("change,where", [
    (lambda s: s.replace('id = "pin-lock"', 'id = "pin-reset"'), "item 'pin-reset'"),
    (lambda s: s.replace("受付は平日の午前8時30分から午後5時15分まで", "受付は平日の8:30から17:15まで"), "item 'hours-place' answer"),
    (lambda s: s.replace("\n[handoff]\n", "\n[handoff\n", 1), "not valid TOML"),
    (lambda s: s.replace('title = "手数料"\n', ""), "item 'fee'"),
])
def test_a_bad_faq_file_is_one_clear_error(tmp_path, change, where):
    text = change(faq_mod.default_path().read_text(encoding="utf-8"))
    p = tmp_path / "faq.toml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(faq_mod.FaqError) as e:
        faq_mod.load(p)
    assert where in str(e.value) and str(p) in str(e.value)
    assert e.value.ja.startswith("電話FAQ")


def test_g711_matches_the_standard_codec():
    audioop = pytest.importorskip("audioop")
    x = (np.random.default_rng(0).standard_normal(8000) * 0.2).clip(-1, 1).astype(np.float32)
    pcm = (np.round(x * 32767)).astype("<i2").tobytes()
    ours = ulaw_encode(x).tobytes()
    assert ours == audioop.lin2ulaw(pcm, 2)
    back = np.frombuffer(audioop.ulaw2lin(ours, 2), "<i2") / 32768.0
    assert np.allclose(ulaw_decode(np.frombuffer(ours, np.uint8)), back, atol=1e-6)


def test_phone_ask_answers_from_the_faq_text_only(data_dir, capsys):
    f = faq_mod.load()
    r = ask_json(capsys, data_dir, "暗証番号をど忘れしてしまって、どうしたらいいですか", "--at", WEEKDAY_10)
    assert set(r) >= {"action", "answer", "faq", "score", "handoff", "reason"}
    assert r["action"] == "answer" and r["handoff"] is False and r["reason"] is None
    assert r["faq"] == [{"id": "pin-reset", "title": f.item("pin-reset").title}]
    assert r["answer"] == f.item("pin-reset").answer and r["follow_up"] == f.item("pin-reset").follow_up
    assert 0.0 < r["score"] <= 1.0 and r["seconds"] > 0
    # the office's copy was written into the data folder
    assert (data_dir / "phone" / "faq.toml").is_file()
    allowed = {it.answer for it in f.items} | {f.handoff.transfer, f.handoff.callback, f.handoff.not_understood}
    for q in ("カードを受け取るときの持ち物は", "マイナンバーカードを落としてしまいました", "図書館の本の返し方を教えて",
              "税務署の場所はどこですか", "もうええ、人に代わって"):
        r = ask_json(capsys, data_dir, q, "--at", WEEKDAY_10)
        assert r["answer"] in allowed, (q, r)


def test_phone_ask_hands_off_with_the_reason(data_dir, capsys):
    f = faq_mod.load()
    r = ask_json(capsys, data_dir, "人と話したいので職員さんに代わってください", "--at", WEEKDAY_10)
    assert (r["action"], r["handoff"], r["reason"], r["faq"]) == ("transfer", True, "asked_for_person", [])
    assert r["answer"] == f.handoff.transfer
    r = ask_json(capsys, data_dir, "人と話したいので職員さんに代わってください", "--at", EVENING)
    assert (r["action"], r["answer"]) == ("callback", f.handoff.callback)
    r = ask_json(capsys, data_dir, "何度も電話させて、いい加減にしてくれ", "--at", WEEKDAY_10)
    assert (r["action"], r["reason"]) == ("transfer", "upset")
    r = ask_json(capsys, data_dir, "図書館で借りた本を返したいんですが", "--at", WEEKDAY_10)
    assert r["handoff"] is True and r["reason"] in ("out_of_scope", "unsure") and r["faq"] == []
    out, _ = run(capsys, ["--data-dir", str(data_dir), "phone", "ask", "カードの受け取りに必要な持ち物を教えて"], 0)
    assert "[answer] pickup-items" in out and f.item("pickup-items").answer in out


def test_phone_ask_bad_input(data_dir, capsys):
    base = ["--data-dir", str(data_dir), "phone", "ask"]
    run(capsys, base, 2)                                          # no question
    run(capsys, base + ["   "], 2)                                # empty question
    run(capsys, base + ["x" * 600], 2)                            # not one question
    run(capsys, base + ["暗証番号", "--audio", "q.wav"], 2)         # both
    run(capsys, base + ["--audio", str(data_dir / "nope.wav")], 2)
    (data_dir / "notaudio.wav").write_bytes(b"this is not audio")
    run(capsys, base + ["--audio", str(data_dir / "notaudio.wav")], 2)
    run(capsys, base + ["暗証番号を忘れた", "--at", "yesterday"], 2)


def test_the_office_edits_its_faq(data_dir, capsys):
    f = faq_mod.load()
    ask_json(capsys, data_dir, "暗証番号を忘れました")                  # writes the office copy
    office = data_dir / "phone" / "faq.toml"
    old = f.item("pin-reset").answer
    new = "暗証番号の再設定は、区役所2階の区民課7番窓口で受け付けています。ご本人がカードをお持ちください。"
    office.write_text(office.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")
    r = ask_json(capsys, data_dir, "暗証番号を忘れました")
    assert r["faq"][0]["id"] == "pin-reset" and r["answer"] == new
    # a broken edit stops with the file and the place named; nothing is answered from a half-read file
    office.write_text(office.read_text(encoding="utf-8").replace("午前8時30分", "8:30"), encoding="utf-8")
    _out, err = run(capsys, ["--data-dir", str(data_dir), "phone", "ask", "暗証番号を忘れました"], 2)
    assert "hours-place" in err and "faq.toml" in err


def test_office_hours_setting_is_checked(data_dir, capsys):
    from engine.phone.hours import parse
    h = parse("mon-fri 08:30-17:15")
    assert h.open_at(dt.datetime(2026, 12, 7, 8, 30)) and not h.open_at(dt.datetime(2026, 12, 7, 17, 15))
    assert not h.open_at(dt.datetime(2026, 12, 12, 10, 0))          # a Saturday
    assert parse("sat-mon 09:00-12:00").open_at(dt.datetime(2026, 12, 13, 10, 0))   # wraps over Sunday
    (data_dir / "cfg.toml").write_text('[phone]\noffice_hours = "weekdays 9-5"\n', encoding="utf-8")
    import os
    os.environ["MADOGUCHI_USER_CONFIG"] = str(data_dir / "cfg.toml")
    run(capsys, ["--data-dir", str(data_dir), "phone", "ask", "暗証番号を忘れた"], 2)


@pytest.mark.slow
def test_phone_ask_audio_over_a_telephone_line(data_dir, capsys, tmp_path):
    """A question spoken by the TTS, put through 300–3400 Hz / 8 kHz μ-law into a μ-law WAV as a
    phone system records it, transcribed by Whisper and answered from the FAQ."""
    from devkit.audiogen import speech
    x = speech("暗証番号を忘れてしまいました", "citizen")
    pad = np.zeros(8000, np.float32)
    _heard, ulaw = telephone_band(np.concatenate([pad, x, pad, pad]))
    wav = tmp_path / "question.wav"
    write_ulaw_wav(wav, ulaw)
    r = ask_json(capsys, data_dir, "--audio", str(wav), "--at", WEEKDAY_10)
    assert "暗証番号" in r["question"] and "忘れ" in r["question"], r
    assert r["action"] == "answer" and r["faq"][0]["id"] == "pin-reset", r
    assert r["asr_seconds"] > 0
    typed = ask_json(capsys, data_dir, r["question"], "--at", WEEKDAY_10)
    assert {k: typed[k] for k in ("action", "answer", "faq")} == {k: r[k] for k in ("action", "answer", "faq")}
    # silence on the line: nothing is answered
    write_ulaw_wav(tmp_path / "silence.wav", ulaw_encode(np.zeros(16000, np.float32)).tobytes())
    r = ask_json(capsys, data_dir, "--audio", str(tmp_path / "silence.wav"), "--at", WEEKDAY_10)
    assert (r["action"], r["reason"], r["faq"]) == ("transfer", "not_understood", [])


def test_self_test_checks_the_phone(ctx, monkeypatch, tmp_path):
    """The installer's self-test answers a covered question from the shipped FAQ; a FAQ that no
    longer covers it is a FAIL, not a pass."""
    from engine import selftest
    r = selftest._timed("phone", "inquiry", lambda: selftest.phone_inquiry(ctx))
    assert r.status == selftest.PASS, r.detail
    office = ctx.data_dir / "phone" / "faq.toml"
    text = office.read_text(encoding="utf-8")
    start = text.index('[[item]]\nid = "pin-reset"')
    end = text.index("[[item]]", start + 5)
    office.write_text(text[:start] + text[end:], encoding="utf-8")
    r = selftest._timed("phone", "inquiry", lambda: selftest.phone_inquiry(ctx))
    assert r.status == selftest.FAIL and "pin-reset" in r.detail
