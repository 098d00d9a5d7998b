"""The office-server link for the main window: a status-bar label that says plainly whether this
PC works with the office server or offline, and a timer that looks at the server every few
seconds through the background-op helper (``ctx.link.check()``, :class:`engine.office.link.Link`, does
the work: switching to the local file, replaying the journal, sending what was recorded offline)."""
from __future__ import annotations

import logging

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QLabel

from . import strings as S
from .ops import run_op

log = logging.getLogger(__name__)

OFFLINE_STYLE = "QLabel { background: #ffe0b2; color: #8a3b00; padding: 1px 6px; font-weight: bold; }"
ONLINE_STYLE = "QLabel { color: #2e7d32; padding: 1px 6px; }"


class ServerLink(QObject):
    """``changed(status)`` when the PC goes offline or comes back; ``label`` belongs in the status bar.
    Without an office server (embedded SQLite) the label stays hidden and nothing is polled."""
    changed = Signal(object)

    def __init__(self, ctx, owner, online_ms: int = 5000, offline_ms: int = 3000):
        super().__init__(owner)
        self.ctx, self.owner = ctx, owner
        self.online_ms, self.offline_ms = online_ms, offline_ms
        self.label = QLabel("", owner)
        self.label.setAccessibleName(S.SERVER_STATUS_NAME)
        self.status: dict | None = None
        self._busy = False
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.timeout.connect(self.check)
        self.enabled = ctx.link.has_server
        self.label.setVisible(self.enabled)
        if self.enabled:
            self._show(ctx.online, ctx.link.reason, 0, 0, pending=0)

    @property
    def online(self) -> bool:
        return self.ctx.online

    def start(self) -> None:
        if self.enabled:
            self.timer.start(self.online_ms if self.online else self.offline_ms)

    def stop(self) -> None:
        self.timer.stop()
        self.enabled = False

    def check(self) -> None:
        if not self.enabled or self._busy:
            return
        self._busy = True
        run_op(self.owner, lambda task: self.ctx.link.check(), success=self._done, failure=self._failed)

    def _done(self, st) -> None:
        self._busy = False
        self.status = st
        if st["changed"] or st["sent"] or self.label.text() == "":
            self._show(st["online"], st["reason"], st["sent"], st["replayed"], st["pending"])
        elif not st["online"]:
            self._show(False, st["reason"], 0, 0, st["pending"])
        if st["changed"] or st["sent"]:
            log.info("office server %s (sent %s, replayed %s, pending %s)",
                     "online" if st["online"] else "offline", st["sent"], st["replayed"], st["pending"])
            self.changed.emit(st)
        self.start()

    def _failed(self, exc) -> None:   # never a dialog every few seconds: the label says it, the log has it
        self._busy = False
        log.warning("office server check failed: %s: %s", type(exc).__name__, exc)
        self.start()

    def _show(self, online: bool, reason: str, sent: int, replayed: int, pending: int) -> None:
        if online:
            text = S.SERVER_BACK.format(sent=sent + replayed) if (sent or replayed) else S.SERVER_ONLINE
            self.label.setStyleSheet(ONLINE_STYLE)
            self.label.setToolTip(S.SERVER_ONLINE_TIP)
        else:
            text = S.SERVER_OFFLINE + (S.SERVER_OFFLINE_PENDING.format(n=pending) if pending else "")
            self.label.setStyleSheet(OFFLINE_STYLE)
            self.label.setToolTip(S.SERVER_OFFLINE_TIP + (f"\n{reason}" if reason else ""))
        self.label.setText(text)


def server_screen(ctx) -> None:
    """For a screen that shows what lives on the office server (records, the ledger): raise
    :class:`~engine.store.ServerUnavailable` while this PC is offline, so the main window shows
    it as waiting and builds it at reconnect."""
    if not ctx.online:
        from engine.store import ServerUnavailable
        raise ServerUnavailable("offline: this screen comes back with the office server")
