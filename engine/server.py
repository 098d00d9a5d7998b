"""Office server mode for IT: ``madoguchi server init|migrate|check|sync|password``, and the
desktop's link to the server (:class:`Link`, ``ctx.link``; offline sign-in).

The server is the one named by the ``office_server`` config key (MSI property ``OFFICESERVER``):
a host (database and user ``madoguchi``) or a ``postgresql://`` URL; with ``server.sslrootcert``
(the office CA) TLS is verified (``sslmode=verify-full``), without it TLS is used when offered but
unverified, and ``check`` says so. ``init`` creates the database when the user may, and applies
the schema; ``migrate`` applies pending schema migrations and, with ``--from-sqlite``, moves a
single-PC store onto the server; ``check`` says whether this PC can work with the server
(reachability, TLS, schema, immutability triggers, audit chain, round-trip time, password
source); ``sync`` sends what was recorded while it was unreachable; ``password`` keeps the
password in the OS keyring.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from . import audit, netguard
from .errors import MadoguchiError
from .store import (DB_NAME, KEYRING_SERVICE, LOCAL_TABLES, OFFLINE_SYNCED_KEY, OfflineStore, ServerRefused,
                    ServerStore, ServerUnavailable, SharedStore, Store, connect_server, migrations,
                    offline_pending, server_conninfo)

IMMUTABLE_TRIGGERS = ("audit_log_no_update", "audit_log_no_delete", "record_versions_approved_no_update",
                      "record_versions_approved_no_delete")


class ServerSetupError(MadoguchiError):
    ja_default = "事務所サーバーの設定に失敗しました。システム管理者に連絡してください。"


def _conninfo(server: str, ca: str = "") -> str:
    if not server:
        raise ServerSetupError("no office server configured: set office_server (MSI property OFFICESERVER) "
                               "or pass --server", ja="事務所サーバーが設定されていません。")
    netguard.install(server)
    return server_conninfo(server, ca)


def init(server: str, ca: str = "") -> dict[str, Any]:
    """Create the database if it is missing (needs CREATEDB), then apply every migration."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo
    ci = _conninfo(server, ca)
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
    st = ServerStore(_conninfo(server, ca), migrate=False)
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
                # no process finishes it on the server: the recovery question offers it for drafting
                sid = dst.insert("sessions", {**{k: v for k, v in sess.items() if k != "id"}, "pid": None})
                for g in segs:
                    dst.insert("segments", {**{k: v for k, v in g.items() if k != "id"}, "session_id": sid})
                sent += 1
                segments += len(segs)
        synced.append(uid)
        local.set_setting(OFFLINE_SYNCED_KEY, synced)
    return {"sent": sent, "already_there": skipped, "segments": segments,
            "signins": _send_offline_sign_ins(local, dst)}


def check(server: str, ca: str = "") -> dict[str, Any]:
    """Can this PC work with the office server? Never raises for an unreachable server: says so.
    ``tls`` says in plain words whether the connection is encrypted and whether the server's
    certificate was verified; ``warnings`` lists what IT should fix (unencrypted, unverified,
    password not in the keyring)."""
    from psycopg.conninfo import conninfo_to_dict
    ci = _conninfo(server, ca)
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
            out["audit_entries"] = st.query_one("SELECT COUNT(*) AS n FROM audit_log")["n"]
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


# ----------------------------------------------------------------------------- CLI

def _server_value(args) -> tuple[str, str]:
    """(office server, office CA certificate) from --server/--sslrootcert or the config."""
    from . import config
    cfg = config.load({"data_dir": args.data_dir} if args.data_dir else None)
    return (args.server or cfg["office_server"],
            args.sslrootcert if args.sslrootcert is not None else cfg["server.sslrootcert"])


def cmd_server(args) -> int:
    from .cli import print_json
    server, ca = _server_value(args)
    c = args.server_cmd
    if c == "init":
        out = init(server, ca)
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
        out = migrate(server, src, key, ca)
    elif c == "sync":
        from . import config
        cfg = config.load({"data_dir": args.data_dir} if args.data_dir else None)
        key = None
        if cfg["security.encrypt"]:
            from .keystore import load_key
            key = load_key(cfg.data_dir)
        local = Store(cfg.data_dir / DB_NAME, key=key)
        st = ServerStore(_conninfo(server, ca), local=local)
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
        out = check(server, ca)
    if args.json:
        print_json(out)
    else:
        for k, v in out.items():
            print(f"{k:18} {v}")
    for w in out.get("warnings", []):
        print(f"warning: {w}", file=sys.stderr)
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
        p.add_argument("--sslrootcert", default=None, metavar="PEM",
                       help="office CA certificate: verify the server (default: config server.sslrootcert)")
        if name == "migrate":
            p.add_argument("--from-sqlite", nargs="?", const="", default=None, metavar="DB",
                           help=f"copy this SQLite store (default: <data>/{DB_NAME}) onto the empty server")
    s.set_defaults(func=cmd_server)


# ----------------------------------------------------------------------------- the desktop's link

