"""The office server backend: the same public API as :class:`~engine.store.sqlite.Store` over
PostgreSQL (psycopg 3), the connection-string and keyring code, and the journal that keeps a
recording's writes on this PC while the server is away.

Concurrency (ServerStore.locking): inside a transaction a primary-key read locks its row and the
audit-chain head is taken under an advisory lock, so optimistic revision checks and the hash
chain hold under concurrent writers; ``office`` mode instead takes one office-wide lock per
transaction, exactly SQLite's ``BEGIN IMMEDIATE``.
"""
from __future__ import annotations

import functools
import json
import os
import re
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from . import sqlite
from .pg_dialect import ServerRefused, ServerUnavailable, _map_error, _row_factory, pg_script, pg_sql
from .sqlite import DB_NAME, LOCAL_TABLES, Store, StoreError

SERVER_TX_LOCK = 0x6D61646F  # 'mado': the office-wide write lock (pg_advisory_xact_lock)
SERVER_MIGRATE_LOCK = 0x6D696772  # 'migr'
SERVER_AUDIT_LOCK = 0x61756469  # 'audi': the audit-chain head (row locking mode)
_AUDIT_TABLE = re.compile(r"\baudit_log\b", re.I)
_PK_READ = re.compile(r"^\s*SELECT\b(?:(?!\b(?:JOIN|GROUP|UNION|COUNT|MAX|MIN|SUM)\b).)*"
                      r"\bFROM\s+\w+\s+WHERE\s+id\s*=\s*\?\s*;?\s*$", re.I | re.S)


@functools.lru_cache(maxsize=512)
def _for_update(sql: str) -> str:
    """Row locking mode: a primary-key read inside a transaction locks the row until COMMIT, so the
    caller's read-check-write (the optimistic revision check) is not raced."""
    return sql.rstrip().rstrip(";") + " FOR UPDATE" if _PK_READ.match(sql) else sql



KEYRING_SERVICE = "Madoguchi office server"


