"""Desktop shell: first run, sign-in, role-based tabs, settings/doctor off the GUI thread."""
import pytest
from PySide6.QtCore import Qt

from engine import users
from tests.qt_util import StallWatch


@pytest.fixture
def app(qapp):
    from desktop.app import make_app
    return make_app()


def test_first_run_registers_admin_and_signs_in(qtbot, ctx, app):
    from desktop.views.signin import FirstRunDialog
    dlg = FirstRunDialog(ctx.store)
    qtbot.addWidget(dlg)
    dlg.username.setText("kanri")
    dlg.display.setText("管理 太郎")
    dlg.password.setText("password-1")
    dlg.password2.setText("password-2")
    dlg.register()
    assert "一致しません" in dlg.message.text() and users.count(ctx.store) == 0
    dlg.password2.setText("password-1")
    dlg.register()
    qtbot.waitUntil(lambda: dlg.user is not None)          # registered off the GUI thread
    assert dlg.user.role == "admin"


def test_sign_in_wrong_password_is_japanese_and_keeps_username(qtbot, ctx, app):
    from desktop.views.signin import SignInDialog
    users.add_user(ctx.store, None, "kanri", "管理 太郎", "admin", "password-1")
    dlg = SignInDialog(ctx)
    qtbot.addWidget(dlg)
    dlg.username.setText("kanri")
    dlg.password.setText("wrong-password")
    dlg.try_sign_in()
    qtbot.waitUntil(lambda: "パスワード" in dlg.message.text())   # checked off the GUI thread
    assert dlg.user is None and dlg.username.text() == "kanri"
    dlg.password.setText("password-1")
    dlg.try_sign_in()
    qtbot.waitUntil(lambda: dlg.user is not None)
    assert dlg.user.username == "kanri"


def test_tabs_follow_role_and_title_shows_user(qtbot, ctx, app):
    from desktop.mainwindow import MainWindow, tabs_for
    admin = users.add_user(ctx.store, None, "kanri", "管理 太郎", "admin", "password-1")
    staff = users.add_user(ctx.store, admin, "tanaka", "田中 花子", "staff", "password-2")
    w = MainWindow(ctx, staff)
    qtbot.addWidget(w)
    titles = [w.tabs.tabText(i) for i in range(w.tabs.count())]
    assert "承認" not in titles and "設定" in titles
    assert "田中 花子" in w.windowTitle() and "職員" in w.windowTitle()
    for user, shown, hidden in ((admin, {"設定", "カーブミラー"}, {"相談", "記録", "承認"}),   # IT reads no consultation
                                (users.add_user(ctx.store, admin, "kensa", "検査", "inspector", "password-3"),
                                 {"カーブミラー"}, {"相談", "記録", "承認"})):
        w2 = MainWindow(ctx, user)
        qtbot.addWidget(w2)
        titles = {w2.tabs.tabText(i) for i in range(w2.tabs.count())}
        assert shown <= titles and not (hidden & titles), titles
        assert titles == set(tabs_for(user))   # the capability table (engine.roles) decides


@pytest.mark.slow
def test_doctor_runs_off_the_gui_thread(qtbot, ctx, app):
    from desktop.views.settings import SettingsView
    admin = users.add_user(ctx.store, None, "kanri", "管理 太郎", "admin", "password-1")
    v = SettingsView(ctx, admin)
    qtbot.addWidget(v)
    v.show()
    qtbot.wait(300)  # first paint (font loading) is not what this test measures
    watch = StallWatch().start()
    v.run_doctor()
    qtbot.waitUntil(lambda: v.doctor_table.rowCount() > 0, timeout=240_000)
    watch.stop()
    assert watch.worst_ms < 100, f"event loop stalled {watch.worst_ms:.0f} ms (wall clock {watch.worst_raw_ms:.0f} ms)"
    rows = {v.doctor_table.item(i, 1).text(): v.doctor_table.item(i, 2).text() for i in range(v.doctor_table.rowCount())}
    assert rows["whisper-base"] == "OK" and rows["llm-default"] == "OK"
    assert "利用できます" in v.verdict.text()
    assert v.users_table.rowCount() == 1
