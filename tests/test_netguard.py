"""No network at run time: the audit hook blocks outbound connections, lets loopback through,
and a real pipeline (Whisper transcription, embeddings, LLM) runs under it without attempting one."""
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_py(code: str, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout)


def test_blocks_outbound_allows_loopback():
    r = run_py("""
        import socket, threading
        from engine import netguard
        netguard.install()
        srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
        port = srv.getsockname()[1]
        c = socket.create_connection(("127.0.0.1", port), timeout=5); c.close()
        print("loopback ok")
        for target in [("93.184.216.34", 80), ("10.0.0.1", 443), ("2001:4860:4860::8888", 53)]:
            fam = socket.AF_INET6 if ":" in target[0] else socket.AF_INET
            s = socket.socket(fam, socket.SOCK_STREAM)
            try:
                s.connect(target)
                print("CONNECTED", target)
            except netguard.NetworkBlocked:
                print("blocked", target[0])
            except OSError as e:
                print("OTHER", type(e).__name__, e)
        try:
            socket.getaddrinfo("example.com", 443)
            print("RESOLVED")
        except netguard.NetworkBlocked:
            print("blocked dns")
        print(netguard.blocked)
    """)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "loopback ok" in out
    assert out.count("blocked ") == 3 + 1 and "CONNECTED" not in out and "OTHER" not in out and "RESOLVED" not in out


def test_office_server_is_allowed_and_nothing_else():
    r = run_py("""
        import socket
        from engine import netguard
        netguard.install("192.0.2.10")
        assert netguard.is_allowed("192.0.2.10")
        assert not netguard.is_allowed("192.0.2.11")
        print("ok")
    """)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr


def test_real_pipeline_attempts_no_connection(tmp_path):
    """Record every socket event with a second audit hook while a real pipeline runs."""
    r = run_py(f"""
        import sys, numpy as np
        events = []
        def spy(ev, args):
            if ev in ("socket.connect", "socket.getaddrinfo", "socket.sendto", "urllib.Request", "http.client.connect"):
                events.append((ev, repr(args)[:200]))
        sys.addaudithook(spy)
        from engine.context import open_context
        from engine import models
        ctx = open_context({str(tmp_path / 'data')!r})
        import pyopenjtalk
        wav, sr = pyopenjtalk.tts("生活保護の申請について相談したいです。")
        import wave
        from faster_whisper import decode_audio
        with wave.open({str(tmp_path / 'speech.wav')!r}, "wb") as w:
            w.setnchannels(1); w.setsampwidth(2); w.setframerate(sr)
            w.writeframes(np.clip(wav, -32768, 32767).astype("<i2").tobytes())
        audio16 = decode_audio({str(tmp_path / 'speech.wav')!r}, sampling_rate=16000)
        wm = models.load_whisper("whisper-base")
        segs, _ = wm.transcribe(audio16, language="ja", beam_size=1, vad_filter=True)
        text = "".join(s.text for s in segs)
        assert len(text) > 5, text
        v = models.load_embedder("embed-ja").query("家賃が払えない")
        assert v.shape == (384,)
        llm = models.load_llm("llm-small", n_ctx=512)
        out = llm.create_completion("生活保護とは", max_tokens=8)
        assert out["choices"][0]["text"]
        ctx.store.execute("SELECT 1")
        bad = [e for e in events if "127.0.0.1" not in e[1] and "localhost" not in e[1] and "AF_UNIX" not in e[1]]
        print("EVENTS", len(events), "NONLOOPBACK", bad)
    """)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "NONLOOPBACK []" in r.stdout, r.stdout