class LinkStatus(dict):
    """What :meth:`Link.check` found: ``online`` (bool), ``reason`` (why offline), ``sent``
    (sessions sent by this check), ``replayed`` (journaled writes sent), ``pending`` (sessions
    recorded on this PC still waiting for the server), ``changed`` (online/offline switched)."""


class Link:
    """``ctx.link``: this PC's link to the office server, one object for the whole run.

    ``online`` says whether the shared data (``ctx.store``) is on the office server now (always
    true without one); :meth:`check` looks at the server (every few seconds from the desktop, off
    the GUI thread) and switches: online → offline, the backend behind ``ctx.store`` becomes an
    :class:`~engine.store.OfflineStore` on this PC's file, so new recordings go on locally (a
    recording already running keeps its server store, whose segments are journaled locally);
    offline → online, the journal is replayed, the sessions recorded meanwhile and the offline
    sign-ins are sent (once each), and the server store is behind ``ctx.store`` again."""

    def __init__(self, store: SharedStore, local: Store):
        self.store, self.local = store, local
        backend = store.current()
        self._server: ServerStore | None = backend if isinstance(backend, ServerStore) else None
        self.conninfo = backend.conninfo if isinstance(backend, (ServerStore, OfflineStore)) else ""
        self.reason = backend.offline_reason if isinstance(backend, OfflineStore) else ""
        """Why the office server cannot be reached ("" while online)."""
        self._online = not isinstance(backend, OfflineStore)
        self._lock = threading.Lock()

    @property
    def has_server(self) -> bool:
        """An office server is configured (without one there is nothing to watch)."""
        return bool(self.conninfo)

    @property
    def online(self) -> bool:
        return self._online

    def check(self) -> LinkStatus:
        """One look at the office server (see the class); one check at a time."""
        with self._lock:
            if not self.has_server:
                return LinkStatus(online=True, reason="", sent=0, replayed=0, pending=0, changed=False)
            if self.online:
                return self._check_online()
            return self._try_reconnect()

    def _check_online(self) -> LinkStatus:
        st = self._server
        try:
            st.ping()
            out = LinkStatus(online=True, reason="", sent=0, replayed=0, changed=False)
            if offline_pending(self.local) or self.local.get_setting(OFFLINE_SIGNINS_KEY, []):
                out["sent"] = sync_offline(self.local, st)["sent"]   # finished after the reconnect
            out["pending"] = len(offline_pending(self.local))
            return out
        except ServerUnavailable as e:
            st.down = st.down or str(e)
            self.reason = st.down
            self._server = st                # the same server object comes back at reconnect (its journal)
            self._online = False
            self.store.swap(OfflineStore(self.local.path, key=self.local.key, conninfo=self.conninfo,
                                         reason=self.reason))
            return LinkStatus(online=False, reason=self.reason, sent=0, replayed=0,
                              pending=len(offline_pending(self.local)), changed=True)

    def _try_reconnect(self) -> LinkStatus:
        server = self._server
        try:
            if server is None:
                server = ServerStore(self.conninfo, local=self.local)
            replayed = server.reconnect()
            if replayed:
                # a consultation stopped during the outage could not be drafted (the server was away):
                # no process of this PC finishes it now, so the recovery question may offer it
                server.execute("UPDATE sessions SET pid = NULL WHERE state = 'stopped' AND pid = ? AND NOT EXISTS "
                               "(SELECT 1 FROM records r WHERE r.session_id = sessions.id)", (os.getpid(),))
            sent = sync_offline(self.local, server)["sent"]
        except ServerUnavailable as e:
            if server is not None and server.down is None:
                server.down = str(e)
            self._server = server
            self.reason = str(e)
            return LinkStatus(online=False, reason=str(e), sent=0, replayed=0,
                              pending=len(offline_pending(self.local)), changed=False)
        self._server = server
        self.reason = ""
        self.store.swap(server)   # the OfflineStore stays open: a recording started offline still writes to it
        self._online = True
        return LinkStatus(online=True, reason="", sent=sent, replayed=replayed,
                          pending=len(offline_pending(self.local)), changed=True)


def check_link(ctx) -> LinkStatus:
    """``ctx.link.check()`` (see :class:`Link`)."""
    return ctx.link.check()


# ----------------------------------------------------------------------------- offline sign-in
# Decision: staff who record may sign in while the server is away with the password of their last
# successful sign-in *on this PC*. At each server sign-in a fresh argon2 verifier of the password
# (own salt, not the server's hash) and the user's role are kept in this PC's file (encrypted
# with the data key when security.encrypt is on). Offline sign-in: only staff/supervisor (the
# roles that record), only within OFFLINE_SIGNIN_DAYS of that server sign-in, 5 wrong passwords
# lock the cached verifier until the next server sign-in. Every offline sign-in is kept locally
# and appended to the server's audit log (signin.offline, with its time) at the next sync.
# Limit: a user deactivated or a password changed on the server meanwhile still works offline on
# this PC until the next server sign-in or OFFLINE_SIGNIN_DAYS, whichever comes first.

