"""Office server mode for IT: ``madoguchi server init|migrate|check|password``.

The server is the one named by the ``office_server`` config key (MSI property ``OFFICESERVER``):
a host (database and user ``madoguchi``, TLS when the server offers it) or a ``postgresql://`` URL.
``init`` creates the database when the user may, and applies the schema; ``migrate`` applies
pending schema migrations and, with ``--from-sqlite``, moves a single-PC store onto the server;
``check`` says whether this PC can work with the server (reachability, TLS, schema, immutability
triggers, audit chain, round-trip time); ``sync`` sends what was recorded while it was unreachable.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from . import audit, netguard
from .errors import MadoguchiError
from .store import (DB_NAME, LOCAL_TABLES, OFFLINE_SYNCED_KEY, ServerRefused, ServerStore, ServerUnavailable, Store, StoreError, connect_server,
                    migrations, offline_pending, server_conninfo)

KEYRING_SERVICE = "Madoguchi office server"
IMMUTABLE_TRIGGERS = ("audit_log_no_update", "audit_log_no_delete", "record_versions_approved_no_update",
                      "record_versions_approved_no_delete")


class ServerSetupError(MadoguchiError):
    ja_default = "事務所サーバーの設定に失敗しました。システム管理者に連絡してください。"


def _conninfo(server: str) -> str:
    if not server:
        raise ServerSetupError("no office server configured: set office_server (MSI property OFFICESERVER) "
                               "or pass --server", ja="事務所サーバーが設定されていません。")
    netguard.install(server)
    return server_conninfo(server)


def init(server: str) -> dict[str, Any]:
    """Create the database if it is missing (needs CREATEDB), then apply every migration."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo
    ci = _conninfo(server)
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
    return {"created_database": created, "applied": applied, **check(server)}


def migrate(server: str, from_sqlite: Path | None = None, key: bytes | None = None) -> dict[str, Any]:
    st = ServerStore(_conninfo(server), migrate=False)
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


def sync_offline(local: Store, dst: ServerStore) -> dict[str, int]:
    """Send the sessions recorded while the server was unreachable (and their segments), each in one
    server transaction. A session already on the server (same ``uid``) is not sent again, so a
    sync cut off anywhere can simply be run again: nothing is lost and nothing is doubled."""
    sent = skipped = segments = 0
    synced = list(local.get_setting(OFFLINE_SYNCED_KEY, []))
    for uid in offline_pending(local):
        sess = local.query_one("SELECT * FROM sessions WHERE uid = ?", (uid,))
        segs = local.query("SELECT * FROM segments WHERE session_id = ? ORDER BY seq", (sess["id"],))
        with dst.transaction():
            if dst.query_one("SELECT id FROM sessions WHERE uid = ?", (uid,)):
                skipped += 1
            else:
                sid = dst.insert("sessions", {k: v for k, v in sess.items() if k != "id"})
                for g in segs:
                    dst.insert("segments", {**{k: v for k, v in g.items() if k != "id"}, "session_id": sid})
                sent += 1
                segments += len(segs)
        synced.append(uid)
        local.set_setting(OFFLINE_SYNCED_KEY, synced)
    return {"sent": sent, "already_there": skipped, "segments": segments}


def check(server: str) -> dict[str, Any]:
    """Can this PC work with the office server? Never raises for an unreachable server: says so."""
    ci = _conninfo(server)
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
        out["tls"] = bool(c.pgconn.ssl_in_use)
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
            out["audit_entries"] = st.query_one("SELECT COUNT(*) AS n FROM audit_log")["n"]
    finally:
        st.close()
    out["ok"] = (out["schema_version"] == out["latest_version"] and not out["missing_triggers"]
                 and out.get("audit_ok", False))
    return out


def set_password(server: str, password: str) -> str:
    """Keep the server password in the OS keyring (Windows Credential Manager, Secret Service)."""
    import keyring
    from psycopg.conninfo import conninfo_to_dict
    p = conninfo_to_dict(server_conninfo(server))
    name = f"{p.get('user', '')}@{p.get('host', '')}"
    keyring.set_password(KEYRING_SERVICE, name, password)
    return name


# ----------------------------------------------------------------------------- CLI

def _server_value(args) -> str:
    if args.server:
        return args.server
    from . import config
    ov = {"data_dir": args.data_dir} if args.data_dir else None
    return config.load(ov)["office_server"]


def cmd_server(args) -> int:
    from .cli import print_json
    server = _server_value(args)
    c = args.server_cmd
    if c == "init":
        out = init(server)
    elif c == "migrate":
        src, key = None, None
        if args.from_sqlite is not None:
            from . import config
            cfg = config.load({"data_dir": args.data_dir} if args.data_dir else None)
            src = Path(args.from_sqlite) if args.from_sqlite else cfg.data_dir / DB_NAME
            if not src.is_file():
                raise ServerSetupError(f"no SQLite store at {src}")
            if cfg["security.encrypt"]:
                from .keystore import load_key
                key = load_key(cfg.data_dir)
        out = migrate(server, src, key)
    elif c == "sync":
        from . import config
        cfg = config.load({"data_dir": args.data_dir} if args.data_dir else None)
        key = None
        if cfg["security.encrypt"]:
            from .keystore import load_key
            key = load_key(cfg.data_dir)
        local = Store(cfg.data_dir / DB_NAME, key=key)
        st = ServerStore(_conninfo(server), local=local)
        try:
            out = sync_offline(local, st)
        finally:
            st.close()
    elif c == "password":
        import getpass
        import os
        pw = os.environ.get("MADOGUCHI_SERVER_PASSWORD") or getpass.getpass("office server password: ")
        out = {"keyring": KEYRING_SERVICE, "name": set_password(server, pw)}
    else:
        out = check(server)
    if args.json:
        print_json(out)
    else:
        for k, v in out.items():
            print(f"{k:18} {v}")
    if c == "check" and not out["ok"]:
        print("error: the office server is not ready (see above)", file=sys.stderr)
        return 2
    return 0


def register(sub) -> None:
    s = sub.add_parser("server", help="office server (PostgreSQL): init, migrate, check, sync, password")
    ss = s.add_subparsers(dest="server_cmd", required=True)
    for name, hlp in (("init", "create the database if missing and apply the schema"),
                      ("migrate", "apply pending schema migrations; --from-sqlite moves a single-PC store"),
                      ("check", "reachability, TLS, schema, immutability triggers, audit chain"),
                      ("sync", "send what was recorded while the server was unreachable"),
                      ("password", "store the server password in the OS keyring")):
        p = ss.add_parser(name, help=hlp)
        p.add_argument("--server", default=None, help="host or postgresql:// URL (default: config office_server)")
        p.add_argument("--json", action="store_true")
        if name == "migrate":
            p.add_argument("--from-sqlite", nargs="?", const="", default=None, metavar="DB",
                           help=f"copy this SQLite store (default: <data>/{DB_NAME}) onto the empty server")
    s.set_defaults(func=cmd_server)
