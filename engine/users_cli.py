"""CLI: ``madoguchi users add|list|passwd|deactivate|activate`` over :mod:`engine.users`."""
from __future__ import annotations

import os

from . import users
from .cli_support import add_user_arg, context, print_json, read_password, signed_in


def cmd_users(args) -> int:
    ctx = context(args)
    c = args.users_cmd
    if c == "add":
        actor = None if users.count(ctx.store) == 0 else signed_in(args, ctx)
        pw = read_password(f"password for {args.username}: ", env="MADOGUCHI_NEW_PASSWORD")
        u = users.add_user(ctx.store, actor, args.username, args.name or args.username, args.role, pw)
        print(f"user {u.username} added ({u.role})")
        return 0
    actor = signed_in(args, ctx)
    if c == "list":
        us = users.list_users(ctx.store, actor)
        if args.json:
            print_json([{"username": u.username, "display_name": u.display_name, "role": u.role,
                         "active": u.active} for u in us])
        else:
            for u in us:
                print(f"{u.username:<16} {u.role:<11} {'active' if u.active else 'inactive':<9} {u.display_name}")
        return 0
    if c == "passwd":
        target = args.username or actor.username
        old = os.environ.get("MADOGUCHI_PASSWORD") if target == actor.username else None
        users.set_password(ctx.store, actor, target, read_password("new password: ", env="MADOGUCHI_NEW_PASSWORD"),
                           old_password=old)
        print(f"password of {target} changed")
        return 0
    if c in ("deactivate", "activate"):
        users.set_active(ctx.store, actor, args.username, c == "activate")
        print(f"user {args.username} {c}d")
        return 0
    return 2


def register(sub) -> None:
    u = sub.add_parser("users", help="add, list users, change passwords")
    us = u.add_subparsers(dest="users_cmd", required=True)
    p = us.add_parser("add", help="add a user (password: MADOGUCHI_NEW_PASSWORD or prompt)")
    p.add_argument("username")
    p.add_argument("--role", required=True, choices=users.ROLES)
    p.add_argument("--name", default="", help="display name")
    add_user_arg(p)
    p = us.add_parser("list")
    p.add_argument("--json", action="store_true")
    add_user_arg(p)
    p = us.add_parser("passwd")
    p.add_argument("username", nargs="?")
    add_user_arg(p)
    for name in ("deactivate", "activate"):
        p = us.add_parser(name)
        p.add_argument("username")
        add_user_arg(p)
    u.set_defaults(func=cmd_users)
