"""Users, sign-in with rate limiting, roles, and the hash-chained audit log (real SQLite)."""
import sqlite3

import pytest

from engine import audit, users
from engine.cli import main


@pytest.fixture
def people(ctx):
    s = ctx.store
    admin = users.add_user(s, None, "admin", "管理者", "admin", "admin-pass-1")
    staff = users.add_user(s, admin, "tanaka", "田中", "staff", "staff-pass-1")
    sup = users.add_user(s, admin, "sato", "佐藤係長", "supervisor", "super-pass-1")
    return admin, staff, sup


def test_first_user_must_be_admin(ctx):
    with pytest.raises(users.UserError):
        users.add_user(ctx.store, None, "x", "x", "staff", "long-enough")
    users.add_user(ctx.store, None, "root", "root", "admin", "long-enough")
    with pytest.raises(users.PermissionDenied):
        users.add_user(ctx.store, None, "y", "y", "staff", "long-enough")


def test_password_is_argon2_and_sign_in(ctx, people):
    row = ctx.store.query_one("SELECT password_hash FROM users WHERE username='tanaka'")
    assert row["password_hash"].startswith("$argon2id$")
    assert "staff-pass-1" not in row["password_hash"]
    u = users.sign_in(ctx.store, "tanaka", "staff-pass-1")
    assert u.role == "staff"
    with pytest.raises(users.SignInError):
        users.sign_in(ctx.store, "tanaka", "wrong")
    with pytest.raises(users.SignInError):
        users.sign_in(ctx.store, "nobody", "whatever")


def test_rate_limit_locks_even_correct_password(ctx, people):
    for _ in range(users.MAX_FAILURES):
        with pytest.raises(users.SignInError):
            users.sign_in(ctx.store, "tanaka", "bad-guess", now=1000.0)
    with pytest.raises(users.SignInLocked) as e:
        users.sign_in(ctx.store, "tanaka", "staff-pass-1", now=1001.0)
    assert "ロック" in e.value.ja
    # after the lock expires the right password works and resets the counter
    u = users.sign_in(ctx.store, "tanaka", "staff-pass-1", now=1000.0 + users.LOCK_SECONDS + 1)
    assert u.username == "tanaka"
    assert ctx.store.query_one("SELECT failed_attempts FROM users WHERE username='tanaka'")["failed_attempts"] == 0


def test_roles_refused(ctx, people):
    admin, staff, sup = people
    with pytest.raises(users.PermissionDenied) as e:
        users.add_user(ctx.store, staff, "z", "z", "staff", "long-enough")
    assert e.value.ja
    with pytest.raises(users.PermissionDenied):
        users.list_users(ctx.store, staff)
    with pytest.raises(users.PermissionDenied):
        users.set_password(ctx.store, staff, "sato", "new-password-1")
    users.set_active(ctx.store, admin, "tanaka", False)
    with pytest.raises(users.SignInError):
        users.sign_in(ctx.store, "tanaka", "staff-pass-1")


def test_own_password_change_needs_old_password(ctx, people):
    admin, staff, sup = people
    with pytest.raises(users.SignInError):
        users.set_password(ctx.store, staff, "tanaka", "brand-new-1", old_password="nope")
    users.set_password(ctx.store, staff, "tanaka", "brand-new-1", old_password="staff-pass-1")
    users.sign_in(ctx.store, "tanaka", "brand-new-1")


def test_audit_chain_verifies_and_detects_tampering(ctx, people):
    s = ctx.store
    for i in range(5):
        audit.append(s, "tanaka", "test.action", "thing", i, {"n": i})
    assert audit.verify(s) == (True, None)
    # the schema refuses updates and deletes outright
    with pytest.raises(sqlite3.DatabaseError):
        s.execute("UPDATE audit_log SET actor='mallory' WHERE id=3")
    with pytest.raises(sqlite3.DatabaseError):
        s.execute("DELETE FROM audit_log WHERE id=3")
    # someone with file access drops the trigger and edits a row: the chain breaks at that row
    target = s.query_one("SELECT id FROM audit_log WHERE action='test.action' ORDER BY id LIMIT 1 OFFSET 2")["id"]
    s.execute("DROP TRIGGER audit_log_no_update")
    s.execute("UPDATE audit_log SET detail='{\"n\":99}' WHERE id=?", (target,))
    assert audit.verify(s) == (False, target)


