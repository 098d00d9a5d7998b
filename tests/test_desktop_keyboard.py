"""Keyboard, accessibility and the one string table of the desktop client:
- no Japanese string literal outside desktop/strings.py (docstrings aside), every S.NAME exists;
- each screen's focus chain (Tab = focusNextChild) visits its main controls in a sensible order;
- every interactive widget has an accessible name;
- 相談: double-click / Enter on a transcript line plays the recording from that line's start,
  a click only selects, inline edit (F2) and speaker swap still work;
- the window geometry, state and tab are remembered; layouts hold at a 2x scale factor."""
import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QSettings, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import (QAbstractButton, QAbstractItemView, QAbstractSpinBox, QApplication, QComboBox,
                               QLineEdit, QMessageBox, QTabBar, QTextEdit, QWidget)

from desktop.ops import idle
from engine import users

ROOT = Path(__file__).resolve().parent.parent
DESKTOP = ROOT / "desktop"
JA = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uff66-\uff9f]")   # kana, kanji, half-width kana


def japanese_literals(src: str) -> list[tuple[int, str]]:
    """(line, text) of every string constant with kana/kanji in it, docstrings excepted
    (f-string pieces count: they are constants inside the JoinedStr)."""
    tree = ast.parse(src)
    docs = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                docs.add(id(first.value))
    return sorted((n.lineno, n.value) for n in ast.walk(tree)
                  if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs
                  and JA.search(n.value))


def test_scanner_catches_japanese_literals():
    src = '"""モジュールの説明"""\nx = "録音"\ny = f"{x}を開始"\nz = "ok"\ndef f():\n    """説明"""\n    return "停止"\n'
    assert [t for _, t in japanese_literals(src)] == ["録音", "を開始", "停止"]


def test_no_japanese_string_literal_outside_the_string_table():
    files = [p for p in DESKTOP.rglob("*.py") if p.name != "strings.py"]
    assert len(files) >= 12
    found = [f"{p.relative_to(ROOT)}:{ln}: {text!r}" for p in files
             for ln, text in japanese_literals(p.read_text(encoding="utf-8"))]
    assert not found, "move these into desktop/strings.py:\n" + "\n".join(found)


def test_every_string_name_used_exists():
    from desktop import strings as S
    missing = []
    for p in DESKTOP.rglob("*.py"):
        tree = ast.parse(p.read_text(encoding="utf-8"))
        for n in ast.walk(tree):
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "S":
                if not hasattr(S, n.attr):
                    missing.append(f"{p.relative_to(ROOT)}:{n.lineno}: S.{n.attr}")
    assert not missing, missing
    # composed texts: every placeholder template formats
    assert S.RECORD_HEADER.format(id=1, version=2, state="下書き", title="t") == "記録 1（第2版・下書き）　t"
    assert S.FINDING.format(label="鏡面 ひび", severity="中度", confidence=0.5) == "鏡面 ひび　中度　確信度 50%"


# ------------------------------------------------------------------ focus chain and accessible names
INTERACTIVE = (QAbstractButton, QLineEdit, QComboBox, QAbstractItemView, QAbstractSpinBox, QTextEdit, QTabBar)


def interactive_widgets(root: QWidget) -> list[QWidget]:
    """Widgets a user can tab to / operate, without the inner parts of composite widgets
    (a table's header, a combo box's popup list, a line edit's clear button)."""
    out = []
    for w in root.findChildren(QWidget):
        if not isinstance(w, INTERACTIVE) or w.focusPolicy() == Qt.FocusPolicy.NoFocus:
            continue
        p, inner = w.parentWidget(), False
        while p is not None and p is not root:
            if isinstance(p, INTERACTIVE) and not isinstance(p, QTabBar):
                inner = True
                break
            p = p.parentWidget()
        if not inner:
            out.append(w)
    return out


