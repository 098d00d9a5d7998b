"""ConsultationSession: live segments in the store, crash-safe audio, recovery after a real kill -9,
edits kept by the final pass."""
import json
import os
import random
import signal
import subprocess
import sys
import time
import wave

import numpy as np
import pytest

from engine.asr import session as sm
from engine.asr import sessions
from engine.asr.finalpass import merge, run_final_pass
from engine.asr.metrics import cer
from engine.asr.transcribe import Final, Partial
from engine.audio import FileSource, Level, read_audio
from engine import users
from engine.users import PermissionDenied
from devkit.audiogen import Turn, render_dialogue
from devkit.crashkit import ROOT, SESSION_CHILD, user_env

pytestmark = pytest.mark.slow   # whole pipelines / real-time audio / subprocess runs: `make test`, not `make check`


@pytest.fixture(scope="module")
def conv():
    return render_dialogue([Turn("staff", "こんにちは。今日はどのようなご相談でしょうか。"),
                            Turn("citizen", "先月仕事を辞めてしまって、家賃が払えないんです。"),
                            Turn("staff", "わかりました。まず、今お一人で暮らしていらっしゃいますか。")], seed=5)


def test_session_live_then_final_pass_keeps_edits(ctx, conv, tmp_path):
    wav = conv.write(tmp_path / "c.wav")
    sess = sm.ConsultationSession(ctx, title="test", staff_user="u1", consent=True)
    sid = sess.start(FileSource(wav))
    events = list(sess.events(timeout=600))
    assert isinstance(events[-1], sm.Ended) and not events[-1].error
    finals = [e for e in events if isinstance(e, Final)]
    assert any(isinstance(e, Level) for e in events) and any(isinstance(e, Partial) for e in events)
    assert finals and all(f.id for f in finals)
    rows = sessions.segments(ctx.store, sid)
    assert [r["id"] for r in rows] == [f.id for f in finals]
    assert [r["text"] for r in rows] == [f.text for f in finals]
    assert cer(conv.reference, "".join(r["text"] for r in rows)) < 0.35

    summary = sess.stop(final_pass=False)
    assert summary["state"] == "stopped"
    assert summary["audio_seconds"] == pytest.approx(conv.seconds, abs=0.01)
    # the recording is the input, sample for sample (PCM16)
    rec = read_audio(summary["audio_path"])
    assert np.abs(rec - conv.audio).max() < 1e-3
    t = conv.turns[1]
    part = sm.audio_range(ctx.store, sid, t.start, t.end)
    assert len(part) == pytest.approx((t.end - t.start) * 16000, abs=2)
    assert np.abs(part - conv.audio[int(round(t.start * 16000)):][:len(part)]).max() < 1e-3

    # staff edit a text and a speaker, then the final pass runs
    first, second = rows[0], rows[1]
    admin = users.add_user(ctx.store, None, "kanri", "管理", "admin", "password-1")
    staff = users.add_user(ctx.store, admin, "tanaka", "田中", "staff", "password-2")
    other = users.add_user(ctx.store, admin, "suzuki", "鈴木", "staff", "password-3")
    ctx.store.execute("UPDATE sessions SET staff_user = 'tanaka' WHERE id = ?", (sid,))
    for who in (admin, other, None):        # IT, another counter, nobody signed in: refused in the engine
        with pytest.raises(PermissionDenied):
            sm.edit_segment(ctx.store, first["id"], text="書き換え", user=who)
    assert sessions.segments(ctx.store, sid)[0]["text"] == first["text"]
    fixed = "【修正】" + first["text"]      # whatever the first live segment holds, corrected by staff
    sm.edit_segment(ctx.store, first["id"], text=fixed, user=staff)
    sm.edit_segment(ctx.store, second["id"], speaker="unknown", user=staff)
    with pytest.raises(sm.SessionError):
        sm.edit_segment(ctx.store, second["id"], speaker="boss", user=staff)
    n = run_final_pass(ctx, sid)
    after = sessions.segments(ctx.store, sid)
    assert n == len(after)
    assert ctx.store.query_one("SELECT state FROM sessions WHERE id = ?", (sid,))["state"] == "finalized"
    assert [r["text"] for r in after if r["edited"]] == [fixed]
    # not duplicated: no final-pass segment was added over the edited one
    over = [r for r in after if min(r["end"], first["end"]) - max(r["start"], first["start"]) > 0.5 * (r["end"] - r["start"])]
    assert [r["text"] for r in over] == [fixed]
    spoken_by_unknown = [r for r in after if r["speaker"] == "unknown"]
    assert spoken_by_unknown and all(r["start"] < second["end"] and r["end"] > second["start"]
                                     for r in spoken_by_unknown)
    assert [r["seq"] for r in after] == list(range(1, len(after) + 1))
    assert all(r["pass"] == "final" for r in after)
    assert cer(conv.reference, "".join(r["text"] for r in after)) < 0.35


