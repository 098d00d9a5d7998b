"""The store: every table Madoguchi keeps, behind one module.

Embedded default: one SQLite file (``madoguchi.db`` in the data folder) in WAL mode, opened
through sqlite-utils, one connection per thread. Schema changes are numbered SQL files in
``engine/migrations/`` applied in order inside one transaction each and recorded in
``schema_migrations`` — a crash mid-migration leaves the previous version intact.

Callers use :meth:`Store.query`, :meth:`Store.execute`, :meth:`Store.insert` and
:meth:`Store.transaction` with ``?`` parameters (never the raw connection), so that an
office-server backend can stand behind the same methods.
"""
from __future__ import annotations

import functools
import json
import os
import re
import sqlite3
import threading
import time
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, Iterator

import sqlite_utils

from .errors import MadoguchiError

DB_NAME = "madoguchi.db"


class StoreError(MadoguchiError):
    ja_default = "データベースを開けません。システム管理者に連絡してください。"


def migrations() -> list[tuple[int, str, str]]:
    out = []
    for entry in resources.files("engine").joinpath("migrations").iterdir():
        m = re.match(r"(\d{4})_(\w+)\.sql$", entry.name)
        if m:
            out.append((int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    return sorted(out)


try:  # SQLCipher (AES-256 page encryption), same DB-API as sqlite3
    import sqlcipher3.dbapi2 as sqlcipher
except ImportError:  # pragma: no cover - a build without encryption support
    sqlcipher = None

DatabaseError: tuple = (sqlite3.DatabaseError,) + ((sqlcipher.DatabaseError,) if sqlcipher else ())
"""Catch this instead of ``sqlite3.DatabaseError``: it covers the encrypted connections too."""


class Store:
    """``key``: a raw 32-byte key → the file is an SQLCipher database (see engine.keystore)."""

    backend = "sqlite"

    def __init__(self, path: Path | str, migrate: bool = True, key: bytes | None = None):
        self.key = key
        if key is not None and sqlcipher is None:
            raise StoreError("database encryption requested but sqlcipher3 is not installed")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        if migrate:
            self.migrate()

    # ------------------------------------------------------------------ connections
    @property
    def conn(self) -> sqlite3.Connection:
        c = getattr(self._local, "conn", None)
        if c is None:
            try:
                if self.key is not None:
                    c = sqlcipher.connect(str(self.path), timeout=30, isolation_level=None, check_same_thread=False)
                    c.execute("PRAGMA cipher_log_level = NONE")  # errors reach the user as StoreError, not stderr noise
                    c.execute(f"PRAGMA key = \"x'{self.key.hex()}'\"")
                    c.row_factory = sqlcipher.Row
                else:
                    c = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
                    c.row_factory = sqlite3.Row
                c.execute("SELECT count(*) FROM sqlite_master").fetchone()  # wrong key / not a DB fails here
                c.execute("PRAGMA journal_mode=WAL")
                c.execute("PRAGMA synchronous=FULL")
                c.execute("PRAGMA foreign_keys=ON")
                c.execute("PRAGMA busy_timeout=30000")
            except DatabaseError as e:
                raise StoreError(f"database {self.path} cannot be opened (wrong key, not a database or damaged): {e}",
                                 ja="データベースを開けません（暗号鍵が違うか、ファイルが壊れています）。"
                                    "システム管理者に連絡してください。") from e
            self._local.conn = c
            with self._lock:
                self._all.append(c)
        return c

    @property
    def db(self) -> sqlite_utils.Database:
        d = getattr(self._local, "db", None)
        if d is None:
            d = sqlite_utils.Database(self.conn)
            self._local.db = d
        return d

    def close(self) -> None:
        with self._lock:
            for c in self._all:
                try:
                    c.close()
                except Exception:
                    pass
            self._all.clear()
        self._local = threading.local()

    # ------------------------------------------------------------------ queries
    def execute(self, sql: str, params: tuple | dict = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def executemany(self, sql: str, rows) -> sqlite3.Cursor:
        return self.conn.executemany(sql, rows)

    def query(self, sql: str, params: tuple | dict = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute(sql, params).fetchall()]

    def query_one(self, sql: str, params: tuple | dict = ()) -> dict[str, Any] | None:
        r = self.conn.execute(sql, params).fetchone()
        return dict(r) if r is not None else None

    def insert(self, table: str, row: dict[str, Any]) -> int:
        cols = list(row)
        vals = [json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else v for v in row.values()]
        cur = self.conn.execute(
            f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", vals)
        return cur.lastrowid

    @contextmanager
    def transaction(self) -> Iterator["Store"]:
        """``BEGIN IMMEDIATE`` … ``COMMIT`` (rollback on error). Nested calls join the outer one."""
        c = self.conn
        if c.in_transaction:
            yield self
            return
        c.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            c.execute("ROLLBACK")
            raise
        else:
            c.execute("COMMIT")

    # ------------------------------------------------------------------ schema
    def schema_version(self) -> int:
        self.conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations "
                          "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)")
        r = self.conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        return r[0] or 0

    def migrate(self) -> list[int]:
        applied = []
        current = self.schema_version()
        for version, name, sql in migrations():
            if version <= current:
                continue
            script = (f"BEGIN IMMEDIATE;\n{sql}\n;INSERT INTO schema_migrations VALUES "
                      f"({version}, '{name}', {time.time()});\nCOMMIT;")
            try:
                self.conn.executescript(script)
            except (sqlite3.Error,) + ((sqlcipher.Error,) if sqlcipher else ()) as e:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise StoreError(f"migration {version:04d}_{name} failed: {e}") from e
            applied.append(version)
        return applied

    def latest_version(self) -> int:
        ms = migrations()
        return ms[-1][0] if ms else 0

    def integrity_ok(self) -> bool:
        return self.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    # ------------------------------------------------------------------ settings
    def get_setting(self, key: str, default: Any = None) -> Any:
        r = self.query_one("SELECT value FROM settings WHERE key = ?", (key,))
        return json.loads(r["value"]) if r else default

    def set_setting(self, key: str, value: Any) -> None:
        self.execute("INSERT INTO settings(key, value) VALUES (?, ?) "
                     "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                     (key, json.dumps(value, ensure_ascii=False)))


    def rekey(self, new_key: bytes) -> None:
        """Re-encrypt the database with a new key (key rotation). Other connections are closed first."""
        if self.key is None:
            raise StoreError("the database is not encrypted; nothing to rotate")
        c = self.conn
        with self._lock:
            for other in self._all:
                if other is not c:
                    other.close()
            self._all = [c]
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        c.execute(f"PRAGMA rekey = \"x'{new_key.hex()}'\"")
        self.key = new_key

    @staticmethod
    def encrypt_plain(path: Path, key: bytes) -> None:
        """Turn an existing unencrypted database into an encrypted one (in place, atomically)."""
        tmp = path.with_name(path.name + ".encrypting")
        tmp.unlink(missing_ok=True)
        c = sqlcipher.connect(str(path), isolation_level=None)
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        c.execute(f"ATTACH DATABASE '{str(tmp).replace(chr(39), chr(39) * 2)}' AS enc KEY \"x'{key.hex()}'\"")
        c.execute("SELECT sqlcipher_export('enc')")
        v = c.execute("PRAGMA user_version").fetchone()[0]
        c.execute(f"PRAGMA enc.user_version = {int(v)}")
        c.execute("DETACH DATABASE enc")
        c.close()
        for suffix in ("-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        os.replace(tmp, path)


def is_plain_sqlite(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(16) == b"SQLite format 3\x00"


def open_store(data_dir: Path | str, key: bytes | None = None, server: str = "", offline: bool = True,
               sslrootcert: str = "") -> Store:
    """The SQLite file in ``data_dir``; with ``server`` (the ``office_server`` config key) the office
    PostgreSQL server, the SQLite file staying beside it for the PC-local manual index.

    Server unreachable (and ``offline``): an :class:`OfflineStore` on the local file, in which
    recording and transcription go on; sessions recorded there are sent to the server at the next
    start with the server reachable (or ``madoguchi server sync``), once each (by ``uid``)."""
    path = Path(data_dir) / DB_NAME
    if key is not None and path.is_file() and path.stat().st_size > 0 and is_plain_sqlite(path):
        Store.encrypt_plain(path, key)
    if not server:
        return Store(path, key=key)
    ci = server_conninfo(server, sslrootcert)
    local = Store(path, key=key)
    try:
        st = ServerStore(ci, local=local)
    except ServerUnavailable as e:
        local.close()
        if not offline:
            raise
        return OfflineStore(path, key=key, conninfo=ci, reason=str(e))
    except BaseException:
        local.close()
        raise
    try:
        if offline_pending(st.local):
            from .server import sync_offline
            sync_offline(st.local, st)
    except ServerUnavailable:
        pass  # gone again: the queue waits for the next start or `madoguchi server sync`
    return st


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


# ====================================================================== office server (PostgreSQL)
# The same public API over psycopg 3. Everything dialect-specific is in this section:
#   * SQL the callers write for SQLite is translated once per statement text (:func:`pg_sql`),
#   * migration scripts are translated once per file (:func:`pg_script`): types, identity keys,
#     RAISE(ABORT) triggers → PL/pgSQL triggers; FTS5 tables stay in the local SQLite file,
#   * errors come out as subclasses of the sqlite3 exceptions, so every ``except DatabaseError``
#     (and every test that expects ``sqlite3.DatabaseError``) keeps working unchanged.
# Concurrency (ServerStore.locking): inside a transaction a primary-key read locks its row and the
# audit-chain head is taken under an advisory lock, so optimistic revision checks and the hash
# chain hold under concurrent writers; ``office`` mode instead takes one office-wide lock per
# transaction, exactly SQLite's ``BEGIN IMMEDIATE``.

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


LOCAL_TABLES = re.compile(r"\b(?:temp\.)?manual_\w+", re.I)
"""Statements naming these tables go to the PC's own SQLite file: the manual search index
(FTS5 + trigram + vectors) is derived from ``manuals_dir`` and stays local (docs/it.md)."""


class ServerDatabaseError(sqlite3.DatabaseError):
    """Any error the office server reported (the psycopg exception is ``__cause__``)."""


class ServerIntegrityError(ServerDatabaseError, sqlite3.IntegrityError):
    """A constraint or an immutability trigger refused the statement on the office server."""


class ServerRefused(StoreError, sqlite3.OperationalError):
    """The office server answered but refused this PC (user, password, database, pg_hba.conf)."""
    ja_default = "事務所のサーバーが接続を拒否しました（ユーザー名・パスワード・データベース名）。システム管理者に連絡してください。"


class ServerUnavailable(StoreError, sqlite3.OperationalError):
    """The office server cannot be reached (offline state)."""
    ja_default = "事務所のサーバーに接続できません。ネットワークを確認してください。録音と文字起こしはこのPCで続けられます。"


def _outside_literals(sql: str, fn) -> str:
    """Apply ``fn`` to the parts of ``sql`` that are not inside '…' or \"…\" literals."""
    out, i, n = [], 0, len(sql)
    while i < n:
        j = min((k for k in (sql.find("'", i), sql.find('"', i)) if k >= 0), default=n)
        out.append(fn(sql[i:j]))
        if j >= n:
            break
        q = sql[j]
        k = j + 1
        while True:
            k = sql.find(q, k)
            if k < 0:
                k = n
                break
            if k + 1 < n and sql[k + 1] == q:
                k += 2
                continue
            break
        out.append(sql[j:k + 1])
        i = k + 1
    return "".join(out)


_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


def _pg_words(part: str, named: bool) -> str:
    part = part.replace("%", "%%")
    part = _NAMED.sub(r"%(\1)s", part) if named else part.replace("?", "%s")
    part = re.sub(r"\bend\b", '"end"', part)             # segments.end: a reserved word in PostgreSQL
    part = re.sub(r"\bIFNULL\(", "COALESCE(", part, flags=re.I)
    part = re.sub(r"\bNOT\s+LIKE\b", "NOT ILIKE", part, flags=re.I)
    part = re.sub(r"(?<!NOT )(?<!I)\bLIKE\b", "ILIKE", part, flags=re.I)  # SQLite's LIKE ignores case
    return part


@functools.lru_cache(maxsize=1024)
def pg_sql(sql: str, named: bool = False) -> str:
    """SQLite-flavoured statement → PostgreSQL (``?``/``:name`` placeholders, ``end``, LIKE, IFNULL,
    ``INSERT OR IGNORE``)."""
    s = sql
    ignore = re.match(r"\s*INSERT\s+OR\s+IGNORE\s+", s, re.I)
    if ignore:
        s = "INSERT " + s[ignore.end():]
    if re.match(r"\s*(INSERT\s+OR\s+REPLACE|REPLACE\s+INTO|PRAGMA)\b", s, re.I):
        raise StoreError(f"statement not supported on the office server: {sql.strip()[:60]}")
    s = _outside_literals(s, lambda p: _pg_words(p, named))
    if ignore:
        s = s.rstrip().rstrip(";") + " ON CONFLICT DO NOTHING"
    return s


_TRIGGER = re.compile(r"CREATE\s+TRIGGER\s+(\w+)\s+(BEFORE|AFTER)\s+(.*?)\s+ON\s+(\w+)\s*"
                      r"(?:WHEN\s+(.*?))?\s*BEGIN\s+(.*?)\s*END\s*;", re.I | re.S)
_RAISE = re.compile(r"SELECT\s+RAISE\(ABORT,\s*'([^']*)'\)\s*;?$", re.I | re.S)
_VIRTUAL = re.compile(r"CREATE\s+VIRTUAL\s+TABLE\s+(\w+)\s+USING\s+\w+\((.*?)\)\s*;", re.I | re.S)
PG_REFUSE_FN = ("CREATE OR REPLACE FUNCTION madoguchi_refuse() RETURNS trigger LANGUAGE plpgsql AS "
                "$fn$ BEGIN RAISE EXCEPTION '%', TG_ARGV[0] USING ERRCODE = 'integrity_constraint_violation'; "
                "END $fn$;\n")


def _pg_trigger(m: re.Match) -> str:
    name, when, event, table, cond, body = m.groups()
    r = _RAISE.match(body.strip())
    if r is None:
        if LOCAL_TABLES.search(table) or LOCAL_TABLES.search(body):
            return ""  # keeps the local FTS index in step; the index is not on the server
        raise StoreError(f"trigger {name} has no PostgreSQL translation")
    msg = r.group(1)
    cond_sql = f" WHEN ({cond.strip()})" if cond else ""
    out = (f"CREATE TRIGGER {name} {when.upper()} {event.strip().upper()} ON {table} FOR EACH ROW{cond_sql} "
           f"EXECUTE FUNCTION madoguchi_refuse('{msg}');")
    if event.strip().upper() == "DELETE" and not cond:  # append-only: TRUNCATE is a delete too
        out += (f"\nCREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} FOR EACH STATEMENT "
                f"EXECUTE FUNCTION madoguchi_refuse('{msg}');")
    return out


def _pg_types(part: str) -> str:
    part = re.sub(r"\bINTEGER\s+PRIMARY\s+KEY\b", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", part,
                  flags=re.I)
    part = re.sub(r"\bINTEGER\b", "BIGINT", part, flags=re.I)     # SQLite integers are 64-bit
    part = re.sub(r"\bREAL\b", "DOUBLE PRECISION", part, flags=re.I)  # timestamps; REAL would be float4
    part = re.sub(r"\bBLOB\b", "BYTEA", part, flags=re.I)
    return re.sub(r"\bend\b", '"end"', part)


def _strip_comments(sql: str) -> str:
    out, i, n, quote = [], 0, len(sql), None
    while i < n:
        ch = sql[i]
        if quote:
            out.append(ch)
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
            out.append(ch)
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j
            continue
        else:
            out.append(ch)
        i += 1
    return "".join(out)


@functools.lru_cache(maxsize=64)
def pg_script(sql: str) -> str:
    """A migration file (SQLite dialect) → the PostgreSQL script that makes the same tables."""
    s = _strip_comments(sql)
    s = _VIRTUAL.sub("", s)
    triggers: list[str] = []

    def keep(m):
        triggers.append(_pg_trigger(m))
        return f"\x00{len(triggers) - 1}\x00"
    s = _TRIGGER.sub(keep, s)
    s = _outside_literals(s, _pg_types)
    s = re.sub(r"\x00(\d+)\x00", lambda m: triggers[int(m.group(1))], s)
    return (PG_REFUSE_FN if any(triggers) else "") + s


class Row(tuple):
    """A result row readable by position and by column name, like ``sqlite3.Row``."""
    __slots__ = ()
    _index: dict

    def __getitem__(self, k):
        if isinstance(k, str):
            return tuple.__getitem__(self, self._index[k])
        return tuple.__getitem__(self, k)

    def keys(self):
        return list(self._index)


def _row_factory(cursor):
    names = [c.name for c in cursor.description or ()]
    cls = type("Row", (Row,), {"__slots__": (), "_index": {n: i for i, n in enumerate(names)}})
    return cls


def _map_error(e: Exception) -> Exception:
    import psycopg
    msg = str(e).strip()
    if isinstance(e, psycopg.OperationalError) and not isinstance(e, psycopg.errors.QueryCanceled):
        if "certificate" in msg.lower():
            # TLS verification failed (server.sslrootcert): a security problem, not an outage
            lines = [ln.strip() for ln in msg.splitlines() if "certificate" in ln.lower()]
            return ServerRefused(f"office server certificate not trusted: {lines[0] if lines else msg}",
                                 ja="事務所サーバーの証明書を確認できません（なりすましの可能性があります）。"
                                    "システム管理者に連絡してください。")
        if "FATAL:" in msg and "terminating connection" not in msg and "shutting down" not in msg:
            # the server answered and refused: wrong user, password, database, pg_hba — not offline
            return ServerRefused(f"office server refused the connection: {msg.splitlines()[-1].strip()}")
        return ServerUnavailable(f"office server unreachable: {msg.splitlines()[0] if msg else e!r}")
    if isinstance(e, psycopg.IntegrityError) or getattr(e, "sqlstate", "") in ("23000", "P0001"):
        return ServerIntegrityError(str(e).strip())
    return ServerDatabaseError(str(e).strip())


JOURNAL_DDL = ("CREATE TABLE IF NOT EXISTS offline_journal (seq INTEGER PRIMARY KEY, sql TEXT NOT NULL, "
               "params TEXT NOT NULL, created_at REAL NOT NULL)")
_JOURNALED = re.compile(r"\s*(?:INSERT\s+INTO\s+segments\b|UPDATE\s+(?:sessions|segments)\b)", re.I)
"""Writes of a recording in progress that may outlive the server: a transcript segment, the
session's heartbeat and its stop. (A new session cannot start on an unreachable server: it starts
in the :class:`OfflineStore` and is sent by uid, see :func:`engine.server.sync_offline`.)"""


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
    local = False
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

    ``local``: this PC's SQLite store, which keeps the manual index (and, in the offline state,
    what is recorded while the server is away). ``conninfo`` is a libpq connection string or URL."""

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
    def _local_store(self) -> Store:
        if self.local is None:
            raise StoreError("this office-server store has no local database for the manual index")
        if self._tx.depth and not self._tx.local:
            self.local.conn.execute("BEGIN IMMEDIATE")
            self._tx.local = True
        return self.local

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

    def _run(self, sql: str, params, many: bool = False):
        if LOCAL_TABLES.search(sql):
            return self._run_once(sql, params, many)
        journal = (not many and not self._tx.depth and self.local is not None and _JOURNALED.match(sql))
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
                return self._run(sql, params)
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
        if LOCAL_TABLES.search(sql):
            st = self._local_store()
            return st.conn.executemany(sql, params) if many else st.conn.execute(sql, params)
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

    def execute(self, sql: str, params: tuple | dict = ()):
        return self._run(sql, params)

    def executemany(self, sql: str, rows):
        return self._run(sql, list(rows), many=True)

    def query(self, sql: str, params: tuple | dict = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in self._run(sql, params).fetchall()]

    def query_one(self, sql: str, params: tuple | dict = ()) -> dict[str, Any] | None:
        r = self._run(sql, params).fetchone()
        return dict(r) if r is not None else None

    def insert(self, table: str, row: dict[str, Any]) -> int:
        if LOCAL_TABLES.search(table):
            self._local_store()
            return self.local.insert(table, row)
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
                        tuple(vals))
        return cur.fetchone()[0] if ret else 0

    def get_setting(self, key: str, default: Any = None) -> Any:
        if key.startswith("manuals.") and self.local is not None:   # state of this PC's own index
            return self._local_store().get_setting(key, default)
        return super().get_setting(key, default)

    def set_setting(self, key: str, value: Any) -> None:
        if key.startswith("manuals.") and self.local is not None:
            return self._local_store().set_setting(key, value)
        return super().set_setting(key, value)

    @contextmanager
    def transaction(self) -> Iterator["ServerStore"]:
        """One transaction on the server (office-wide write lock, taken at its first statement) and,
        if manual-index tables are touched, one on the local file. Nested calls join the outer one."""
        st = self._tx
        if st.depth:
            st.depth += 1
            try:
                yield self
            finally:
                st.depth -= 1
            return
        st.depth, st.pg, st.local, st.audit = 1, False, False, False
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
            if st.local:
                self.local.conn.execute("ROLLBACK")
            raise
        else:
            if st.pg:
                try:
                    self.pg.execute("COMMIT")
                except psycopg.Error as e:
                    if st.local:
                        self.local.conn.execute("ROLLBACK")
                    raise _map_error(e) from e
            if st.local:
                self.local.conn.execute("COMMIT")
        finally:
            st.depth, st.pg, st.local, st.audit = 0, False, False, False

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
        for version, name, sql in migrations():
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
    from . import netguard
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


# ====================================================================== offline state
OFFLINE_TABLES = frozenset({"sessions", "segments", "jobs", "settings", "schema_migrations"})
OFFLINE_SYNCED_KEY = "offline.synced"
_TABLE_REFS = re.compile(r"\b(?:FROM|JOIN|INTO|UPDATE|TABLE)\s+(?:temp\.)?(\w+)", re.I)


def offline_pending(local: Store) -> list[str]:
    """uids of finished sessions in the local file not yet sent to the office server."""
    done = set(local.get_setting(OFFLINE_SYNCED_KEY, []))
    return [r["uid"] for r in local.query("SELECT uid FROM sessions WHERE state <> 'recording' ORDER BY id")
            if r["uid"] not in done]


class OfflineStore(Store):
    """The local SQLite file while the office server cannot be reached. Recording and transcription
    (sessions, segments, jobs) and the manual index work; anything that lives on the server
    (records, users, audit log, mirror ledger) raises :class:`ServerUnavailable` instead of quietly
    reading or writing a second, local copy."""

    backend = "offline"

    def __init__(self, path, key=None, conninfo: str = "", reason: str = ""):
        super().__init__(path, key=key)
        self.conninfo = conninfo
        self.offline_reason = reason
        self.local = self

    def _allowed(self, sql: str) -> None:
        for t in _TABLE_REFS.findall(sql):
            if t.lower() == "set":   # ON CONFLICT … DO UPDATE SET
                continue
            if t.lower() not in OFFLINE_TABLES and not LOCAL_TABLES.fullmatch(t) and not t.lower().startswith("sqlite_"):
                raise ServerUnavailable(f"{t} is kept on the office server, which is unreachable "
                                        f"({self.offline_reason}); recording continues on this PC")

    def execute(self, sql: str, params: tuple | dict = ()):
        self._allowed(sql)
        return super().execute(sql, params)

    def executemany(self, sql: str, rows):
        self._allowed(sql)
        return super().executemany(sql, rows)

    def query(self, sql: str, params: tuple | dict = ()):
        self._allowed(sql)
        return super().query(sql, params)

    def query_one(self, sql: str, params: tuple | dict = ()):
        self._allowed(sql)
        return super().query_one(sql, params)

    def insert(self, table: str, row: dict[str, Any]) -> int:
        self._allowed(f"INTO {table}")
        return super().insert(table, row)
