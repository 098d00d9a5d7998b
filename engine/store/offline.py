"""The offline state: this PC's SQLite file standing in for the office server while it cannot be
reached (recording and transcription only), and what waits to be sent when it is back."""
from __future__ import annotations

import re
from typing import Any

from .pg_dialect import ServerUnavailable
from .sqlite import LOCAL_TABLES, Store

OFFLINE_TABLES = frozenset({"sessions", "segments", "jobs", "settings", "schema_migrations"})
OFFLINE_SYNCED_KEY = "offline.synced"
_TABLE_REFS = re.compile(r"\b(?:FROM|JOIN|INTO|UPDATE|TABLE)\s+(?:temp\.)?(\w+)", re.I)


def offline_pending(local: Store) -> list[str]:
    """uids of finished sessions in the local file not yet sent to the office server."""
    done = set(local.get_setting(OFFLINE_SYNCED_KEY, []))
    return [r["uid"] for r in local.query("SELECT uid FROM sessions WHERE state <> 'recording' ORDER BY id")
            if r["uid"] not in done]


class OfflineStore(Store):
    """The local SQLite file while the office server cannot be reached. Recording and transcription
    (sessions, segments, jobs) and the manual index work; anything that lives on the server
    (records, users, audit log, mirror ledger) raises :class:`ServerUnavailable` instead of quietly
    reading or writing a second, local copy."""

    backend = "offline"

    def __init__(self, path, key=None, conninfo: str = "", reason: str = ""):
        super().__init__(path, key=key)
        self.conninfo = conninfo
        self.offline_reason = reason
        self.local = self

    def _allowed(self, sql: str) -> None:
        for t in _TABLE_REFS.findall(sql):
            if t.lower() == "set":   # ON CONFLICT … DO UPDATE SET
                continue
            if t.lower() not in OFFLINE_TABLES and not LOCAL_TABLES.fullmatch(t) and not t.lower().startswith("sqlite_"):
                raise ServerUnavailable(f"{t} is kept on the office server, which is unreachable "
                                        f"({self.offline_reason}); recording continues on this PC")

    def execute(self, sql: str, params: tuple | dict = (), *, journal: bool = False):
        self._allowed(sql)
        return super().execute(sql, params)

    def executemany(self, sql: str, rows):
        self._allowed(sql)
        return super().executemany(sql, rows)

    def query(self, sql: str, params: tuple | dict = ()):
        self._allowed(sql)
        return super().query(sql, params)

    def query_one(self, sql: str, params: tuple | dict = ()):
        self._allowed(sql)
        return super().query_one(sql, params)

    def insert(self, table: str, row: dict[str, Any], *, journal: bool = False) -> int:
        self._allowed(f"INTO {table}")
        return super().insert(table, row)

