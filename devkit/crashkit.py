"""kill -9 at random moments: run a CLI job, SIGKILL it after a random delay, check the store,
run the job again to completion, check again. Shared by tests/test_crash.py and bench/crash.py."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "engine.cli"]

# A recording session from a real-time paced file, in a process of its own (to be killed): prints the
# session id, then the audio clock of each level report and each Final as it is committed.
SESSION_CHILD = textwrap.dedent("""
    import sys, json
    sys.path.insert(0, {root!r})
    from engine.context import open_context
    from engine.audio import FileSource, Level
    from engine.asr.session import ConsultationSession
    from engine.asr.transcribe import Final
    ctx = open_context({data!r})
    s = ConsultationSession(ctx)
    s.start(FileSource({wav!r}, realtime=True))
    print(json.dumps({{"session": s.id}}), flush=True)
    for ev in s.events():
        if isinstance(ev, Level):
            print(json.dumps({{"level": ev.time + 0.1}}), flush=True)
        elif isinstance(ev, Final):
            print(json.dumps({{"final": ev.id, "text": ev.text}}), flush=True)
""")


@dataclass
class CrashResult:
    runs: int = 0
    killed: int = 0          # runs actually killed before finishing on their own
    integrity_failures: int = 0
    lost: int = 0            # items committed before the kill and missing afterwards
    incomplete_after_resume: int = 0
    notes: list[str] = field(default_factory=list)
    phases: dict[str, int] = field(default_factory=dict)   # where the kills landed (drafting runs)


def integrity(db: Path) -> bool:
    from engine.store import Store
    s = Store(db, migrate=False)
    try:
        return s.integrity_ok()
    finally:
        s.close()


def kill_after(cmd: list[str], delay: float, env: dict | None = None) -> bool:
    """Start cmd, SIGKILL it after ``delay`` s. True if it was still running (really killed)."""
    p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        p.wait(timeout=delay)
        return False
    except subprocess.TimeoutExpired:
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        return True


def count(db: Path, sql: str) -> int:
    from engine.store import Store
    s = Store(db, migrate=False)
    try:
        return s.query_one(sql)["n"]
    finally:
        s.close()


def user_env(data: Path) -> dict:
    """A data folder with an administrator ``kanri``, an inspector ``kensa`` and a staff member
    ``tanaka`` (the CLI's commands act for a signed-in user), and the environment that lets
    ``madoguchi … --user kanri|kensa|tanaka`` sign in."""
    from engine import users
    from engine.context import open_context
    ctx = open_context(data)
    try:
        admin = users.add_user(ctx.store, None, "kanri", "管理", "admin", PASSWORD)
        users.add_user(ctx.store, admin, "kensa", "点検", "inspector", PASSWORD)
        users.add_user(ctx.store, admin, "tanaka", "田中", "staff", PASSWORD)
    finally:
        ctx.close()
    return {**os.environ, "MADOGUCHI_PASSWORD": PASSWORD}


def job_seconds(data: Path, job: list[str], env: dict | None = None, check: bool = True) -> float:
    """How long ``job`` takes uninterrupted from an empty start (the kill window is scaled to it)."""
    t = time.monotonic()
    r = subprocess.run(CLI + ["--data-dir", str(data)] + job, cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=1800)
    if check and r.returncode != 0:
        raise RuntimeError(f"{job}: {r.stderr[-500:]}")
    return time.monotonic() - t


def crash_job(data: Path, job: list[str], count_sql: str, runs: int, max_delay: float | None = None,
              seed: int = 0, env: dict | None = None, prepare=None) -> CrashResult:
    """Kill ``job`` ``runs`` times at random moments; after each kill the DB must be intact and the
    committed count must not shrink; after the final uninterrupted run the job must be complete.

    With ``prepare`` (a function that sets up an empty data folder), the kill window is the job's
    own duration, measured once uninterrupted (``max_delay`` None), and a run the job finished
    before its kill starts the next one on a fresh folder — so nearly every kill lands mid-job on
    a quiet machine too, instead of after a job that had long completed."""
    rng = random.Random(seed)
    res = CrashResult()
    folder = 0

    def fresh() -> Path:
        nonlocal folder
        folder += 1
        if folder == 1:
            return data                  # the caller's folder, already set up
        d = data.with_name(f"{data.name}-{folder}")
        if prepare is not None:
            prepare(d)
        return d
    if max_delay is None:
        cal = data.with_name(f"{data.name}-calibrate")
        if prepare is not None:
            prepare(cal)
        max_delay = 0.9 * job_seconds(cal, job, env)
        res.notes.append(f"kill window 0.3–{max_delay:.1f} s (0.9 × the uninterrupted job)")
    current = fresh()
    before = 0
    for _ in range(runs):
        res.runs += 1
        db = current / "madoguchi.db"
        killed = kill_after(CLI + ["--data-dir", str(current)] + job, rng.uniform(0.3, max_delay), env)
        res.killed += killed
        if db.exists():
            if not integrity(db):
                res.integrity_failures += 1
                continue
            after = count(db, count_sql)
            if after < before:
                res.lost += before - after
            before = after
        if not killed and prepare is not None:      # the job finished: the next kill needs work left to do
            r = subprocess.run(CLI + ["--data-dir", str(current)] + job, cwd=ROOT, env=env, capture_output=True,
                               text=True, timeout=1800)
            if r.returncode != 0 or not integrity(db):
                res.incomplete_after_resume += 1
                res.notes.append(r.stderr[-500:])
            current, before = fresh(), 0
    db = current / "madoguchi.db"
    r = subprocess.run(CLI + ["--data-dir", str(current)] + job, cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=1800)
    if r.returncode != 0:
        res.incomplete_after_resume += 1
        res.notes.append(r.stderr[-500:])
    if not integrity(db):
        res.integrity_failures += 1
    return res


def crash_migration(tmp: Path, runs: int, seed: int = 0, max_delay: float | None = 1.5) -> CrashResult:
    """Kill the first open of a new data folder (all migrations) at random moments; ``max_delay``
    None: within 0.9 × the time an uninterrupted first open takes on this machine."""
    rng = random.Random(seed)
    res = CrashResult()
    if max_delay is None:
        max_delay = 0.9 * job_seconds(tmp / "mig-calibrate", ["doctor", "--quick"], check=False)
        res.notes.append(f"kill window 0.05–{max_delay:.1f} s (0.9 × an uninterrupted first open)")
    for i in range(runs):
        data = tmp / f"mig{i}"
        res.runs += 1
        res.killed += kill_after(CLI + ["--data-dir", str(data), "doctor", "--quick"], rng.uniform(0.05, max_delay))
        db = data / "madoguchi.db"
        if db.exists() and not integrity(db):
            res.integrity_failures += 1
            continue
        from engine.store import Store
        s = Store(db)  # finishes the migrations
        if s.schema_version() != s.latest_version() or not s.integrity_ok():
            res.incomplete_after_resume += 1
        s.close()
    return res


# ------------------------------------------------------------------ kill -9 during drafting

PASSWORD = "crash-test-pw-1"
DRIVER = [sys.executable, "-m", "devkit.crashkit"]


COUNTER_TURNS = [("staff", "今日はどのようなご相談でしょうか。"),
                 ("citizen", "先月仕事を辞めて、家賃の六万円が払えないんです。"),
                 ("staff", "今の収入と預金はどのくらいありますか。"),
                 ("citizen", "収入はなくて、預金は十万円ほどです。一人で暮らしています。")]


def counter_wav(path: Path) -> Path:
    """A short synthesized counter conversation (about 15 s) with something to draft."""
    from engine.audio import write_wav
    from devkit.audiogen import Turn, render_dialogue
    return write_wav(path, render_dialogue([Turn(s, t) for s, t in COUNTER_TURNS], seed=11).audio)


def counter_env(tmp: Path, use_llm: bool = True, model: str = "llm-small", final_systems: int | None = None) -> dict:
    """Environment of the counter processes: a user config choosing the drafting model (and, with
    ``final_systems``, how many final-pass decodes are voted on)."""
    cfg = tmp / "crash-user-config.toml"
    asr = f"[asr]\nfinal_systems = {final_systems}\n" if final_systems else ""
    cfg.write_text(f'[llm]\nenabled = {"true" if use_llm else "false"}\nmodel = "{model}"\n{asr}', encoding="utf-8")
    return dict(os.environ, MADOGUCHI_USER_CONFIG=str(cfg),
                MADOGUCHI_MACHINE_CONFIG=str(tmp / "no-machine-config.toml"))


def seed_counter(data: Path) -> None:
    """Users, and one approved record over a finished session: what no crash may touch."""
    from engine import users
    from engine.context import open_context
    from engine.records import draft as rdraft
    from engine.records import template as rtemplate
    from engine.records import workflow
    user_env(data)
    ctx = open_context(data)
    try:
        admin = users.get_user(ctx.store, "kanri")
        staff = users.get_user(ctx.store, "tanaka")
        sup = users.add_user(ctx.store, admin, "sato", "佐藤", "supervisor", PASSWORD)
        sid = ctx.store.insert("sessions", {"uid": "seed", "title": "既存の相談", "staff_user": "tanaka",
                                            "state": "finalized", "consent": 1, "started_at": time.time()})
        lines = [("staff", "今日はどのようなご相談ですか。"), ("citizen", "家賃が払えなくて困っています。"),
                 ("staff", "収入はありますか。"), ("citizen", "年金が月に六万円あります。")]
        for i, (spk, text) in enumerate(lines, 1):
            ctx.store.insert("segments", {"session_id": sid, "seq": i, "start": 3.0 * i, "end": 3.0 * i + 2.5,
                                          "speaker": spk, "text": text, "pass": "final", "created_at": time.time()})
        d = rdraft.draft(rdraft.segments_from_session(ctx.store, sid),
                         rtemplate.load(ctx.config["records.template"], ctx.data_dir), ctx.config, use_llm=False)
        rec = workflow.create(ctx.store, staff, d, session_id=sid, title="既存の相談")
        rec = workflow.submit(ctx.store, staff, rec.id, rec.revision)
        workflow.approve(ctx.store, sup, rec.id, rec.revision, acknowledge_flags=True)
    finally:
        ctx.close()


def protected(db: Path) -> dict:
    """What must survive every crash unchanged: approved record versions, and the segments of
    every finished consultation (final pass done, record saved)."""
    from engine.store import Store
    s = Store(db, migrate=False)
    try:
        approved = {(r["record_id"], r["version"]): r["content"] for r in
                    s.query("SELECT record_id, version, content FROM record_versions WHERE state = 'approved'")}
        segs = {(r["session_id"], r["seq"]): r["text"] for r in
                s.query("SELECT session_id, seq, text FROM segments WHERE session_id IN (SELECT s.id FROM "
                        "sessions s JOIN records r ON r.session_id = s.id WHERE s.state = 'finalized')")}
        return {"approved": approved, "segments": segs}
    finally:
        s.close()


def _session_segments(db: Path, sid: int) -> dict[int, tuple[str, str]]:
    from engine.store import Store
    s = Store(db, migrate=False)
    try:
        return {r["seq"]: (r["text"], r["pass"]) for r in
                s.query("SELECT seq, text, pass FROM segments WHERE session_id = ?", (sid,))}
    finally:
        s.close()


def _children(pid: int) -> list[int]:
    out = []
    for t in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            out += [int(x) for x in t.read_text().split()]
        except OSError:
            pass
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _drafter(pid: int) -> int | None:
    """The spawned job process (engine.jobs child) of a counter process, if it runs now."""
    for c in _children(pid):
        if "multiprocessing" in _cmdline(c) and "resource_tracker" not in _cmdline(c):
            return c
    return None


def _gone(pids: list[int], timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not any(Path(f"/proc/{p}").exists() and "(Z)" not in _stat(p) for p in pids):
            return True
        time.sleep(0.1)
    return False


def _stat(pid: int) -> str:
    try:
        s = Path(f"/proc/{pid}/stat").read_text()
        return f"({s.rsplit(')', 1)[1].split()[0]})"
    except (OSError, IndexError):
        return "(Z)"


def _audit_ok(db: Path) -> bool:
    from engine import audit
    from engine.store import Store
    s = Store(db, migrate=False)
    try:
        return audit.verify(s)[0]
    finally:
        s.close()


def crash_drafting(data: Path, wav: Path, runs: int, max_delay: float, seed: int = 0, env: dict | None = None,
                   target: str = "app") -> CrashResult:
    """Run the counter workflow (recording → live drafting in the engine.jobs child → 停止 → final
    pass → draft saved) on ``wav`` and SIGKILL it at a random moment, ``runs`` times.

    ``target="app"`` kills the counter process itself (the drafting child must then end on its
    own, not run on as an orphan); ``"drafter"`` kills only the drafting child, and the counter
    process must still save a complete draft. After each kill: ``PRAGMA integrity_check``, the
    audit chain verifies, approved record versions and the segments of finished sessions are
    unchanged, the killed session's committed segments are all there (or were atomically replaced
    by the final pass), and :func:`engine.consultation.resume` then leaves every consultation with
    exactly one record and nothing pending."""
    rng = random.Random(seed)
    res = CrashResult()
    db = data / "madoguchi.db"
    for _ in range(runs):
        res.runs += 1
        keep = protected(db)
        p = subprocess.Popen(DRIVER + ["counter", str(data), str(wav)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True, start_new_session=True)
        sid = int(p.stdout.readline().split()[-1])   # "session N" as soon as the session row exists
        said: list[str] = []
        threading.Thread(target=lambda: said.extend(p.stdout), daemon=True).start()
        end = time.monotonic() + 600
        while p.poll() is None and time.monotonic() < end and not _session_segments(db, sid):
            time.sleep(0.2)   # drafting starts with the first final segment: kill from then on
        try:
            p.wait(timeout=rng.uniform(0.0, max_delay))
            finished = True
        except subprocess.TimeoutExpired:
            finished = False
        phase = ("finished" if finished else "final pass (refine)" if any(x.startswith("record ") for x in said)
                 else "after 停止 (draft, save)" if any(x.startswith("stopping") for x in said) else "recording")
        res.phases[phase] = res.phases.get(phase, 0) + 1
        seen = _session_segments(db, sid) if not finished else {}
        if not finished and target == "app":
            kids = _children(p.pid)
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
            res.killed += 1
            if not _gone(kids, 15):
                res.notes.append(f"run {res.runs}: the drafting child outlived the killed app")
                res.incomplete_after_resume += 1
        elif not finished:
            child = _drafter(p.pid)
            if child is not None:
                os.kill(child, signal.SIGKILL)
                res.killed += 1
            if p.wait(timeout=1800) != 0:
                res.notes.append(f"run {res.runs}: the counter process failed after its drafter was killed")
                res.incomplete_after_resume += 1
        try:
            os.killpg(p.pid, signal.SIGKILL)   # nothing of this run may linger
        except ProcessLookupError:
            pass
        if not integrity(db) or not _audit_ok(db):
            res.integrity_failures += 1
            continue
        now = protected(db)
        res.lost += sum(1 for k, v in keep["approved"].items() if now["approved"].get(k) != v)
        res.lost += sum(1 for k, v in keep["segments"].items() if now["segments"].get(k) != v)
        after = _session_segments(db, sid)
        if not all(ps == "final" for _t, ps in after.values()):   # not replaced by a committed final pass
            res.lost += sum(1 for k, v in seen.items() if after.get(k, (None,))[0] != v[0])
        r = subprocess.run(DRIVER + ["resume", str(data)], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=1800)
        if r.returncode != 0:
            res.incomplete_after_resume += 1
            res.notes.append(r.stderr[-500:])
        n = count(db, "SELECT COUNT(*) AS n FROM sessions s WHERE EXISTS (SELECT 1 FROM segments g WHERE "
                      "g.session_id = s.id) AND ((SELECT COUNT(*) FROM records r WHERE r.session_id = s.id) != 1 "
                      "OR s.state != 'finalized')")
        if n:
            res.incomplete_after_resume += 1
            res.notes.append(f"run {res.runs}: {n} session(s) without exactly one record after resume")
        if not integrity(db):
            res.integrity_failures += 1
    return res


def _counter_main(data: str, wav: str) -> int:
    from engine import users
    from engine.audio import FileSource
    from engine.consultation import CounterConsultation
    from engine.context import open_context
    ctx = open_context(data)
    staff = users.sign_in(ctx.store, "tanaka", PASSWORD)
    cw = CounterConsultation(ctx, staff, title="生活保護の相談", case_number="C-1", consent=True)
    sid = cw.start(FileSource(wav, realtime=True))   # paced like a microphone
    print(f"session {sid}", flush=True)
    cw.wait()
    print("stopping", flush=True)
    rec = cw.stop()
    print(f"record {rec.id} {rec.content.method}", flush=True)
    cw.refine()   # the final pass, as the 相談 screen runs it after 停止
    print("refined", flush=True)
    ctx.close()
    return 0


def _resume_main(data: str) -> int:
    from engine import consultation, users
    from engine.context import open_context
    ctx = open_context(data)
    staff = users.sign_in(ctx.store, "tanaka", PASSWORD)
    for s in consultation.interrupted(ctx.store):
        rec = consultation.resume(ctx, staff, s["id"])
        print(f"session {s['id']} → record {rec.id} {rec.content.method}", flush=True)
    ctx.close()
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "counter":
        sys.exit(_counter_main(sys.argv[2], sys.argv[3]))
    if sys.argv[1] == "resume":
        sys.exit(_resume_main(sys.argv[2]))
    sys.exit(2)
