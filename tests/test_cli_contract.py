"""Every CLI subcommand is exercised: a happy path and one bad input (one English ``error:`` line,
exit 2, never a traceback). Subcommands whose happy path needs a real model run, the microphone,
a PostgreSQL server or a trained model are exercised in the test file named in ELSEWHERE; this file
checks that the file really runs them, so a new subcommand without a test fails here."""
from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from engine import users
from engine.cli import build_parser, main

TESTS = Path(__file__).parent

# leaf subcommand → the test file that runs its happy path (a model, the mic, a server, a long job)
ELSEWHERE = {
    "transcribe": "test_asr.py",
    "record": "test_asr_mic.py",
    "sessions show": "test_asr_mic.py",
    "draft": "test_records_draft.py",
    "records submit": "test_records_workflow.py",
    "records approve": "test_records_workflow.py",
    "records export": "test_records_export.py",
    "manuals add": "test_manuals_search.py",
    "manuals search": "test_manuals_search.py",
    "manuals answer": "test_netguard.py",
    "manuals status": "test_manuals_search.py",
    "manuals summarize": "test_manuals_summarize.py",
    "mirror diagnose": "test_mirrors.py",
    "mirror import": "test_mirrors_ledger.py",
    "mirror export": "test_mirrors_ledger.py",
    "self-test": "test_installer.py",   # the frozen bundle's `madoguchi --self-test`
    "server init": "test_server_cli.py",
    "server migrate": "test_server_cli.py",
    "server check": "test_server_cli.py",
    "server sync": "test_server_offline.py",
    "server password": "test_server_keyring.py",
    "security export-key": "test_encryption.py",
    "security rotate-key": "test_encryption.py",
    "retention run": "test_retention.py",
    "users add": "test_users_audit.py",
    "users passwd": "test_users_audit.py",
    "users deactivate": "test_users_audit.py",
    "users activate": "test_users_audit.py",
    "audit verify": "test_users_audit.py",
    "doctor": "test_foundation.py",
    "phone ask": "test_phone.py",
}


def leaves(parser: argparse.ArgumentParser, prefix=()) -> list[str]:
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            out = []
            for name, sp in a.choices.items():
                out += leaves(sp, prefix + (name,))
            return out
    return [" ".join(prefix)]


ALL = leaves(build_parser())


@pytest.fixture
def office(data_dir, monkeypatch):
    """A data folder with an administrator, a caseworker and a supervisor."""
    from engine.context import open_context
    ctx = open_context(data_dir)
    admin = users.add_user(ctx.store, None, "kanri", "管理者", "admin", "admin-pass-1")
    users.add_user(ctx.store, admin, "tanaka", "田中", "staff", "staff-pass-1")
    users.add_user(ctx.store, admin, "sato", "佐藤係長", "supervisor", "super-pass-1")
    ctx.close()
    return ["--data-dir", str(data_dir)]


def run(capsys, argv, rc):
    got = main(argv)
    out, err = capsys.readouterr()
    assert got == rc, (argv, got, out, err)
    assert "Traceback" not in out + err
    if rc == 2:
        lines = [ln for ln in err.strip().splitlines() if ln]
        assert len(lines) == 1 and lines[0].startswith("error:"), err
    return out, err


def test_every_subcommand_is_exercised():
    here = {c for c, _ in CASES} | set(ELSEWHERE)
    missing = [c for c in ALL if c not in here]
    assert not missing, f"subcommands without a test: {missing}"
    for cmd, fname in ELSEWHERE.items():
        text = (TESTS / fname).read_text(encoding="utf-8")
        words = cmd.split()
        # the words appear as consecutive argv items ("a", "b") or on a command line (a b)
        pat = r"[\"']\s*,\s*[\"']".join(map(re.escape, words))
        assert re.search(pat, text) or re.search(r"\s+".join(map(re.escape, words)), text), (cmd, fname)


