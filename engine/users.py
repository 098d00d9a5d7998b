"""Users, roles and sign-in.

Roles and who may do what: :mod:`engine.roles` (the one capability table). Passwords are stored as
argon2id hashes (argon2-cffi). Failed sign-ins are rate-limited: after ``MAX_FAILURES`` in a
row the account is locked for a time that doubles with every further failure (capped).
Every engine operation that acts for a person takes a :class:`User` and calls
:func:`engine.roles.require` with a capability first.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from . import audit
from .errors import MadoguchiError
from .roles import ROLE_JA, ROLES, PermissionDenied, can, require  # noqa: F401 (ROLE_JA, PermissionDenied: re-exported)
from .store import ServerUnavailable, Store

MAX_FAILURES = 5
LOCK_SECONDS = 60.0
LOCK_MAX_SECONDS = 15 * 60.0
MIN_PASSWORD = 8

_hasher = PasswordHasher()


class UserError(MadoguchiError):
    ja_default = "ユーザー情報に誤りがあります。入力内容を確認してください。"


class SignInError(MadoguchiError):
    ja_default = "ユーザー名またはパスワードが違います。もう一度入力してください。"


class SignInLocked(SignInError):
    ja_default = "サインインの失敗が続いたため、しばらくロックされています。時間をおいてもう一度お試しください。"


@dataclass(frozen=True)
class User:
    id: int
    username: str
    display_name: str
    role: str
    active: bool = True

    @property
    def role_ja(self) -> str:
        return ROLE_JA.get(self.role, self.role)


SYSTEM = User(0, "system", "システム", "admin")


def _row_user(r: dict) -> User:
    return User(r["id"], r["username"], r["display_name"], r["role"], bool(r["active"]))


def _check_password(password: str) -> None:
    if len(password or "") < MIN_PASSWORD:
        raise UserError(f"password must have at least {MIN_PASSWORD} characters",
                        ja=f"パスワードは{MIN_PASSWORD}文字以上にしてください。")


def count(store: Store) -> int:
    return store.query_one("SELECT COUNT(*) AS n FROM users")["n"]


def add_user(store: Store, actor: User | None, username: str, display_name: str, role: str,
             password: str) -> User:
    """Create a user. ``actor`` must be an admin — except for the very first user of an empty
    store, who must be an admin and may be created by nobody (installation bootstrap)."""
    first = count(store) == 0
    if first:
        if role != "admin":
            raise UserError("the first user must be an admin (role 'admin')",
                            ja="最初のユーザーは管理者にしてください。")
    else:
        require(actor, "administer")
    username = (username or "").strip()
    if not username or any(c.isspace() for c in username):
        raise UserError("username must be non-empty without spaces", ja="ユーザー名を空白なしで入力してください。")
    if role not in ROLES:
        raise UserError(f"unknown role '{role}'; choose one of {', '.join(ROLES)}",
                        ja="役割を選んでください（職員・査察指導員・管理者・点検員）。")
    _check_password(password)
    with store.transaction():
        if store.query_one("SELECT id FROM users WHERE username = ?", (username,)):
            raise UserError(f"user '{username}' already exists", ja="そのユーザー名はすでに使われています。")
        uid = store.insert("users", {"username": username, "display_name": display_name or username,
                                     "role": role, "password_hash": _hasher.hash(password),
                                     "created_at": time.time()})
        audit.append(store, actor.username if actor else username, "user.add", "user", username,
                     {"role": role})
    return get_user(store, username)


def get_user(store: Store, username: str) -> User:
    r = store.query_one("SELECT * FROM users WHERE username = ?", (username,))
    if r is None:
        raise UserError(f"no user '{username}'", ja="そのユーザーは登録されていません。")
    return _row_user(r)


def list_users(store: Store, actor: User) -> list[User]:
    require(actor, "list_users")
    return [_row_user(r) for r in store.query("SELECT * FROM users ORDER BY username")]


def sign_in(store: Store, username: str, password: str, now: float | None = None) -> User:
    """Check a password. Raises :class:`SignInError` / :class:`SignInLocked`; audits both outcomes."""
    now = time.time() if now is None else now
    r = store.query_one("SELECT * FROM users WHERE username = ?", (username,))
    if r is None:
        _hasher.hash(password or "x")  # same cost as a real check: do not reveal which names exist
        audit.append(store, username or "?", "signin.fail", "user", username, {"reason": "unknown"})
        raise SignInError("wrong username or password")
    if r["locked_until"] and r["locked_until"] > now:
        audit.append(store, username, "signin.locked", "user", username, {})
        raise SignInLocked(f"too many failed sign-ins; try again in {int(r['locked_until'] - now) + 1} s")
    if not r["active"]:
        raise SignInError(f"user '{username}' is deactivated", ja="このアカウントは無効です。管理者に連絡してください。")
    try:
        _hasher.verify(r["password_hash"], password or "")
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        fails = r["failed_attempts"] + 1
        locked = None
        if fails >= MAX_FAILURES:
            locked = now + min(LOCK_SECONDS * 2 ** (fails - MAX_FAILURES), LOCK_MAX_SECONDS)
        with store.transaction():
            store.execute("UPDATE users SET failed_attempts = ?, locked_until = ? WHERE id = ?",
                          (fails, locked, r["id"]))
            audit.append(store, username, "signin.fail", "user", username, {"failures": fails})
        raise SignInError("wrong username or password") from None
    with store.transaction():
        if r["failed_attempts"] or r["locked_until"]:
            store.execute("UPDATE users SET failed_attempts = 0, locked_until = NULL WHERE id = ?", (r["id"],))
        if _hasher.check_needs_rehash(r["password_hash"]):
            store.execute("UPDATE users SET password_hash = ? WHERE id = ?", (_hasher.hash(password), r["id"]))
        audit.append(store, username, "signin", "user", username, {})
    return _row_user(r)


def set_password(store: Store, actor: User, username: str, new_password: str,
                 old_password: str | None = None) -> None:
    """Admins set anyone's password; a user changes their own with the old password."""
    if actor.username == username and not can(actor, "administer"):
        require(actor, "own_settings")
        sign_in(store, username, old_password or "")
    else:
        require(actor, "administer")
    _check_password(new_password)
    target = get_user(store, username)
    with store.transaction():
        store.execute("UPDATE users SET password_hash = ?, failed_attempts = 0, locked_until = NULL WHERE id = ?",
                      (_hasher.hash(new_password), target.id))
        audit.append(store, actor.username, "user.passwd", "user", username, {})


