"""Offline state: the office server goes away, recording goes on in the local file, and what was
recorded reaches the server once it is back — once, even when the sync itself is cut off."""
import json
import time
import uuid

import pytest

from engine import users
from engine.cli import main
from engine.context import open_context
from engine.records import workflow
from engine.store import ServerStore, ServerUnavailable, Store, offline_pending
from tests.server_pg import PgServer
from devkit.records import make_draft


@pytest.fixture
def own_server():
    srv = PgServer()               # its own server: this test takes it down and brings it back
    yield srv
    srv.stop()


def _record(store, n_segments=4, finish=True):
    """What engine.asr.session writes while recording: a session row, then each final segment."""
    sid = store.insert("sessions", {"uid": uuid.uuid4().hex, "staff_user": "tanaka", "started_at": time.time()})
    for i in range(1, n_segments + 1):
        store.insert("segments", {"session_id": sid, "seq": i, "start": 2.0 * i, "end": 2.0 * i + 1.5,
                                  "speaker": "staff", "text": f"オフライン発言{i}", "created_at": time.time()})
    if finish:
        store.execute("UPDATE sessions SET state = 'stopped', stopped_at = ? WHERE id = ?", (time.time(), sid))
    return store.query_one("SELECT uid FROM sessions WHERE id = ?", (sid,))["uid"]


def test_offline_recording_is_sent_once_when_the_server_is_back(own_server, data_dir, monkeypatch, capsys):
    url = own_server.url(own_server.fresh_database())
    monkeypatch.setenv("MADOGUCHI_OFFICE_SERVER", url)
    c = open_context(data_dir)
    admin = users.add_user(c.store, None, "admin", "管理者", "admin", "admin-pass-1")
    staff = users.add_user(c.store, admin, "tanaka", "田中", "staff", "staff-pass-1")
    c.close()

    own_server.pause()                                             # the office network is down
    c = open_context(data_dir)
    assert c.store.backend == "offline"
    uids = [_record(c.store) for _ in range(3)]
    open_uid = _record(c.store, finish=False)                      # still recording: not sent yet
    with pytest.raises(ServerUnavailable) as e:                    # server-side work says so clearly
        workflow.create(c.store, staff, make_draft())
    assert "サーバー" in e.value.ja
    with pytest.raises(ServerUnavailable):
        users.sign_in(c.store, "tanaka", "staff-pass-1")
    assert offline_pending(c.store) == uids
    c.close()

    own_server.resume()
    # the first sync is cut off in the middle of the second session
    local = Store(data_dir / "madoguchi.db")
    dst = ServerStore(url, local=local)
    real_insert, calls = dst.insert, []

    def cut(table, row):
        calls.append(table)
        if len(calls) == 8:                                        # session 2, its 2nd segment
            own_server.admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                             (url.rsplit("/", 1)[1].split("?")[0],))
        return real_insert(table, row)
    monkeypatch.setattr(dst, "insert", cut)
    from engine.office.link import sync_offline
    with pytest.raises(ServerUnavailable):
        sync_offline(local, dst)
    dst.close()

    c = open_context(data_dir)                                     # next start: the rest is sent
    s = c.store
    assert s.backend == "postgresql"
    on_server = s.query("SELECT uid, (SELECT COUNT(*) FROM segments g WHERE g.session_id = x.id) AS n "
                        "FROM sessions x ORDER BY id")
    assert [r["uid"] for r in on_server] == uids and all(r["n"] == 4 for r in on_server)
    assert offline_pending(c.local) == []
    c.close()
    assert main(["--data-dir", str(data_dir), "server", "sync", "--json"]) == 0   # nothing left, nothing doubled
    assert json.loads(capsys.readouterr().out) == {"sent": 0, "already_there": 0, "segments": 0, "signins": 0}
    # the session that was still recording goes once it is finished
    lite = Store(data_dir / "madoguchi.db")
    lite.execute("UPDATE sessions SET state = 'stopped' WHERE uid = ?", (open_uid,))
    lite.close()
    assert main(["--data-dir", str(data_dir), "server", "sync", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["sent"] == 1
    c = open_context(data_dir)
    assert c.store.query_one("SELECT COUNT(*) AS n, COUNT(DISTINCT uid) AS d FROM sessions") == {"n": 4, "d": 4}
    c.close()