def test_audit_detects_deleted_rows(ctx, people):
    s = ctx.store
    for i in range(4):
        audit.append(s, "tanaka", "test.action", "thing", i)
    last = s.query_one("SELECT MAX(id) AS m FROM audit_log")["m"]
    s.execute("DROP TRIGGER audit_log_no_delete")
    s.execute("DELETE FROM audit_log WHERE id=?", (last - 2,))
    assert audit.verify(s) == (False, last - 2)
    s.execute("DELETE FROM audit_log WHERE id > ?", (last - 3,))  # cut the tail as well
    ok, bad = audit.verify(s)
    assert not ok and bad == last - 2


def test_sign_in_is_audited_without_passwords(ctx, people):
    users.sign_in(ctx.store, "sato", "super-pass-1")
    with pytest.raises(users.SignInError):
        users.sign_in(ctx.store, "sato", "typo-pass")
    rows = ctx.store.query("SELECT action, detail FROM audit_log WHERE object_id='sato'")
    assert [r["action"] for r in rows][-2:] == ["signin", "signin.fail"]
    assert all("pass" not in r["detail"] for r in rows)


def test_cli_users_and_audit(data_dir, monkeypatch, capsys):
    dd = ["--data-dir", str(data_dir)]
    monkeypatch.setenv("MADOGUCHI_NEW_PASSWORD", "admin-pass-1")
    assert main(dd + ["users", "add", "admin", "--role", "admin"]) == 0
    monkeypatch.setenv("MADOGUCHI_PASSWORD", "admin-pass-1")
    monkeypatch.setenv("MADOGUCHI_NEW_PASSWORD", "staff-pass-1")
    assert main(dd + ["users", "add", "tanaka", "--role", "staff", "--name", "田中", "--user", "admin"]) == 0
    capsys.readouterr()
    assert main(dd + ["users", "list", "--json", "--user", "admin"]) == 0
    out = capsys.readouterr().out
    assert '"tanaka"' in out and '"staff"' in out
    monkeypatch.setenv("MADOGUCHI_PASSWORD", "staff-pass-1")
    assert main(dd + ["users", "add", "eve", "--role", "admin", "--user", "tanaka"]) == 2
    assert "may not" in capsys.readouterr().err
    assert main(dd + ["audit", "verify", "--json"]) == 0
    assert '"ok": true' in capsys.readouterr().out


