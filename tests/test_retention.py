"""Audio is deleted N days after approval: files gone, session marked, audited, database vacuumed."""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine import audit, retention, users
from engine.records import draft as rdraft
from engine.records import template as rtemplate
from engine.records import workflow
from engine.records.model import Segment
from engine.users import PermissionDenied

ROOT = Path(__file__).resolve().parent.parent


def _approved_session(ctx):
    admin = users.add_user(ctx.store, None, "kanri", "管理", "admin", "password-1")
    staff = users.add_user(ctx.store, admin, "tanaka", "田中", "staff", "password-2")
    sup = users.add_user(ctx.store, admin, "sato", "佐藤", "supervisor", "password-3")
    audio = ctx.audio_dir / "s1.wav"
    audio.write_bytes(b"RIFF" + os.urandom(4000))
    sid = ctx.store.insert("sessions", {"uid": "u1", "state": "finalized", "audio_path": str(audio),
                                        "started_at": time.time()})
    segs = [Segment(1, 0, 3, "citizen", "家賃が払えません。")]
    d = rdraft.draft(segs, rtemplate.load("seikatsu_hogo"), ctx.config, use_llm=False)
    rec = workflow.create(ctx.store, staff, d, session_id=sid, title="t")
    rec = workflow.submit(ctx.store, staff, rec.id, rec.revision)
    workflow.approve(ctx.store, sup, rec.id, rec.revision, acknowledge_flags=True)
    return admin, staff, sid, audio


def test_audio_deleted_after_retention_days(ctx):
    admin, staff, sid, audio = _approved_session(ctx)
    assert retention.run(ctx, admin) == []              # approved just now: kept
    assert audio.exists()
    with pytest.raises(PermissionDenied):
        retention.run(ctx, staff, now=time.time() + 31 * 86400)
    done = retention.run(ctx, admin, now=time.time() + 31 * 86400)
    assert [d.session_id for d in done] == [sid]
    assert not audio.exists()
    row = ctx.store.query_one("SELECT audio_deleted_at FROM sessions WHERE id = ?", (sid,))
    assert row["audio_deleted_at"] is not None
    assert any(e.action == "audio.delete" for e in audit.entries(ctx.store))
    assert audit.verify(ctx.store)[0]
    # the transcript/record stays
    assert workflow.list_records(ctx.store, staff)[0].state == "approved"
    assert retention.run(ctx, admin, now=time.time() + 60 * 86400) == []


def test_retention_cli_dry_run(ctx, data_dir):
    _approved_session(ctx)
    ctx.close()
    r = subprocess.run([sys.executable, "-m", "engine.cli", "--data-dir", str(data_dir), "retention", "run",
                        "--dry-run", "--user", "kanri"], capture_output=True, text=True, cwd=ROOT, timeout=120,
                       env=dict(os.environ, MADOGUCHI_PASSWORD="password-1"))
    assert r.returncode == 0, r.stderr
    assert "0 session(s) due" in r.stdout
