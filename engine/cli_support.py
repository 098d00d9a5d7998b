"""What every ``madoguchi`` subcommand shares: the run's :class:`~engine.context.Context`
(:func:`context`), JSON output (:func:`print_json`) and sign-in (:func:`signed_in`, ``--user`` via
:func:`add_user_arg`, the password from :func:`read_password`).

Commands that act for a person take ``--user NAME``; the password comes from the
``MADOGUCHI_PASSWORD`` environment variable, a line on stdin, or the terminal.
"""
from __future__ import annotations

import getpass
import json
import os
import sys

from . import users
from .context import open_context
from .errors import MadoguchiError


def context(args):
    if getattr(args, "_ctx", None) is None:
        args._ctx = open_context(args.data_dir)
    return args._ctx


def print_json(obj) -> None:
    json.dump(obj, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


class CliInputError(MadoguchiError):
    ja_default = "入力に誤りがあります。"


def read_password(prompt: str = "password: ", env: str = "MADOGUCHI_PASSWORD") -> str:
    if os.environ.get(env):
        return os.environ[env]
    if not sys.stdin.isatty():
        line = sys.stdin.readline()
        if line:
            return line.rstrip("\n")
        raise CliInputError(f"no password given: set {env} or pipe it on stdin", ja="パスワードを入力してください。")
    try:
        return getpass.getpass(prompt)
    except EOFError:
        raise CliInputError(f"no password given: set {env} or type it at the terminal",
                            ja="パスワードを入力してください。") from None


def signed_in(args, ctx):
    if not getattr(args, "user", None):
        raise CliInputError("this command needs --user NAME (password from MADOGUCHI_PASSWORD or the terminal)",
                            ja="ユーザー名を指定してください。")
    return users.sign_in(ctx.store, args.user, read_password())


def add_user_arg(p) -> None:
    p.add_argument("--user", "-u", default=os.environ.get("MADOGUCHI_USER"),
                   help="sign in as this user (password: MADOGUCHI_PASSWORD or prompt)")