def focus_walk(root: QWidget, first: QWidget, steps: int = 80) -> list[QWidget]:
    """Press Tab (focusNextChild) from ``first`` until the chain comes back; the widgets in order."""
    root.activateWindow()
    first.setFocus(Qt.FocusReason.TabFocusReason)
    QApplication.processEvents()
    assert QApplication.focusWidget() is first, f"cannot focus {first!r}"
    seen = [first]
    for _ in range(steps):
        QApplication.focusWidget().focusNextChild()
        QApplication.processEvents()
        w = QApplication.focusWidget()
        if w is first:
            break
        seen.append(w)
    return seen


def assert_order(walk: list[QWidget], expected: list[QWidget]) -> None:
    pos = []
    for w in expected:
        assert w in walk, f"{w.accessibleName() or w!r} is not reachable with Tab"
        pos.append(walk.index(w))
    names = [w.accessibleName() for w in expected]
    assert pos == sorted(pos), f"tab order {[walk[i].accessibleName() for i in sorted(pos)]} != {names}"


def assert_named(root: QWidget) -> None:
    widgets = interactive_widgets(root)
    assert widgets
    nameless = [f"{type(w).__name__} {getattr(w, 'text', lambda: '')()!r}" for w in widgets if not w.accessibleName()]
    assert not nameless, f"no accessible name: {nameless}"


@pytest.fixture
def people(ctx):
    admin = users.add_user(ctx.store, None, "kanri", "管理 太郎", "admin", "password-1")
    staff = users.add_user(ctx.store, admin, "tanaka", "田中 花子", "staff", "password-2")
    sup = users.add_user(ctx.store, admin, "sato", "佐藤 係長", "supervisor", "password-3")
    return admin, staff, sup


@pytest.fixture
def submitted(ctx, people):
    from engine.records import draft as rdraft
    from engine.records import template as rtemplate
    from engine.records import workflow
    from engine.records.model import Segment
    _, staff, _ = people
    segs = [Segment(1, 0.0, 3.0, "staff", "本日はどのようなご相談でしょうか。"),
            Segment(2, 3.5, 8.0, "citizen", "家賃の6万円が払えなくなりました。")]
    d = rdraft.draft(segs, rtemplate.load("seikatsu_hogo"), ctx.config, use_llm=False)
    rec = workflow.create(ctx.store, staff, d, title="家賃滞納の相談（長い件名が一覧で切れないことの確認用）",
                          case_number="K-1")
    return workflow.submit(ctx.store, staff, rec.id, rec.revision)


def show(qtbot, w, size=(1400, 900)):
    qtbot.addWidget(w)
    w.resize(*size)
    w.show()
    qtbot.waitExposed(w)
    return w


def test_sign_in_dialogs_keyboard(qtbot, qapp, ctx):
    from desktop.views.signin import FirstRunDialog, SignInDialog
    d = show(qtbot, SignInDialog(ctx), (460, 200))
    assert_named(d)
    walk = focus_walk(d, d.username)
    assert walk[:4] == [d.username, d.password, d.ok_btn, d.cancel_btn]
    # typing and Enter signs in (the OK button is the default)
    users.add_user(ctx.store, None, "kanri", "管理 太郎", "admin", "password-1")
    d.username.setFocus()
    QTest.keyClicks(d.username, "kanri")
    QTest.keyClick(d.username, Qt.Key.Key_Tab)
    assert QApplication.focusWidget() is d.password
    QTest.keyClicks(d.password, "password-1")
    QTest.keyClick(d.password, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: d.user is not None)
    assert d.user.username == "kanri"
    f = show(qtbot, FirstRunDialog(ctx.store), (480, 260))
    assert_named(f)
    assert focus_walk(f, f.username)[:6] == [f.username, f.display, f.password, f.password2, f.ok_btn, f.cancel_btn]


