"""No network at run time: the audit hook blocks outbound connections, lets loopback through,
and a real pipeline (Whisper transcription, embeddings, LLM) runs under it without attempting one."""
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

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


@pytest.mark.slow
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


@pytest.mark.slow
def test_every_feature_end_to_end_attempts_no_connection(tmp_path):
    """Every feature in one process, through the command line's own code (``engine.cli.main``),
    with a spy audit hook installed before anything is imported: transcribe a file, draft a record
    with the LLM and save it, export it (PDF), index + search + answer the manuals (LLM answer),
    diagnose + import mirror photos, doctor. Not one socket connect, send or name look-up may be
    attempted — not even to loopback."""
    models = ROOT / "models"
    cfg = tmp_path / "user-config.toml"
    cfg.write_text('[llm]\nmodel = "llm-small"\n', encoding="utf-8")
    r = run_py(f"""
        import io, json, os, sys, contextlib
        NET = ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex",
               "socket.gethostbyaddr", "socket.getnameinfo", "socket.sendto", "socket.sendmsg",
               "http.client.connect", "urllib.Request", "ftplib.connect", "smtplib.connect")
        events = []
        sys.addaudithook(lambda ev, args: events.append((ev, repr(args)[:200])) if ev in NET else None)
        os.environ.update(MADOGUCHI_USER_CONFIG={str(cfg)!r}, MADOGUCHI_MACHINE_CONFIG={str(tmp_path / 'none.toml')!r},
                          MADOGUCHI_MODELS_DIR={str(models)!r}, MADOGUCHI_PASSWORD="pw-netguard-1",
                          MADOGUCHI_NEW_PASSWORD="pw-netguard-1")
        from engine.cli import main
        data = {str(tmp_path / 'data')!r}

        def cli(*argv):
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                rc = main(["--data-dir", data, *argv])
            assert rc == 0, (argv, rc)
            print("ok", argv[0], argv[1] if len(argv) > 1 else "", len(events), flush=True)
            return out.getvalue()

        cli("users", "add", "kanri", "--role", "admin")
        for name, role in (("tanaka", "staff"), ("kensa", "inspector")):
            cli("users", "add", name, "--role", role, "--user", "kanri")

        # transcribe a synthesized consultation, draft a record with the LLM, save and export it
        from devkit.audiogen import Turn, render_dialogue
        from devkit import crashkit
        wav = render_dialogue([Turn(s, t) for s, t in crashkit.COUNTER_TURNS], seed=3).write({str(tmp_path / 'c.wav')!r})
        transcript = {str(tmp_path / 't.json')!r}
        open(transcript, "w", encoding="utf-8").write(cli("transcribe", str(wav), "--json"))
        assert json.load(open(transcript, encoding="utf-8"))
        d = json.loads(cli("draft", transcript, "--save", "--json", "--user", "tanaka"))
        assert d["method"] == "items", d["method"]          # the default drafter: record items, no model
        d = json.loads(cli("draft", transcript, "--json", "--model", "llm-small"))
        assert d["method"] in ("llm", "mixed"), d["method"]
        rid = json.loads(cli("records", "list", "--json", "--user", "tanaka"))[0]["id"]
        pdf = {str(tmp_path / 'r.pdf')!r}
        cli("records", "export", str(rid), "--format", "pdf", "--draft", "--output", pdf, "--user", "tanaka")
        assert open(pdf, "rb").read(4) == b"%PDF"

        # manuals: index (with embeddings), search, answer with the LLM
        from engine.manuals import samples
        made = samples.build({str(tmp_path / 'manuals')!r})
        for extra in made[2:]:
            extra.unlink()
        cli("manuals", "add", {str(tmp_path / 'manuals')!r}, "--user", "kanri")
        assert cli("manuals", "search", "家賃").strip()
        assert cli("manuals", "answer", "家賃はどこまで認められますか")

        # curve mirrors: diagnose a photo, import a folder into the ledger
        from engine.mirrors import synth
        pdir = {str(tmp_path / 'photos')!r}
        os.makedirs(pdir)
        for seed in (950001, 950002):
            open(os.path.join(pdir, f"KM-{{seed % 10000}}.jpg"), "wb").write(
                synth.encode_jpeg(synth.generate(seed, size=(1024, 768)).image))
        cli("mirror", "diagnose", os.path.join(pdir, "KM-1.jpg"))
        cli("mirror", "import", pdir, "--quiet", "--user", "kensa")

        cli("doctor")
        print("EVENTS", json.dumps(events, ensure_ascii=False))
    """, timeout=3000)
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-3000:])
    for step in ("ok transcribe", "ok draft", "ok records export", "ok manuals add", "ok manuals search",
                 "ok manuals answer", "ok mirror diagnose", "ok mirror import", "ok doctor"):
        assert step in r.stdout, (step, r.stdout)
    assert "EVENTS []" in r.stdout, r.stdout[-3000:]
