"""The office server goes away while a counter is working: a recording in progress keeps its
transcript in this PC's journal, new recordings go to the local file, staff who signed in on this
PC before may sign in offline, and on reconnect everything reaches the server once."""
import os
import time
import uuid

import pytest

from engine import audit, users
from engine.asr import sessions
from engine.office.link import check_link
from engine.context import open_context
from engine.store import ServerStore, ServerUnavailable, Store, offline_pending
from tests.server_pg import PgServer, pg_url  # noqa: F401  (fixture)


@pytest.fixture
def own_server():
    srv = PgServer()
    yield srv
    srv.stop()


def _segment(store, sid, seq):
    # a recording's write, made the way a recording makes it (journaled while the server is away)
    return sessions.add_segment(store, sid, seq, 2.0 * seq, 2.0 * seq + 1.5, "staff", f"発言{seq}")


def test_outage_mid_recording_journal_replay_and_offline_sessions(own_server, data_dir, monkeypatch):
    url = own_server.url(own_server.fresh_database())
    monkeypatch.setenv("MADOGUCHI_OFFICE_SERVER", url)
    ctx = open_context(data_dir)
    shared, st = ctx.store, ctx.store.current()              # st: the backend a recording keeps to its end
    assert check_link(ctx)["online"] and ctx.online and ctx.store.current() is st
    sid = st.insert("sessions", {"uid": uuid.uuid4().hex, "staff_user": "tanaka", "started_at": time.time(),
                                 "pid": os.getpid()})
    _segment(st, sid, 1)
    _segment(st, sid, 2)

    own_server.pause()                                        # the network goes down mid-recording
    t = time.perf_counter()
    assert _segment(st, sid, 3) is None                       # journaled: no server id yet, no error
    assert st.down and st.journal_size() == 1
    _segment(st, sid, 4)
    sessions.heartbeat(st, sid, 9.0)
    assert time.perf_counter() - t < 5                        # no connect timeout per statement while down
    with pytest.raises(ServerUnavailable):                    # server data is not faked locally
        st.query("SELECT * FROM records")

    s = check_link(ctx)
    assert not s["online"] and s["changed"] and not ctx.online and ctx.store.backend == "offline"
    assert ctx.store is shared                                # switched behind the same object
    off = ctx.store
    sid2 = off.insert("sessions", {"uid": uuid.uuid4().hex, "staff_user": "tanaka", "started_at": time.time()})
    _segment(off, sid2, 1)
    sessions.mark_stopped(off, sid2, 2.0)
    _segment(st, sid, 5)                                      # the first recording goes on meanwhile
    sessions.mark_stopped(st, sid, 9.0)
    s = check_link(ctx)
    assert not s["online"] and not s["changed"] and s["pending"] == 1

    own_server.resume()
    s = check_link(ctx)
    assert s["online"] and s["changed"] and s["replayed"] == 5 and s["sent"] == 1 and s["pending"] == 0
    assert ctx.online and ctx.store is shared and ctx.store.current() is st
    assert st.down is None and st.journal_size() == 0
    segs = st.query("SELECT seq FROM segments WHERE session_id = ? ORDER BY seq", (sid,))
    assert [r["seq"] for r in segs] == [1, 2, 3, 4, 5]
    assert st.query_one("SELECT state, audio_seconds, pid FROM sessions WHERE id = ?", (sid,)) == \
        {"state": "stopped", "audio_seconds": 9.0, "pid": None}   # stopped offline: offered for drafting
    assert st.query_one("SELECT COUNT(*) AS n FROM sessions")["n"] == 2

    # a journaled write whose reply was lost (it did reach the server) is not doubled by the replay
    st.down = "test: reply lost"
    _segment(st, sid, 2)
    sessions.heartbeat(st, sid, 9.5)
    assert st.reconnect() == 2 and st.reconnect() == 0
    assert st.query_one("SELECT COUNT(*) AS n FROM segments WHERE session_id = ?", (sid,))["n"] == 5
    assert check_link(ctx)["sent"] == 0               # and the offline session is not sent again
    assert st.query_one("SELECT COUNT(*) AS n, COUNT(DISTINCT uid) AS d FROM sessions") == {"n": 2, "d": 2}
    ctx.close()


