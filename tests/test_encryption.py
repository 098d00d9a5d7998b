"""Encryption at rest: the database file (SQLCipher) and sealed audio contain no readable
transcript text or audio samples; wrong keys fail clearly; keys rotate; a torn tail is dropped."""
import os
import stat

import numpy as np
import pytest

from engine import crypto, keystore
from engine.store import Store, StoreError, open_store

SECRET = "相談者は家賃六万円を滞納している"


def test_database_file_has_no_plaintext(tmp_path, monkeypatch):
    monkeypatch.setenv("MADOGUCHI_KEY_FILE", str(tmp_path / "keys" / "k.key"))
    key = keystore.load_key(tmp_path / "data")
    assert len(key) == 32
    assert stat.S_IMODE(os.stat(tmp_path / "keys" / "k.key").st_mode) == 0o600
    s = open_store(tmp_path / "data", key=key)
    sid = s.insert("sessions", {"uid": "u", "started_at": 0.0})
    s.insert("segments", {"session_id": sid, "seq": 1, "start": 0, "end": 1, "text": SECRET, "created_at": 0})
    s.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    s.close()
    raw = b"".join(p.read_bytes() for p in (tmp_path / "data").iterdir() if p.is_file())
    assert SECRET.encode() not in raw and b"SQLite format 3" not in raw
    # reopen with the key: the text is there; with another key: a clear error
    s = open_store(tmp_path / "data", key=keystore.load_key(tmp_path / "data"))
    assert s.query_one("SELECT text FROM segments")["text"] == SECRET
    s.close()
    with pytest.raises(StoreError, match="wrong key"):
        Store(tmp_path / "data" / "madoguchi.db", key=os.urandom(32))


def test_plain_database_is_encrypted_in_place_and_key_rotates(tmp_path):
    s = open_store(tmp_path)
    s.set_setting("note", SECRET)
    s.close()
    key = os.urandom(32)
    s = open_store(tmp_path, key=key)  # converts the existing plaintext file
    assert s.get_setting("note") == SECRET and s.schema_version() == s.latest_version()
    new = os.urandom(32)
    s.rekey(new)
    s.close()
    assert SECRET.encode() not in (tmp_path / "madoguchi.db").read_bytes()
    with pytest.raises(StoreError):
        Store(tmp_path / "madoguchi.db", key=key)
    s = Store(tmp_path / "madoguchi.db", key=new)
    assert s.get_setting("note") == SECRET
    s.close()


def test_sealed_audio_roundtrip_torn_tail_and_tamper(tmp_path):
    key = os.urandom(32)
    pcm = (np.sin(np.arange(16000 * 3) / 5) * 20000).astype("<i2")
    w = crypto.SealedWriter(tmp_path / "a.wav.enc", key)
    for i in range(3):
        w.write(pcm[i * 16000:(i + 1) * 16000].tobytes())
    w.close()
    raw = (tmp_path / "a.wav.enc").read_bytes()
    assert pcm[:4000].tobytes() not in raw
    assert crypto.read_sealed(tmp_path / "a.wav.enc", key) == pcm.tobytes()
    # a crash mid-record: the torn record is dropped, earlier seconds survive, appending resumes
    (tmp_path / "a.wav.enc").write_bytes(raw[:-5000])
    assert crypto.read_sealed(tmp_path / "a.wav.enc", key) == pcm[:32000].tobytes()
    w = crypto.SealedWriter(tmp_path / "a.wav.enc", key)
    w.write(pcm[32000:].tobytes())
    w.close()
    assert crypto.read_sealed(tmp_path / "a.wav.enc", key) == pcm.tobytes()
    bad = bytearray((tmp_path / "a.wav.enc").read_bytes())
    bad[40] ^= 1
    (tmp_path / "b.enc").write_bytes(bytes(bad))
    with pytest.raises(crypto.SealedFileError):
        crypto.read_sealed(tmp_path / "b.enc", key)
    with pytest.raises(crypto.SealedFileError):
        crypto.read_sealed(tmp_path / "a.wav.enc", os.urandom(32))


