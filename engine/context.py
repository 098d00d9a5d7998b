"""The open Madoguchi instance: configuration + store + data folders (like Anki's Collection)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import config as config_mod
from . import logs, netguard
from .keystore import load_key
from .office.link import Link, sync_offline
from .store import DB_NAME, SharedStore, Store, encrypt_if_plain, open_store


@dataclass
class Context:
    config: config_mod.Config
    store: SharedStore
    """The shared data: records, users, audit log, sessions, … — on the office server when one is
    configured (this PC's file while it cannot be reached), else in this PC's file. The same
    object for the whole run: :attr:`link` swaps the backend behind it, nothing rebinds it."""
    local: Store
    """This PC's own SQLite file: the manual index, the offline journal, the offline sign-in
    verifiers. Without an office server the shared data is in it too (the same Store)."""
    link: "Link"
    """The link to the office server: ``online``, ``check()`` (see :class:`engine.office.link.Link`)."""
    key: bytes | None = None      # the data key when encryption at rest is on (engine.keystore)

    @property
    def online(self) -> bool:
        """The shared data is reachable (always, without an office server)."""
        return self.link.online

    @property
    def data_dir(self) -> Path:
        return self.config.data_dir

    @property
    def audio_dir(self) -> Path:
        p = self.data_dir / "audio"
        p.mkdir(parents=True, exist_ok=True)
        return p

    def subdir(self, name: str) -> Path:
        p = self.data_dir / name
        p.mkdir(parents=True, exist_ok=True)
        return p

    def close(self) -> None:
        self.store.close()
        self.local.close()


def open_context(data_dir: str | Path | None = None, overrides: dict | None = None,
                 guard_network: bool = True) -> Context:
    ov = dict(overrides or {})
    if data_dir:
        ov["data_dir"] = str(data_dir)
    cfg = config_mod.load(ov)
    if guard_network:
        netguard.install(cfg["office_server"])
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    logs.setup(cfg.data_dir, cfg["log_level"])
    key = None
    if cfg["security.encrypt"]:
        key = load_key(cfg.data_dir)
    path = cfg.data_dir / DB_NAME
    encrypt_if_plain(path, key)
    local = Store(path, key=key)
    try:
        backend = open_store(cfg.data_dir, key=key, server=cfg["office_server"],
                             sslrootcert=cfg["server.sslrootcert"], sync=sync_offline, local=local)
    except BaseException:
        local.close()
        raise
    store = SharedStore(backend)
    return Context(cfg, store, local, Link(store, local), key)
