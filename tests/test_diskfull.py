"""A disk that fills up while recording: a real ENOSPC from a tiny tmpfs mounted where the audio
(or the whole data folder) lives. The recording stops with a clear error (English + Japanese),
the audio written up to the failure stays readable sample for sample, and every final segment
stays in the store. Needs root for ``mount`` (CI runs as root here); skipped otherwise."""
import os
import shutil
import subprocess

import numpy as np
import pytest

from engine.asr import session as sm
from engine.asr import sessions
from engine.asr.transcribe import Final
from engine.audio import DiskFullError, FileSource, read_audio
from engine.context import open_context
from devkit import crashkit

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mount"), reason="mounting a tmpfs needs root")


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    """The short counter conversation (about 20 s, 640 KB of PCM16)."""
    from devkit.audiogen import Turn, render_dialogue
    conv = render_dialogue([Turn(s, t) for s, t in crashkit.COUNTER_TURNS], seed=11)
    return conv, conv.write(tmp_path_factory.mktemp("speech") / "c.wav")


def mount_tmpfs(path, size: str):
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
                       capture_output=True, text=True)
    if r.returncode != 0:   # a container without CAP_SYS_ADMIN: no real full disk can be made here
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")


def umount(path):
    subprocess.run(["umount", "-l", str(path)], check=False)


def record_until_full(ctx, wav):
    sess = sm.ConsultationSession(ctx, title="容量不足", staff_user="tanaka", consent=True)
    sid = sess.start(FileSource(wav))
    events = list(sess.events(timeout=600))
    return sess, sid, events


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "sealed"])
def test_disk_full_while_recording_keeps_what_was_written(tmp_path, speech, encrypted):
    conv, wav = speech
    ctx = open_context(tmp_path / "data", overrides={"security.encrypt": encrypted})
    audio_dir = ctx.data_dir / "audio"
    mount_tmpfs(audio_dir, "256k")       # room for about 8 s of the 20 s conversation
    try:
        sess, sid, events = record_until_full(ctx, wav)
        end = events[-1]
        assert isinstance(end, sm.Ended), end
        # the recording stopped with a clear error, in English and Japanese
        assert isinstance(sess.error, DiskFullError), repr(sess.error)
        assert "disk" in end.error and "full" in end.error
        assert "ディスクの空き容量" in end.ja and "保存されています" in end.ja
        kept = sess._writer.seconds
        assert 2.0 < kept < conv.seconds - 5.0, kept
        summary = sess.stop(final_pass=False)
        assert summary["state"] == "stopped"
        assert summary["audio_seconds"] == pytest.approx(kept)
        # the audio up to the failure is readable and is the input, sample for sample
        rec = read_audio(summary["audio_path"], key=ctx.store.key)
        assert len(rec) == round(kept * 16000)
        assert np.abs(rec - conv.audio[:len(rec)]).max() < 1e-3
        # every final segment the session reported is in the store, unchanged
        finals = [e for e in events if isinstance(e, Final)]
        assert finals, "no final segment before the disk filled up"
        rows = {r["id"]: r["text"] for r in sessions.segments(ctx.store, sid)}
        assert all(rows.get(f.id) == f.text for f in finals)
        assert all(f.end <= kept + 0.5 for f in finals)
        # the same audio after a crash-style repair (nothing half-written left in the file)
        assert sm.recover(ctx, sid)["audio_seconds"] == pytest.approx(kept)
        assert ctx.store.integrity_ok()
    finally:
        ctx.close()
        umount(audio_dir)


def test_whole_data_folder_full(tmp_path, speech):
    """Database and audio on the same full disk: the session still ends (no hang), the error is
    the disk one, the database stays intact and what was committed stays."""
    conv, wav = speech
    data = tmp_path / "data"
    mount_tmpfs(data, "2m")
    try:
        ctx = open_context(data)
        free = shutil.disk_usage(data).free
        (data / "ballast").write_bytes(b"\0" * max(0, free - 200 * 1024))   # about 200 KB left
        sess, sid, events = record_until_full(ctx, wav)
        assert isinstance(events[-1], sm.Ended)
        assert "ディスクの空き容量" in events[-1].ja
        kept = sess._writer.seconds
        assert 0.5 < kept < conv.seconds - 5.0, kept
        finals = [e for e in events if isinstance(e, Final) and getattr(e, "id", None)]
        # space comes back (IT frees the disk): the session is recovered with all it had
        (data / "ballast").unlink()
        assert ctx.store.integrity_ok()
        assert [u["id"] for u in sm.unfinished_sessions(ctx.store)] in ([], [sid])
        sess.stop(final_pass=False)
        rows = {r["id"]: r["text"] for r in sessions.segments(ctx.store, sid)}
        assert all(rows.get(f.id) == f.text for f in finals)
        rec = read_audio(sess.audio_path)
        assert len(rec) >= round((kept - 1.0) * 16000)
        assert np.abs(rec - conv.audio[:len(rec)]).max() < 1e-3
        ctx.close()
    finally:
        umount(data)


@pytest.mark.slow
def test_consult_view_shows_the_japanese_message_and_stops(qtbot, tmp_path, speech):
    """相談 screen: the disk fills up while recording → the Japanese message (status line and a
    dialog), the recording ends by itself and the draft is saved from what was kept."""
    from engine import users
    from desktop.app import make_app
    from desktop.views.consult import ConsultView
    conv, wav = speech
    make_app()
    ctx = open_context(tmp_path / "data")
    ctx.config.values["llm.enabled"] = False      # the extractive draft: the LLM is not what is tested here
    ctx.config.values["asr.final_systems"] = 1     # one final-pass decode: nor is the vote
    admin = users.add_user(ctx.store, None, "kanri", "管理", "admin", "password-1")
    staff = users.add_user(ctx.store, admin, "tanaka", "田中", "staff", "password-2")
    audio_dir = ctx.data_dir / "audio"
    mount_tmpfs(audio_dir, "256k")
    try:
        v = ConsultView(ctx, staff)
        qtbot.addWidget(v)
        qtbot.waitUntil(lambda: v.ready, timeout=300_000)
        v.consent.setChecked(True)
        made = []
        v.record_ready.connect(made.append)
        assert v.start(FileSource(wav, realtime=True))
        qtbot.waitUntil(lambda: getattr(v, "error_box", None) is not None, timeout=300_000)
        assert "ディスクの空き容量" in v.error_box.text() and "保存されています" in v.error_box.text()
        assert v.error_box.isVisible()
        qtbot.waitUntil(lambda: bool(made), timeout=300_000)           # stopped by itself, draft saved
        assert not v.recording
        qtbot.waitUntil(lambda: not getattr(v, "refining", None), timeout=300_000)   # its final pass, if any
        rec = ctx.store.query_one("SELECT session_id FROM records WHERE id = ?", (made[0],))
        s = ctx.store.query_one("SELECT audio_seconds, state FROM sessions WHERE id = ?", (rec["session_id"],))
        assert 2.0 < s["audio_seconds"] < conv.seconds - 5.0
        assert ctx.store.query_one("SELECT COUNT(*) AS n FROM segments WHERE session_id = ?",
                                   (rec["session_id"],))["n"] >= 1
    finally:
        ctx.close()
        umount(audio_dir)
