"""Error base class. ``str(e)`` is the English message for the CLI and the log; ``e.ja`` is the
plain-Japanese message the desktop shows (what happened and what to do next)."""
from __future__ import annotations


class MadoguchiError(Exception):
    ja_default = "処理中にエラーが発生しました。"

    def __init__(self, message: str, ja: str | None = None):
        super().__init__(message)
        self.ja = ja or self.ja_default

    def __reduce__(self):  # keep the Japanese message across processes (engine.jobs)
        return (_rebuild, (type(self), str(self), self.ja))


def _rebuild(cls, message: str, ja: str):
    e = cls.__new__(cls)
    MadoguchiError.__init__(e, message, ja)
    return e
