"""The real microphone path: sounddevice → PortAudio → ALSA → PulseAudio virtual microphone (a
null sink's monitor), fed with paplay in real time. The test runs its own pulseaudio daemon."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from engine.asr.metrics import cer
from devkit.audiogen import Turn, render_dialogue
from devkit.crashkit import user_env

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("pulseaudio") is None or shutil.which("paplay") is None,
                                reason="pulseaudio/paplay not installed (apt-get install pulseaudio pulseaudio-utils)")]


class Pulse:
    def __init__(self):
        self.runtime = tempfile.mkdtemp(prefix="pulse-rt-")
        self.home = tempfile.mkdtemp(prefix="pulse-home-")
        self.env = dict(os.environ, XDG_RUNTIME_DIR=self.runtime, HOME=self.home)

    def start(self, attempts=10):
        # a daemon that was just stopped may still hold its socket on a busy machine: retry
        for i in range(attempts):
            try:
                return self._start()
            except subprocess.SubprocessError:
                if i == attempts - 1:
                    raise
                time.sleep(1.0)

    SINK = "module-null-sink sink_name=vmic_sink rate=16000 channels=1"
    SOURCE = "module-remap-source master=vmic_sink.monitor source_name=vmic"

    def _start(self):
        subprocess.run(["pulseaudio", "--daemonize=yes", "-n", "--exit-idle-time=-1", "--use-pid-file=yes",
                        "-L", "module-native-protocol-unix", "-L", self.SINK, "-L", self.SOURCE],
                       env=self.env, check=True, capture_output=True, timeout=30)
        subprocess.run(["pactl", "set-default-source", "vmic"], env=self.env, check=True, timeout=30)

    def pactl(self, *args) -> str:
        return subprocess.run(["pactl", *args], env=self.env, check=True, capture_output=True, text=True,
                              timeout=30).stdout

    def unplug(self):
        """The microphone disappears: unload the virtual source and its sink, so the daemon has no
        capture device left (the recording stream is killed; opening a new one fails)."""
        self.pactl("unload-module", "module-remap-source")
        self.pactl("unload-module", "module-null-sink")
        assert "vmic" not in self.pactl("list", "short", "sources")

    def replug(self):
        self.pactl("load-module", *self.SINK.split())
        self.pactl("load-module", *self.SOURCE.split())
        self.pactl("set-default-source", "vmic")

    def stop(self):
        pidfile = Path(self.runtime) / "pulse" / "pid"
        if pidfile.exists():
            pid = int(pidfile.read_text().split()[0])
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                return
            for _ in range(50):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:  # still alive after 5 s on a busy machine: make sure the next start is not refused
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                time.sleep(0.2)
        for stale in (pidfile, Path(self.runtime) / "pulse" / "native"):
            try:
                stale.unlink()
            except OSError:
                pass

    def play(self, wav):
        return subprocess.Popen(["paplay", "-d", "vmic_sink", str(wav)], env=self.env)


@pytest.fixture
def pulse():
    p = Pulse()
    p.start()
    yield p
    p.stop()
    shutil.rmtree(p.runtime, ignore_errors=True)
    shutil.rmtree(p.home, ignore_errors=True)


def _wait_for_audio(audio_dir: Path, timeout=60.0):
    """Wait until the session's WAV file grows: the input stream's first callback has come."""
    t = time.monotonic()
    while time.monotonic() - t < timeout:
        files = list(audio_dir.glob("*.wav")) if audio_dir.exists() else []
        if files and files[0].stat().st_size > 44 + 3200:
            return files[0]
        time.sleep(0.05)
    raise AssertionError("no audio arrived from the virtual microphone")


def test_record_from_virtual_microphone(pulse, tmp_path):
    conv = render_dialogue([Turn("staff", "こんにちは。今日はどのようなご相談でしょうか。"),
                            Turn("citizen", "児童扶養手当の申請をしたいんです。")], seed=2, lead=0.5, tail=1.0)
    wav = conv.write(tmp_path / "speech.wav")
    data = tmp_path / "data"
    seconds = conv.seconds + 6.0
    env = {**user_env(data), **pulse.env}
    rec = subprocess.Popen([sys.executable, "-m", "engine.cli", "--data-dir", str(data), "record",
                            "--seconds", str(seconds), "--json", "--consent", "--user", "tanaka"], cwd=ROOT, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_audio(data / "audio")
        assert pulse.play(wav).wait(60) == 0
        out, err = rec.communicate(timeout=300)
    finally:
        if rec.poll() is None:
            rec.kill()
    assert rec.returncode == 0, err
    summary = json.loads(out)
    assert summary["state"] == "finalized"
    assert summary["audio_seconds"] == pytest.approx(seconds, abs=0.2)
    show = subprocess.run([sys.executable, "-m", "engine.cli", "--data-dir", str(data), "sessions", "show",
                           str(summary["id"]), "--json", "--user", "tanaka"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    segs = json.loads(show.stdout)["segments"]
    assert len(segs) >= 2
    assert cer(conv.reference, "".join(s["text"] for s in segs)) < 0.35
    assert segs[0]["speaker"] == "staff"


CHILD = textwrap.dedent("""
    import sys, json, time
    sys.path.insert(0, {root!r})
    from engine.context import open_context
    from engine.audio import MicSource, Level
    from engine.asr.session import ConsultationSession, DeviceLost, DeviceRestored
    ctx = open_context({data!r})
    s = ConsultationSession(ctx)
    s.start(MicSource(stall_seconds=1.5))
    after = None
    for ev in s.events():
        if isinstance(ev, Level):
            print(json.dumps({{"level": ev.time, "db": ev.dbfs[0]}}), flush=True)
            if after is not None and ev.time > after + 8.0:
                break
        elif isinstance(ev, DeviceLost):
            print(json.dumps({{"lost": ev.time, "ja": ev.ja, "wall": time.time()}}), flush=True)
        elif isinstance(ev, DeviceRestored):
            print(json.dumps({{"restored": ev.time, "wall": time.time()}}), flush=True)
            after = ev.time
    print(json.dumps(s.stop(final_pass=False)), flush=True)
