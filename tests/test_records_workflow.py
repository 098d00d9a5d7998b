"""Record workflow: states, roles, optimistic locking, immutability, audit (real SQLite)."""
import sqlite3

import pytest

from devkit.records import make_draft
from engine import audit, users
from engine.cli import main
from engine.records import workflow
from engine.records.model import Statement


@pytest.fixture
def people(ctx):
    s = ctx.store
    admin = users.add_user(s, None, "admin", "管理者", "admin", "admin-pass-1")
    staff = users.add_user(s, admin, "tanaka", "田中", "staff", "staff-pass-1")
    sup = users.add_user(s, admin, "sato", "佐藤係長", "supervisor", "super-pass-1")
    sup2 = users.add_user(s, admin, "kato", "加藤", "supervisor", "super-pass-2")
    return admin, staff, sup, sup2


def test_full_cycle_with_return_and_resubmit(ctx, people):
    admin, staff, sup, _ = people
    s = ctx.store
    rec = workflow.create(s, staff, make_draft(), case_number="R6-0012")
    assert (rec.state, rec.state_ja, rec.version) == ("draft", "下書き", 1)
    rec = workflow.submit(s, staff, rec.id, rec.revision)
    assert rec.state_ja == "提出済"
    rec = workflow.return_record(s, sup, rec.id, rec.revision, "扶養義務者の記載を追加してください")
    assert (rec.state_ja, rec.comment) == ("差戻し", "扶養義務者の記載を追加してください")
    d = rec.content
    d.section("next").statements.append(Statement("来週再来所", [1], source="staff"))
    rec = workflow.save(s, staff, rec.id, d, rec.revision)
    assert rec.version == 2 and rec.state == "draft"
    rec = workflow.submit(s, staff, rec.id, rec.revision)
    assert rec.state_ja == "再提出"
    rec = workflow.approve(s, sup, rec.id, rec.revision)
    assert (rec.state_ja, rec.approver, rec.approved_version) == ("承認済", "sato", 2)
    actions = [e.action for e in audit.entries(s, "record", rec.id)]
    assert actions == ["record.create", "record.submit", "record.return", "record.edit",
                       "record.resubmit", "record.approve"]
    assert audit.verify(s) == (True, None)
    # the returned version 1 keeps its comment in the history
    vs = workflow.versions(s, staff, rec.id)
    assert [v["state"] for v in vs] == ["returned", "approved"]


def test_wrong_roles_are_refused(ctx, people):
    admin, staff, sup, sup2 = people
    s = ctx.store
    rec = workflow.create(s, staff, make_draft())
    rec = workflow.submit(s, staff, rec.id, rec.revision)
    with pytest.raises(users.PermissionDenied):
        workflow.approve(s, staff, rec.id, rec.revision)           # staff cannot approve
    with pytest.raises(users.PermissionDenied):
        workflow.return_record(s, staff, rec.id, rec.revision, "x")
    with pytest.raises(users.PermissionDenied):
        workflow.create(s, admin, make_draft())                    # admin manages users, not records
    with pytest.raises(users.PermissionDenied):
        workflow.approve(s, admin, rec.id, rec.revision)
    # a supervisor cannot approve their own record
    own = workflow.create(s, sup, make_draft())
    own = workflow.submit(s, sup, own.id, own.revision)
    with pytest.raises(users.PermissionDenied) as e:
        workflow.approve(s, sup, own.id, own.revision)
    assert "自分" in e.value.ja
    assert workflow.approve(s, sup2, own.id, own.revision).state == "approved"


def test_optimistic_lock(ctx, people):
    admin, staff, sup, _ = people
    s = ctx.store
    rec = workflow.create(s, staff, make_draft())
    stale = rec.revision
    rec = workflow.save(s, staff, rec.id, make_draft(), rec.revision)
    with pytest.raises(workflow.ConflictError):
        workflow.submit(s, staff, rec.id, stale)
    assert workflow.get(s, staff, rec.id).state == "draft"      # nothing changed


