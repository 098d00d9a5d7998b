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
from .asr import sessions
from .records import workflow
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
    approved = workflow.last_approved_at(ctx.store)
    return [{"session_id": r["id"], "audio_path": r["audio_path"], "approved_at": approved[r["id"]]}
            for r in sorted(sessions.with_audio(ctx.store), key=lambda r: r["id"])
            if r["id"] in approved and approved[r["id"]] <= cutoff]


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
            sessions.mark_audio_deleted(ctx.store, row["session_id"])
            audit.append(ctx.store, user.username, "audio.delete", "session", row["session_id"],
                         {"files": len(files), "reason": f"retention {ctx.config['retention.audio_days']} days"})
        log.info("retention: deleted audio of session %s (%d files)", row["session_id"], len(files))
    if out and not dry_run:
        ctx.store.execute("VACUUM")
    return out
