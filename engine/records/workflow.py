"""Record workflow: versions and states, with optimistic locking and an audit entry per change.

States: 下書き ``draft`` → 提出済 ``submitted`` → 承認済 ``approved`` | 差戻し ``returned`` (comment)
→ 再提出 (``submitted`` again) … Every write takes the caller's ``expected_revision`` and fails
with :class:`ConflictError` when someone else changed the record meanwhile. An approved version is
immutable (schema triggers); a correction is a new version with a reason, which then goes
through submission and approval again while the approved version stays readable.

A supervisor cannot approve a record they own, and cannot approve while flagged statements
(要確認) exist unless they acknowledge having seen every flag (``acknowledge_flags=True``).
"""
from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from .. import audit
from ..errors import MadoguchiError
from ..store import Store
from ..roles import PermissionDenied, can, require
from ..users import User
from .model import Draft

STATE_JA = {"draft": "下書き", "submitted": "提出済", "approved": "承認済", "returned": "差戻し"}


class RecordError(MadoguchiError):
    ja_default = "記録を処理できませんでした。内容を確認してください。"


class ConflictError(RecordError):
    ja_default = "ほかの人がこの記録を更新しました。開き直してから、もう一度操作してください。"


class StateError(RecordError):
    ja_default = "この記録は今の状態ではその操作ができません。"


class FlagsNotAcknowledged(RecordError):
    ja_default = "要確認の記載があります。すべて確認してから承認してください。"


@dataclass
class RecordDraft:
    id: int
    uid: str
    state: str
    version: int
    revision: int
    owner: str
    template: str
    case_number: str
    title: str
    session_id: int | None
    approved_version: int | None
    content: Draft
    version_state: str = ""
    author: str = ""
    reason: str = ""
    comment: str = ""
    resubmitted: bool = False
    submitted_by: str | None = None
    submitted_at: float | None = None
    approver: str | None = None
    approved_at: float | None = None
    flags_ack: list = field(default_factory=list)
    created_at: float = 0.0
    updated_at: float = 0.0

    @property
    def state_ja(self) -> str:
        if self.state == "submitted" and self.resubmitted:
            return "再提出"
        return STATE_JA[self.state]

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "uid": self.uid, "state": self.state, "state_ja": self.state_ja,
                "version": self.version, "revision": self.revision, "owner": self.owner,
                "template": self.template, "case_number": self.case_number, "title": self.title,
                "session_id": self.session_id, "approved_version": self.approved_version,
                "flagged": len(self.content.flagged()), "compliance_flags": len(self.content.flags),
                "updated_at": self.updated_at}

    def to_dict(self) -> dict[str, Any]:
        d = self.summary()
        d.update({"version_state": self.version_state, "author": self.author, "reason": self.reason,
                  "comment": self.comment, "resubmitted": self.resubmitted,
                  "submitted_by": self.submitted_by, "submitted_at": self.submitted_at,
                  "approver": self.approver, "approved_at": self.approved_at, "flags_ack": self.flags_ack,
                  "created_at": self.created_at, "content": self.content.to_dict()})
        return d


def _content_json(content: Draft | dict) -> str:
    d = content.to_dict() if isinstance(content, Draft) else Draft.from_dict(content).to_dict()
    return json.dumps(d, ensure_ascii=False)


def _load(store: Store, record_id: int, version: int | None = None) -> RecordDraft:
    r = store.query_one("SELECT * FROM records WHERE id = ?", (record_id,))
    if r is None:
        raise RecordError(f"no record {record_id}", ja="その記録は見つかりません。")
    v = store.query_one("SELECT * FROM record_versions WHERE record_id = ? AND version = ?",
                        (record_id, version or r["version"]))
    if v is None:
        raise RecordError(f"record {record_id} has no version {version}", ja="その版は見つかりません。")
    return RecordDraft(
        id=r["id"], uid=r["uid"], state=r["state"], version=v["version"], revision=r["revision"],
        owner=r["owner"], template=r["template"], case_number=r["case_number"], title=r["title"],
        session_id=r["session_id"], approved_version=r["approved_version"],
        content=Draft.from_dict(json.loads(v["content"])), version_state=v["state"], author=v["author"],
        reason=v["reason"], comment=v["comment"], resubmitted=bool(v["resubmitted"]),
        submitted_by=v["submitted_by"], submitted_at=v["submitted_at"], approver=v["approver"],
        approved_at=v["approved_at"], flags_ack=json.loads(v["flags_ack"]),
        created_at=r["created_at"], updated_at=r["updated_at"])


def _check_revision(rec: RecordDraft, expected_revision: int | None) -> None:
    if expected_revision is not None and expected_revision != rec.revision:
        raise ConflictError(f"record {rec.id} changed meanwhile (revision {rec.revision}, "
                            f"you had {expected_revision}); reload it and try again")


def _bump(store: Store, rec_id: int, **cols) -> None:
    cols["updated_at"] = time.time()
    sets = ", ".join(f"{k} = ?" for k in cols)
    store.execute(f"UPDATE records SET {sets}, revision = revision + 1 WHERE id = ?", (*cols.values(), rec_id))


