"""Retention: consultation audio is deleted a configurable number of days after its record was
approved (config ``retention.audio_days``, default 30). Transcripts stay with the record.
Deletion is real: the files are removed, the session row says when, the deletion is audited and
the database is vacuumed so freed pages do not keep old content."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from . import audit
from .roles import require
from .users import User

log = logging.getLogger(__name__)


@dataclass
class Deletion:
    session_id: int
    files: list[str]
    approved_at: float


def due(ctx, now: float | None = None) -> list[dict]:
    """Sessions whose audio is due for deletion."""
    days = ctx.config["retention.audio_days"]
    cutoff = (now or time.time()) - days * 86400
    return ctx.store.query(
        "SELECT s.id AS session_id, s.audio_path, MAX(v.approved_at) AS approved_at "
        "FROM sessions s JOIN records r ON r.session_id = s.id "
        "JOIN record_versions v ON v.record_id = r.id AND v.approved_at IS NOT NULL "
        "WHERE s.audio_deleted_at IS NULL AND s.audio_path != '' "
        "GROUP BY s.id HAVING MAX(v.approved_at) <= ?", (cutoff,))


def audio_files(ctx, audio_path: str) -> list[Path]:
    p = Path(audio_path)
    if not p.is_absolute():
        p = ctx.data_dir / p
    # the recording and anything written beside it for the same session (e.g. .partial, .enc)
    return [f for f in p.parent.glob(p.name + "*")] if p.parent.is_dir() else []


def run(ctx, user: User, now: float | None = None, dry_run: bool = False) -> list[Deletion]:
    require(user, "retention")
    out = []
    for row in due(ctx, now):
        files = audio_files(ctx, row["audio_path"])
        out.append(Deletion(row["session_id"], [str(f) for f in files], row["approved_at"]))
        if dry_run:
            continue
        for f in files:
            f.unlink(missing_ok=True)
        with ctx.store.transaction():
            ctx.store.execute("UPDATE sessions SET audio_deleted_at = ? WHERE id = ?", (time.time(), row["session_id"]))
            audit.append(ctx.store, user.username, "audio.delete", "session", row["session_id"],
                         {"files": len(files), "reason": f"retention {ctx.config['retention.audio_days']} days"})
        log.info("retention: deleted audio of session %s (%d files)", row["session_id"], len(files))
    if out and not dry_run:
        ctx.store.execute("VACUUM")
    return out