def test_cli_passwd_deactivate_activate(data_dir, monkeypatch, capsys):
    """Every users subcommand runs from the CLI: passwd (own and by an admin), deactivate, activate;
    a bad new password is one error line and exit 2, the old password still works."""
    from engine.context import open_context
    dd = ["--data-dir", str(data_dir)]
    monkeypatch.setenv("MADOGUCHI_NEW_PASSWORD", "admin-pass-1")
    assert main(dd + ["users", "add", "admin", "--role", "admin"]) == 0
    monkeypatch.setenv("MADOGUCHI_PASSWORD", "admin-pass-1")
    monkeypatch.setenv("MADOGUCHI_NEW_PASSWORD", "staff-pass-1")
    assert main(dd + ["users", "add", "tanaka", "--role", "staff", "--user", "admin"]) == 0
    # own password, with the old one
    monkeypatch.setenv("MADOGUCHI_PASSWORD", "staff-pass-1")
    monkeypatch.setenv("MADOGUCHI_NEW_PASSWORD", "staff-pass-2")
    assert main(dd + ["users", "passwd", "--user", "tanaka"]) == 0
    assert "password of tanaka changed" in capsys.readouterr().out
    # too short: refused with one error line, nothing changed
    monkeypatch.setenv("MADOGUCHI_PASSWORD", "staff-pass-2")
    monkeypatch.setenv("MADOGUCHI_NEW_PASSWORD", "x")
    assert main(dd + ["users", "passwd", "--user", "tanaka"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "Traceback" not in err and len(err.strip().splitlines()) == 1
    # an admin resets it, deactivates and re-activates the account
    monkeypatch.setenv("MADOGUCHI_PASSWORD", "admin-pass-1")
    monkeypatch.setenv("MADOGUCHI_NEW_PASSWORD", "reset-pass-3")
    assert main(dd + ["users", "passwd", "tanaka", "--user", "admin"]) == 0
    assert main(dd + ["users", "deactivate", "tanaka", "--user", "admin"]) == 0
    ctx = open_context(data_dir)
    try:
        with pytest.raises(users.SignInError):
            users.sign_in(ctx.store, "tanaka", "reset-pass-3")
    finally:
        ctx.close()
    assert main(dd + ["users", "activate", "tanaka", "--user", "admin"]) == 0
    ctx = open_context(data_dir)
    try:
        assert users.sign_in(ctx.store, "tanaka", "reset-pass-3").username == "tanaka"
    finally:
        ctx.close()


def test_settings_changes_check_the_role_and_are_audited(ctx, people, tmp_path, monkeypatch, capsys):
    from engine import config as cm
    from engine.admin import change_setting
    admin, staff, sup = people
    path = tmp_path / "user-config.toml"
    assert change_setting(ctx, staff, "asr.device", "USB Mic", path)          # a counter's own microphone
    for who in (staff, sup):                                              # models and folders: admin only
        with pytest.raises(users.PermissionDenied):
            change_setting(ctx, who, "llm.model", "llm-small", path)
        with pytest.raises(users.PermissionDenied):
            change_setting(ctx, who, "retention.audio_days", 1, path)
    assert ctx.config["llm.model"] != "llm-small" and "llm.model" not in path.read_text(encoding="utf-8")
    assert change_setting(ctx, admin, "llm.model", "llm-small", path)
    assert not change_setting(ctx, admin, "llm.model", "llm-small", path)     # unchanged: nothing logged
    assert ctx.config["llm.model"] == "llm-small" and 'model = "llm-small"' in path.read_text(encoding="utf-8")
    with pytest.raises(cm.ConfigError, match="retention.audio_days"):
        change_setting(ctx, admin, "retention.audio_days", -1, path)
    log = [(e.actor, e.action, e.object_id, e.detail) for e in audit.entries(ctx.store, object_type="setting")]
    assert log == [("tanaka", "settings.change", "asr.device", {"old": "", "new": "USB Mic"}),
                   ("admin", "model.change", "llm.model", {"old": "llm-default", "new": "llm-small"})]
    assert audit.verify(ctx.store) == (True, None)


def test_cli_config_set_signs_in(data_dir, monkeypatch, capsys):
    from engine.context import open_context
    c = open_context(data_dir)
    admin = users.add_user(c.store, None, "admin", "管理者", "admin", "admin-pass-1")
    users.add_user(c.store, admin, "tanaka", "田中", "staff", "staff-pass-1")
    c.close()
    dd = ["--data-dir", str(data_dir)]
    monkeypatch.setenv("MADOGUCHI_PASSWORD", "staff-pass-1")
    assert main(dd + ["config", "set", "llm.model", "llm-small", "--user", "tanaka"]) == 2
    assert "needs admin" in capsys.readouterr().err
    monkeypatch.setenv("MADOGUCHI_PASSWORD", "admin-pass-1")
    assert main(dd + ["config", "set", "llm.model", "llm-small", "--user", "admin"]) == 0
    assert "llm.model written" in capsys.readouterr().out
    c = open_context(data_dir)
    assert [e.action for e in audit.entries(c.store, object_type="setting")] == ["model.change"]
    c.close()