""")


def test_device_unplugged_pauses_and_resumes(pulse, tmp_path):
    conv = render_dialogue([Turn("staff", "こんにちは。今日はどのようなご相談でしょうか。")], seed=4, lead=0.2, tail=0.5)
    wav = conv.write(tmp_path / "speech.wav")
    data = tmp_path / "data"
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(root=str(ROOT), data=str(data)))
    child = subprocess.Popen([sys.executable, str(script)], cwd=ROOT, env=pulse.env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    seen = {"lost": [], "restored": [], "loud_after": False}
    player = None
    try:
        for line in child.stdout:
            msg = json.loads(line)
            if "level" in msg and msg["level"] > 1.0 and "unplugged" not in seen:
                pulse.unplug()                  # the "microphone" disappears
                seen["unplugged"] = time.time()
            if "lost" in msg:
                seen["lost"].append(msg)
                if "replugged" not in seen and "unplugged" in seen:
                    time.sleep(2.5)             # a few reopen attempts fail while nothing is there
                    pulse.replug()              # … and it comes back
                    seen["replugged"] = time.time()
            if "restored" in msg:
                seen["restored"].append(msg)
            if "level" in msg and seen["restored"] and msg["level"] > seen["restored"][-1]["restored"]:
                if player is None:              # blocks flow again: speak into the device that came back
                    player = pulse.play(wav)
                seen["loud_after"] |= msg["db"] > -40
            if "state" in msg:
                seen["summary"] = msg
                break
        child.wait(60)
        if player is not None:
            player.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
    assert seen["lost"], child.stderr.read()
    lost = seen["lost"][0]
    assert "マイク" in lost["ja"]
    assert lost["wall"] >= seen["unplugged"]               # lost because of the unplug, not before
    assert len(seen["lost"]) == 1, seen["lost"]            # no spurious second loss after resuming
    assert len(seen["restored"]) == 1
    assert seen["restored"][0]["wall"] >= seen["replugged"]  # not "restored" while no device existed
    assert seen["loud_after"], "no audio from the device after it came back"
    assert seen["summary"]["state"] == "stopped"
    # everything before the loss is kept and recording went on after the device came back
    assert seen["summary"]["audio_seconds"] >= lost["lost"] + 1.0