# (subcommand, [(argv after the data folder, user password env, expected exit, text expected in stdout)])
CASES = [
    ("models list", [(["models", "list"], None, 0, "whisper-base")]),
    ("models verify", [(["models", "verify", "sudachi-core"], None, 0, "sudachi-core: ok"),
                       (["models", "verify", "no-such-model"], None, 2, "")]),
    ("models assemble", [(["models", "assemble", "sudachi-core"], None, 0, ""),
                         (["models", "assemble", "no-such-model"], None, 2, "")]),
    ("models path", [(["models", "path"], None, 0, "")]),
    ("config show", [(["config", "show"], None, 0, "asr.model")]),
    ("config keys", [(["config", "keys"], None, 0, "retention.audio_days")]),
    ("config set", [(["config", "set", "llm.model", "llm-small", "--user", "kanri"], "admin-pass-1", 0, ""),
                    (["config", "set", "no.such.key", "1", "--user", "kanri"], "admin-pass-1", 2, ""),
                    (["config", "set", "llm.model", "llm-small", "--user", "tanaka"], "staff-pass-1", 2, "")]),
    ("security status", [(["security", "status"], None, 0, "database")]),
    ("security key-path", [(["security", "key-path"], None, 0, "")]),
    ("security import-key", [(["security", "import-key", "/no/such/file.key"], None, 2, "")]),
    ("sessions list", [(["sessions", "list", "--json", "--user", "tanaka"], "staff-pass-1", 0, "[]"),
                       (["sessions", "list", "--user", "tanaka"], "wrong-password", 2, "")]),
    ("sessions recover", [(["sessions", "recover", "--user", "tanaka"], "staff-pass-1", 0, ""),
                          (["sessions", "recover", "999", "--user", "tanaka"], "staff-pass-1", 2, "")]),
    ("records list", [(["records", "list", "--json", "--user", "tanaka"], "staff-pass-1", 0, "[]"),
                      (["records", "list", "--user", "kanri"], "admin-pass-1", 2, "")]),
    ("records show", [(["records", "show", "999", "--user", "tanaka"], "staff-pass-1", 2, "")]),
    ("records return", [(["records", "return", "999", "--comment", "要修正", "--user", "sato"], "super-pass-1", 2, "")]),
    ("mirror confirm", [(["mirror", "confirm", "999", "4", "--user", "tanaka"], "staff-pass-1", 2, "")]),
    # training itself (minutes of CPU) runs through train.train_from_ledger in test_mirrors_model.py
    ("mirror train", [(["mirror", "train", "--from-ledger"], None, 2, "")]),
    ("audit verify", [(["audit", "verify", "--json"], None, 0, '"ok": true')]),
    ("users list", [(["users", "list", "--user", "kanri"], "admin-pass-1", 0, "tanaka"),
                    (["users", "list"], None, 2, "")]),
    ("retention run", [(["retention", "run", "--dry-run", "--user", "kanri"], "admin-pass-1", 0, "0 session(s) due"),
                       (["retention", "run"], None, 2, "")]),
]


@pytest.mark.parametrize("cmd,cases", CASES, ids=[c for c, _ in CASES])
def test_subcommand(cmd, cases, office, monkeypatch, capsys):
    for argv, password, rc, expect in cases:
        if password is None:
            monkeypatch.delenv("MADOGUCHI_PASSWORD", raising=False)
        else:
            monkeypatch.setenv("MADOGUCHI_PASSWORD", password)
        out, _ = run(capsys, office + argv, rc)
        assert expect in out, (argv, out)


def test_records_show_and_return_happy_path(office, monkeypatch, capsys):
    """A drafted record shown and returned by the supervisor, from the CLI (extractive draft: no LLM)."""
    from engine.context import open_context
    from engine.records import workflow
    from engine.records.model import Draft, Section, Segment, Statement
    draft = Draft("seikatsu_hogo", "面接相談記録",
                  [Section("income", "収入・資産", True, [Statement("家賃は月5万円とのこと。", [2])])],
                  segments=[Segment(1, 0.0, 3.0, "staff", "家賃はいくらですか。"),
                            Segment(2, 3.0, 6.0, "citizen", "月5万円です。")])
    ctx = open_context(office[1])
    try:
        staff = users.sign_in(ctx.store, "tanaka", "staff-pass-1")
        rec = workflow.create(ctx.store, staff, draft, case_number="R6-0099")
        rec = workflow.submit(ctx.store, staff, rec.id, rec.revision)
    finally:
        ctx.close()
    monkeypatch.setenv("MADOGUCHI_PASSWORD", "staff-pass-1")
    out, _ = run(capsys, office + ["records", "show", str(rec.id), "--json", "--user", "tanaka"], 0)
    assert f'"id": {rec.id}' in out
    monkeypatch.setenv("MADOGUCHI_PASSWORD", "super-pass-1")
    out, _ = run(capsys, office + ["records", "return", str(rec.id), "--comment", "家賃の根拠を追記", "--user", "sato"], 0)
    assert "差戻" in out or "returned" in out


def test_password_missing_is_an_error_line(office, monkeypatch, capsys):
    """No MADOGUCHI_PASSWORD and nothing on stdin: an error line, not an EOFError traceback."""
    import io
    import sys
    monkeypatch.delenv("MADOGUCHI_PASSWORD", raising=False)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    run(capsys, office + ["users", "list", "--user", "kanri"], 2)


def test_unexpected_error_is_one_line_and_logged(office, monkeypatch, capsys):
    """A fault the code did not foresee (here: the audit table dropped behind the engine's back) is one
    error line on stderr, its stack in the log, and the log holds no message text."""
    import sqlite3
    db = Path(office[1]) / "madoguchi.db"
    con = sqlite3.connect(db)
    con.execute("DROP TABLE audit_log")
    con.commit()
    con.close()
    out, err = run(capsys, office + ["audit", "verify"], 2)
    assert "unexpected" in err
    log = (Path(office[1]) / "logs" / "madoguchi.log").read_text(encoding="utf-8")
    assert "unexpected" in log and "Traceback" not in err
