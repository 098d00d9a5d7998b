"""``madoguchi server init|migrate|check|sync|password``: IT's commands for the office server
(:mod:`engine.office.admin`, :func:`engine.office.link.sync_offline`)."""
from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path

from .. import config
from ..cli_support import print_json
from ..keystore import load_key
from ..store import DB_NAME, KEYRING_SERVICE, ServerStore, Store
from .admin import ServerSetupError, check, init, migrate, office_conninfo, set_password
from .link import sync_offline


def _config(args) -> config.Config:
    return config.load({"data_dir": args.data_dir} if args.data_dir else None)


def _data_key(cfg) -> bytes | None:
    return load_key(cfg.data_dir) if cfg["security.encrypt"] else None


def _server_value(args) -> tuple[str, str]:
    """(office server, office CA certificate) from --server/--sslrootcert or the config."""
    cfg = _config(args)
    return (args.server or cfg["office_server"],
            args.sslrootcert if args.sslrootcert is not None else cfg["server.sslrootcert"])


def cmd_server(args) -> int:
    server, ca = _server_value(args)
    c = args.server_cmd
    if c == "init":
        out = init(server, ca)
    elif c == "migrate":
        src, key = None, None
        if args.from_sqlite is not None:
            cfg = _config(args)
            src = Path(args.from_sqlite) if args.from_sqlite else cfg.data_dir / DB_NAME
            if not src.is_file():
                raise ServerSetupError(f"no SQLite store at {src}")
            key = _data_key(cfg)
        out = migrate(server, src, key, ca)
    elif c == "sync":
        cfg = _config(args)
        local = Store(cfg.data_dir / DB_NAME, key=_data_key(cfg))
        st = ServerStore(office_conninfo(server, ca), local=local)
        try:
            out = sync_offline(local, st)
        finally:
            st.close()
    elif c == "password":
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
