"""Errors in plain Japanese with what to do next; technical detail only in the log."""
from __future__ import annotations

import logging

from PySide6.QtWidgets import QMessageBox, QWidget

from engine.errors import MadoguchiError

log = logging.getLogger(__name__)


def japanese_message(exc: BaseException) -> str:
    if isinstance(exc, MadoguchiError):
        return exc.ja
    if isinstance(exc, MemoryError):
        return "メモリが不足しています。ほかのアプリを閉じてから、もう一度お試しください。"
    if isinstance(exc, OSError) and getattr(exc, "errno", None) == 28:
        return "ディスクの空き容量が不足しています。保存済みのデータは失われていません。システム管理者に連絡してください。"
    if isinstance(exc, PermissionError):
        return "ファイルへのアクセスが拒否されました。保存先の権限を確認してください。"
    if isinstance(exc, FileNotFoundError):
        return "ファイルが見つかりません。場所を確認して、もう一度お試しください。"
    return "予期しないエラーが発生しました。入力内容は保持されています。もう一度お試しいただき、解決しない場合はシステム管理者に連絡してください。"


def show_error(parent: QWidget | None, exc: BaseException, title: str = "エラー") -> QMessageBox:
    log.warning("shown to user: %s", type(exc).__name__)
    box = QMessageBox(QMessageBox.Icon.Warning, title, japanese_message(exc), QMessageBox.StandardButton.Ok, parent)
    box.setAccessibleName(title)
    box.setDetailedText(f"{type(exc).__name__}: {exc}")
    box.open()  # non-blocking: the event loop keeps running
    return box
