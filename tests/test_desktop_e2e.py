"""The counter flow through the real desktop widgets, end to end, with real models:
virtual microphone (PulseAudio null sink) → 録音 → live transcript → 停止 → LLM draft (version 1,
on the live lines) → final pass in the background → version 2 with evidence on the final lines →
提出 → supervisor 承認 (flags acknowledged) → read-only → PDF export. The event loop must never
stall over 100 ms while transcribing, drafting and re-transcribing."""
import os
import shutil
import time
from pathlib import Path

import pytest

from desktop.ops import idle
from engine import users
from engine.audio import write_wav
from engine.consultation import REFINED
from engine.records import workflow
from devkit.audiogen import load_dialogue, render_dialogue
from tests.qt_util import StallProbe, StallWatch

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("pulseaudio") is None or shutil.which("paplay") is None,
                                reason="pulseaudio/paplay not installed (make test installs them)")]


@pytest.fixture
def vmic(monkeypatch):
    from tests.test_asr_mic import Pulse
    p = Pulse()
    p.start()
    # point this process's PulseAudio client (ALSA pulse plugin under PortAudio) at the test daemon
    monkeypatch.setenv("PULSE_SERVER", f"unix:{p.runtime}/pulse/native")
    cookie = Path(p.home) / ".config" / "pulse" / "cookie"
    if cookie.exists():
        monkeypatch.setenv("PULSE_COOKIE", str(cookie))
    import sounddevice as sd
    sd._terminate()
    sd._initialize()
    yield p
    sd._terminate()
    sd._initialize()
    p.stop()
    shutil.rmtree(p.runtime, ignore_errors=True)
    shutil.rmtree(p.home, ignore_errors=True)


def test_counter_flow_end_to_end(qtbot, qapp, ctx, vmic, tmp_path):
    from desktop.app import make_app
    from desktop.mainwindow import MainWindow
    from desktop import strings as S
    make_app()
    admin = users.add_user(ctx.store, None, "kanri", "管理 太郎", "admin", "password-1")
    staff = users.add_user(ctx.store, admin, "tanaka", "田中 花子", "staff", "password-2")
    sup = users.add_user(ctx.store, admin, "sato", "佐藤 係長", "supervisor", "password-3")
    ctx.config.values["llm.model"] = os.environ.get("MADOGUCHI_TEST_LLM", "llm-small")
    conv = render_dialogue(load_dialogue("housing")[:5], name="housing", seed=5)   # the flow, not the length
    wav = write_wav(tmp_path / "housing.wav", conv.audio)

    w = MainWindow(ctx, staff)
    qtbot.addWidget(w)
    w.resize(1400, 900)
    w.show()
    qtbot.wait(300)
    consult = w.views[S.TAB_CONSULT]
    qtbot.waitUntil(lambda: consult.ready, timeout=120_000)  # models loaded at start-up
    consult.refresh_mics()
    # without consent, 録音 refuses
    consult.toggle()
    assert not consult.recording and "同意" in consult.status.text()
    consult.consent.setChecked(True)
    consult.title.setText("住居確保給付金の相談")
    watch = StallWatch().start()
    probe = StallProbe(watch).start() if os.environ.get("STALL_DEBUG") else None
    consult.toggle()
    assert consult.recording
    qtbot.waitUntil(lambda: consult.cw.session.audio_path is not None and consult.cw.session.audio_path.exists()
                    and consult.cw.session.audio_path.stat().st_size > 44 + 16000, timeout=60_000)
    audio = consult.cw.session.audio_path
    before = audio.stat().st_size
    player = vmic.play(wav)
    qtbot.waitUntil(lambda: player.poll() is not None, timeout=(conv.seconds + 60) * 1000)
    # the whole conversation has been captured (PCM16 mono, 32,000 bytes a second) ...
    qtbot.waitUntil(lambda: audio.stat().st_size >= before + 32_000 * conv.seconds, timeout=60_000)
    # ... and transcribed up to its last pause
    qtbot.waitUntil(lambda: consult.transcript.count() >= 3, timeout=120_000)
    lines = [consult.transcript.item(i).text() for i in range(consult.transcript.count())]
    assert len(lines) >= 3, lines
    assert any("職員" in l or "相談者" in l for l in lines)
    consult.toggle()  # 停止
    qtbot.waitUntil(lambda: consult.record_btn.isEnabled(), timeout=900_000)
    record_view = w.views[S.TAB_RECORD]
    qtbot.waitUntil(lambda: record_view.current is not None)                          # opened off the GUI thread
    assert w.tabs.currentWidget() is record_view and record_view.current.version == 1   # live-transcript draft
    assert consult.refining == record_view.current.id                                 # final pass under way
    qtbot.waitUntil(lambda: consult.refining is None, timeout=900_000)
    qtbot.waitUntil(lambda: record_view.current.version == 2 and idle())
    assert record_view.current.version == 2 and record_view.current.reason == REFINED, record_view.current.reason
    watch.stop()
    if probe:
        probe.stop()
    assert watch.worst_ms < 100, f"event loop stalled {watch.worst_ms:.0f} ms during transcription/drafting (wall clock {watch.worst_raw_ms:.0f} ms)"

    rec = record_view.current
    stmts = list(record_view.panel.statement_items())
    assert stmts
    with_ev = next(it for it in stmts if it.data(0, 0x0100).evidence)
    record_view.panel._statement_clicked(with_ev, 0)
    lit = [record_view.panel.transcript.item(i) for i in range(record_view.panel.transcript.count())
           if record_view.panel.transcript.item(i).background().color().name() == "#fff59d"]
    assert lit
    record_view.submit()
    qtbot.waitUntil(lambda: record_view.current.state == "submitted" and idle())
    assert workflow.get(ctx.store, staff, rec.id).state == "submitted"
    w.close()

    w2 = MainWindow(ctx, sup)
    qtbot.addWidget(w2)
    approval = w2.views[S.TAB_APPROVAL]
    qtbot.waitUntil(lambda: any(approval.queue.item(i, 0).text() == str(rec.id)
                                for i in range(approval.queue.rowCount())))
    row = next(i for i in range(approval.queue.rowCount()) if approval.queue.item(i, 0).text() == str(rec.id))
    approval.queue.selectRow(row)
    qtbot.waitUntil(lambda: approval.current is not None and approval.current.id == rec.id and idle())
    approval.ack.setChecked(True)
    approval.approve()
    qtbot.waitUntil(lambda: approval.current.state == "approved" and idle())
    assert workflow.get(ctx.store, sup, rec.id).state == "approved"
    assert not approval.approve_btn.isEnabled()
    pdf = tmp_path / "record.pdf"
    approval.export("pdf", str(pdf))
    qtbot.waitUntil(lambda: pdf.exists() and "出力しました" in approval.message.text(), timeout=60_000)
    assert pdf.read_bytes()[:5] == b"%PDF-"
    w2.close()