def server_conninfo(server: str, sslrootcert: str = "") -> str:
    """``office_server`` → libpq conninfo. A bare host (``pg01.office.local``, ``pg01:5433``) means
    database and user ``madoguchi``; a ``postgresql://`` URL is used as written.

    TLS: with ``sslrootcert`` (config ``server.sslrootcert``: the office CA, PEM) the server's
    certificate must be signed by that CA and name the host (``sslmode=verify-full``) — a missing
    file is an error, never a silent downgrade. Without a CA: ``sslmode=prefer`` (encrypted when the
    server offers it, but not verified; ``madoguchi server check`` says so). An ``sslmode`` written
    in the URL wins. The password comes from the URL, ``PGPASSWORD``/``~/.pgpass``, or the OS
    keyring (service ``Madoguchi office server``, name ``user@host``, see :func:`server_password`)."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo
    server = server.strip()
    if "://" in server or "=" in server:
        params = conninfo_to_dict(server)
    else:
        host, _, port = server.rpartition(":") if server.count(":") == 1 else (server, "", "")
        params = {"host": host or server, "port": port or "5432", "dbname": "madoguchi", "user": "madoguchi"}
    ca = sslrootcert or params.get("sslrootcert", "")
    if ca:
        if not Path(ca).expanduser().is_file():
            raise StoreError(f"server.sslrootcert: the office CA certificate {ca} does not exist",
                             ja="事務所サーバーの証明書（CA）のファイルが見つかりません。システム管理者に連絡してください。")
        params["sslrootcert"] = str(Path(ca).expanduser())
        params.setdefault("sslmode", "verify-full")
    params.setdefault("sslmode", "prefer")
    if "password" not in params and "PGPASSWORD" not in os.environ:
        pw = server_password(params.get("user", ""), params.get("host", ""))
        if pw:
            params["password"] = pw
    return make_conninfo(**params)


def server_password(user: str, host: str) -> str | None:
    """The office-server password from the OS keyring (Windows Credential Manager, Secret Service,
    or whatever backend keyring's own config names), ``None`` when there is none or no usable
    keyring on this machine (then ``PGPASSWORD``/``~/.pgpass``/the URL must carry it; ``madoguchi
    server check`` says which)."""
    try:
        import keyring
        return keyring.get_password(KEYRING_SERVICE, f"{user}@{host}")
    except Exception as e:  # no keyring backend (keyring.errors.NoKeyringError) or a locked one
        import logging
        logging.getLogger(__name__).info("no office-server password from the OS keyring: %s", type(e).__name__)
        return None



JOURNAL_DDL = ("CREATE TABLE IF NOT EXISTS offline_journal (seq INTEGER PRIMARY KEY, sql TEXT NOT NULL, "
               "params TEXT NOT NULL, created_at REAL NOT NULL)")
# Writes of a recording in progress that may outlive the server (a transcript segment, the
# session's heartbeat and its stop) are made with ``journal=True`` by their owner,
# engine/asr/sessions.py: while the server is away they are kept in this PC's file and replayed.
# (A new session cannot start on an unreachable server: it starts in the :class:`OfflineStore`
# and is sent by uid, see :func:`engine.office.link.sync_offline`.)


class _Journaled:
    """The cursor of a journaled write: no server id yet."""
    rowcount = 1
    lastrowid = None
    description = None

    def fetchone(self):
        return (None,)

    def fetchall(self):
        return []


class _TxState(threading.local):
    depth = 0
    pg = False
    audit = False


class _ConnAdapter:
    """What ``store.conn`` gives callers on the server backend: execute/executemany that route."""

    def __init__(self, store: "ServerStore"):
        self._s = store

    def execute(self, sql, params=()):
        return self._s.execute(sql, params)

    def executemany(self, sql, rows):
        return self._s.executemany(sql, rows)

    @property
    def in_transaction(self) -> bool:
        return self._s._tx.depth > 0


class ServerStore(Store):
    """The office server backend: PostgreSQL through psycopg 3, one connection per thread.

    ``local``: this PC's SQLite store (``ctx.local``), which keeps the journal of a recording's
    writes while the server is away; the manual index is in it too, but callers use it there
    directly: statements about it are refused here. ``conninfo`` is a libpq connection string or URL."""

    backend = "postgresql"
    locking = "row"
    """``row`` (default): a primary-key read inside a transaction locks that row (``FOR UPDATE``),
    so the optimistic revision check and the write that follows are not raced, and the first touch
    of ``audit_log`` takes the audit-chain lock, so the chain stays one; other read-check-write
    patterns rely on constraints (UNIQUE). ``office``: every transaction takes one office-wide lock
    first, exactly SQLite's ``BEGIN IMMEDIATE`` (4.5x less throughput in bench/server.py).
    Chosen with ``MADOGUCHI_SERVER_LOCKING``."""
    lock_waits: list[float] | None = None
    """Set to a list to collect how long each transaction waited for the office-wide lock (bench)."""

    def __init__(self, conninfo: str, local: Store | None = None, migrate: bool = True,
                 connect_timeout: float = 10):
        self.conninfo = conninfo
        self.locking = os.environ.get("MADOGUCHI_SERVER_LOCKING", self.locking)
        if self.locking not in ("office", "row"):
            raise StoreError(f"MADOGUCHI_SERVER_LOCKING: {self.locking!r} is not 'office' or 'row'")
        self.local = local
        self.key = local.key if local is not None else None
        self.path = local.path if local is not None else Path(DB_NAME)
        self.connect_timeout = connect_timeout
        self._local = threading.local()
        self._tx = _TxState()
        self._all: list = []
        self._lock = threading.Lock()
        self._id_tables: set[str] | None = None
        self.down: str | None = None
        """Why the server is unreachable (offline state), ``None`` while it answers. Set when a
        statement fails and a fresh connection fails too; cleared by :meth:`reconnect`."""
        self._journal_lock = threading.RLock()
        if migrate:
            self.migrate()

    # ------------------------------------------------------------------ connections
    @property
    def pg(self):
        c = getattr(self._local, "pg", None)
        if c is not None and c.closed:
            c = None
        if c is None:
            c = connect_server(self.conninfo, self.connect_timeout)
            self._local.pg = c
            with self._lock:
                self._all.append(c)
        return c

    @property
    def conn(self) -> _ConnAdapter:
        return _ConnAdapter(self)

    @property
    def db(self):
        raise StoreError("sqlite-utils is not available on the office server backend")

    def close(self) -> None:
        super().close()
        self._tx = _TxState()
        if self.local is not None:
            self.local.close()

    # ------------------------------------------------------------------ queries
    @staticmethod
    def _not_local(what: str) -> None:
        """The manual index lives in this PC's own file (``ctx.local``), never on the server: a
        statement or setting of it sent here is a caller's mistake, said at once."""
        if LOCAL_TABLES.search(what) or what.startswith("manuals."):
            raise StoreError(f"the manual index is kept in this PC's file (ctx.local), not on the office "
                             f"server: {what.strip()[:60]}")

    def _begin_pg(self, c, sql: str):
        """Start the server transaction at its first statement; returns the connection to use."""
        st = self._tx
        if not st.depth:
            return c
        t = time.perf_counter()
        if not st.pg:
            begin = (f"BEGIN; SELECT pg_advisory_xact_lock({SERVER_TX_LOCK})" if self.locking == "office"
                     else "BEGIN")
            import psycopg
            try:
                c.execute(begin)
            except psycopg.OperationalError:
                # a connection the server dropped while idle (restart, terminated backend): nothing
                # of this transaction ran yet, so it starts again on a fresh connection
                self._local.pg = None
                c = self.pg
                c.execute(begin)
            st.pg = True   # READ COMMITTED: statements after a lock see what its last holder wrote
        elif self.locking == "office" or st.audit:
            return c
        if self.locking == "row" and not st.audit and _AUDIT_TABLE.search(sql):
            st.audit = True  # the chain head is read and written by one transaction at a time
            c.execute(f"SELECT pg_advisory_xact_lock({SERVER_AUDIT_LOCK})")
        elif self.locking == "row":
            return c
        if self.lock_waits is not None:
            self.lock_waits.append(time.perf_counter() - t)
        return c

    def _prepare(self, sql: str, params):
        named = isinstance(params, dict)
        m = re.match(r"\s*DROP\s+TRIGGER\s+(IF\s+EXISTS\s+)?(\w+)\s*;?\s*$", sql, re.I)
        if m:
            t = self.pg.execute("SELECT tgrelid::regclass::text FROM pg_trigger WHERE tgname = %s",
                                (m.group(2).lower(),)).fetchone()
            if t:
                return f"DROP TRIGGER {m.group(1) or ''}{m.group(2)} ON {t[0]}", ()
        if named:
            return pg_sql(sql, True), params
        return pg_sql(sql), tuple(int(v) if isinstance(v, bool) else v for v in params)

    def _run(self, sql: str, params, many: bool = False, journal: bool = False):
        self._not_local(sql)
        journal = journal and not many and not self._tx.depth and self.local is not None
        if self.down is not None:
            if journal:
                return self._journal(sql, params)
            raise ServerUnavailable(f"office server unreachable ({self.down})")
        try:
            return self._run_once(sql, params, many)
        except ServerUnavailable as e:
            if self._tx.depth:
                raise            # the transaction is gone with its connection: the caller sees it
            if self._fresh_connection_works():
                # a stale connection (server restarted, backend terminated): the statement never ran
                if journal or re.match(r"\s*SELECT\b", sql, re.I):
                    return self._run_once(sql, params, many)
                raise            # a write elsewhere: not repeated blindly, the caller decides
            self.down = str(e)
            if journal:
                return self._journal(sql, params)
            raise

    def _fresh_connection_works(self) -> bool:
        old = getattr(self._local, "pg", None)
        if old is not None:
            try:
                old.close()
            except Exception:
                pass
            self._local.pg = None
        try:
            _ = self.pg
            return True
        except (ServerUnavailable, ServerRefused):
            return False

    # ------------------------------------------------------------------ offline journal
    def _journal(self, sql: str, params) -> "_Journaled":
        """A recording write (session row, transcript segment) while the server is away: kept in
        this PC's file, in order, and replayed by :meth:`reconnect` (inserts that are already on
        the server are skipped by their UNIQUE keys, so a replay cut off anywhere can be repeated)."""
        with self._journal_lock:
            if self.down is None:       # reconnected while this write waited for the lock: send it
                return self._run(sql, params, journal=True)
            self.local.execute(JOURNAL_DDL)
            self.local.execute("INSERT INTO offline_journal (sql, params, created_at) VALUES (?, ?, ?)",
                               (sql, json.dumps(params if isinstance(params, dict) else list(params),
                                                ensure_ascii=False), time.time()))
        return _Journaled()

    def journal_size(self) -> int:
        if self.local is None:
            return 0
        self.local.execute(JOURNAL_DDL)
        return self.local.query_one("SELECT COUNT(*) AS n FROM offline_journal")["n"]

    def ping(self) -> None:
        """One round trip; raises :class:`ServerUnavailable` (and enters the offline state) if the
        server does not answer."""
        self.query_one("SELECT 1 AS x")

    def reconnect(self) -> int:
        """Leave the offline state: connect, replay the journal in order, clear :attr:`down`.
        Returns how many journaled writes were sent. Raises :class:`ServerUnavailable` if the
        server is still away (the state and the journal stay as they are)."""
        with self._journal_lock:
            if not self._fresh_connection_works():
                raise ServerUnavailable(f"office server unreachable ({self.down or 'no answer'})")
            sent = 0
            if self.local is not None:
                self.local.execute(JOURNAL_DDL)
                for j in self.local.query("SELECT * FROM offline_journal ORDER BY seq"):
                    sql, params = j["sql"], json.loads(j["params"])
                    if re.match(r"\s*INSERT\b", sql, re.I):
                        sql = re.sub(r"\s+RETURNING\s+id\s*$", "", sql.rstrip().rstrip(";"), flags=re.I)
                        sql += " ON CONFLICT DO NOTHING"
                    self._run_once(sql, params if isinstance(params, dict) else tuple(params))
                    self.local.execute("DELETE FROM offline_journal WHERE seq = ?", (j["seq"],))
                    sent += 1
            self.down = None
            return sent

    def _run_once(self, sql: str, params, many: bool = False):
        import psycopg
        try:
            c = self.pg
            c = self._begin_pg(c, sql)
            if self.locking == "row" and self._tx.depth and not many:
                sql = _for_update(sql)
            cur = c.cursor(row_factory=_row_factory)
            if many:
                q = pg_sql(sql)
                rows = [tuple(int(v) if isinstance(v, bool) else v for v in r) for r in params]
            else:
                q, p = self._prepare(sql, params)
            guard = self._tx.depth > 0 and not re.match(r"\s*SELECT\b", q, re.I)
            if not guard:
                cur.executemany(q, rows) if many else cur.execute(q, p)
                return cur
            # A failed statement must not poison the transaction (SQLite semantics): a savepoint
            # before each write, sent in the same round trip (pipeline); savepoints of the same
            # name stack and all end at COMMIT, so none is released one by one.
            try:
                with c.pipeline():
                    c.execute("SAVEPOINT stmt")
                    cur.executemany(q, rows) if many else cur.execute(q, p)
            except psycopg.Error:
                if not c.closed:
                    c.execute("ROLLBACK TO SAVEPOINT stmt")
                raise
            return cur
        except psycopg.Error as e:
            raise _map_error(e) from e

    def execute(self, sql: str, params: tuple | dict = (), *, journal: bool = False):
        """``journal``: a recording's write that, while the server is away, is kept in this PC's
        file and replayed when it is back (outside a transaction only)."""
        return self._run(sql, params, journal=journal)

    def executemany(self, sql: str, rows):
        return self._run(sql, list(rows), many=True)

    def query(self, sql: str, params: tuple | dict = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in self._run(sql, params).fetchall()]

    def query_one(self, sql: str, params: tuple | dict = ()) -> dict[str, Any] | None:
        r = self._run(sql, params).fetchone()
        return dict(r) if r is not None else None

    def insert(self, table: str, row: dict[str, Any], *, journal: bool = False) -> int:
        self._not_local(table)
        cols = list(row)
        vals = [json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else v for v in row.values()]
        if self._id_tables is None and self.down is None:
            import psycopg
            try:
                self._id_tables = {r[0] for r in self.pg.execute(
                    "SELECT table_name FROM information_schema.columns WHERE column_name = 'id' "
                    "AND table_schema = current_schema()").fetchall()}
            except psycopg.Error as e:
                raise _map_error(e) from e
        ret = " RETURNING id" if self._id_tables is None or table in self._id_tables else ""
        cur = self._run(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}){ret}",
                        tuple(vals), journal=journal)
        return cur.fetchone()[0] if ret else 0

    def get_setting(self, key: str, default: Any = None) -> Any:
        self._not_local(key)
        return super().get_setting(key, default)

    def set_setting(self, key: str, value: Any) -> None:
        self._not_local(key)
        return super().set_setting(key, value)

    @contextmanager
    def transaction(self) -> Iterator["ServerStore"]:
        """One transaction on the server (in ``office`` locking: the office-wide write lock, taken at
        its first statement). Nested calls join the outer one."""
        st = self._tx
        if st.depth:
            st.depth += 1
            try:
                yield self
            finally:
                st.depth -= 1
            return
        st.depth, st.pg, st.audit = 1, False, False
        import psycopg
        try:
            yield self
        except BaseException:
            c = getattr(self._local, "pg", None)
            if st.pg and c is not None and not c.closed:
                try:
                    c.execute("ROLLBACK")
                except psycopg.Error:
                    pass  # a lost connection rolls back on the server by itself
            raise
        else:
            if st.pg:
                try:
                    self.pg.execute("COMMIT")
                except psycopg.Error as e:
                    raise _map_error(e) from e
        finally:
            st.depth, st.pg, st.audit = 0, False, False

    # ------------------------------------------------------------------ schema
    def schema_version(self) -> int:
        c = self.pg
        try:
            c.execute("CREATE TABLE IF NOT EXISTS schema_migrations "
                      "(version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)")
            return c.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0] or 0
        except Exception as e:
            import psycopg
            if isinstance(e, psycopg.Error):
                raise _map_error(e) from e
            raise

    def migrate(self) -> list[int]:
        """Apply missing migrations, each in one transaction, under a lock (several PCs may start at once)."""
        import psycopg
        applied: list[int] = []
        self.schema_version()
        c = self.pg
        for version, name, sql in sqlite.migrations():
            try:
                with c.transaction():
                    c.execute("SELECT pg_advisory_xact_lock(%s)", (SERVER_MIGRATE_LOCK,))
                    if c.execute("SELECT 1 FROM schema_migrations WHERE version = %s", (version,)).fetchone():
                        continue
                    c.execute(pg_script(sql).encode("utf-8"))
                    c.execute("INSERT INTO schema_migrations VALUES (%s, %s, %s)", (version, name, time.time()))
            except psycopg.Error as e:
                if isinstance(_map_error(e), ServerUnavailable):
                    raise _map_error(e) from e
                raise StoreError(f"migration {version:04d}_{name} failed on the office server: {e}") from e
            applied.append(version)
        self._id_tables = None
        return applied

    def integrity_ok(self) -> bool:
        """Server reachable, schema current, the immutability triggers in place."""
        names = {r["tgname"] for r in self.query("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")}
        need = {"audit_log_no_update", "audit_log_no_delete", "record_versions_approved_no_update",
                "record_versions_approved_no_delete"}
        return self.schema_version() == self.latest_version() and need <= names

    def rekey(self, new_key: bytes) -> None:
        raise StoreError("the office server's data is protected by the server (TLS, disk encryption); "
                         "rotate the local key with the office server switched off")


