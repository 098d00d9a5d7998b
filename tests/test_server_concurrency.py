"""Several processes on one office server at once: optimistic locking, one audit chain, a
connection cut mid-transaction. Real PostgreSQL on loopback, real processes (spawn), in both
locking modes of the server store."""
import multiprocessing as mp
import time

import pytest

from engine import audit, users
from engine.records import workflow
from engine.store import ServerStore, ServerUnavailable
from tests.server_pg import pg_url, server  # noqa: F401  (fixture)
from devkit.records import make_draft


@pytest.fixture(autouse=True, params=["office", "row"])
def locking(request, monkeypatch):
    """Both locking modes of the server store (the worker processes inherit the environment)."""
    monkeypatch.setenv("MADOGUCHI_SERVER_LOCKING", request.param)
    return request.param


def _people(url):
    s = ServerStore(url)
    admin = users.add_user(s, None, "admin", "管理者", "admin", "admin-pass-1")
    for name, role in (("tanaka", "staff"), ("suzuki", "staff"), ("sato", "supervisor"), ("kato", "supervisor")):
        users.add_user(s, admin, name, name, role, "password-1234")
    return s


def _audit_writer(url, n, barrier):
    s = ServerStore(url, migrate=False)
    barrier.wait()
    for i in range(n):
        audit.append(s, "w", "test.concurrent", "n", i)
    s.close()


def test_audit_chain_stays_one_chain_under_concurrent_writers(pg_url, locking):
    s = ServerStore(pg_url)
    assert s.locking == locking
    ctx = mp.get_context("spawn")
    procs, n = 6, 25
    barrier = ctx.Barrier(procs)
    ps = [ctx.Process(target=_audit_writer, args=(pg_url, n, barrier)) for _ in range(procs)]
    [p.start() for p in ps]
    [p.join(120) for p in ps]
    assert all(p.exitcode == 0 for p in ps)
    ids = [r["id"] for r in s.query("SELECT id FROM audit_log ORDER BY id")]
    assert ids == list(range(1, procs * n + 1))
    assert audit.verify(s) == (True, None)
    s.close()


def _approver(url, name, record_id, revision, barrier, out):
    s = ServerStore(url, migrate=False)
    sup = users.get_user(s, name)
    barrier.wait()
    try:
        workflow.approve(s, sup, record_id, revision)
        out.put((name, "approved"))
    except workflow.ConflictError as e:
        out.put((name, f"conflict: {e}"))
    s.close()


def test_two_supervisors_approving_at_once_one_wins_one_gets_a_conflict(pg_url):
    s = _people(pg_url)
    staff = users.get_user(s, "tanaka")
    rec = workflow.submit(s, staff, workflow.create(s, staff, make_draft()).id, 1)
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(2), ctx.Queue()
    ps = [ctx.Process(target=_approver, args=(pg_url, n, rec.id, rec.revision, barrier, out)) for n in ("sato", "kato")]
    [p.start() for p in ps]
    results = sorted(out.get(timeout=120)[1].split(":")[0] for _ in ps)
    [p.join(60) for p in ps]
    assert results == ["approved", "conflict"]
    approvals = [e for e in audit.entries(s, "record", rec.id) if e.action == "record.approve"]
    assert len(approvals) == 1
    assert audit.verify(s) == (True, None)
    s.close()


