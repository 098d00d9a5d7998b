"""Who may do what: the one capability table, read by the engine's checks and the desktop's tabs.

A ward office's four roles:

* ``staff`` (職員, caseworkers): record consultations, write and submit their own records, read
  the manuals. Curve-mirror inspection is road maintenance, not casework: staff do not see the
  ledger (it was shown to them as a tab that then refused them).
* ``supervisor`` (査察指導員 / 係長): everything staff do, approve or return records, read the
  mirror ledger and its exports (the section head signs the ledger off), run retention.
* ``admin`` (管理者, IT): users, office settings, key rotation, retention, crash recovery and the
  mirror ledger — but no consultation record or transcript (要配慮個人情報).
* ``inspector`` (点検員): the mirror ledger (import, confirm, export) and the manuals.

Engine functions call :func:`require` with a capability name, and
the main window shows a tab only if :func:`can` says its capability is the user's.
"""
from __future__ import annotations

from .errors import MadoguchiError

ROLES = ("staff", "supervisor", "admin", "inspector")
ROLE_JA = {"staff": "職員", "supervisor": "査察指導員", "admin": "管理者", "inspector": "点検員"}

EVERYONE = ROLES

CAPABILITIES: dict[str, tuple[str, ...]] = {
    # consultations: record one, write/submit its record, correct its transcript
    "record": ("staff", "supervisor"),
    # read consultation records and transcripts (要配慮個人情報: the welfare roles only)
    "read_records": ("staff", "supervisor"),
    # approve or return a submitted record
    "approve": ("supervisor",),
    # recover a crashed recording (shows no transcript)
    "recover": ("staff", "supervisor", "admin"),
    # read the curve-mirror ledger and export it
    "read_ledger": ("inspector", "admin", "supervisor"),
    # import photos, confirm or override grades, assign 管理番号
    "inspect_mirrors": ("inspector", "admin"),
    # users, office settings, key rotation
    "administer": ("admin",),
    # list users (supervisors see who is on their team)
    "list_users": ("admin", "supervisor"),
    # delete audio past its retention period
    "retention": ("admin", "supervisor"),
    # search the manuals and ask them questions
    "read_manuals": EVERYONE,
    # one's own settings (password, personal preferences)
    "own_settings": EVERYONE,
}


class PermissionDenied(MadoguchiError):
    ja_default = "この操作を行う権限がありません。権限のある職員に依頼してください。"


def roles_for(capability: str) -> tuple[str, ...]:
    """The roles that have ``capability`` (a ``KeyError`` for a name not in the table)."""
    return CAPABILITIES[capability]


def can(user_or_role, capability: str) -> bool:
    """True if the user (or the role, given as a string) has ``capability``; an inactive user has none."""
    if user_or_role is None:
        return False
    if isinstance(user_or_role, str):
        return user_or_role in roles_for(capability)
    return bool(user_or_role.active) and user_or_role.role in roles_for(capability)


def require_roles(user, roles: tuple[str, ...]):
    """Raise :class:`PermissionDenied` unless ``user`` is active and has one of ``roles``."""
    if user is None:
        raise PermissionDenied("sign in first", ja="サインインしてください。")
    if not user.active:
        raise PermissionDenied(f"user '{user.username}' is deactivated",
                               ja="このアカウントは無効です。管理者に連絡してください。")
    if roles and user.role not in roles:
        raise PermissionDenied(f"user '{user.username}' ({user.role}) may not do this; needs {' or '.join(roles)}",
                               ja=f"この操作には{'・'.join(ROLE_JA.get(r, r) for r in roles)}の権限が必要です。")
    return user


def require(user, capability: str):
    """Raise :class:`PermissionDenied` unless ``user`` has ``capability``; returns the user."""
    return require_roles(user, roles_for(capability))