def test_state_rules(ctx, people):
    admin, staff, sup, _ = people
    s = ctx.store
    rec = workflow.create(s, staff, make_draft())
    with pytest.raises(workflow.StateError):
        workflow.approve(s, sup, rec.id, rec.revision)             # a draft is not approvable
    rec = workflow.submit(s, staff, rec.id, rec.revision)
    with pytest.raises(workflow.StateError):
        workflow.save(s, staff, rec.id, make_draft(), rec.revision)  # submitted: no edits
    with pytest.raises(workflow.RecordError):
        workflow.return_record(s, sup, rec.id, rec.revision, "  ")  # return needs a comment


def test_flags_must_be_acknowledged(ctx, people):
    admin, staff, sup, _ = people
    s = ctx.store
    rec = workflow.create(s, staff, make_draft(flagged=True))
    rec = workflow.submit(s, staff, rec.id, rec.revision)
    with pytest.raises(workflow.FlagsNotAcknowledged):
        workflow.approve(s, sup, rec.id, rec.revision)
    rec = workflow.approve(s, sup, rec.id, rec.revision, acknowledge_flags=True)
    assert rec.flags_ack and rec.flags_ack[0]["codes"] == ["number_mismatch"]


def test_approved_is_immutable_and_correction_is_new_version(ctx, people):
    admin, staff, sup, _ = people
    s = ctx.store
    rec = workflow.create(s, staff, make_draft())
    rec = workflow.submit(s, staff, rec.id, rec.revision)
    rec = workflow.approve(s, sup, rec.id, rec.revision)
    with pytest.raises(sqlite3.DatabaseError):
        s.execute("UPDATE record_versions SET content='{}' WHERE record_id=? AND version=1", (rec.id,))
    with pytest.raises(sqlite3.DatabaseError):
        s.execute("DELETE FROM record_versions WHERE record_id=?", (rec.id,))
    with pytest.raises(workflow.RecordError):
        workflow.save(s, staff, rec.id, make_draft(), rec.revision)          # no reason given
    d = make_draft()
    d.section("income").statements[0].text = "家賃は月5万円（共益費込み）。"
    rec2 = workflow.save(s, staff, rec.id, d, rec.revision, reason="共益費の記載漏れ")
    assert (rec2.version, rec2.state, rec2.reason, rec2.approved_version) == (2, "draft", "共益費の記載漏れ", 1)
    old = workflow.approved(s, staff, rec.id)
    assert old.version == 1 and old.content.section("income").statements[0].text == "家賃は月5万円。"


def test_cli_records_cycle(data_dir, monkeypatch, capsys):
    from engine.context import open_context
    c = open_context(data_dir)
    admin = users.add_user(c.store, None, "admin", "管理者", "admin", "admin-pass-1")
    staff = users.add_user(c.store, admin, "tanaka", "田中", "staff", "staff-pass-1")
    users.add_user(c.store, admin, "sato", "佐藤", "supervisor", "super-pass-1")
    rec = workflow.create(c.store, staff, make_draft(flagged=True))
    c.close()
    dd = ["--data-dir", str(data_dir)]
    monkeypatch.setenv("MADOGUCHI_PASSWORD", "staff-pass-1")
    assert main(dd + ["records", "submit", str(rec.id), "--user", "tanaka", "--revision", str(rec.revision)]) == 0
    assert "提出済" in capsys.readouterr().out
    assert main(dd + ["records", "approve", str(rec.id), "--user", "tanaka"]) == 2
    assert "may not" in capsys.readouterr().err
    monkeypatch.setenv("MADOGUCHI_PASSWORD", "super-pass-1")
    assert main(dd + ["records", "approve", str(rec.id), "--user", "sato"]) == 2
    assert "flagged" in capsys.readouterr().err
    assert main(dd + ["records", "approve", str(rec.id), "--user", "sato", "--ack-flags"]) == 0
    out = capsys.readouterr()
    assert "承認済" in out.out and "要確認" in out.err
    assert main(dd + ["records", "list", "--json", "--user", "sato"]) == 0
    assert '"state": "approved"' in capsys.readouterr().out
    monkeypatch.setenv("MADOGUCHI_PASSWORD", "wrong-password")
    assert main(dd + ["records", "list", "--user", "sato"]) == 2
    assert main(dd + ["audit", "verify"]) == 0
