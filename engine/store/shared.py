"""``ctx.store``: the shared data, behind one object that stays the same for the whole run.

On a PC with an office server the data is on the server, or — while it cannot be reached — in
this PC's file (:class:`~engine.store.offline.OfflineStore`). The office link
(:class:`engine.office.link.Link`) decides which, and swaps the backend behind this object; nothing
rebinds ``ctx.store``. Each statement goes to the backend in use when it runs; a transaction
stays on the backend it began on, to its end. What must stay on one backend for longer (a
recording, whose segments go on to the server store and are journaled while it is away) takes
:meth:`SharedStore.current` once and keeps that.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from .sqlite import Store


class SharedStore:
    """The :class:`~engine.store.sqlite.Store` API over the backend the link has chosen."""

    def __init__(self, backend: Store):
        self._backend = backend
        self._held: list[Store] = [backend]   # every backend used in this run, closed by close()
        self._lock = threading.Lock()
        self._tx = threading.local()           # the backend of this thread's open transaction

    def current(self) -> Store:
        """The backend statements go to now (in a transaction: the one it began on)."""
        pinned = getattr(self._tx, "backend", None)
        return pinned if pinned is not None else self._backend

    def swap(self, backend: Store) -> Store:
        """Put ``backend`` behind this store (the office link does this); returns the previous one,
        which stays open: a recording that started on it goes on writing to it."""
        with self._lock:
            old, self._backend = self._backend, backend
            if all(b is not backend for b in self._held):
                self._held.append(backend)
        return old

    # ------------------------------------------------------------------ what the backend is
    @property
    def backend(self) -> str:
        return self.current().backend

    @property
    def key(self) -> bytes | None:
        return self.current().key

    @property
    def path(self) -> Path:
        return self.current().path

    @property
    def conn(self):
        return self.current().conn

    @property
    def db(self):
        return self.current().db

    # ------------------------------------------------------------------ queries
    def execute(self, sql: str, params: tuple | dict = (), *, journal: bool = False):
        return self.current().execute(sql, params, journal=journal)

    def executemany(self, sql: str, rows):
        return self.current().executemany(sql, rows)

    def query(self, sql: str, params: tuple | dict = ()) -> list[dict[str, Any]]:
        return self.current().query(sql, params)

    def query_one(self, sql: str, params: tuple | dict = ()) -> dict[str, Any] | None:
        return self.current().query_one(sql, params)

    def insert(self, table: str, row: dict[str, Any], *, journal: bool = False) -> int:
        return self.current().insert(table, row, journal=journal)

    def get_setting(self, key: str, default: Any = None) -> Any:
        return self.current().get_setting(key, default)

    def set_setting(self, key: str, value: Any) -> None:
        return self.current().set_setting(key, value)

    @contextmanager
    def transaction(self) -> Iterator["SharedStore"]:
        """The backend's transaction; until it ends, this thread's statements stay on that backend
        even if the link swaps meanwhile. Nested calls join the outer one."""
        pinned = getattr(self._tx, "backend", None)
        if pinned is not None:
            with pinned.transaction():
                yield self
            return
        backend = self._backend
        self._tx.backend = backend
        try:
            with backend.transaction():
                yield self
        finally:
            self._tx.backend = None

    # ------------------------------------------------------------------ schema and keys
    def schema_version(self) -> int:
        return self.current().schema_version()

    def latest_version(self) -> int:
        return self.current().latest_version()

    def migrate(self) -> list[int]:
        return self.current().migrate()

    def integrity_ok(self) -> bool:
        return self.current().integrity_ok()

    def rekey(self, new_key: bytes) -> None:
        self.current().rekey(new_key)

    def close(self) -> None:
        with self._lock:
            held, self._held = self._held, []
        for b in held:
            b.close()
