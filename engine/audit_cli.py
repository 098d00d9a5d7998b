"""CLI: ``madoguchi audit verify`` over :mod:`engine.audit`."""
from __future__ import annotations

from . import audit
from .cli_support import context, print_json


def cmd_audit(args) -> int:
    ctx = context(args)
    ok, bad = audit.verify(ctx.store)
    n = audit.count(ctx.store)
    if args.json:
        print_json({"ok": ok, "first_bad_id": bad, "entries": n})
    else:
        print(f"audit log ok ({n} entries)" if ok else f"audit log TAMPERED: first bad entry {bad}")
    return 0 if ok else 1


def register(sub) -> None:
    a = sub.add_parser("audit", help="verify the hash-chained audit log")
    asub = a.add_subparsers(dest="audit_cmd", required=True)
    p = asub.add_parser("verify")
    p.add_argument("--json", action="store_true")
    a.set_defaults(func=cmd_audit)