def test_terminated_connections_reopen_without_an_offline_state(pg_url, tmp_path):
    st = ServerStore(pg_url, local=Store(tmp_path / "local.db"))
    admin = users.add_user(st, None, "admin", "管理者", "admin", "admin-pass-1")
    sid = st.insert("sessions", {"uid": uuid.uuid4().hex, "staff_user": "admin", "started_at": time.time()})
    from tests.server_pg import server as test_server
    db = pg_url.rsplit("/", 1)[1].split("?")[0]
    for step in range(3):
        test_server().admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (db,))
        if step == 0:
            assert _segment(st, sid, 1) > 0                  # a recording write: reconnected and sent
        elif step == 1:
            assert st.query_one("SELECT username FROM users WHERE id = ?", (admin.id,))["username"] == "admin"
        else:                                                 # a transaction: starts again on a new connection
            users.add_user(st, admin, "tanaka", "田中", "staff", "staff-pass-1")
        assert st.down is None and st.journal_size() == 0
    assert audit.verify(st) == (True, None)
    st.close()


def test_offline_sign_in_rules(tmp_path):
    local = Store(tmp_path / "local.db")
    staff = users.User(7, "tanaka", "田中", "staff")
    admin = users.User(1, "kanri", "管理", "admin")
    now = time.time()
    users.remember_sign_in(local, staff, "staff-pass-1", now=now)
    users.remember_sign_in(local, admin, "admin-pass-1", now=now)
    u = users.offline_sign_in(local, "tanaka", "staff-pass-1", now=now + 60)
    assert (u.id, u.role, u.display_name) == (7, "staff", "田中")
    vs = local.get_setting(users.OFFLINE_VERIFIERS_KEY)
    assert "kanri" not in vs and "staff-pass-1" not in str(vs)  # admins never offline; no plain password
    with pytest.raises(users.SignInError) as e:
        users.offline_sign_in(local, "kanri", "admin-pass-1")
    assert "サーバー" in e.value.ja
    with pytest.raises(users.SignInError):                    # too old
        users.offline_sign_in(local, "tanaka", "staff-pass-1", now=now + 8 * 86400)
    for _ in range(users.OFFLINE_SIGNIN_MAX_FAILURES):
        with pytest.raises(users.SignInError):
            users.offline_sign_in(local, "tanaka", "wrong", now=now + 60)
    with pytest.raises(users.SignInLocked):                   # locked until a server sign-in
        users.offline_sign_in(local, "tanaka", "staff-pass-1", now=now + 60)
    users.remember_sign_in(local, staff, "staff-pass-1")
    assert users.offline_sign_in(local, "tanaka", "staff-pass-1").username == "tanaka"
    assert [e["username"] for e in local.get_setting(users.OFFLINE_SIGNINS_KEY)] == ["tanaka", "tanaka"]
    local.close()


def test_a_server_name_that_does_not_resolve_means_offline(tmp_path):
    from engine import netguard
    from engine.store import open_store
    netguard.install("nosuchhost.invalid")
    st = open_store(tmp_path, server="nosuchhost.invalid")        # DNS down / name gone: offline, no traceback
    assert st.backend == "offline" and "cannot resolve" in st.offline_reason
    st.close()


def test_the_shared_store_swaps_behind_one_object_and_a_transaction_stays_put(tmp_path):
    import threading
    from engine.store import SharedStore
    a, b = Store(tmp_path / "a.db"), Store(tmp_path / "b.db")
    shared = SharedStore(a)
    with shared.transaction():
        shared.set_setting("where", "a")
        t = threading.Thread(target=shared.swap, args=(b,))    # the link switches from its worker thread
        t.start()
        t.join()
        assert shared.current() is a                           # this transaction stays on its backend
        with shared.transaction():                             # and a nested one joins it there
            shared.set_setting("nested", "a")
    assert shared.current() is b and shared.get_setting("where") is None
    shared.set_setting("where", "b")
    assert a.get_setting("where") == a.get_setting("nested") == "a" and b.get_setting("where") == "b"
    shared.close()                                             # closes every backend it has held