def test_security_cli_export_import_rotate(tmp_path):
    import subprocess, sys
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, MADOGUCHI_KEY_FILE=str(tmp_path / "k.key"),
               MADOGUCHI_USER_CONFIG=str(tmp_path / "u.toml"))
    (tmp_path / "u.toml").write_text("[security]\nencrypt = true\n", encoding="utf-8")
    data = tmp_path / "data"
    cli = [sys.executable, "-m", "engine.cli", "--data-dir", str(data)]
    run = lambda *a, **kw: subprocess.run(cli + list(a), capture_output=True, text=True, cwd=root, env={**env, **kw},
                                          timeout=120)
    r = run("users", "add", "kanri", "--role", "admin", "--name", "管理", MADOGUCHI_NEW_PASSWORD="password-1")
    assert r.returncode == 0, r.stderr
    assert "encrypted" in run("security", "status").stdout
    assert run("security", "export-key", str(tmp_path / "backup.key")).returncode == 0
    old = (tmp_path / "k.key").read_bytes()
    r = run("security", "rotate-key", "--user", "kanri", MADOGUCHI_PASSWORD="password-1")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "k.key").read_bytes() != old
    assert run("users", "list", "--user", "kanri", MADOGUCHI_PASSWORD="password-1").returncode == 0
    # the old key no longer opens the database: a clear one-line error
    (tmp_path / "k.key").write_bytes(old)
    r = run("users", "list", "--user", "kanri", MADOGUCHI_PASSWORD="password-1")
    assert r.returncode == 2 and r.stderr.startswith("error:") and "wrong key" in r.stderr


@pytest.mark.slow
def test_encrypted_recording_session(tmp_path, monkeypatch):
    """With security.encrypt on, a real session writes sealed audio; play-from-time, the final
    pass and crash repair all read it; the raw file holds no PCM of the recording."""
    from engine.asr import session as asession
    from engine.asr import sessions
    from engine.audio import FileSource, read_wav_range, repair_wav, write_wav
    from engine.context import open_context
    from devkit.audiogen import Turn, render_dialogue
    monkeypatch.setenv("MADOGUCHI_KEY_FILE", str(tmp_path / "k.key"))
    # one final-pass decode: that the final pass reads sealed audio is what is tested, not the vote
    # (five decodes of these two short turns took 110 s: the chunked ones loop on the padding)
    ctx = open_context(tmp_path / "data", overrides={"security.encrypt": True, "asr.final_systems": 1})
    assert ctx.key is not None and ctx.store.key == ctx.key
    conv = render_dialogue([Turn("staff", "本日はどのようなご相談でしょうか。"),
                            Turn("citizen", "家賃が払えなくなって困っています。")], seed=1)
    wav = write_wav(tmp_path / "in.wav", conv.audio)
    sess = asession.ConsultationSession(ctx, title="t", consent=True)
    sid = sess.start(FileSource(wav))
    assert sess.wait(300)
    sess.stop(final_pass=True)
    path = sess.audio_path
    raw = path.read_bytes()
    assert crypto.is_sealed(path) and b"RIFF" not in raw
    pcm = (np.clip(conv.audio, -1, 1) * 32767).astype("<i2").tobytes()
    assert pcm[32000:32064] not in raw
    back = asession.audio_range(ctx.store, sid, 0.0, None)
    assert abs(len(back) - len(conv.audio)) <= 16000  # the whole recording, decrypted
    segs = sessions.segments(ctx.store, sid)
    assert segs and "払えな" in "".join(g["text"] for g in segs)
    # a torn tail (crash) is repaired without losing the earlier seconds
    path.write_bytes(raw[:-3000])
    secs = repair_wav(path, key=ctx.key)
    assert secs > conv.seconds - 2.5
    assert len(read_wav_range(path, 0, None, key=ctx.key)) == int(round(secs * 16000))
    ctx.close()
