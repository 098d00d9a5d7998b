"""Error base class. ``str(e)`` is the English message for the CLI and the log; ``e.ja`` is the
plain-Japanese message the desktop shows (what happened and what to do next)."""
from __future__ import annotations


class MadoguchiError(Exception):
    ja_default = "処理中にエラーが発生しました。"

    def __init__(self, message: str, ja: str | None = None):
        super().__init__(message)
        self.ja = ja or self.ja_default
