"""IT's commands for the office server, as functions: ``init`` creates the database when the user
may, and applies the schema; ``migrate`` applies pending schema migrations and, with a SQLite
file, moves a single-PC store onto the server; ``check`` says whether this PC can work with the
server (reachability, TLS, schema, immutability triggers, audit chain, round-trip time, password
source); ``set_password`` keeps the password in the OS keyring.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .. import audit, netguard
from ..errors import MadoguchiError
from ..store import (KEYRING_SERVICE, LOCAL_TABLES, ServerRefused, ServerStore, ServerUnavailable, Store,
                     connect_server, migrations, server_conninfo)

IMMUTABLE_TRIGGERS = ("audit_log_no_update", "audit_log_no_delete", "record_versions_approved_no_update",
                      "record_versions_approved_no_delete")


class ServerSetupError(MadoguchiError):
    ja_default = "事務所サーバーの設定に失敗しました。システム管理者に連絡してください。"


def office_conninfo(server: str, ca: str = "") -> str:
    """The connection string for the configured office server (``--server``/``office_server`` and the
    office CA); no server configured is a :class:`ServerSetupError`. Also lets netguard allow it."""
    if not server:
        raise ServerSetupError("no office server configured: set office_server (MSI property OFFICESERVER) "
                               "or pass --server", ja="事務所サーバーが設定されていません。")
    netguard.install(server)
    return server_conninfo(server, ca)


def init(server: str, ca: str = "") -> dict[str, Any]:
    """Create the database if it is missing (needs CREATEDB), then apply every migration."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo
    ci = office_conninfo(server, ca)
    created = False
    try:
        connect_server(ci).close()
    except ServerRefused as e:
        if "does not exist" not in str(e) or "database" not in str(e):
            raise
        params = conninfo_to_dict(ci)
        name = params["dbname"]
        maint = connect_server(make_conninfo(**{**params, "dbname": "postgres"}))
        try:
            maint.execute(f'CREATE DATABASE "{name}" ENCODING \'UTF8\' TEMPLATE template0')
            created = True
        except psycopg.Error as e2:
            raise ServerSetupError(f"cannot create database {name}: {e2}") from e2
        finally:
            maint.close()
    st = ServerStore(ci, migrate=False)
    try:
        applied = st.migrate()
    finally:
        st.close()
    return {"created_database": created, "applied": applied, **check(server, ca)}


def migrate(server: str, from_sqlite: Path | None = None, key: bytes | None = None,
            ca: str = "") -> dict[str, Any]:
    st = ServerStore(office_conninfo(server, ca), migrate=False)
    try:
        out: dict[str, Any] = {"applied": st.migrate(), "schema_version": st.schema_version()}
        if from_sqlite is not None:
            src = Store(from_sqlite, key=key)
            try:
                out["imported"] = import_sqlite(src, st)
            finally:
                src.close()
        return out
    finally:
        st.close()


def server_tables(dst: ServerStore) -> list[str]:
    """The server's tables in creation order (= migration order, so foreign keys come first)."""
    return [r["relname"] for r in dst.query(
        "SELECT relname FROM pg_class WHERE relkind = 'r' AND relnamespace = current_schema()::regnamespace "
        "AND relname <> 'schema_migrations' ORDER BY oid")
        if not LOCAL_TABLES.fullmatch(r["relname"])]


def import_sqlite(src: Store, dst: ServerStore, batch: int = 500) -> dict[str, int]:
    """Copy a single-PC SQLite store onto an empty office server, ids and audit chain unchanged,
    in one transaction; the manual index stays in the PC's file. Refused when the server already
    holds records or audit entries (two chains cannot become one without rewriting history)."""
    if src.schema_version() != src.latest_version():
        src.migrate()
    if src.schema_version() != dst.schema_version():
        raise ServerSetupError(f"schema versions differ (SQLite {src.schema_version()}, server {dst.schema_version()})")
    ok, bad = audit.verify(src)
    if not ok:
        raise ServerSetupError(f"the SQLite audit log is broken at entry {bad}; it is not copied",
                               ja="このPCの監査ログが改ざんされています。移行を中止しました。")
    busy = [t for t in ("users", "audit_log", "records", "sessions", "mirror_inspections")
            if dst.query_one(f"SELECT 1 AS x FROM {t} LIMIT 1")]
    if busy:
        raise ServerSetupError(f"the office server already holds data ({', '.join(busy)}); "
                               "a single-PC store can only be moved onto an empty server",
                               ja="事務所サーバーにはすでにデータがあります。空のサーバーにだけ移行できます。")
    import psycopg
    try:
        counts = _copy_tables(src, dst, batch)
    except psycopg.Error as e:
        raise ServerSetupError(f"copy to the office server failed (nothing was kept): {e}") from e
    for t, n in counts.items():
        got = dst.query_one(f"SELECT COUNT(*) AS n FROM {t}")["n"]
        if got != n:
            raise ServerSetupError(f"table {t}: {n} rows in SQLite but {got} on the server after the copy")
    ok, bad = audit.verify(dst)
    if not ok:
        raise ServerSetupError(f"audit chain does not verify on the server after the copy (entry {bad})")
    return counts


