"""The ``sessions`` and ``segments`` tables: every statement against them lives here.

A session row is one recorded consultation (its audio file, state, heartbeat); its segments are
what was said, in order (``seq`` numbers are the evidence ids of the record drafted from it).
Plain functions of a store, no policy: who may read or change a session is decided by the
callers (:mod:`engine.asr.session`, :mod:`engine.consultation`, :mod:`engine.retention`), which
never write SQL against these tables themselves.

States: ``recording`` → ``stopped`` (or ``interrupted`` by a crash) → ``finalized`` (after the
final pass, or when the caller declines it).
"""
from __future__ import annotations

import time

SEGMENT_COLUMNS = "id, seq, start, end, speaker, text, pass, edited, speaker_edited"


def _write(store, sql: str, params) -> None:
    """A write of a recording that may outlive the office server: while the server is away it is
    journaled on this PC and replayed when it is back (``journal=True``; outside a transaction)."""
    store.execute(sql, params, journal=True)


# --------------------------------------------------------------------------- sessions

def create(store, row: dict) -> int:
    """Insert a new session row; its id."""
    return store.insert("sessions", row)


def get(store, session_id: int) -> dict | None:
    return store.query_one("SELECT * FROM sessions WHERE id = ?", (session_id,))


def by_uid(store, uid: str) -> dict | None:
    return store.query_one("SELECT * FROM sessions WHERE uid = ?", (uid,))


def heartbeat(store, session_id: int, audio_seconds: float) -> None:
    _write(store, "UPDATE sessions SET heartbeat_at = ?, audio_seconds = ? WHERE id = ?",
                  (time.time(), audio_seconds, session_id))


def mark_stopped(store, session_id: int, audio_seconds: float, *, recovered: bool = False) -> None:
    """Recording is over (``recovered``: after a crash — keeps an earlier stop time, frees the pid)."""
    if recovered:
        _write(store, "UPDATE sessions SET state = 'stopped', audio_seconds = ?, stopped_at = COALESCE(stopped_at, ?), "
                      "heartbeat_at = NULL, pid = NULL WHERE id = ?", (audio_seconds, time.time(), session_id))
    else:
        _write(store, "UPDATE sessions SET state = 'stopped', stopped_at = ?, audio_seconds = ?, "
                      "heartbeat_at = NULL WHERE id = ?", (time.time(), audio_seconds, session_id))


def mark_finalized(store, session_id: int, *, only_if_stopped: bool = False) -> None:
    """No final pass is (or will be) run on it any more."""
    _write(store, "UPDATE sessions SET state = 'finalized' WHERE id = ?"
                  + (" AND state = 'stopped'" if only_if_stopped else ""), (session_id,))


def mark_audio_deleted(store, session_id: int) -> None:
    _write(store, "UPDATE sessions SET audio_deleted_at = ? WHERE id = ?", (time.time(), session_id))


def toggle_swapped(store, session_id: int) -> None:
    _write(store, "UPDATE sessions SET speakers_swapped = 1 - speakers_swapped WHERE id = ?", (session_id,))


def stopped_by(store, pid: int) -> list[int]:
    """Ids of the stopped sessions process ``pid`` still owns."""
    return [r["id"] for r in store.query("SELECT id FROM sessions WHERE state = 'stopped' AND pid = ?", (pid,))]


def release(store, session_id: int) -> None:
    """No process owns the session any more (crash recovery may offer it)."""
    _write(store, "UPDATE sessions SET pid = NULL WHERE id = ?", (session_id,))


def listing(store) -> list[dict]:
    """Every session, newest first, with its segment count (the sessions list)."""
    return store.query("SELECT s.id, s.uid, s.title, s.case_number, s.state, s.audio_seconds, s.started_at, "
                       "s.stopped_at, s.pid, s.heartbeat_at, "
                       "(SELECT COUNT(*) FROM segments g WHERE g.session_id = s.id) AS segments "
                       "FROM sessions s ORDER BY s.started_at DESC")