def connect_server(conninfo: str, connect_timeout: float = 10):
    """Open one psycopg connection (autocommit; transactions are explicit) to the office server.
    The host must pass the network guard: libpq connects from C, below Python's audit hook, so the
    address is resolved and checked here first and handed to libpq as ``hostaddr``."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict
    from .. import netguard
    params = conninfo_to_dict(conninfo)
    host = str(params.get("host") or "")
    if host and not host.startswith("/") and "hostaddr" not in params:
        try:
            params["hostaddr"] = netguard.resolve_allowed(host, params.get("port"))
        except netguard.NetworkBlocked:
            raise
        except OSError as e:   # the name does not resolve (DNS or the office network down): offline
            raise ServerUnavailable(f"office server unreachable: cannot resolve {host}: {e}") from e
    params.setdefault("connect_timeout", str(max(1, int(connect_timeout))))
    params.setdefault("application_name", "madoguchi")
    for k, v in (("keepalives", "1"), ("keepalives_idle", "10"), ("keepalives_interval", "5"),
                 ("keepalives_count", "3")):
        params.setdefault(k, v)
    try:
        c = psycopg.connect(autocommit=True, **params)
    except psycopg.Error as e:
        raise _map_error(e) from e
    _register_numeric(c)
    return c


def _register_numeric(conn) -> None:
    """SUM/AVG over integers are NUMERIC in PostgreSQL: return int or float as SQLite does."""
    from psycopg.adapt import Loader

    class NumericLoader(Loader):
        def load(self, data):
            s = bytes(data).decode()
            f = float(s)
            return int(s) if s.lstrip("-").isdigit() else f
    conn.adapters.register_loader("numeric", NumericLoader)

