"""The store: every table Madoguchi keeps, behind one API (:class:`Store`).

* :mod:`.sqlite` — the SQLite file (embedded default and this PC's own file), migrations, SQLCipher;
* :mod:`.pg_dialect` — SQLite-flavoured SQL → PostgreSQL, server errors as sqlite3 exceptions;
* :mod:`.office` — the office server (:class:`ServerStore`), its connection string and password,
  the journal of a recording's writes while the server is away;
* :mod:`.offline` — :class:`OfflineStore`, this PC's file while the server cannot be reached;
* :mod:`.open` — :func:`open_store`, the store a configuration names;
* :mod:`.shared` — :class:`SharedStore`, ``ctx.store``: one object whose backend the office link swaps.

Nothing in this package imports the engine modules built on it.
"""
from .office import (JOURNAL_DDL, KEYRING_SERVICE, SERVER_AUDIT_LOCK, SERVER_MIGRATE_LOCK, SERVER_TX_LOCK,
                     ServerStore, connect_server, server_conninfo, server_password)
from .offline import OFFLINE_SYNCED_KEY, OFFLINE_TABLES, OfflineStore, offline_pending
from .open import encrypt_if_plain, open_store
from .pg_dialect import (Row, ServerDatabaseError, ServerIntegrityError, ServerRefused, ServerUnavailable,
                         pg_script, pg_sql)
from .shared import SharedStore
from .sqlite import (DB_NAME, LOCAL_TABLES, DatabaseError, Store, StoreError, is_plain_sqlite, migrations,
                     sqlcipher)

__all__ = ["DB_NAME", "DatabaseError", "JOURNAL_DDL", "KEYRING_SERVICE", "LOCAL_TABLES", "OFFLINE_SYNCED_KEY",
           "OFFLINE_TABLES", "OfflineStore", "Row", "SERVER_AUDIT_LOCK", "SERVER_MIGRATE_LOCK", "SERVER_TX_LOCK",
           "ServerDatabaseError", "ServerIntegrityError", "ServerRefused", "ServerStore", "ServerUnavailable",
           "SharedStore", "Store", "StoreError", "connect_server", "encrypt_if_plain", "is_plain_sqlite", "migrations", "offline_pending",
           "open_store", "pg_script", "pg_sql", "server_conninfo", "server_password", "sqlcipher"]
