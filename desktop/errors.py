"""Errors in plain Japanese with what to do next; technical detail only in the log."""
from __future__ import annotations

import logging

from PySide6.QtWidgets import QMessageBox, QWidget

from engine.audio import disk_full
from engine.errors import MadoguchiError

from . import strings as S

log = logging.getLogger(__name__)


def japanese_message(exc: BaseException) -> str:
    if isinstance(exc, MadoguchiError):
        return exc.ja
    if isinstance(exc, MemoryError):
        return S.ERR_MEMORY
    if disk_full(exc):   # ENOSPC/EDQUOT, or SQLite's "database or disk is full"
        return S.ERR_DISK_FULL
    if isinstance(exc, PermissionError):
        return S.ERR_PERMISSION
    if isinstance(exc, FileNotFoundError):
        return S.ERR_NOT_FOUND
    return S.ERR_UNEXPECTED


def show_error(parent: QWidget | None, exc: BaseException, title: str = S.ERROR_TITLE) -> QMessageBox:
    log.warning("shown to user: %s", type(exc).__name__)
    box = QMessageBox(QMessageBox.Icon.Warning, title, japanese_message(exc), QMessageBox.StandardButton.Ok, parent)
    box.setAccessibleName(title)
    box.setDetailedText(f"{type(exc).__name__}: {exc}")
    box.open()  # non-blocking: the event loop keeps running
    return box


def unless_offline(parent: QWidget | None):
    """A failure handler for a screen reloading what it shows: the office server gone meanwhile is
    said by the status bar (desktop.link), not by a dialog; any other error is shown."""
    from engine.store import ServerUnavailable

    def failed(exc: BaseException) -> None:
        if isinstance(exc, ServerUnavailable):
            log.info("not reloaded: the office server is away")
        else:
            show_error(parent, exc)
    return failed