def test_merge_rules():
    live = [{"start": 0.0, "end": 2.0, "text": "edited", "speaker": "staff", "edited": 1, "speaker_edited": 0},
            {"start": 3.0, "end": 5.0, "text": "x", "speaker": "staff", "edited": 0, "speaker_edited": 1}]
    new = [{"start": 0.1, "end": 1.9, "text": "a", "speaker": "citizen", "edited": 0, "speaker_edited": 0},
           {"start": 3.2, "end": 4.8, "text": "b", "speaker": "citizen", "edited": 0, "speaker_edited": 0},
           {"start": 6.0, "end": 7.0, "text": "c", "speaker": "citizen", "edited": 0, "speaker_edited": 0}]
    out = merge(new, live)
    assert [s["text"] for s in out] == ["edited", "b", "c"]
    assert [s["speaker"] for s in out] == ["staff", "staff", "citizen"]


def test_swap_speakers(ctx):
    sid = ctx.store.insert("sessions", {"uid": "u", "started_at": time.time(), "state": "stopped"})
    for i, spk in enumerate(["staff", "citizen", "unknown"]):
        ctx.store.insert("segments", {"session_id": sid, "seq": i + 1, "start": i, "end": i + 1, "speaker": spk,
                                      "text": "t", "created_at": 0})
    admin = users.add_user(ctx.store, None, "kanri", "管理", "admin", "password-1")
    staff = users.add_user(ctx.store, admin, "tanaka", "田中", "staff", "password-2")
    with pytest.raises(PermissionDenied):
        sm.swap_speakers(ctx.store, sid, user=admin)
    sm.swap_speakers(ctx.store, sid, user=staff)
    assert [r["speaker"] for r in sessions.segments(ctx.store, sid)] == ["citizen", "staff", "unknown"]
    # once the record is submitted its transcript is fixed
    ctx.store.insert("records", {"uid": "r", "state": "submitted", "version": 1, "revision": 1, "owner": "tanaka",
                                 "template": "t", "session_id": sid, "created_at": 0, "updated_at": 0})
    with pytest.raises(sm.SessionError, match="fixed"):
        sm.swap_speakers(ctx.store, sid, user=staff)
    assert ctx.store.query_one("SELECT speakers_swapped FROM sessions WHERE id = ?", (sid,))["speakers_swapped"] == 1