def test_record_and_approval_keyboard(qtbot, qapp, ctx, people, submitted):
    from desktop.views.approval import ApprovalView
    from desktop.views.record import RecordView
    _, staff, sup = people
    r = show(qtbot, RecordView(ctx, staff))
    assert_named(r)
    # the record list: one row per record, the whole title in a tooltip, opened with Enter
    qtbot.waitUntil(lambda: r.records.rowCount() == 1 and idle())     # loaded off the GUI thread
    title_item = r.records.item(0, 1)
    assert title_item.text() == submitted.title and submitted.title in title_item.toolTip()
    # a usual title is readable in full; number and state columns are never cut
    fm = r.records.fontMetrics()
    assert r.records.columnWidth(1) >= fm.horizontalAdvance("生活保護の相談（家賃・失業）")
    assert r.records.columnWidth(2) >= fm.horizontalAdvance(submitted.state_ja)
    r.records.setFocus()
    r.records.setCurrentCell(0, 1)
    QTest.keyClick(r.records, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: r.current is not None)
    assert r.current.id == submitted.id
    assert_order(focus_walk(r, r.records), [r.records, r.panel.transcript, r.panel.tree, r.panel.flags])

    a = show(qtbot, ApprovalView(ctx, sup))
    assert_named(a)
    qtbot.waitUntil(lambda: a.queue.rowCount() == 1)
    a.queue.selectRow(0)
    qtbot.waitUntil(lambda: a.current is not None and idle())
    assert a.approve_btn.isEnabled()
    assert_order(focus_walk(a, a.show_all), [a.show_all, a.refresh_btn, a.queue, a.panel.transcript, a.panel.tree,
                                               a.panel.flags, a.ack, a.approve_btn, a.return_btn])
    # approve from the keyboard: Space ticks the acknowledgement, Space presses 承認
    a.ack.setFocus()
    QTest.keyClick(a.ack, Qt.Key.Key_Space)
    assert a.ack.isChecked()
    a.approve_btn.setFocus()
    QTest.keyClick(a.approve_btn, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: a.current.state == "approved")


def test_manuals_mirrors_settings_keyboard(qtbot, qapp, ctx, people):
    from desktop.views.manuals import ManualsView
    from desktop.views.mirrors import MirrorsView
    from desktop.views.settings import SettingsView
    admin, staff, _ = people
    m = show(qtbot, ManualsView(ctx, staff))
    assert_named(m)
    assert_order(focus_walk(m, m.query), [m.query, m.answer_btn, m.results, m.index_btn])
    mv = show(qtbot, MirrorsView(ctx, admin))
    assert_named(mv)
    mv.confirm_btn.setEnabled(True)   # as with an inspection open
    assert_order(focus_walk(mv, mv.import_btn), [mv.import_btn, mv.export_btn, mv.f_grade, mv.f_route, mv.f_date,
                                                  mv.table, mv.findings, mv.grade, mv.reason, mv.confirm_btn])
    s = show(qtbot, SettingsView(ctx, admin))
    assert_named(s)
    assert_order(focus_walk(s, s.mic), [s.mic, s.whisper, s.llm, s.manuals_dir, s.save_btn, s.users_table,
                                         s.new_user, s.new_name, s.new_role, s.new_pw, s.add_btn, s.doctor_btn])
    # staff: models and folders are disabled (admin only), Tab skips them
    s2 = show(qtbot, SettingsView(ctx, staff))
    walk = focus_walk(s2, s2.mic)
    assert s2.whisper not in walk and s2.save_btn in walk and s2.doctor_btn in walk


# ------------------------------------------------------------------ 相談: play from a line
@pytest.fixture
def session(ctx, tmp_path):
    from engine.asr import session as asession
    from engine.asr import sessions
    from engine.audio import FileSource
    from devkit.audiogen import Turn, render_dialogue
    conv = render_dialogue([Turn("staff", "こんにちは。今日はどのようなご相談でしょうか。"),
                            Turn("citizen", "先月仕事を辞めてしまって、家賃が払えないんです。"),
                            Turn("staff", "わかりました。まず、今お一人で暮らしていらっしゃいますか。")],
                           seed=3, pause=(1.8, 2.2))   # clear pauses: one line per turn
    wav = conv.write(tmp_path / "c.wav")
    sess = asession.ConsultationSession(ctx, title="再生の確認", staff_user="tanaka", consent=True)
    sid = sess.start(FileSource(wav))
    sess.wait(timeout=600)
    sess.stop(final_pass=False)
    segs = sessions.segments(ctx.store, sid)
    assert len(segs) >= 2, segs
    return sid, segs