def _copy_tables(src: Store, dst: ServerStore, batch: int) -> dict[str, int]:
    """One transaction (the office-wide write lock held): ids kept, identity sequences moved past them."""
    counts: dict[str, int] = {}
    with dst.transaction():
        dst.execute("DELETE FROM settings")
        for t in server_tables(dst):
            cols = [r["name"] for r in src.query(f"PRAGMA table_info({t})")]
            rows = src.conn.execute(f"SELECT {', '.join(cols)} FROM {t}").fetchall()
            quoted = ", ".join('"end"' if c == "end" else c for c in cols)
            sql = f"INSERT INTO {t} ({quoted}) VALUES ({', '.join(['%s'] * len(cols))})"
            cur = dst.pg.cursor()
            for i in range(0, len(rows), batch):
                cur.executemany(sql, [tuple(r) for r in rows[i:i + batch]])
            if "id" in cols:
                dst.pg.execute(f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), "
                               f"GREATEST((SELECT MAX(id) FROM {t}), 1))")
            counts[t] = len(rows)
    return counts


def check(server: str, ca: str = "") -> dict[str, Any]:
    """Can this PC work with the office server? Never raises for an unreachable server: says so.
    ``tls`` says in plain words whether the connection is encrypted and whether the server's
    certificate was verified; ``warnings`` lists what IT should fix (unencrypted, unverified,
    password not in the keyring)."""
    from psycopg.conninfo import conninfo_to_dict
    ci = office_conninfo(server, ca)
    params = conninfo_to_dict(ci)
    warnings: list[str] = []
    out: dict[str, Any] = {"server": netguard.server_host(server), "reachable": False}
    try:
        t = time.perf_counter()
        c = connect_server(ci)
        out["connect_ms"] = round(1000 * (time.perf_counter() - t), 1)
    except (ServerUnavailable, ServerRefused) as e:
        out["error"] = str(e)
        out["ok"] = False
        return out
    try:
        out["reachable"] = True
        out["server_version"] = c.execute("SHOW server_version").fetchone()[0]
        import psycopg
        out["client"] = f"psycopg {psycopg.__version__} ({psycopg.pq.__impl__}, libpq {psycopg.pq.version()})"
        encrypted = bool(c.pgconn.ssl_in_use)
        verified = encrypted and params.get("sslmode") in ("verify-full", "verify-ca")
        out["tls"], out["tls_verified"] = encrypted, verified
        if verified:
            out["tls_detail"] = f"encrypted, certificate verified ({params['sslmode']}, CA {params.get('sslrootcert')})"
        elif encrypted:
            out["tls_detail"] = f"encrypted but NOT verified (sslmode={params.get('sslmode')})"
            warnings.append("the server's certificate is not verified: set server.sslrootcert to the office CA "
                            "certificate (then sslmode=verify-full)")
        else:
            out["tls_detail"] = f"NOT encrypted (sslmode={params.get('sslmode')})"
            warnings.append("the connection to the office server is NOT encrypted: enable ssl on the server and "
                            "set server.sslrootcert")
        t = time.perf_counter()
        for _ in range(20):
            c.execute("SELECT 1").fetchone()
        out["round_trip_ms"] = round(1000 * (time.perf_counter() - t) / 20, 2)
    finally:
        c.close()
    st = ServerStore(ci, migrate=False)
    try:
        out["schema_version"] = st.schema_version()
        out["latest_version"] = max(v for v, _, _ in migrations())
        names = {r["tgname"] for r in st.query("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")}
        out["missing_triggers"] = [n for n in IMMUTABLE_TRIGGERS if n not in names]
        if out["schema_version"]:
            ok, bad = audit.verify(st)
            out["audit_ok"], out["audit_first_bad"] = ok, bad
            out["audit_entries"] = audit.count(st)
    finally:
        st.close()
    out["password_from"] = _password_source(server, params)
    if out["password_from"] == "none":
        warnings.append("no password from the URL, PGPASSWORD or the OS keyring (trust/.pgpass/certificate auth)")
    out["warnings"] = warnings
    out["ok"] = (out["schema_version"] == out["latest_version"] and not out["missing_triggers"]
                 and out.get("audit_ok", False))
    return out


def _password_source(server: str, params: dict) -> str:
    """Where the password in ``params`` came from (see :func:`engine.store.server_conninfo`)."""
    import os
    from psycopg.conninfo import conninfo_to_dict
    if ("://" in server or "=" in server) and "password" in conninfo_to_dict(server):
        return "url"
    if "PGPASSWORD" in os.environ:
        return "PGPASSWORD"
    return "keyring" if "password" in params else "none"


def set_password(server: str, password: str) -> str:
    """Keep the server password in the OS keyring (Windows Credential Manager, Secret Service, or
    the backend keyring's own config file names). No usable keyring: a clear error saying what to
    use instead — the password is never written anywhere else by Madoguchi."""
    import keyring
    from keyring.errors import KeyringError
    from psycopg.conninfo import conninfo_to_dict
    p = conninfo_to_dict(server_conninfo(server))
    name = f"{p.get('user', '')}@{p.get('host', '')}"
    try:
        keyring.set_password(KEYRING_SERVICE, name, password)
    except (KeyringError, RuntimeError) as e:
        raise ServerSetupError(
            f"no usable OS keyring on this PC ({type(e).__name__}: {e}); give the password with PGPASSWORD, "
            f"a ~/.pgpass (%APPDATA%\\postgresql\\pgpass.conf) entry or certificate authentication instead",
            ja="このPCでは資格情報の保管庫（キーリング）が使えません。システム管理者に連絡してください。") from e
    return name
