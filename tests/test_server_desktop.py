"""The desktop's offline state against a real PostgreSQL on loopback (pytest-qt, offscreen, the
real whisper model): the status bar says when the office server is gone and when it is back, a
recording that was running goes on being transcribed, staff who signed in on this PC before can
sign in and record offline, and on reconnect everything reaches the server once."""
import time

import pytest

from desktop import strings as S
from engine import users
from engine.audio import FileSource
from engine.context import open_context
from devkit.audiogen import conversation, load_dialogue, render_dialogue
from tests.server_pg import PgServer

pytestmark = pytest.mark.slow   # whole pipelines / real-time audio / subprocess runs: `make test`, not `make check`


@pytest.fixture
def own_server():
    srv = PgServer()              # its own server: these tests stop it and start it again
    yield srv
    srv.stop()


@pytest.fixture
def office(own_server, data_dir, monkeypatch, tmp_path):
    # extractive drafts and one final-pass decode: this is about the link, not the LLM or the vote
    (tmp_path / "user-config.toml").write_text("[llm]\nenabled = false\n[asr]\nfinal_systems = 1\n",
                                               encoding="utf-8")
    url = own_server.url(own_server.fresh_database())
    monkeypatch.setenv("MADOGUCHI_OFFICE_SERVER", url)
    ctx = open_context(data_dir)
    admin = users.add_user(ctx.store, None, "kanri", "管理", "admin", "admin-pass-1")
    users.add_user(ctx.store, admin, "tanaka", "田中 花子", "staff", "staff-pass-1")
    ctx.close()
    return own_server


def _sign_in(qtbot, ctx, password="staff-pass-1"):
    from desktop.views.signin import SignInDialog
    dlg = SignInDialog(ctx)
    qtbot.addWidget(dlg)
    dlg.username.setText("tanaka")
    dlg.password.setText(password)
    dlg.try_sign_in()
    qtbot.waitUntil(lambda: dlg.ok_btn.isEnabled() or dlg.user is not None, timeout=60_000)   # off the GUI thread
    return dlg


def _window(qtbot, ctx, user):
    from desktop.mainwindow import MainWindow
    w = MainWindow(ctx, user)
    qtbot.addWidget(w)
    w.link.online_ms = w.link.offline_ms = 300
    w.link.start()
    return w


def _close(qtbot, w, ctx):
    from desktop.ops import wait_all
    w.close()
    assert wait_all(120_000)
    ctx.close()


def test_recording_goes_on_through_an_outage_and_reaches_the_server_once(qtbot, qapp, office, data_dir, tmp_path):
    ctx = open_context(data_dir)
    user = _sign_in(qtbot, ctx).user                      # a server sign-in (verifier kept on this PC)
    w = _window(qtbot, ctx, user)
    assert w.link.label.text() == S.SERVER_ONLINE and w.link.label.isVisibleTo(w)
    consult = w.views[S.TAB_CONSULT]
    consult.consent.setChecked(True)
    wav = conversation("mynumber").write(tmp_path / "c.wav")
    assert consult.start(FileSource(wav, realtime=True))
    shared, server_store = ctx.store, ctx.store.current()
    qtbot.waitUntil(lambda: consult.transcript.count() >= 2, timeout=120_000)

    office.pause()                                             # the office network goes down
    qtbot.waitUntil(lambda: w.link.label.text().startswith(S.SERVER_OFFLINE), timeout=30_000)
    assert not ctx.online and ctx.store.backend == "offline"
    cut = consult.transcript.count()
    qtbot.waitUntil(lambda: consult.transcript.count() >= cut + 2, timeout=120_000)   # still transcribing
    assert server_store.journal_size() >= 2
    w.views[S.TAB_RECORD].refresh()                            # server lists: empty, no error dialog

    office.resume()
    qtbot.waitUntil(lambda: w.link.label.text().startswith(S.SERVER_BACK.split("（")[0]), timeout=30_000)
    assert ctx.online and ctx.store is shared and ctx.store.current() is server_store
    assert server_store.journal_size() == 0
    qtbot.waitUntil(lambda: not consult._rec_op.running, timeout=180_000)   # the whole conversation was heard
    shown = [consult.transcript.item(i).text() for i in range(consult.transcript.count())]
    with qtbot.waitSignal(consult.record_ready, timeout=240_000) as sig:
        consult.stop()
    sid = consult.session_id
    rows = ctx.store.query("SELECT seq, text FROM segments WHERE session_id = ? ORDER BY seq", (sid,))
    assert len(rows) == len(shown) and len({r["seq"] for r in rows}) == len(rows)
    assert [r["text"] for r in rows] == [line.split("：", 1)[1] for line in shown]
    rec = ctx.store.query_one("SELECT id, session_id FROM records WHERE session_id = ?", (sid,))
    assert rec["id"] == sig.args[0]
    qtbot.waitUntil(lambda: consult.refining is None, timeout=300_000)   # final pass done before teardown
    assert ctx.store.query_one("SELECT COUNT(*) AS n FROM records")["n"] == 1
    _close(qtbot, w, ctx)


