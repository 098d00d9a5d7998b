"""The data key: one random 256-bit key per data folder, protected by the operating system.

* Windows: stored with ``keyring`` in the Windows Credential Manager, which encrypts it with
  DPAPI for the signed-in (service) user — a copied disk or data folder alone cannot open it.
* Elsewhere: a key file (``<user config dir>/keys/<data-folder-id>.key``, mode 0600, folder
  0700) readable only by the user the app runs as; override with ``MADOGUCHI_KEY_FILE``.

The key never sits in the data folder, so a stolen backup of the data folder is ciphertext.
The same key encrypts the database (SQLCipher) and the audio files (AES-256-GCM, engine.crypto).
Rotation: :func:`engine.admin.rotate_key` (``madoguchi security rotate-key``). IT recovery: ``export``/``import``
of the key to a file kept offline (docs/security.md).
"""
from __future__ import annotations

import base64
import hashlib
import os
import secrets
import sys
from pathlib import Path

import platformdirs

from .errors import MadoguchiError

SERVICE = "Madoguchi"


class KeyError_(MadoguchiError):
    ja_default = "暗号鍵を読み込めません。システム管理者に連絡してください（鍵の復旧手順）。"


def _folder_id(data_dir: Path) -> str:
    return hashlib.sha256(str(Path(data_dir).resolve()).encode()).hexdigest()[:16]


def key_file(data_dir: Path) -> Path:
    env = os.environ.get("MADOGUCHI_KEY_FILE")
    if env:
        return Path(env)
    return Path(platformdirs.user_config_dir("Madoguchi", appauthor=False)) / "keys" / f"{_folder_id(data_dir)}.key"


def _use_keyring() -> bool:
    return sys.platform == "win32" and not os.environ.get("MADOGUCHI_KEY_FILE")


def load_key(data_dir: Path, create: bool = True) -> bytes:
    if _use_keyring():
        import keyring
        v = keyring.get_password(SERVICE, _folder_id(data_dir))
        if v is None:
            if not create:
                raise KeyError_(f"no data key for {data_dir} in the Windows Credential Manager")
            v = base64.b64encode(secrets.token_bytes(32)).decode()
            keyring.set_password(SERVICE, _folder_id(data_dir), v)
        return base64.b64decode(v)
    kf = key_file(data_dir)
    if kf.is_file():
        raw = kf.read_bytes().strip()
        try:
            key = base64.b64decode(raw, validate=True)
        except ValueError:
            key = b""
        if len(key) != 32:
            raise KeyError_(f"key file {kf} is damaged (expected a base64 256-bit key)")
        return key
    if not create:
        raise KeyError_(f"no data key file {kf}")
    return store_key(data_dir, secrets.token_bytes(32))


def store_key(data_dir: Path, key: bytes) -> bytes:
    if _use_keyring():
        import keyring
        keyring.set_password(SERVICE, _folder_id(data_dir), base64.b64encode(key).decode())
        return key
    kf = key_file(data_dir)
    kf.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.chmod(kf.parent, 0o700)
    except OSError:
        pass
    tmp = kf.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(base64.b64encode(key) + b"\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, kf)
    return key