def set_active(store: Store, actor: User, username: str, active: bool) -> User:
    require(actor, "administer")
    target = get_user(store, username)
    with store.transaction():
        store.execute("UPDATE users SET active = ? WHERE id = ?", (int(active), target.id))
        audit.append(store, actor.username, "user.activate" if active else "user.deactivate", "user", username, {})
    return get_user(store, username)


# ------------------------------------------------------------------ offline sign-in (office server away)
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


def remember_sign_in(local: Store, user: User, password: str, now: float | None = None) -> None:
    """After a successful sign-in on the server: keep an offline verifier for this user on this PC."""
    vs = dict(local.get_setting(OFFLINE_VERIFIERS_KEY, {}))
    if not can(user.role, "record"):
        vs.pop(user.username, None)
    else:
        vs[user.username] = {"id": user.id, "display_name": user.display_name, "role": user.role,
                             "verifier": _hasher.hash(password), "at": time.time() if now is None else now,
                             "failures": 0}
    local.set_setting(OFFLINE_VERIFIERS_KEY, vs)


def offline_sign_in(local: Store, username: str, password: str, now: float | None = None) -> User:
    """Sign in while the office server is unreachable (see the decision above)."""
    now = time.time() if now is None else now
    vs = dict(local.get_setting(OFFLINE_VERIFIERS_KEY, {}))
    v = vs.get(username)
    if v is None or now - v["at"] > OFFLINE_SIGNIN_DAYS * 86400:
        _hasher.hash(password or "x")   # same cost either way
        raise SignInError(f"no offline sign-in for {username!r} on this PC (none within {OFFLINE_SIGNIN_DAYS} days)",
                          ja="サーバーに接続できないため、このPCでサーバーにサインインしたことのある職員だけが"
                             "サインインできます（最後のサインインから7日以内）。")
    if v["failures"] >= OFFLINE_SIGNIN_MAX_FAILURES:
        raise SignInLocked("offline sign-in locked after repeated failures; sign in when the server is back",
                           ja="パスワードの誤りが続いたため、サーバーに接続できるまでこのPCではサインインできません。")
    try:
        _hasher.verify(v["verifier"], password or "")
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


@dataclass(frozen=True)
class CounterSignIn:
    """Who signed in at the counter, and whether it was the offline rule that let them in."""
    user: User
    offline: bool


def needs_first_admin(ctx) -> bool:
    """The app starts with registering the first administrator: no user exists yet. Offline the
    users are on the office server, so never (the sign-in says the server is away instead)."""
    return ctx.online and count(ctx.store) == 0


def sign_in_at_counter(ctx, username: str, password: str) -> CounterSignIn:
    """Sign in on this PC (the desktop's sign-in): on the office server when it answers — and then
    an offline verifier is kept for next time (:func:`remember_sign_in`) — otherwise, or if the
    server goes away during the attempt, by the offline rule (:func:`offline_sign_in`)."""
    if ctx.online:
        try:
            user = sign_in(ctx.store, username, password)
        except ServerUnavailable:                  # gone since the start: the same offline rule
            pass
        else:
            if ctx.link.has_server:
                remember_sign_in(ctx.local, user, password)
            return CounterSignIn(user, offline=False)
    return CounterSignIn(offline_sign_in(ctx.local, username, password), offline=True)


def register_first_admin(store: Store, username: str, display_name: str, password: str) -> User:
    """First run (no user yet): register the first administrator and sign them in."""
    add_user(store, None, username, display_name, "admin", password)
    return sign_in(store, username, password)
