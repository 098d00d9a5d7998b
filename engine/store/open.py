"""Open the store a data folder's configuration names: the SQLite file, or the office server
with this PC's file beside it (offline: the file alone)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from .office import ServerStore, server_conninfo
from .offline import OfflineStore, offline_pending
from .pg_dialect import ServerUnavailable
from .sqlite import DB_NAME, Store, is_plain_sqlite


Sync = Callable[[Store, ServerStore], object]
"""Sends what this PC recorded offline to the server (``engine.office.link.sync_offline``): passed in by
the caller, so that the store package never imports the modules built on it."""


def open_store(data_dir: Path | str, key: bytes | None = None, server: str = "", offline: bool = True,
               sslrootcert: str = "", sync: Sync | None = None, local: Store | None = None) -> Store:
    """The SQLite file in ``data_dir``; with ``server`` (the ``office_server`` config key) the office
    PostgreSQL server, the SQLite file staying beside it for the PC-local manual index.

    Server unreachable (and ``offline``): an :class:`OfflineStore` on the local file, in which
    recording and transcription go on; sessions recorded there are sent to the server at the next
    start with the server reachable (or ``madoguchi server sync``), once each (by ``uid``): ``sync``
    does the sending (without it the queue waits for ``madoguchi server sync``).

    ``local``: this PC's file, already open (the context's ``ctx.local``); it is then used as it
    is (the store itself without a server) and left open on every path. Without it the file is
    opened here."""
    path = Path(data_dir) / DB_NAME
    own = local is None
    if own:
        encrypt_if_plain(path, key)
    if not server:
        return Store(path, key=key) if own else local
    ci = server_conninfo(server, sslrootcert)
    if own:
        local = Store(path, key=key)
    try:
        st = ServerStore(ci, local=local)
    except ServerUnavailable as e:
        if own:
            local.close()
        if not offline:
            raise
        return OfflineStore(path, key=key, conninfo=ci, reason=str(e))
    except BaseException:
        if own:
            local.close()
        raise
    try:
        if sync is not None and offline_pending(st.local):
            sync(st.local, st)
    except ServerUnavailable:
        pass  # gone again: the queue waits for the next start or `madoguchi server sync`
    return st


def encrypt_if_plain(path: Path, key: bytes | None) -> None:
    """With encryption at rest on, an existing unencrypted file is encrypted in place first."""
    if key is not None and path.is_file() and path.stat().st_size > 0 and is_plain_sqlite(path):
        Store.encrypt_plain(path, key)
