"""The SQLite store (:class:`Store`): schema migrations and SQLCipher encryption at rest.

Embedded default: one SQLite file (``madoguchi.db`` in the data folder) in WAL mode, opened
through sqlite-utils, one connection per thread. Schema changes are numbered SQL files in
``engine/migrations/`` applied in order inside one transaction each and recorded in
``schema_migrations`` — a crash mid-migration leaves the previous version intact.

Callers use :meth:`Store.query`, :meth:`Store.execute`, :meth:`Store.insert` and
:meth:`Store.transaction` with ``?`` parameters (never the raw connection), so that an
office-server backend can stand behind the same methods.
"""
from __future__ import annotations

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

from ..errors import MadoguchiError

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
    def execute(self, sql: str, params: tuple | dict = (), *, journal: bool = False) -> sqlite3.Cursor:
        """``journal`` matters on the office server only (see ``ServerStore.execute``)."""
        return self.conn.execute(sql, params)

    def executemany(self, sql: str, rows) -> sqlite3.Cursor:
        return self.conn.executemany(sql, rows)

    def query(self, sql: str, params: tuple | dict = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute(sql, params).fetchall()]

    def query_one(self, sql: str, params: tuple | dict = ()) -> dict[str, Any] | None:
        r = self.conn.execute(sql, params).fetchone()
        return dict(r) if r is not None else None

    def insert(self, table: str, row: dict[str, Any], *, journal: bool = False) -> int:
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



LOCAL_TABLES = re.compile(r"\b(?:temp\.)?manual_\w+", re.I)
"""The manual search index (FTS5 + trigram + vectors): derived from ``manuals_dir``, it stays in
each PC's own file (``ctx.local``, docs/it.md). The office server's schema leaves out their
triggers, ``server migrate --from-sqlite`` does not copy them, the server store refuses
statements naming them, the offline store allows them."""