def test_offline_start_sign_in_record_and_sync_on_reconnect(qtbot, qapp, office, data_dir, tmp_path):
    ctx = open_context(data_dir)
    assert _sign_in(qtbot, ctx).user is not None         # last server sign-in on this PC
    ctx.close()

    office.pause()
    ctx = open_context(data_dir)
    assert ctx.store.backend == "offline"
    bad = _sign_in(qtbot, ctx, password="wrong-password")
    assert bad.user is None and bad.message.text() and not bad.offline_note.isHidden()
    dlg = _sign_in(qtbot, ctx)
    user = dlg.user
    assert user is not None, dlg.message.text()
    assert user.username == "tanaka" and user.role == "staff"
    w = _window(qtbot, ctx, user)
    assert w.link.label.text().startswith(S.SERVER_OFFLINE)
    consult = w.views[S.TAB_CONSULT]
    consult.consent.setChecked(True)
    wav = render_dialogue(load_dialogue("child")[:3], name="short").write(tmp_path / "short.wav")
    assert consult.start(FileSource(wav, realtime=True))
    qtbot.waitUntil(lambda: not consult._rec_op.running, timeout=120_000)
    lines = consult.transcript.count()
    assert lines >= 1
    consult.stop()                                             # the draft needs the server: said so, recording kept
    qtbot.waitUntil(lambda: consult.cw is None, timeout=240_000)
    local_uid = ctx.store.query_one("SELECT uid FROM sessions ORDER BY id DESC LIMIT 1")["uid"]
    qtbot.waitUntil(lambda: S.SERVER_OFFLINE_PENDING.format(n=1) in w.link.label.text(), timeout=30_000)

    office.resume()
    qtbot.waitUntil(lambda: w.link.label.text().startswith(S.SERVER_BACK.split("（")[0]), timeout=30_000)
    st = ctx.store
    assert st.backend == "postgresql"
    on_server = st.query("SELECT id, uid FROM sessions")
    assert [r["uid"] for r in on_server] == [local_uid]
    assert st.query_one("SELECT COUNT(*) AS n FROM segments WHERE session_id = ?", (on_server[0]["id"],))["n"] == lines
    ev = st.query("SELECT actor FROM audit_log WHERE action = 'signin.offline'")
    assert [e["actor"] for e in ev] == ["tanaka"]
    # the recovery question: the consultation recorded offline is drafted on the server
    qtbot.waitUntil(lambda: getattr(consult, "recovery_box", None) is not None, timeout=10_000)
    from PySide6.QtWidgets import QMessageBox
    with qtbot.waitSignal(consult.record_ready, timeout=300_000):
        consult.recovery_box.button(QMessageBox.StandardButton.Yes).click()
    assert st.query_one("SELECT COUNT(*) AS n FROM records WHERE session_id = ?", (on_server[0]["id"],))["n"] == 1
    qtbot.wait(500)
    time.sleep(0)
    _close(qtbot, w, ctx)
