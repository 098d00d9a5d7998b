"""``madoguchi-desktop``: start-up (fonts, high-DPI, network guard, sign-in) and the main window."""
from __future__ import annotations

import argparse
import logging
import sys

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QFontDatabase
from PySide6.QtWidgets import QApplication, QDialog, QMessageBox

from engine import users
from engine.context import open_context
from engine.errors import MadoguchiError

from . import strings as S

log = logging.getLogger(__name__)

JAPANESE_FONTS = ["Yu Gothic UI", "Meiryo UI", "Meiryo", "IPAGothic", "IPAPGothic", "Noto Sans CJK JP",
                  "Noto Sans JP", "TakaoPGothic", "MS UI Gothic"]


def japanese_font(point_size: int = 11) -> QFont:
    families = set(QFontDatabase.families())
    for fam in JAPANESE_FONTS:
        if fam in families:
            f = QFont(fam, point_size)
            return f
    return QFont()


def make_app(argv=None) -> QApplication:
    app = QApplication.instance() or QApplication(argv or sys.argv[:1])
    app.setApplicationName("Madoguchi")
    app.setOrganizationName("Madoguchi")
    app.setApplicationDisplayName(S.APP_TITLE)
    app.setFont(japanese_font())
    return app


def sign_in(ctx, parent=None):
    from .views.signin import FirstRunDialog, SignInDialog
    # one store read before any window exists: there is no event loop yet that it could stall
    dlg = FirstRunDialog(ctx.store, parent) if users.needs_first_admin(ctx) else SignInDialog(ctx, parent)
    if dlg.exec() != QDialog.DialogCode.Accepted:
        return None
    return dlg.user


def main(argv=None) -> int:
    import multiprocessing
    multiprocessing.freeze_support()  # engine.jobs spawns children, also from the frozen bundle
    ap = argparse.ArgumentParser(prog="madoguchi-desktop")
    ap.add_argument("--data-dir", default=None)
    args, qt_args = ap.parse_known_args(argv)
    QApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
    app = make_app([sys.argv[0]] + qt_args)
    try:
        ctx = open_context(args.data_dir)
    except MadoguchiError as e:
        QMessageBox.critical(None, S.APP_TITLE, e.ja + f"\n\n{e}")
        return 2
    from .mainwindow import MainWindow
    while True:
        user = sign_in(ctx)
        if user is None:
            return 0
        win = MainWindow(ctx, user)
        win.show()
        app.exec()
        if not getattr(win, "signed_out", False):
            break
    ctx.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
