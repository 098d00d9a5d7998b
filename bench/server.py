"""Office server benchmark (issue 10): 20 counters and 2 supervisors on one PostgreSQL.

Each counter is a process that records a consultation (a session row and its transcript segments,
written one by one as live transcription does), drafts a record from it and submits it, and
fixes and resubmits what comes back 差戻し. Two supervisor processes work the queue: approve, and
return every fifth record with a comment. After ``--duration`` seconds the counters stop drafting,
the queue is drained, and the end state is checked: every record a counter created exists exactly
once, all are approved, every session has all its segments, and the audit chain verifies.

    python bench/server.py                     # 10 minutes, own PostgreSQL on loopback
    python bench/server.py --duration 60       # a first figure
    python bench/server.py --server postgresql://madoguchi@pg01/madoguchi   # an existing server (empty DB)
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import queue as queue_mod
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SEGMENTS = 12


def _pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def _draft():
    from devkit.records import make_draft
    return make_draft()


def counter(url, name, think, barrier, stop, drained, out):
    from engine import users
    from engine.records import workflow
    from engine.store import ServerStore
    s = ServerStore(url, migrate=False)
    me = users.get_user(s, name)
    times: dict[str, list[float]] = {k: [] for k in ("session", "segment", "create", "submit", "save", "resubmit")}
    s.lock_waits = times["lock wait"] = []
    created: list[int] = []
    sessions: list[str] = []
    conflicts = 0

    def timed(step, fn, *a, **kw):
        t = time.perf_counter()
        r = fn(*a, **kw)
        times[step].append(time.perf_counter() - t)
        return r

    def fix_returned():
        nonlocal conflicts
        for r in workflow.list_records(s, me, state="returned", owner=name):
            try:
                r = timed("save", workflow.save, s, me, r.id, r.content, r.revision, "差戻し対応")
                timed("resubmit", workflow.submit, s, me, r.id, r.revision)
            except workflow.ConflictError:
                conflicts += 1
    barrier.wait()
    while not stop.is_set():
        uid = uuid.uuid4().hex
        sid = timed("session", s.insert, "sessions", {"uid": uid, "staff_user": name, "started_at": time.time()})
        sessions.append(uid)
        for i in range(1, SEGMENTS + 1):
            timed("segment", s.insert, "segments", {"session_id": sid, "seq": i, "start": i * 4.0, "end": i * 4.0 + 3.5,
                                                     "speaker": "staff" if i % 2 else "citizen",
                                                     "text": f"発言{i}：家賃は月5万円です。", "created_at": time.time()})
        s.execute("UPDATE sessions SET state = 'stopped', stopped_at = ? WHERE id = ?", (time.time(), sid))
        rec = timed("create", workflow.create, s, me, _draft(), session_id=sid)
        created.append(rec.id)
        timed("submit", workflow.submit, s, me, rec.id, rec.revision)
        fix_returned()
        if think:
            time.sleep(think)
    while not drained.is_set():
        fix_returned()
        time.sleep(0.2)
    out.put(("counter", name, times, created, sessions, conflicts))
    s.close()


def supervisor(url, name, barrier, stop, counters_done, out):
    from engine import users
    from engine.records import workflow
    from engine.store import ServerStore
    s = ServerStore(url, migrate=False)
    me = users.get_user(s, name)
    times: dict[str, list[float]] = {k: [] for k in ("queue", "approve", "return")}
    s.lock_waits = times["lock wait"] = []
    conflicts = n = 0
    barrier.wait()
    while True:
        t = time.perf_counter()
        q = workflow.list_records(s, me, state="submitted", limit=10)
        times["queue"].append(time.perf_counter() - t)
        for r in q:
            n += 1
            try:
                if n % 5 == 0 and not stop.is_set():
                    t = time.perf_counter()
                    workflow.return_record(s, me, r.id, r.revision, "世帯状況の記載を補ってください")
                    times["return"].append(time.perf_counter() - t)
                else:
                    t = time.perf_counter()
                    workflow.approve(s, me, r.id, r.revision)
                    times["approve"].append(time.perf_counter() - t)
            except (workflow.ConflictError, workflow.StateError):
                conflicts += 1          # the other supervisor got there first
        if not q:
            if counters_done.is_set() and not s.query_one(
                    "SELECT 1 AS x FROM records WHERE state <> 'approved' LIMIT 1"):
                break
            time.sleep(0.1)
    out.put(("supervisor", name, times, conflicts))
    s.close()


STALL_S = 180


def _backlog(s, where: str) -> int:
    return s.query_one(f"SELECT COUNT(*) AS n FROM records WHERE {where}")["n"]


def _wait_progress(s, where: str) -> None:
    """Until no record matches ``where``; fails only when the count has not fallen for STALL_S."""
    best, since = _backlog(s, where), time.monotonic()
    while best:
        time.sleep(0.5)
        n = _backlog(s, where)
        if n < best:
            best, since = n, time.monotonic()
        elif time.monotonic() - since > STALL_S:
            raise RuntimeError(f"drain stalled: {n} records ({where}) for {STALL_S} s")


def _get(out, procs, s=None):
    """The next result; waits while the workers are alive and (``s``) the approval backlog shrinks."""
    best, since = (_backlog(s, "state <> 'approved'") if s is not None else 0), time.monotonic()
    while True:
        try:
            return out.get(timeout=5)
        except queue_mod.Empty:
            dead = [p for p in procs if p.exitcode not in (None, 0)]
            if dead:
                raise RuntimeError(f"worker {dead[0].name} exited with {dead[0].exitcode}")
            n = _backlog(s, "state <> 'approved'") if s is not None else 0
            if n < best:
                best, since = n, time.monotonic()
            elif time.monotonic() - since > STALL_S:
                raise RuntimeError(f"no result and no progress for {STALL_S} s ({n} records not approved)")


def run(url: str, n_counters: int, duration: float, think: float) -> dict:
    from engine import audit, users
    from engine.store import ServerStore
    s = ServerStore(url)
    if s.query_one("SELECT 1 AS x FROM records LIMIT 1"):
        raise SystemExit("the benchmark needs an empty database")
    admin = users.add_user(s, None, "bench-admin", "管理者", "admin", "bench-admin-pass")
    names = [f"c{i:02d}" for i in range(1, n_counters + 1)]
    for n in names:
        users.add_user(s, admin, n, n, "staff", "bench-pass-123")
    for n in ("sup1", "sup2"):
        users.add_user(s, admin, n, n, "supervisor", "bench-pass-123")
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(n_counters + 2 + 1)
    stop, drained, counters_done, out = ctx.Event(), ctx.Event(), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=counter, args=(url, n, think, barrier, stop, drained, out)) for n in names]
    procs += [ctx.Process(target=supervisor, args=(url, n, barrier, stop, counters_done, out)) for n in ("sup1", "sup2")]
    for p in procs:
        p.start()
    barrier.wait(timeout=300)
    load0 = os.getloadavg()
    t0 = time.monotonic()
    time.sleep(duration)
    stop.set()
    load1 = os.getloadavg()
    t_stop = time.monotonic() - t0
    # drain: supervisors approve what is left; counters fix what was returned before the stop. The
    # backlog after 10 minutes can take longer than any fixed timeout (the first 10-minute row run
    # waited 300 s, gave up and stopped the server under the still-working supervisors): wait as
    # long as the backlog shrinks, give up only after STALL_S without progress.
    try:
        _wait_progress(s, "state NOT IN ('approved', 'submitted')")
        drained.set()
        results, sups = [], []
        while len(results) < n_counters:
            results.append(_get(out, procs))
        counters_done.set()
        while len(sups) < 2:
            sups.append(_get(out, procs, s))
        for p in procs:
            p.join(60)
    finally:
        for p in procs:          # never leave them working against a server that is about to stop
            if p.is_alive():
                p.terminate()
                p.join(10)
    t_all = time.monotonic() - t0
    created = [rid for r in results for rid in r[3]]
    sessions = [u for r in results for u in r[4]]
    rows = s.query("SELECT id, uid, state FROM records")
    by_id = {r["id"]: r for r in rows}
    seg = s.query_one("SELECT COUNT(*) AS n FROM segments")["n"]
    per_session = s.query("SELECT session_id, COUNT(*) AS n FROM segments GROUP BY session_id")
    acts = {r["action"]: r["n"] for r in s.query(
        "SELECT action, COUNT(*) AS n FROM audit_log WHERE object_type = 'record' GROUP BY action")}
    t = time.perf_counter()
    chain_ok, bad = audit.verify(s)
    verify_s = time.perf_counter() - t
    times: dict[str, list[float]] = {}
    for r in results + sups:
        for k, v in r[2].items():
            times.setdefault(k, []).extend(v)
    res = {
        "counters": n_counters, "supervisors": 2, "duration_s": round(t_stop, 1), "total_s": round(t_all, 1),
        "think_s": think, "load_start": load0, "load_stop": load1, "locking": s.locking,
        "records": len(created), "sessions": len(sessions), "segments": seg,
        "lost": len([i for i in created if i not in by_id]),
        "duplicated": len(rows) - len({r["uid"] for r in rows}) + (len(created) - len(set(created))),
        "extra_rows": len(rows) - len(set(created)),
        "not_approved": sum(1 for r in rows if r["state"] != "approved"),
        "sessions_short": sum(1 for r in per_session if r["n"] != SEGMENTS) + (len(sessions) - len(per_session)),
        "audit_ok": chain_ok, "audit_first_bad": bad, "audit_entries": s.query_one(
            "SELECT COUNT(*) AS n FROM audit_log")["n"], "audit_verify_s": round(verify_s, 2), "actions": acts,
        "conflicts_supervisors": sum(r[3] for r in sups), "conflicts_counters": sum(r[5] for r in results),
        "steps": {k: {"n": len(v), "p50_ms": 1000 * statistics.median(v) if v else float("nan"),
                      "p95_ms": 1000 * _pct(v, 95), "max_ms": 1000 * max(v) if v else float("nan")}
                  for k, v in times.items()},
    }
    s.close()
    return res


def markdown(r: dict, note: str) -> str:
    rate = lambda n: f"{n / r['duration_s'] * 60:.0f}/min"  # noqa: E731
    lines = [
        "## Office server (issue 10)",
        "",
        f"`bench/server.py --duration {r['duration_s']:.0f}`: {r['counters']} counter processes (each: a session with "
        f"{SEGMENTS} segments written one by one, draft, submit, fix and resubmit what is returned; think time "
        f"{r['think_s']} s) and {r['supervisors']} supervisor processes (approve; every fifth returned 差戻し) on one "
        f"PostgreSQL 15 on loopback (fsync off), all on this machine. Load average at start/stop: "
        f"{r['load_start'][0]:.1f} / {r['load_stop'][0]:.1f}. {note}".rstrip(),
        "",
        f"| records drafted | sessions | segments | approved at the end | lost | duplicated | audit chain |",
        "|---|---|---|---|---|---|---|",
        f"| {r['records']} ({rate(r['records'])}) | {r['sessions']} | {r['segments']} ({r['segments'] / r['duration_s']:.0f}/s) "
        f"| {r['records'] - r['not_approved']} | {r['lost']} | {r['duplicated']} | "
        f"{'verified' if r['audit_ok'] else 'BROKEN at ' + str(r['audit_first_bad'])}, {r['audit_entries']} entries "
        f"({r['audit_verify_s']} s to verify) |",
        "",
        "| step | n | p50 ms | p95 ms | max ms |",
        "|---|---|---|---|---|",
    ]
    for k in ("session", "segment", "create", "submit", "queue", "approve", "return", "save", "resubmit",
              "lock wait"):
        v = r["steps"].get(k)
        if v and v["n"]:
            lines.append(f"| {k} | {v['n']} | {v['p50_ms']:.1f} | {v['p95_ms']:.1f} | {v['max_ms']:.1f} |")
    lines += ["", f"Server-store locking mode `{r['locking']}`. `lock wait`: time a transaction waited for its "
              "lock (row mode: the audit-chain lock; office mode: the office-wide lock at BEGIN), part of each "
              "workflow step above."]
    lines += ["", f"Optimistic-lock conflicts seen (another supervisor was first; reloaded, not overwritten): "
              f"{r['conflicts_supervisors']} by supervisors, {r['conflicts_counters']} by counters. "
              f"Drain after the stop took {r['total_s'] - r['duration_s']:.0f} s. Audit actions: "
              + ", ".join(f"{k} {v}" for k, v in sorted(r["actions"].items())) + "."]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=600, help="seconds of drafting (default 600 = 10 min)")
    ap.add_argument("--counters", type=int, default=20)
    ap.add_argument("--think", type=float, default=0.5, help="seconds a counter waits between consultations")
    ap.add_argument("--server", default=None, help="an existing, empty server database (default: own loopback server)")
    ap.add_argument("--note", default="", help="a sentence added to the report (conditions)")
    ap.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    a = ap.parse_args()
    srv = None
    url = a.server
    if url is None:
        from devkit import pg as server_pg
        srv = server_pg.server()
        name = srv.fresh_database()
        url = srv.url(name)
    try:
        r = run(url, a.counters, a.duration, a.think)
    finally:
        if srv is not None:
            keep = Path(os.environ.get("TMPDIR", "/tmp")) / "madoguchi-bench-server-pg.log"
            srv.stop(keep_log=keep)     # the server's own log outlives its temporary folder
            print(f"server log: {keep}", file=sys.stderr)
    import json
    print(json.dumps(r, indent=1, ensure_ascii=False))
    md = markdown(r, a.note)
    print(md)
    if not a.no_write:
        from bench._report import write_section
        write_section("server", md)
    ok = r["lost"] == 0 and r["duplicated"] == 0 and r["extra_rows"] == 0 and r["not_approved"] == 0 \
        and r["sessions_short"] == 0 and r["audit_ok"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