def in_states(store, states: tuple[str, ...], *, attributed_with_segments: bool = False) -> list[dict]:
    """Sessions in one of ``states``, oldest first; ``attributed_with_segments``: only those with
    consent, a staff member and at least one kept segment (what crash recovery can draft)."""
    marks = ", ".join("?" for _ in states)
    extra = (" AND s.consent = 1 AND s.staff_user != '' AND EXISTS (SELECT 1 FROM segments g WHERE g.session_id = s.id)"
             if attributed_with_segments else "")
    return store.query(f"SELECT * FROM sessions s WHERE s.state IN ({marks}){extra} ORDER BY s.started_at", states)


def with_audio(store) -> list[dict]:
    """Sessions whose audio file is still kept (``id``, ``audio_path``)."""
    return store.query("SELECT id, audio_path FROM sessions WHERE audio_deleted_at IS NULL AND audio_path != ''")


# --------------------------------------------------------------------------- segments

def add_segment(store, session_id: int, seq: int, start: float, end: float, speaker: str, text: str,
                pass_: str = "live") -> int:
    return store.insert("segments", {"session_id": session_id, "seq": seq, "start": start, "end": end,
                                     "speaker": speaker, "text": text, "pass": pass_, "created_at": time.time()},
                        journal=True)


def segments(store, session_id: int, after_seq: int = 0) -> list[dict]:
    """The session's segments in order (those after ``after_seq`` only, when given)."""
    return store.query(f"SELECT {SEGMENT_COLUMNS} FROM segments WHERE session_id = ? AND seq > ? ORDER BY seq",
                       (session_id, after_seq))


def all_segment_rows(store, session_id: int) -> list[dict]:
    """Whole segment rows (every column), in order: what the final pass merges and sync copies."""
    return store.query("SELECT * FROM segments WHERE session_id = ? ORDER BY seq", (session_id,))


def count_segments(store, session_id: int) -> int:
    return store.query_one("SELECT COUNT(*) AS n FROM segments WHERE session_id = ?", (session_id,))["n"]


def has_segments(store, session_id: int) -> bool:
    return store.query_one("SELECT 1 AS x FROM segments WHERE session_id = ? LIMIT 1", (session_id,)) is not None


def get_segment(store, segment_id: int) -> dict | None:
    return store.query_one("SELECT * FROM segments WHERE id = ?", (segment_id,))


def set_segment_text(store, segment_id: int, text: str) -> None:
    _write(store, "UPDATE segments SET text = ?, edited = 1 WHERE id = ?", (text, segment_id))


def set_segment_speaker(store, segment_id: int, speaker: str) -> None:
    _write(store, "UPDATE segments SET speaker = ?, speaker_edited = 1 WHERE id = ?", (speaker, segment_id))


def swap_segment_speakers(store, session_id: int) -> None:
    _write(store, "UPDATE segments SET speaker = CASE speaker WHEN 'staff' THEN 'citizen' "
                  "WHEN 'citizen' THEN 'staff' ELSE speaker END WHERE session_id = ?", (session_id,))


def replace_segments(store, session_id: int, rows: list[dict], pass_: str = "final") -> None:
    """Replace all segments of the session by ``rows`` (numbered 1…n), in the caller's transaction."""
    now = time.time()
    store.execute("DELETE FROM segments WHERE session_id = ?", (session_id,))
    store.executemany(
        "INSERT INTO segments (session_id, seq, start, end, speaker, text, pass, edited, speaker_edited, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(session_id, i + 1, m["start"], m["end"], m["speaker"], m["text"], pass_, m["edited"], m["speaker_edited"], now)
         for i, m in enumerate(rows)])


def copy_session(src, dst, uid: str) -> int | None:
    """Copy the session ``uid`` and its segments from ``src`` to ``dst`` (in the caller's
    transaction on ``dst``), with no owning process; the number of segments copied, or ``None``
    when ``dst`` already holds that session."""
    if by_uid(dst, uid) is not None:
        return None
    sess = by_uid(src, uid)
    segs = all_segment_rows(src, sess["id"])
    sid = dst.insert("sessions", {**{k: v for k, v in sess.items() if k != "id"}, "pid": None})
    for g in segs:
        dst.insert("segments", {**{k: v for k, v in g.items() if k != "id"}, "session_id": sid})
    return len(segs)
