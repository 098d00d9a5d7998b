"""The one background-operation helper (in the spirit of Anki's QueryOp/CollectionOp).

    BackgroundOp(parent, op=lambda task: engine_fn(..., progress=task.progress, cancelled=task.cancelled),
                 success=lambda result: ..., failure=lambda exc: ...,
                 progress=lambda done, total, label: ...).run()

``op`` runs on a worker thread of the global QThreadPool and receives a :class:`Task` with
``progress(done, total, label)``, ``emit(event)`` (stream events such as transcript segments to
the GUI thread), ``cancelled()`` and ``cancel_event``. ``success``/``failure``/``progress``/
``on_event`` run on the GUI thread. Widgets never start threads of their own.
"""
from __future__ import annotations

import logging
import threading
import traceback
from typing import Any, Callable

import shiboken6
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

log = logging.getLogger(__name__)

_live: set["BackgroundOp"] = set()


class Task:
    def __init__(self, signals: "_Signals"):
        self._signals = signals
        self.cancel_event = threading.Event()

    def progress(self, done: float, total: float = 0, label: str = "") -> None:
        self._signals.progress.emit(float(done), float(total), str(label))

    def emit(self, event: Any) -> None:
        self._signals.event.emit(event)

    def cancelled(self) -> bool:
        return self.cancel_event.is_set()


class _Signals(QObject):
    progress = Signal(float, float, str)
    event = Signal(object)
    finished = Signal(object)
    failed = Signal(object)


class _Runnable(QRunnable):
    def __init__(self, fn: Callable[[Task], Any], task: Task, signals: _Signals):
        super().__init__()
        self.fn, self.task, self.signals = fn, task, signals
        self.setAutoDelete(True)

    def run(self) -> None:
        try:
            result = self.fn(self.task)
        except BaseException as e:  # delivered to the GUI thread, never swallowed
            log.error("background operation failed: %s", type(e).__name__)
            log.debug("%s", traceback.format_exc())
            self.signals.failed.emit(e)
        else:
            self.signals.finished.emit(result)


class BackgroundOp:
    def __init__(self, parent: QObject | None, op: Callable[[Task], Any],
                 success: Callable[[Any], None] | None = None,
                 failure: Callable[[BaseException], None] | None = None,
                 progress: Callable[[float, float, str], None] | None = None,
                 on_event: Callable[[Any], None] | None = None,
                 pool: QThreadPool | None = None):
        self.parent = parent
        self.op = op
        self._success, self._failure, self._progress, self._on_event = success, failure, progress, on_event
        self.signals = _Signals()
        self.task = Task(self.signals)
        self.pool = pool or QThreadPool.globalInstance()
        self.running = False
        self.signals.finished.connect(self._done)
        self.signals.failed.connect(self._fail)
        if progress:
            self.signals.progress.connect(lambda d, t, label: self._alive() and progress(d, t, label))
        if on_event:
            self.signals.event.connect(lambda ev: self._alive() and on_event(ev))

    def _alive(self) -> bool:
        """False once the widget that started the operation is gone (window closed meanwhile):
        its callbacks are then skipped instead of touching deleted widgets."""
        return self.parent is None or shiboken6.isValid(self.parent)

    def run(self) -> "BackgroundOp":
        self.running = True
        _live.add(self)
        self.pool.start(_Runnable(self.op, self.task, self.signals))
        return self

    def cancel(self) -> None:
        self.task.cancel_event.set()

    def _done(self, result) -> None:
        self.running = False
        _live.discard(self)
        if self._success and self._alive():
            self._success(result)

    def _fail(self, exc) -> None:
        self.running = False
        _live.discard(self)
        if not self._alive():
            log.warning("background operation failed after its window closed: %s", type(exc).__name__)
            return
        if self._failure:
            self._failure(exc)
        else:
            from .errors import show_error
            show_error(self.parent, exc)


def run_op(parent, op, success=None, failure=None, progress=None, on_event=None) -> BackgroundOp:
    return BackgroundOp(parent, op, success, failure, progress, on_event).run()


def wait_all(timeout_ms: int = 30000) -> bool:
    return QThreadPool.globalInstance().waitForDone(timeout_ms)


class StoreOp(BackgroundOp):
    """An engine call that reads or changes the store, off the GUI thread (Anki's CollectionOp).

        StoreOp(view, lambda: workflow.approve(ctx.store, user, rid, rev, ...),
                success=lambda rec: ..., change=(changes.RECORDS, rid)).run()

    On the office server every store call is a network round trip; made here, the window keeps
    answering while it runs. ``success``/``failure`` run on the GUI thread (an error without a
    ``failure`` is shown to the user); after ``success``, ``change`` — ``(kind, id)``, or a
    function of the result giving it — is announced on the change hub (:mod:`desktop.changes`),
    so every screen showing that kind refreshes itself."""

    def __init__(self, parent: QObject | None, call: Callable[[], Any],
                 success: Callable[[Any], None] | None = None,
                 failure: Callable[[BaseException], None] | None = None,
                 change: tuple[str, Any] | Callable[[Any], tuple[str, Any]] | None = None):
        super().__init__(parent, lambda task: call(), success=success, failure=failure)
        self._change = change

    def _done(self, result) -> None:
        super()._done(result)
        if self._change is not None:      # the change happened, even if the screen that asked is gone
            from .changes import hub
            hub().announce(*(self._change(result) if callable(self._change) else self._change))


def store_op(parent, call, success=None, failure=None, change=None) -> StoreOp:
    """Start a :class:`StoreOp`."""
    return StoreOp(parent, call, success, failure, change).run()


def idle() -> bool:
    """No background or store operation is running (tests wait for this)."""
    return not _live
