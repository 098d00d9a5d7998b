"""Screenshots of every screen with real content → docs/screenshots/*.png (`make screenshots`).

Builds a demo data folder with real engine output: a consultation transcribed from synthesized
speech, a record drafted by the local LLM, the sample manuals indexed, synthetic mirror photos
imported. Then opens the real main window as staff, supervisor and inspector and grabs each tab.
Run under Xvfb (the Makefile target does) or with QT_QPA_PLATFORM=offscreen.
"""
from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "docs" / "screenshots"
DATA = Path(os.environ.get("SHOTS_DATA", "/tmp/madoguchi-screenshots"))


def wait(app, seconds: float, until=None) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        if until is not None and until():
            return
        time.sleep(0.02)


def build_demo(ctx):
    from engine import users
    from engine.manuals import samples
    from engine.mirrors import synth
    admin = users.add_user(ctx.store, None, "kanri", "管理 太郎", "admin", "password-1")
    staff = users.add_user(ctx.store, admin, "tanaka", "田中 花子", "staff", "password-2")
    sup = users.add_user(ctx.store, admin, "sato", "佐藤 係長", "supervisor", "password-3")
    insp = users.add_user(ctx.store, admin, "kensa", "検査 一郎", "inspector", "password-4")
    session_id = demo_session(ctx, staff)
    demo_record(ctx, staff, session_id)
    mdir = DATA / "manuals"
    samples.build(mdir)
    from engine.manuals.index import index_paths
    index_paths(ctx.local, [mdir])
    pdir = DATA / "photos"
    pdir.mkdir(exist_ok=True)
    for i, seed in enumerate(range(920001, 920009)):
        defects = {"pole.tilt": 3} if i == 1 else ({"mirror.crack": 2} if i == 2 else None)
        sc = synth.generate(seed, size=(1024, 768), defects=defects)
        (pdir / f"KM-{2001 + i}_20261120.jpg").write_bytes(synth.encode_jpeg(sc.image))
    from engine.mirrors.ledger import import_folder
    for _ in import_folder(ctx, pdir, user=insp):
        pass
    return staff, sup, insp, admin


def demo_session(ctx, staff) -> int | None:
    """A consultation transcribed by the real streaming transcriber from synthesized speech."""
    from engine.asr.session import ConsultationSession
    from engine.audio import FileSource, write_wav
    from devkit import audiogen
    conv = audiogen.conversation("welfare", seed=1)
    wav = write_wav(DATA / "welfare.wav", conv.audio)
    sess = ConsultationSession(ctx, title="生活保護の相談", staff_user=staff.username, consent=True)
    sid = sess.start(FileSource(wav))
    sess.wait()
    sess.stop(final_pass=True)
    return sid


def demo_record(ctx, staff, session_id):
    from engine.records import draft as rdraft
    from engine.records import template as rtemplate
    from engine.records import workflow
    if session_id is None:
        return None
    segs = rdraft.segments_from_session(ctx.store, session_id)
    d = rdraft.draft(segs, rtemplate.load("seikatsu_hogo"), ctx.config, use_llm=True)
    rec = workflow.create(ctx.store, staff, d, session_id=session_id, title="生活保護の相談（家賃・失業）",
                          case_number="K-2026-0142")
    return workflow.submit(ctx.store, staff, rec.id, rec.revision)


def shoot(win, name: str) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    p = OUT / f"{name}.png"
    win.grab().save(str(p))
    print("wrote", p)
    return p


def main() -> int:
    if DATA.exists():
        shutil.rmtree(DATA)
    DATA.mkdir(parents=True)
    os.environ["MADOGUCHI_USER_CONFIG"] = str(DATA / "user-config.toml")
    os.environ["MADOGUCHI_MACHINE_CONFIG"] = str(DATA / "machine-config.toml")
    (DATA / "user-config.toml").write_text(f'manuals_dir = "{DATA / "manuals"}"\n', encoding="utf-8")
    from PySide6.QtCore import QSettings
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(DATA / "qsettings"))
    # MainWindow's QSettings("Madoguchi", "Madoguchi") is the native format: keep it out of the real profile too
    QSettings.setPath(QSettings.Format.NativeFormat, QSettings.Scope.UserScope, str(DATA / "qsettings"))
    from desktop.app import make_app
    from desktop.mainwindow import MainWindow
    from desktop import strings as S
    from desktop.ops import idle      # screens load off the GUI thread (StoreOp): wait for them
    from engine.context import open_context
    app = make_app()
    ctx = open_context(DATA / "data")
    staff, sup, insp, admin = build_demo(ctx)

    def window(user):
        w = MainWindow(ctx, user)
        w.resize(1500, 940)
        w.show()
        wait(app, 0.5)
        wait(app, 30, until=idle)
        return w

    def tab(w, title):
        for i in range(w.tabs.count()):
            if w.tabs.tabText(i) == title:
                w.tabs.setCurrentIndex(i)
                wait(app, 0.4)
                wait(app, 30, until=idle)
                return w.views[title]
        return None

    w = window(staff)
    if tab(w, S.TAB_CONSULT) is not None:
        v = w.views[S.TAB_CONSULT]
        getattr(v, "show_session", lambda *_: None)(ctx.store.query_one("SELECT MAX(id) AS id FROM sessions")["id"])
        wait(app, 0.5)
        wait(app, 30, until=idle)
        shoot(w, "01-consultation")
    v = tab(w, S.TAB_RECORD)
    if v is not None and v.records.rowCount():
        v.open_record(v.records.item(0, 0).data(0x0100))
        wait(app, 30, until=lambda: v.current is not None and idle())
        items = list(v.panel.statement_items())
        if items:
            v.panel.tree.setCurrentItem(items[0])
            v.panel._statement_clicked(items[0], 0)
        wait(app, 0.4)
        shoot(w, "02-record")
    v = tab(w, S.TAB_MANUALS)
    v.query.setText("家賃が払えない")
    wait(app, 20, until=lambda: v.hits and v.page_view.pixmap() is not None and not v.page_view.pixmap().isNull())
    wait(app, 0.5)
    shoot(w, "04-manual-search")
    w.close()

    w = window(sup)
    v = tab(w, S.TAB_APPROVAL)
    if v.queue.rowCount():
        v.queue.selectRow(0)
        wait(app, 0.4)
        wait(app, 30, until=idle)
    shoot(w, "03-approval")
    w.close()

    w = window(insp)
    v = tab(w, S.TAB_MIRRORS)
    if v.table.rowCount() > 1:
        v.table.selectRow(1)
        wait(app, 20, until=lambda: v.photo.pixmap() is not None and not v.photo.pixmap().isNull())
    wait(app, 0.4)
    shoot(w, "05-mirrors")
    w.close()

    w = window(admin)
    v = tab(w, S.TAB_SETTINGS)
    v.run_doctor()
    wait(app, 240, until=lambda: v.doctor_table.rowCount() > 0)
    wait(app, 0.4)
    shoot(w, "06-settings")
    w.close()
    from desktop.views.signin import SignInDialog
    d = SignInDialog(ctx)
    d.show()
    wait(app, 0.3)
    shoot(d, "00-sign-in")
    ctx.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