def test_approving_a_version_that_was_just_resubmitted_is_a_conflict(pg_url):
    s1 = _people(pg_url)                   # the supervisor's PC
    s2 = ServerStore(pg_url)               # the counter's PC and a second supervisor
    staff, sato, kato = (users.get_user(s1, n) for n in ("tanaka", "sato", "kato"))
    rec = workflow.create(s2, staff, make_draft())
    rec = workflow.submit(s2, staff, rec.id, rec.revision)
    seen = workflow.get(s1, sato, rec.id)                      # sato opens version 1 for approval
    r = workflow.return_record(s2, kato, rec.id, rec.revision, "収入の記載を確認")
    r = workflow.save(s2, staff, r.id, make_draft(flagged=False), r.revision)
    r = workflow.submit(s2, staff, r.id, r.revision)           # version 2, 再提出
    with pytest.raises(workflow.ConflictError) as e:
        workflow.approve(s1, sato, seen.id, seen.revision)
    assert "changed meanwhile" in str(e.value) and "ほかの人" in e.value.ja
    now = workflow.get(s1, sato, rec.id)
    assert (now.state, now.version, now.approved_version, now.resubmitted) == ("submitted", 2, None, True)
    assert workflow.approve(s1, sato, now.id, now.revision).approved_version == 2
    s1.close()
    s2.close()


def test_connection_cut_mid_transaction_leaves_nothing_half_written(pg_url):
    s = _people(pg_url)
    staff = users.get_user(s, "tanaka")
    before = s.query_one("SELECT COUNT(*) AS n FROM records")["n"]
    with pytest.raises(ServerUnavailable):
        with s.transaction():
            s.insert("records", {"uid": "cut-1", "template": "t", "owner": "tanaka", "created_at": 1.0,
                                 "updated_at": 1.0})
            pid = s.query_one("SELECT pg_backend_pid() AS p")["p"]
            server().admin("SELECT pg_terminate_backend(%s)", (pid,))
            s.insert("record_versions", {"record_id": 1, "version": 1, "state": "draft", "content": "{}",
                                         "author": "tanaka", "created_at": 1.0})
    # the server rolled the transaction back; the next call reconnects by itself
    assert s.query_one("SELECT COUNT(*) AS n FROM records")["n"] == before
    rec = workflow.create(s, staff, make_draft())
    assert workflow.get(s, staff, rec.id).version == 1 and audit.verify(s) == (True, None)
    s.close()


def _counter(url, name, n, out):
    s = ServerStore(url, migrate=False)
    u = users.get_user(s, name)
    for _ in range(n):
        r = workflow.create(s, u, make_draft())
        workflow.submit(s, u, r.id, r.revision)
    out.put((name, n))
    s.close()


def _supervisor(url, name, stop_after, out):
    s = ServerStore(url, migrate=False)
    u = users.get_user(s, name)
    approved = conflicts = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        queue = workflow.list_records(s, u, state="submitted", limit=20)
        for r in queue:
            try:
                workflow.approve(s, u, r.id, r.revision)
                approved += 1
            except (workflow.ConflictError, workflow.StateError):
                conflicts += 1
        total = s.query_one("SELECT COUNT(*) AS n FROM records WHERE state = 'approved'")["n"]
        if total >= stop_after:
            break
        time.sleep(0.05)
    out.put((name, approved, conflicts))
    s.close()


def test_counters_and_supervisors_at_once_nothing_lost_or_doubled(pg_url):
    s = _people(pg_url)
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    n = 8
    ps = [ctx.Process(target=_counter, args=(pg_url, who, n, out)) for who in ("tanaka", "suzuki")]
    ps += [ctx.Process(target=_supervisor, args=(pg_url, who, 2 * n, out)) for who in ("sato", "kato")]
    [p.start() for p in ps]
    results = [out.get(timeout=180) for _ in ps]
    [p.join(60) for p in ps]
    sup = [r for r in results if len(r) == 3]
    assert sum(r[1] for r in sup) == 2 * n                               # each record approved exactly once
    rows = s.query("SELECT state, approved_version, revision FROM records")
    assert len(rows) == 2 * n and all(r["state"] == "approved" and r["approved_version"] == 1 for r in rows)
    assert s.query_one("SELECT COUNT(*) AS n FROM record_versions")["n"] == 2 * n
    acts = [r["action"] for r in s.query("SELECT action FROM audit_log WHERE object_type = 'record'")]
    assert (acts.count("record.create"), acts.count("record.submit"), acts.count("record.approve")) == (2 * n,) * 3
    assert audit.verify(s) == (True, None)
    s.close()
