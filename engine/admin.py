"""What an administrator changes on this installation, as engine functions the CLI and the desktop
both call: a setting (:func:`change_setting`, ``madoguchi config set`` and the settings view) and
the data key (:func:`rotate_key`, ``madoguchi security rotate-key``). Each checks the role and is
audited."""
from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from . import audit, keystore
from .config import KEYS, MODEL_KEYS, PERSONAL_KEYS, ConfigError, set_user_value, validate
from .context import Context
from .roles import require
from .users import User


def change_setting(ctx: Context, user: User, name: str, value: Any, path: Path | None = None) -> bool:
    """Change one setting for ``user`` (signed in): the role is checked here, the value validated,
    written to the per-user config file and applied to ``ctx.config``, and the change appended to
    the audit log (``model.change`` for model choices, ``settings.change`` otherwise, with the
    old and new value). Returns False when the value was already set (nothing written or logged)."""
    if name not in KEYS:
        raise ConfigError(f"unknown config key '{name}'")
    require(user, "own_settings" if name in PERSONAL_KEYS else "administer")
    value = validate(name, value)
    old = ctx.config.get(name)
    if old == value:
        return False
    set_user_value(name, value, path)
    ctx.config.values[name] = value
    ctx.config.sources[name] = "user config"
    audit.append(ctx.store, user.username, "model.change" if name in MODEL_KEYS else "settings.change",
                 "setting", name, {"old": old, "new": value})
    return True


def change_settings(ctx: Context, user: User, changes: list[tuple[str, Any]], path: Path | None = None) -> list[str]:
    """:func:`change_setting` for each ``(name, value)`` in turn (the settings screen's 保存);
    returns the names that changed. Stops at the first refused one (those before it stay changed)."""
    return [name for name, value in changes if change_setting(ctx, user, name, value, path)]


def rotate_key(ctx: Context, user: User) -> None:
    """Re-encrypt this PC's database with a new data key (administrators; audited). The new key is
    kept where the old one was (OS keyring or key file) and becomes ``ctx.key``."""
    require(user, "administer")
    if ctx.key is None:
        raise keystore.KeyError_("encryption is off (security.encrypt = false): no key to rotate")
    new = secrets.token_bytes(32)
    ctx.store.rekey(new)
    keystore.store_key(ctx.data_dir, new)
    ctx.key = new
    audit.append(ctx.store, user.username, "security.rotate_key", "database", "", {})
