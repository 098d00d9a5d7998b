"""The audit log: append-only and hash-chained, over the ``audit_log`` table (0001_core.sql).

Each row's ``hash`` is SHA-256 over the previous row's hash and the row's own canonical content
(id, time, actor, action, object, detail), so changing, inserting or removing a row anywhere but
at the very end breaks the chain; triggers in the schema refuse UPDATE and DELETE outright.
The newest hash is also kept in ``settings`` (``audit.head``) so that cutting rows off the end is
noticed too. Details must never hold personal data (no transcript text, no citizen names).
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from .store import Store

GENESIS = "0" * 64
HEAD_KEY = "audit.head"


@dataclass
class AuditEntry:
    id: int
    ts: float
    actor: str
    action: str
    object_type: str
    object_id: str
    detail: dict
    prev_hash: str
    hash: str


def _digest(prev_hash: str, id_: int, ts: float, actor: str, action: str, object_type: str,
            object_id: str, detail: str) -> str:
    body = json.dumps([id_, repr(float(ts)), actor, action, object_type, object_id, detail],
                      ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256((prev_hash + "\n" + body).encode("utf-8")).hexdigest()


def append(store: Store, actor: str, action: str, object_type: str = "", object_id: str | int = "",
           detail: dict[str, Any] | None = None) -> int:
    """Append one entry; joins the caller's transaction (so the entry commits with the change)."""
    detail_s = json.dumps(detail or {}, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    with store.transaction():
        last = store.query_one("SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1")
        prev = last["hash"] if last else GENESIS
        new_id = (last["id"] + 1) if last else 1
        ts = time.time()
        h = _digest(prev, new_id, ts, actor, action, object_type, str(object_id), detail_s)
        store.execute("INSERT INTO audit_log (id, ts, actor, action, object_type, object_id, detail, "
                      "prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      (new_id, ts, actor, action, object_type, str(object_id), detail_s, prev, h))
        store.set_setting(HEAD_KEY, {"id": new_id, "hash": h})
    return new_id


def verify(store: Store) -> tuple[bool, int | None]:
    """Walk the chain. Returns ``(True, None)`` or ``(False, id of the first bad row)``.

    When rows were cut off the end, the first bad id is the one after the last surviving row."""
    prev = GENESIS
    expected_id = None
    last_id = 0
    for r in store.query("SELECT * FROM audit_log ORDER BY id"):
        if expected_id is not None and r["id"] != expected_id:
            return False, expected_id            # a row was removed in the middle
        if r["prev_hash"] != prev:
            return False, r["id"]
        h = _digest(prev, r["id"], r["ts"], r["actor"], r["action"], r["object_type"], r["object_id"],
                    r["detail"])
        if h != r["hash"]:
            return False, r["id"]
        prev = h
        expected_id = r["id"] + 1
        last_id = r["id"]
    head = store.get_setting(HEAD_KEY)
    if head is not None and (head.get("id") != last_id or head.get("hash") != prev):
        if last_id < head.get("id", 0):
            return False, last_id + 1            # rows were cut off the end
        return False, last_id                    # the chain was rewritten after this point
    return True, None


def count(store: Store) -> int:
    """How many entries the log holds."""
    return store.query_one("SELECT COUNT(*) AS n FROM audit_log")["n"]


def has_offline_sign_in(store: Store, username: str, at: float) -> bool:
    """Whether the offline sign-in of ``username`` at ``at`` is in the log already
    (``signin.offline``, see :func:`engine.office.link.sync_offline`)."""
    return store.query_one("SELECT 1 AS x FROM audit_log WHERE action = 'signin.offline' AND actor = ? "
                           "AND detail LIKE ?", (username, f'%"at":{at!r}%')) is not None


def entries(store: Store, object_type: str | None = None, object_id: str | int | None = None,
            limit: int = 1000) -> list[AuditEntry]:
    sql = "SELECT * FROM audit_log"
    cond, params = [], []
    if object_type is not None:
        cond.append("object_type = ?")
        params.append(object_type)
    if object_id is not None:
        cond.append("object_id = ?")
        params.append(str(object_id))
    if cond:
        sql += " WHERE " + " AND ".join(cond)
    sql += " ORDER BY id LIMIT ?"
    params.append(limit)
    out = []
    for r in store.query(sql, tuple(params)):
        r["detail"] = json.loads(r["detail"] or "{}")
        out.append(AuditEntry(**r))
    return out
