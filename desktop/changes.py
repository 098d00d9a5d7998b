"""The one change hub (Anki's ``operation_did_execute``): a :class:`~desktop.ops.StoreOp` that
changed something announces ``changed(kind, id)`` here, and every screen that shows that kind
refreshes itself — no screen calls another screen's refresh.

Kinds: ``records`` (id: the record), ``refined`` (the final pass saved a better transcript and a
new version of the record under the screens; id: the record), ``ledger`` (id: the inspection),
``sessions`` (id: the session), ``link`` (the office server is back: everything shown may be
stale; id None).
"""
from __future__ import annotations

from PySide6.QtCore import QObject, Signal

RECORDS, REFINED, LEDGER, SESSIONS, LINK = "records", "refined", "ledger", "sessions", "link"


class ChangeHub(QObject):
    changed = Signal(str, object)

    def announce(self, kind: str, id_=None) -> None:
        self.changed.emit(kind, id_)


_hub: ChangeHub | None = None


def hub() -> ChangeHub:
    """The application's hub (made on first use, on the GUI thread)."""
    global _hub
    if _hub is None:
        _hub = ChangeHub()
    return _hub


def listen(widget, kinds: tuple[str, ...], slot) -> None:
    """Call ``slot(kind, id)`` for each announced change of one of ``kinds`` while ``widget`` lives
    (the connection goes with the widget) and its window is open — a screen in a closed window
    (signed out) reloads nothing; one in a hidden tab does, so it is current when chosen."""
    def on_change(kind, id_):
        if kind in kinds and widget.window().isVisible():
            slot(kind, id_)
    widget._change_slots = [*getattr(widget, "_change_slots", []), on_change]   # kept alive with the widget
    hub().changed.connect(on_change)
    widget.destroyed.connect(lambda *_: _disconnect(on_change))


def _disconnect(slot) -> None:
    try:
        hub().changed.disconnect(slot)
    except (RuntimeError, TypeError):
        pass