OFFLINE_SIGNIN_DAYS = 7
OFFLINE_SIGNIN_MAX_FAILURES = 5
OFFLINE_VERIFIERS_KEY = "offline.verifiers"
OFFLINE_SIGNINS_KEY = "offline.signins"


def remember_sign_in(local: Store, user, password: str, now: float | None = None) -> None:
    """After a successful sign-in on the server: keep an offline verifier for this user on this PC."""
    from argon2 import PasswordHasher
    from .records.workflow import WRITERS
    vs = dict(local.get_setting(OFFLINE_VERIFIERS_KEY, {}))
    if user.role not in WRITERS:
        vs.pop(user.username, None)
    else:
        vs[user.username] = {"id": user.id, "display_name": user.display_name, "role": user.role,
                             "verifier": PasswordHasher().hash(password), "at": time.time() if now is None else now,
                             "failures": 0}
    local.set_setting(OFFLINE_VERIFIERS_KEY, vs)


def offline_sign_in(local: Store, username: str, password: str, now: float | None = None):
    """Sign in while the office server is unreachable (see the decision above)."""
    from argon2 import PasswordHasher
    from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
    from .users import SignInError, SignInLocked, User
    now = time.time() if now is None else now
    vs = dict(local.get_setting(OFFLINE_VERIFIERS_KEY, {}))
    v = vs.get(username)
    if v is None or now - v["at"] > OFFLINE_SIGNIN_DAYS * 86400:
        PasswordHasher().hash(password or "x")   # same cost either way
        raise SignInError(f"no offline sign-in for {username!r} on this PC (none within {OFFLINE_SIGNIN_DAYS} days)",
                          ja="サーバーに接続できないため、このPCでサーバーにサインインしたことのある職員だけが"
                             "サインインできます（最後のサインインから7日以内）。")
    if v["failures"] >= OFFLINE_SIGNIN_MAX_FAILURES:
        raise SignInLocked("offline sign-in locked after repeated failures; sign in when the server is back",
                           ja="パスワードの誤りが続いたため、サーバーに接続できるまでこのPCではサインインできません。")
    try:
        PasswordHasher().verify(v["verifier"], password or "")
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        vs[username] = {**v, "failures": v["failures"] + 1}
        local.set_setting(OFFLINE_VERIFIERS_KEY, vs)
        raise SignInError("wrong username or password (offline)") from None
    if v["failures"]:
        vs[username] = {**v, "failures": 0}
        local.set_setting(OFFLINE_VERIFIERS_KEY, vs)
    log = list(local.get_setting(OFFLINE_SIGNINS_KEY, []))
    log.append({"username": username, "at": now})
    local.set_setting(OFFLINE_SIGNINS_KEY, log)
    return User(v["id"], username, v["display_name"], v["role"], True)


def _send_offline_sign_ins(local: Store, dst: ServerStore) -> int:
    """The offline sign-ins into the server's audit log, each once (the local list is emptied in
    the same step as the server commit succeeds; a cut-off is detected by the entry's time)."""
    pending = list(local.get_setting(OFFLINE_SIGNINS_KEY, []))
    n = 0
    for e in pending:
        with dst.transaction():
            seen = dst.query_one("SELECT 1 AS x FROM audit_log WHERE action = 'signin.offline' AND actor = ? "
                                 "AND detail LIKE ?", (e["username"], f'%"at":{e["at"]!r}%'))
            if not seen:
                audit.append(dst, e["username"], "signin.offline", "user", e["username"], {"at": e["at"]})
                n += 1
        local.set_setting(OFFLINE_SIGNINS_KEY, pending[pending.index(e) + 1:])
    return n


def doctor_checks(ctx) -> list:
    """Rows for ``madoguchi doctor`` when an office server is configured: reachable, TLS
    (encrypted *and* verified, said plainly otherwise), schema/audit chain, where the password
    comes from."""
    from .doctor import Check
    server = ctx.config["office_server"]
    if not server:
        return []
    try:
        out = check(server, ctx.config["server.sslrootcert"])
    except MadoguchiError as e:
        return [Check("office server", "connection", False, str(e))]
    if not out["reachable"]:
        return [Check("office server", "connection", False,
                      f"{out.get('error', 'unreachable')} — this PC works offline (recording only)")]
    rows = [Check("office server", "connection", True,
                  f"{out['server']} PostgreSQL {out['server_version']}, {out['round_trip_ms']} ms round trip"),
            Check("office server", "TLS", out["tls_verified"], out["tls_detail"]
                  + ("" if out["tls_verified"] else " — set server.sslrootcert to the office CA"), required=False),
            Check("office server", "schema and audit chain", out["ok"],
                  f"schema {out['schema_version']} of {out['latest_version']}, audit chain "
                  f"{'verified' if out.get('audit_ok') else 'NOT verified'}, {out.get('audit_entries', 0)} entries"),
            Check("office server", "password", out["password_from"] != "none",
                  f"from {out['password_from']}", required=False)]
    return rows