# ----------------------------------------------------------------------------- operations

def create(store: Store, user: User, content: Draft, *, session_id: int | None = None,
           case_number: str = "", title: str = "") -> RecordDraft:
    """Save a new draft (下書き, version 1) owned by ``user``."""
    require(user, "record")
    now = time.time()
    with store.transaction():
        rid = store.insert("records", {"uid": uuid.uuid4().hex, "session_id": session_id,
                                       "case_number": case_number, "title": title or content.title,
                                       "template": content.template, "owner": user.username,
                                       "state": "draft", "version": 1, "created_at": now, "updated_at": now})
        store.insert("record_versions", {"record_id": rid, "version": 1, "state": "draft",
                                         "content": _content_json(content), "author": user.username,
                                         "reason": "作成", "created_at": now})
        audit.append(store, user.username, "record.create", "record", rid,
                     {"version": 1, "template": content.template, "method": content.method})
    return _load(store, rid)


def get(store: Store, user: User, record_id: int, version: int | None = None) -> RecordDraft:
    require(user, "read_records")
    return _load(store, record_id, version)


def with_previous(store: Store, user: User, record_id: int) -> tuple[RecordDraft, RecordDraft | None]:
    """A record and the version before it (None for a first version): what a reviewer compares."""
    require(user, "read_records")
    rec = _load(store, record_id)
    return rec, (_load(store, record_id, rec.version - 1) if rec.version > 1 else None)


def list_records(store: Store, user: User, state: str | None = None, owner: str | None = None,
                 limit: int = 200) -> list[RecordDraft]:
    require(user, "read_records")
    sql, params = "SELECT id FROM records", []
    cond = []
    if state:
        cond.append("state = ?")
        params.append(state)
    if owner:
        cond.append("owner = ?")
        params.append(owner)
    if cond:
        sql += " WHERE " + " AND ".join(cond)
    sql += " ORDER BY updated_at DESC LIMIT ?"
    params.append(limit)
    return [_load(store, r["id"]) for r in store.query(sql, tuple(params))]


def versions(store: Store, user: User, record_id: int) -> list[dict[str, Any]]:
    require(user, "read_records")
    return store.query("SELECT version, state, author, reason, comment, resubmitted, submitted_by, "
                       "submitted_at, approver, approved_at, created_at FROM record_versions "
                       "WHERE record_id = ? ORDER BY version", (record_id,))


def save(store: Store, user: User, record_id: int, content: Draft, expected_revision: int | None,
         reason: str = "") -> RecordDraft:
    """Save edited content. In 下書き/差戻し this becomes a new version; on an approved record
    it is a correction (訂正), a new version in 下書き, and needs a ``reason``."""
    require(user, "record")
    with store.transaction():
        rec = _load(store, record_id)
        _check_revision(rec, expected_revision)
        if rec.state == "submitted":
            raise StateError(f"record {record_id} is submitted; it must be returned before it can be edited",
                             ja="提出済の記録は編集できません。差戻しを受けてから編集してください。")
        if rec.owner != user.username and not can(user, "approve"):
            raise PermissionDenied(f"record {record_id} belongs to {rec.owner}",
                                   ja="この記録を編集できるのは作成者と査察指導員だけです。")
        correction = rec.state == "approved"
        if correction and not reason.strip():
            raise RecordError("correcting an approved record needs a reason",
                              ja="承認済の記録を訂正するには、訂正の理由を入力してください。")
        now = time.time()
        new_v = rec.version + 1
        store.insert("record_versions", {"record_id": record_id, "version": new_v, "state": "draft",
                                         "content": _content_json(content), "author": user.username,
                                         "reason": reason or ("訂正" if correction else "編集"),
                                         "created_at": now})
        _bump(store, record_id, version=new_v, state="draft")
        audit.append(store, user.username, "record.correct" if correction else "record.edit", "record",
                     record_id, {"version": new_v})
    return _load(store, record_id)


def submit(store: Store, user: User, record_id: int, expected_revision: int | None) -> RecordDraft:
    """下書き/差戻し → 提出済 (a submission after 差戻し is a 再提出)."""
    require(user, "record")
    with store.transaction():
        rec = _load(store, record_id)
        _check_revision(rec, expected_revision)
        if rec.owner != user.username:
            raise PermissionDenied(f"only the owner ({rec.owner}) submits record {record_id}",
                                   ja="記録を提出できるのは作成者だけです。")
        if rec.state not in ("draft", "returned"):
            raise StateError(f"record {record_id} is {rec.state}; only a draft or returned record can be submitted",
                             ja=f"この記録は「{rec.state_ja}」のため提出できません。")
        resub = rec.state == "returned" or store.query_one(
            "SELECT 1 AS x FROM record_versions WHERE record_id = ? AND state = 'returned'", (record_id,)) is not None
        store.execute("UPDATE record_versions SET state = 'submitted', resubmitted = ?, submitted_by = ?, "
                      "submitted_at = ? WHERE record_id = ? AND version = ?",
                      (int(resub), user.username, time.time(), record_id, rec.version))
        _bump(store, record_id, state="submitted")
        audit.append(store, user.username, "record.resubmit" if resub else "record.submit", "record", record_id,
                     {"version": rec.version})
    return _load(store, record_id)


