"""The main window: one tab per job, shown if the signed-in user has its capability (engine.roles)."""
from __future__ import annotations

import importlib

from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QLabel, QMainWindow, QMessageBox, QTabWidget

from engine import __version__
from engine.roles import can
from engine.store import ServerUnavailable

from . import changes
from . import strings as S
from .link import ServerLink


# (tab title, module, class, the capability (engine.roles) a user needs to see it)
TABS = [
    (S.TAB_CONSULT, "desktop.views.consult", "ConsultView", "record"),
    (S.TAB_RECORD, "desktop.views.record", "RecordView", "record"),
    (S.TAB_APPROVAL, "desktop.views.approval", "ApprovalView", "approve"),
    (S.TAB_MANUALS, "desktop.views.manuals", "ManualsView", "read_manuals"),
    (S.TAB_MIRRORS, "desktop.views.mirrors", "MirrorsView", "read_ledger"),
    (S.TAB_SETTINGS, "desktop.views.settings", "SettingsView", "own_settings"),
]


def tabs_for(user) -> list[str]:
    """The titles of the tabs ``user`` sees: those whose capability the engine gives them."""
    return [title for title, _m, _c, capability in TABS if can(user, capability)]


class MainWindow(QMainWindow):
    def __init__(self, ctx, user):
        super().__init__()
        self.ctx, self.user = ctx, user
        self.setWindowTitle(f"{S.APP_TITLE} — {user.display_name}（{user.role_ja}）")
        self.tabs = QTabWidget(self)
        self.tabs.setDocumentMode(True)
        self.setCentralWidget(self.tabs)
        self.views = {}
        self._waiting = {}        # title → view class, for screens that could not open offline
        for title, modname, cls, capability in TABS:
            if not can(user, capability):
                continue
            try:
                mod = importlib.import_module(modname)
            except ModuleNotFoundError as e:
                if e.name and modname.startswith(e.name):
                    continue  # that screen is not part of this build
                raise
            try:
                view = getattr(mod, cls)(ctx, user, self)
            except ServerUnavailable:   # offline: this screen lives on the office server; it comes at reconnect
                view = QLabel(S.SERVER_TAB_OFFLINE, self)
                view.setAlignment(Qt.AlignmentFlag.AlignCenter)
                view.setWordWrap(True)
                self._waiting[title] = getattr(mod, cls)
            self.views[title] = view
            self.tabs.addTab(view, title)
        consult, record = self.views.get(S.TAB_CONSULT), self.views.get(S.TAB_RECORD)
        if consult is not None and record is not None:
            consult.record_ready.connect(self.open_record)   # navigation: the window shows the new record
        if consult is not None and ctx.online:
            QTimer.singleShot(0, consult.offer_recovery)
        self._menus()
        self.status = QLabel(S.READY)
        self.link = ServerLink(ctx, self)
        self.link.changed.connect(self._link_changed)
        self.statusBar().addPermanentWidget(self.link.label)
        self.statusBar().addPermanentWidget(QLabel(f"{user.display_name}（{user.role_ja}）"))
        self.statusBar().addWidget(self.status)
        self._restore()
        self.link.start()

    def _link_changed(self, st) -> None:
        """Back online: the lists show the server again, and consultations recorded or cut off
        while offline are offered for drafting (the usual recovery question)."""
        if not st["online"]:
            return
        for title, cls in list(self._waiting.items()):
            try:
                view = cls(self.ctx, self.user, self)
            except ServerUnavailable:
                continue
            i = self.tabs.indexOf(self.views[title])
            current = self.tabs.currentIndex() == i
            self.tabs.removeTab(i)
            self.views[title].deleteLater()
            self.tabs.insertTab(i, view, title)
            if current:
                self.tabs.setCurrentIndex(i)
            self.views[title] = view
            del self._waiting[title]
        changes.hub().announce(changes.LINK)    # every screen reloads what it shows
        consult = self.views.get(S.TAB_CONSULT)
        if consult is not None and (st["sent"] or st["replayed"]) and consult.cw is None:
            consult.offer_recovery()

    def _menus(self) -> None:
        m = self.menuBar().addMenu(S.MENU_FILE)
        quit_ = QAction(S.ACT_QUIT, self)
        quit_.setShortcut(QKeySequence.StandardKey.Quit)
        quit_.triggered.connect(self.close)
        m.addAction(quit_)
        um = self.menuBar().addMenu(f"{S.MENU_USER} {self.user.display_name}（{self.user.role_ja}）")
        so = QAction(S.ACT_SIGN_OUT, self)
        so.triggered.connect(self.sign_out)
        um.addAction(so)
        for i in range(self.tabs.count()):
            act = QAction(self.tabs.tabText(i), self)
            act.setShortcut(QKeySequence(f"Ctrl+{i + 1}"))
            act.triggered.connect(lambda _=False, i=i: self.tabs.setCurrentIndex(i))
            self.addAction(act)
        hm = self.menuBar().addMenu(S.MENU_HELP)
        about = QAction(S.ACT_ABOUT, self)
        about.triggered.connect(lambda: QMessageBox.about(
            self, S.ACT_ABOUT, S.ABOUT_TEXT.format(title=S.APP_TITLE, version=__version__)))
        hm.addAction(about)

    def _restore(self) -> None:
        s = QSettings("Madoguchi", "Madoguchi")
        geo = s.value("window/geometry")
        if geo is not None:
            self.restoreGeometry(geo)
        else:
            self.resize(1400, 900)
        st = s.value("window/state")
        if st is not None:
            self.restoreState(st)
        tab = s.value("window/tab")
        if tab is not None:
            self.tabs.setCurrentIndex(int(tab))

    def open_record(self, record_id: int) -> None:
        view = self.views[S.TAB_RECORD]
        self.tabs.setCurrentWidget(view)
        changes.hub().announce(changes.RECORDS, record_id)   # a new record: every list of records reloads
        view.open_record(record_id)

    def sign_out(self) -> None:
        self.signed_out = True
        self.close()

    def closeEvent(self, ev) -> None:
        self.link.stop()
        for v in self.views.values():
            closer = getattr(v, "shutdown", None)
            if closer:
                closer()
        s = QSettings("Madoguchi", "Madoguchi")
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        s.setValue("window/tab", self.tabs.currentIndex())
        super().closeEvent(ev)