def test_kill_9_mid_session_then_recover(tmp_path, conv):
    wav = conv.write(tmp_path / "c.wav")
    data = tmp_path / "data"
    script = tmp_path / "child.py"
    script.write_text(SESSION_CHILD.format(root=str(ROOT), data=str(data), wav=str(wav)))
    p = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    finals, written, sid = {}, 0.0, None
    deadline = time.monotonic() + 300
    kill_after = None
    try:
        for line in p.stdout:
            msg = json.loads(line)
            sid = msg.get("session", sid)
            written = msg.get("level", written)
            if "final" in msg:
                finals[msg["final"]] = msg["text"]
                if len(finals) == 1 and kill_after is None:
                    kill_after = time.monotonic() + random.uniform(0.3, 2.0)
            if kill_after and time.monotonic() >= kill_after or time.monotonic() > deadline:
                break
        os.kill(p.pid, signal.SIGKILL)
        p.wait(10)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == -signal.SIGKILL
    assert finals, "the child produced no final segment before the kill"

    from engine.context import open_context
    ctx = open_context(data)
    try:
        unfinished = sm.unfinished_sessions(ctx.store)
        assert [u["id"] for u in unfinished] == [sid]
        assert unfinished[0]["segments"] >= len(finals)
        info = sm.recover(ctx, sid)
        assert info["state"] == "stopped"
        assert sm.unfinished_sessions(ctx.store) == []
        # at most 1 s of the audio the child had written is lost
        assert info["audio_seconds"] >= written - 1.0, (info["audio_seconds"], written)
        with wave.open(info["audio_path"]) as w:
            assert w.getnframes() / 16000 == pytest.approx(info["audio_seconds"])
        rec = read_audio(info["audio_path"])
        assert np.abs(rec - conv.audio[:len(rec)]).max() < 1e-3
        # every final segment the child reported is in the store, unchanged
        rows = {r["id"]: r["text"] for r in sessions.segments(ctx.store, sid)}
        for fid, text in finals.items():
            assert rows.get(fid) == text
    finally:
        ctx.close()


def test_sessions_cli_list_show_recover(tmp_path):
    """A session left in 'recording' by a dead process is offered and recovered through the CLI."""
    from engine.audio import WavWriter
    from engine.context import open_context
    data = tmp_path / "data"
    ctx = open_context(data)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    wav = ctx.audio_dir / "x.wav"
    w = WavWriter(wav)
    w.write(np.zeros(16000 * 2, np.float32))
    w.sync()
    w._f.write(b"\x00" * 16001)        # written after the last sync, header not updated
    w._f.flush()
    sid = ctx.store.insert("sessions", {"uid": "dead", "state": "recording", "audio_path": str(wav),
                                        "started_at": time.time() - 60, "pid": dead.pid,
                                        "heartbeat_at": time.time() - 1})
    ctx.store.insert("segments", {"session_id": sid, "seq": 1, "start": 0.2, "end": 1.5, "speaker": "staff",
                                  "text": "こんにちは", "created_at": time.time()})
    live = ctx.store.insert("sessions", {"uid": "live", "state": "recording", "started_at": time.time(),
                                         "pid": os.getpid(), "heartbeat_at": time.time()})
    ctx.close()

    env = user_env(data)

    def cli(*args, user="tanaka", ok=True):
        r = subprocess.run([sys.executable, "-m", "engine.cli", "--data-dir", str(data), "sessions", *args,
                            "--user", user], capture_output=True, text=True, cwd=ROOT, timeout=120, env=env)
        assert (r.returncode == 0) == ok, r.stderr
        return r.stdout if ok else r.stderr

    assert "needs staff or supervisor" in cli("show", str(sid), user="kensa", ok=False)   # an inspector reads no transcript

    listed = json.loads(cli("list", "--unfinished", "--json"))
    assert [r["id"] for r in listed] == [sid]          # the live one (this process) is not offered
    rec = json.loads(cli("recover", "--json"))
    assert rec[0]["id"] == sid and rec[0]["state"] == "stopped"
    assert rec[0]["audio_seconds"] == pytest.approx(2.5, abs=0.001)
    shown = json.loads(cli("show", str(sid), "--json"))
    assert [s["text"] for s in shown["segments"]] == ["こんにちは"]
    from engine.context import open_context
    c = open_context(data)         # the live session is still recording: its heartbeat goes on
    c.store.execute("UPDATE sessions SET heartbeat_at = ? WHERE id = ?", (time.time(), live))
    c.close()
    assert json.loads(cli("list", "--unfinished", "--json")) == []
    assert "こんにちは" in cli("show", str(sid))
    assert live != sid