def approve(store: Store, user: User, record_id: int, expected_revision: int | None,
            acknowledge_flags: bool = False) -> RecordDraft:
    """提出済 → 承認済. Supervisor only, never on their own record. Flagged statements
    (要確認) block approval until the approver acknowledges them all."""
    require(user, "approve")
    with store.transaction():
        rec = _load(store, record_id)
        _check_revision(rec, expected_revision)
        if rec.owner == user.username or rec.author == user.username:
            raise PermissionDenied(f"{user.username} drafted record {record_id} and cannot approve it",
                                   ja="自分が作成した記録は承認できません。別の査察指導員に依頼してください。")
        if rec.state != "submitted":
            raise StateError(f"record {record_id} is {rec.state}; only a submitted record can be approved",
                             ja=f"この記録は「{rec.state_ja}」のため承認できません。")
        flagged = rec.content.flagged()
        if flagged and not acknowledge_flags:
            raise FlagsNotAcknowledged(f"record {record_id} has {len(flagged)} flagged statements (要確認); "
                                       "review them and approve with acknowledge_flags")
        ack = [{"section": sec.key, "text_index": sec.statements.index(st),
                "codes": [f.code for f in st.flags]} for sec, st in flagged]
        ack += [{"draft_flag": f.code, "section": f.section} for f in rec.content.flags]
        store.execute("UPDATE record_versions SET state = 'approved', approver = ?, approved_at = ?, "
                      "flags_ack = ? WHERE record_id = ? AND version = ?",
                      (user.username, time.time(), json.dumps(ack, ensure_ascii=False), record_id, rec.version))
        _bump(store, record_id, state="approved", approved_version=rec.version)
        audit.append(store, user.username, "record.approve", "record", record_id,
                     {"version": rec.version, "flags_acknowledged": len(ack)})
    return _load(store, record_id)


def return_record(store: Store, user: User, record_id: int, expected_revision: int | None,
                  comment: str) -> RecordDraft:
    """提出済 → 差戻し with the supervisor's comment."""
    require(user, "approve")
    if not (comment or "").strip():
        raise RecordError("returning a record needs a comment", ja="差戻しの理由（コメント）を入力してください。")
    with store.transaction():
        rec = _load(store, record_id)
        _check_revision(rec, expected_revision)
        if rec.owner == user.username:
            raise PermissionDenied(f"{user.username} owns record {record_id}",
                                   ja="自分が作成した記録は差し戻せません。")
        if rec.state != "submitted":
            raise StateError(f"record {record_id} is {rec.state}; only a submitted record can be returned",
                             ja=f"この記録は「{rec.state_ja}」のため差し戻せません。")
        store.execute("UPDATE record_versions SET state = 'returned', comment = ?, approver = ? "
                      "WHERE record_id = ? AND version = ?", (comment, user.username, record_id, rec.version))
        _bump(store, record_id, state="returned")
        audit.append(store, user.username, "record.return", "record", record_id, {"version": rec.version})
    return _load(store, record_id)


def approved(store: Store, user: User, record_id: int) -> RecordDraft:
    """The newest approved version (what export prints)."""
    require(user, "read_records")
    r = store.query_one("SELECT approved_version FROM records WHERE id = ?", (record_id,))
    if r is None:
        raise RecordError(f"no record {record_id}", ja="その記録は見つかりません。")
    if not r["approved_version"]:
        raise StateError(f"record {record_id} has no approved version yet",
                         ja="この記録はまだ承認されていません。")
    return _load(store, record_id, r["approved_version"])


# --------------------------------------------------------------------------- by session
# (what other modules ask of the records table: they never query it themselves)

def record_id_for_session(store: Store, session_id: int) -> int | None:
    """The id of the record drafted from ``session_id`` (the first one), if any."""
    r = store.query_one("SELECT id FROM records WHERE session_id = ? ORDER BY id LIMIT 1", (session_id,))
    return r["id"] if r else None


def review_state(store: Store, session_id: int) -> str | None:
    """``submitted`` or ``approved`` when a record of ``session_id`` is under review or approved
    (its transcript is then fixed), else ``None``."""
    r = store.query_one("SELECT state FROM records WHERE session_id = ? AND state IN ('submitted', 'approved') "
                        "LIMIT 1", (session_id,))
    return r["state"] if r else None


def last_approved_at(store: Store) -> dict[int, float]:
    """``{session_id: time its record was last approved}`` for every session with an approved record."""
    rows = store.query("SELECT r.session_id, MAX(v.approved_at) AS approved_at FROM records r "
                       "JOIN record_versions v ON v.record_id = r.id AND v.approved_at IS NOT NULL "
                       "WHERE r.session_id IS NOT NULL GROUP BY r.session_id")
    return {r["session_id"]: r["approved_at"] for r in rows}