@pytest.mark.slow
def test_consult_keyboard_and_play_from_line(qtbot, qapp, ctx, people, session):
    from desktop.views.consult import ROLE_START, ConsultView
    from engine.asr import session as asession
    from engine.asr import sessions
    _, staff, _ = people
    sid, segs = session
    v = show(qtbot, ConsultView(ctx, staff))
    qtbot.waitUntil(lambda: v.ready, timeout=300_000)
    assert_named(v)
    assert_order(focus_walk(v, v.title), [v.title, v.case, v.mic, v.consent, v.record_btn, v.transcript,
                                           v.play_btn, v.swap_btn, v.swap_all_btn])
    # the big button works from the keyboard: Space without consent refuses and says why
    v.record_btn.setFocus()
    QTest.keyClick(v.record_btn, Qt.Key.Key_Space)
    assert not v.recording and "同意" in v.status.text()

    v.show_session(sid)
    qtbot.waitUntil(lambda: v.transcript.count() == len(segs) and idle())    # loaded off the GUI thread
    second = v.transcript.item(1)
    rect = v.transcript.visualItemRect(second)
    # a single click only selects the line
    v.play_requested = None
    QTest.mouseClick(v.transcript.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert v.transcript.currentItem() is second and v.play_requested is None
    # double-click plays from that line's start
    QTest.mouseDClick(v.transcript.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert v.play_requested == (sid, segs[1]["start"])
    qtbot.waitUntil(lambda: getattr(v, "play_loaded", None) is not None, timeout=30_000)
    _, start, n = v.play_loaded
    total = len(asession.audio_range(ctx.store, sid, 0.0))
    assert start == segs[1]["start"] and n > 0
    assert abs(n - min(total - start * 16000, 60 * 16000)) <= 2   # the audio from that line on
    v.transcript.closePersistentEditor(second)
    # Enter on the first line plays from its start
    v.transcript.setFocus()
    v.transcript.setCurrentRow(0)
    QTest.keyClick(v.transcript, Qt.Key.Key_Return)
    assert v.play_requested == (sid, v.transcript.item(0).data(ROLE_START)) == (sid, segs[0]["start"])

    qtbot.waitUntil(lambda: v.play_loaded[1] == segs[0]["start"], timeout=30_000)
    qtbot.wait(200)
    # no sound card here: playing fails with a plain-Japanese message (with one, it plays)
    from desktop import strings as S
    boxes = [b for b in v.findChildren(QMessageBox) if b.isVisible()]
    assert all(b.text() == S.ERR_PLAYBACK for b in boxes), [b.text() for b in boxes]
    for b in boxes:
        b.done(0)
    # inline edit still works: F2 on the selected line opens the editor, Enter commits to the store
    v.activateWindow()
    v.transcript.setFocus()
    v.transcript.setCurrentRow(1)
    QTest.keyClick(v.transcript, Qt.Key.Key_F2)
    editors = [e for e in v.transcript.viewport().findChildren(QLineEdit) if e.isVisible()]
    assert len(editors) == 1, "F2 opens the line editor"
    editor = editors[0]
    prefix = editor.text().split("：", 1)[0]
    editor.setText(prefix + "：先月仕事を辞めて、家賃が払えません。")
    QTest.keyClick(editor, Qt.Key.Key_Return)
    # the delegate commits (queued) and closes the editor
    qtbot.waitUntil(lambda: not [e for e in v.transcript.viewport().findChildren(QLineEdit) if e.isVisible()],
                    timeout=5_000)
    qtbot.waitUntil(idle)                                   # written off the GUI thread (StoreOp)
    assert sessions.segments(ctx.store, sid)[1]["text"] == "先月仕事を辞めて、家賃が払えません。"
    # and the speaker swap of one line
    before = sessions.segments(ctx.store, sid)[1]["speaker"]
    v.transcript.setCurrentRow(1)
    v.swap_btn.setFocus()
    QTest.keyClick(v.swap_btn, Qt.Key.Key_Space)
    qtbot.waitUntil(idle)
    after = sessions.segments(ctx.store, sid)[1]["speaker"]
    assert after != before and after in ("staff", "citizen")


# ------------------------------------------------------------------ window state, high DPI
@pytest.fixture
def qsettings_dir(tmp_path):
    """QSettings("Madoguchi", "Madoguchi") (native format: an INI-style .conf on Linux) under tmp_path."""
    before = QSettings("Madoguchi", "Madoguchi").fileName()
    home = str(Path(before).parent.parent)
    QSettings.setPath(QSettings.Format.NativeFormat, QSettings.Scope.UserScope, str(tmp_path / "qsettings"))
    assert QSettings("Madoguchi", "Madoguchi").fileName().startswith(str(tmp_path))
    yield tmp_path / "qsettings"
    QSettings.setPath(QSettings.Format.NativeFormat, QSettings.Scope.UserScope, home)


def test_window_state_is_remembered(qtbot, qapp, ctx, people, qsettings_dir):
    from desktop.mainwindow import MainWindow
    _, staff, _ = people
    screen = qapp.primaryScreen().availableGeometry()

    def open_window():
        w = MainWindow(ctx, staff)
        qtbot.addWidget(w)
        w.show()
        qtbot.waitExposed(w)
        return w

    w = open_window()
    # every screen is reachable from the keyboard: Ctrl+1 … Ctrl+N
    w.activateWindow()
    qtbot.waitActive(w)
    for i in reversed(range(w.tabs.count())):
        QTest.keyClick(w.windowHandle(), Qt.Key(Qt.Key.Key_1.value + i), Qt.KeyboardModifier.ControlModifier)
        assert w.tabs.currentIndex() == i, w.tabs.tabText(i)
    least = w.minimumSizeHint()
    # usable on a 1366-px laptop at 150 % (910 logical px) and on this 800-px virtual screen
    assert least.width() <= min(900, screen.width() - 10), least
    size = (least.width() + 10, least.height() + 10)
    w.resize(*size)
    w.tabs.setCurrentIndex(2)
    qtbot.wait(50)
    w.close()
    assert any(qsettings_dir.rglob("*.conf")), "nothing written"
    w2 = open_window()
    assert (w2.width(), w2.height()) == size and w2.tabs.currentIndex() == 2
    # saved on a bigger monitor: it comes back inside this screen, not cut off
    w2.resize(screen.width() + 500, screen.height() + 300)
    w2.close()
    w3 = open_window()
    assert screen.contains(w3.geometry()), (w3.geometry(), screen)
    w3.close()


HIDPI = r"""
import json, sys
from PySide6.QtWidgets import QApplication
from desktop.app import make_app
from engine.context import open_context
app = make_app()
ctx = open_context(sys.argv[1])
from desktop.views.signin import SignInDialog
d = SignInDialog(ctx)
d.show()
app.processEvents()
img = d.grab()
print(json.dumps({"dpr": app.devicePixelRatio(), "logical": [d.width(), d.height()],
                  "hint": [d.sizeHint().width(), d.sizeHint().height()],
                  "pixels": [img.width(), img.height()], "pixmap_dpr": img.devicePixelRatio()}))
ctx.close()
"""


def test_high_dpi_scales_without_cutting(tmp_path):
    """Qt 6 scales by the screen's factor: at 2x the logical layout is the same and the pixels double."""
    import json
    out = {}
    for scale in ("1", "2"):
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QT_SCALE_FACTOR=scale)
        r = subprocess.run([sys.executable, "-c", HIDPI, str(tmp_path / f"data{scale}")], env=env, cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr[-2000:]
        out[scale] = json.loads(r.stdout.strip().splitlines()[-1])
    one, two = out["1"], out["2"]
    assert one["dpr"] == 1 and two["dpr"] == 2 and two["pixmap_dpr"] == 2
    assert two["hint"] == one["hint"] and two["logical"] == one["logical"]
    assert two["pixels"] == [2 * one["pixels"][0], 2 * one["pixels"][1]]
    assert one["logical"][0] >= one["hint"][0] and one["logical"][1] >= one["hint"][1]   # nothing squeezed
