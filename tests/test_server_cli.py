"""``madoguchi server init|migrate|check`` and moving a single-PC SQLite store onto the server."""
import json

from engine import audit, users
from engine.cli import main
from engine.context import open_context
from engine.records import workflow
from tests.server_pg import pg_url, server  # noqa: F401  (fixture)
from devkit.records import make_draft


def test_check_init_and_unreachable(pg_url, capsys):
    assert main(["server", "check", "--json", "--server", pg_url]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] and out["reachable"] and out["schema_version"] == out["latest_version"]
    assert out["missing_triggers"] == [] and out["tls"] is False       # loopback test server has no TLS
    # init creates a missing database and applies the schema
    srv = server()
    name = f"init_{srv.port}"
    try:
        assert main(["server", "init", "--json", "--server", srv.url(name)]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["created_database"] and out["applied"][0] == 1 and out["ok"]
        assert main(["server", "migrate", "--json", "--server", srv.url(name)]) == 0
        assert json.loads(capsys.readouterr().out)["applied"] == []
    finally:
        srv.drop_database(name)
    # a server that is not there: a clear answer and exit status 2
    assert main(["server", "check", "--server", f"127.0.0.1:{srv.port + 101}"]) == 2
    cap = capsys.readouterr()
    assert "reachable          False" in cap.out and "not ready" in cap.err


def test_sqlite_store_moves_onto_the_server(pg_url, data_dir, monkeypatch, capsys):
    # a single PC's store: users, an approved and a draft record, a session with segments, audit entries
    c = open_context(data_dir)
    s = c.store
    admin = users.add_user(s, None, "admin", "管理者", "admin", "admin-pass-1")
    staff = users.add_user(s, admin, "tanaka", "田中", "staff", "staff-pass-1")
    sup = users.add_user(s, admin, "sato", "佐藤", "supervisor", "super-pass-1")
    sid = s.insert("sessions", {"uid": "sess-1", "started_at": 1.0})
    s.executemany("INSERT INTO segments (session_id, seq, start, end, text, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                  [(sid, i, i * 2.0, i * 2.0 + 1.5, f"発言{i}", 1.0) for i in range(1, 6)])
    rec = workflow.create(s, staff, make_draft(), session_id=sid)
    rec = workflow.approve(s, sup, rec.id, workflow.submit(s, staff, rec.id, rec.revision).revision)
    workflow.create(s, staff, make_draft())
    head = s.get_setting(audit.HEAD_KEY)
    n_audit = s.query_one("SELECT COUNT(*) AS n FROM audit_log")["n"]
    c.close()

    assert main(["--data-dir", str(data_dir), "server", "migrate", "--from-sqlite", "--json", "--server", pg_url]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["imported"]["records"] == 2 and out["imported"]["segments"] == 5
    assert out["imported"]["audit_log"] == n_audit and "manual_chunks" not in out["imported"]

    monkeypatch.setenv("MADOGUCHI_OFFICE_SERVER", pg_url)
    c = open_context(data_dir)
    s = c.store
    assert s.backend == "postgresql"
    assert s.get_setting(audit.HEAD_KEY) == head and audit.verify(s) == (True, None)
    moved = workflow.approved(s, sup, rec.id)
    assert moved.version == 1 and moved.content.to_dict() == rec.content.to_dict()
    assert [r["end"] for r in s.query("SELECT end FROM segments WHERE session_id = ? ORDER BY seq", (sid,))] == \
        [i * 2.0 + 1.5 for i in range(1, 6)]
    users.sign_in(s, "tanaka", "staff-pass-1")                     # password hashes moved too
    new = workflow.create(s, staff, make_draft())                  # identity sequences moved past the ids
    assert new.id == 3 and audit.verify(s) == (True, None)
    c.close()
    # a second move onto the now-used server is refused: two chains cannot become one
    monkeypatch.delenv("MADOGUCHI_OFFICE_SERVER")
    assert main(["--data-dir", str(data_dir), "server", "migrate", "--from-sqlite", "--server", pg_url]) == 2
    assert "already holds data" in capsys.readouterr().err


def test_tls_verified_with_the_office_ca_and_said_plainly_otherwise(capsys, tmp_path, monkeypatch):
    """server.sslrootcert (the office CA) → sslmode=verify-full; a bare host without a CA → TLS when
    offered but unverified, and ``server check`` says so; a certificate from another CA is refused."""
    from engine.store import ServerRefused
    from tests.server_pg import PgServer, make_ca
    srv = PgServer(tls=True)
    try:
        srv.admin("CREATE ROLE madoguchi LOGIN")
        srv.admin("CREATE DATABASE madoguchi OWNER madoguchi")
        host = f"localhost:{srv.port}"
        ca = str(srv.ca_cert)
        assert main(["server", "init", "--json", "--server", host, "--sslrootcert", ca]) == 0
        cap = capsys.readouterr()
        out = json.loads(cap.out)
        assert out["tls"] is True and out["tls_verified"] and out["ok"] and out["applied"][-1] == out["latest_version"]
        assert "verify-full" in out["tls_detail"] and "encrypted" not in cap.err
        # no CA configured: encrypted (the server offers it) but not verified — said plainly
        assert main(["server", "check", "--json", "--server", host]) == 0
        cap = capsys.readouterr()
        out = json.loads(cap.out)
        assert out["tls"] is True and not out["tls_verified"] and "NOT verified" in out["tls_detail"]
        assert "warning: the server's certificate is not verified" in cap.err
        assert main(["server", "check", "--server", f"postgresql://madoguchi@{host}/madoguchi?sslmode=disable"]) == 0
        cap = capsys.readouterr()
        assert "NOT encrypted" in cap.out and "warning: the connection to the office server is NOT encrypted" in cap.err
        # the config key, through the desktop's/engine's usual way in (user config)
        (tmp_path / "user-config.toml").write_text(
            f'office_server = "{host}"\n[server]\nsslrootcert = "{ca}"\n', encoding="utf-8")
        monkeypatch.setenv("MADOGUCHI_USER_CONFIG", str(tmp_path / "user-config.toml"))
        ctx = open_context(tmp_path / "data")
        try:
            assert ctx.store.backend == "postgresql" and ctx.store.current().pg.pgconn.ssl_in_use
            assert "sslmode=verify-full" in ctx.store.current().conninfo
        finally:
            ctx.close()
        # a server certificate the office CA did not sign: refused, not treated as offline
        other = make_ca(tmp_path / "other", "Some other CA")
        from engine.store import ServerStore, server_conninfo
        import pytest
        with pytest.raises(ServerRefused) as e:
            ServerStore(server_conninfo(host, str(other)))
        assert "certificate" in str(e.value) and "証明書" in e.value.ja
        assert main(["server", "check", "--server", host, "--sslrootcert", str(other)]) == 2
        assert "certificate" in capsys.readouterr().out
        # a CA file that is not there: an error, never a silent downgrade to unverified TLS
        assert main(["server", "check", "--server", host, "--sslrootcert", str(tmp_path / "missing.crt")]) == 2
        assert "does not exist" in capsys.readouterr().err
    finally:
        srv.stop()
