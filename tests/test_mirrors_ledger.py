"""Curve-mirror ledger: resumable folder import, duplicates, 管理番号 pattern, confirm/override,
history, CSV/XLSX export, overlay of a ledger row, and the CLI commands."""
from __future__ import annotations

import csv
import json
import sqlite3
import threading

import numpy as np
import pytest
from PIL import Image

from engine import audit, users
from engine.mirrors import ledger, overlay, synth
from engine.users import PermissionDenied

PASSWORD = "password-12345"


@pytest.fixture
def people(ctx):
    """kanri (admin), kensa and kakari (点検員), tanaka (staff), kacho (supervisor)."""
    admin = users.add_user(ctx.store, None, "kanri", "管理", "admin", PASSWORD)
    return {"kanri": admin, **{n: users.add_user(ctx.store, admin, n, n, role, PASSWORD) for n, role in
                               [("kensa", "inspector"), ("kakari", "inspector"), ("tanaka", "staff"),
                                ("kacho", "supervisor")]}}


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("mirror_photos")
    specs = [("KM-1001_20261120.jpg", {"pole.tilt": 3}), ("KM-1002.jpg", {}), ("KM-1003.JPG", {"mirror.deformation": 3}),
             ("sub/KM-1001_20261201.jpg", {"pole.tilt": 3})]
    for i, (name, defects) in enumerate(specs):
        p = d / name
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(synth.encode_jpeg(synth.generate(800 + i, size=(800, 600), defects=defects).image))
    (d / "KM-1099_broken.jpg").write_bytes(b"not a photo")
    (d / "IMG_noid.png").write_bytes(b"")  # replaced below by a real PNG without a 管理番号
    Image.fromarray(synth.generate(805, size=(640, 480), defects={}).image).save(d / "IMG_noid.png")
    (d / "notes.txt").write_text("ignored")
    return d


def test_import_resume_duplicates_and_ids(ctx, photo_dir, people):
    cancel = threading.Event()
    events = []
    for ev in ledger.import_folder(ctx, photo_dir, user=people["kensa"], cancel=cancel, model=None):
        events.append(ev)
        if len(events) == 2:
            cancel.set()             # interrupted after two photos
    assert len(events) == 2 and events[-1].total == 6
    events = list(ledger.import_folder(ctx, photo_dir, user=people["kensa"], model=None))   # resume
    st = [e.status for e in events]
    assert st.count("duplicate") == 2 and len(events) == 6
    s = events[-1].summary
    assert s == {"total": 6, "imported": 3, "duplicate": 2, "failed": 1, "no_id": 0}
    # a third run imports nothing
    assert [e.status for e in ledger.import_folder(ctx, photo_dir, user=people["kensa"], model=None)] == ["duplicate"] * 6

    mirrors = {m["code"]: m for m in ledger.list_mirrors(ctx)}
    assert set(mirrors) == {"KM-1001", "KM-1002", "KM-1003", "KM-1099"}
    hist = ledger.history(ctx, "KM-1001")
    assert len(hist) == 2 and all(h["ai_grade"] == "Ⅳ" for h in hist)
    assert all(h["inspector"] == "kensa" for h in hist)
    broken = ledger.history(ctx, "KM-1099")[0]
    assert broken["status"] == "unreadable" and broken["ai_grade"] is None and "not a JPEG" in broken["error"]
    noid = [r for r in ledger.list_inspections(ctx) if r["mirror_code"] is None]
    assert len(noid) == 1
    ledger.assign_mirror(ctx, noid[0]["id"], "KM-2000", user=people["kakari"])
    assert ledger.history(ctx, "KM-2000")[0]["id"] == noid[0]["id"]


def test_id_pattern_from_config(ctx):
    assert ledger.mirror_code_from_name("KM-1001_20261120.jpg", ctx.config["mirrors.id_pattern"]) == "KM-1001"
    assert ledger.mirror_code_from_name("kokura-0042.jpg", r"kokura-(?P<id>\d+)") == "0042"
    assert ledger.mirror_code_from_name("photo.jpg", r"(?P<id>\d{4})") is None
    with pytest.raises(ledger.LedgerError):
        ledger.mirror_code_from_name("x.jpg", "([")


def test_confirm_override_needs_reason_and_is_logged(ctx, photo_dir, people):
    list(ledger.import_folder(ctx, photo_dir, user=people["kensa"], model=None))
    row = ledger.history(ctx, "KM-1003")[0]
    ai = row["ai_grade"]
    assert ai is not None
    other = "Ⅰ" if ai != "Ⅰ" else "Ⅱ"
    with pytest.raises(ledger.LedgerError) as e:
        ledger.confirm(ctx, row["id"], other, user=people["kakari"])
    assert "理由" in e.value.ja
    assert ledger.get_inspection(ctx, row["id"])["confirmed_grade"] is None     # nothing half-saved
    got = ledger.confirm(ctx, row["id"], ai, user=people["kakari"])                      # confirm as is
    assert got["confirmed_grade"] == ai and got["override_reason"] == ""
    got = ledger.confirm(ctx, row["id"], "4" if ai != "Ⅳ" else "3", user=people["kanri"], reason="現地で再確認")
    assert got["confirmed_grade"] in ("Ⅳ", "Ⅲ") and got["override_reason"] == "現地で再確認"
    changes = ledger.history(ctx, "KM-1003")[0]["changes"]
    assert [c["actor"] for c in changes] == ["kakari", "kanri"] and changes[1]["old_grade"] == ai
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        ctx.store.execute("DELETE FROM mirror_grade_changes")
    broken = ledger.history(ctx, "KM-1099")[0]
    with pytest.raises(ledger.LedgerError):
        ledger.confirm(ctx, broken["id"], "Ⅰ", user=people["kakari"])
    with pytest.raises(ledger.LedgerError):
        ledger.confirm(ctx, row["id"], "Ⅴ", user=people["kakari"])


def test_export_csv_and_xlsx(ctx, photo_dir, tmp_path, people):
    from openpyxl import load_workbook
    list(ledger.import_folder(ctx, photo_dir, user=people["kensa"], model=None))
    row = ledger.history(ctx, "KM-1002")[0]
    ledger.upsert_mirror(ctx, "KM-1002", route="市道小倉1号線", location="小倉北区大手町1-1", installed_year=2005)
    ledger.confirm(ctx, row["id"], "Ⅲ" if row["ai_grade"] != "Ⅲ" else "Ⅱ", user=people["kakari"], reason="さびを確認")
    n = ledger.export_csv(ctx, tmp_path / "ledger.csv", user=people["kacho"])
    assert n == 6
    raw = (tmp_path / "ledger.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")                                     # Excel-friendly BOM
    rows = list(csv.DictReader((tmp_path / "ledger.csv").open(encoding="utf-8-sig")))
    assert list(rows[0]) == ledger.EXPORT_COLUMNS
    r = next(x for x in rows if x["管理番号"] == "KM-1002")
    assert r["路線名"] == "市道小倉1号線" and r["設置年度"] == "2005" and r["判定変更理由"] == "さびを確認"
    assert r["確定者"] == "kakari" and r["判定"].startswith(r["確定判定"])
    assert next(x for x in rows if x["管理番号"] == "KM-1099")["判定"] == "撮り直し"
    assert sum(1 for x in rows if x["管理番号"] == "KM-1001") == 2

    assert ledger.export_xlsx(ctx, tmp_path / "ledger.xlsx", latest_only=True, user=people["kacho"]) == 5
    wb = load_workbook(tmp_path / "ledger.xlsx")
    ws = wb["点検台帳"]
    assert [c.value for c in ws[1]] == ledger.EXPORT_COLUMNS and ws.max_row == 6
    ms = wb["施設台帳"]
    codes = [ms.cell(i, 1).value for i in range(2, ms.max_row + 1)]
    assert codes == sorted(codes) and "KM-1002" in codes


def test_overlay_of_ledger_row(ctx, photo_dir, people):
    list(ledger.import_folder(ctx, photo_dir, user=people["kensa"], model=None))
    row = ledger.history(ctx, "KM-1001")[0]
    img = overlay.render_inspection(row, max_side=800)
    assert img.size == (800, 600)
    src = np.asarray(Image.open(row["photo_path"]).convert("RGB")).astype(int)
    drawn = np.asarray(img).astype(int)
    assert np.abs(drawn - src).mean() > 1.0          # something was drawn
    f = row["findings"][0]
    x0, y0, x1, y1 = (int(v) for v in f["box"])
    edge = drawn[max(0, y0):y1, max(0, x0):max(0, x0) + 3]
    assert (np.abs(edge - np.array(overlay.GRADE_COLOURS["Ⅳ"])).sum(-1) < 60).any()   # Ⅳ box in red
    assert overlay.font_path()


def test_cli_import_export(tmp_path, photo_dir, capsys, monkeypatch):
    from engine.cli import main
    from engine.context import open_context
    data = str(tmp_path / "data")
    c = open_context(data)
    admin = users.add_user(c.store, None, "kanri", "管理", "admin", PASSWORD)
    users.add_user(c.store, admin, "kensa", "点検", "inspector", PASSWORD)
    users.add_user(c.store, admin, "tanaka", "田中", "staff", PASSWORD)
    c.close()
    monkeypatch.setenv("MADOGUCHI_PASSWORD", PASSWORD)
    assert main(["--data-dir", data, "mirror", "import", str(photo_dir), "--json", "--quiet", "--user", "tanaka"]) != 0
    assert "needs inspector or admin" in capsys.readouterr().err
    assert main(["--data-dir", data, "mirror", "import", str(photo_dir), "--json", "--quiet", "--user", "kensa"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["imported"] == 5 and s["failed"] == 1
    out = tmp_path / "x.xlsx"
    assert main(["--data-dir", data, "mirror", "export", "--xlsx", str(out), "--csv", str(tmp_path / "x.csv"),
                 "-u", "kensa"]) == 0
    assert out.stat().st_size > 0 and (tmp_path / "x.csv").read_text(encoding="utf-8-sig").count("\n") == 7
    assert main(["--data-dir", data, "mirror", "export"]) == 2


def test_roles_are_checked_in_the_engine_and_changes_are_audited(ctx, photo_dir, people, tmp_path):
    for who in ("tanaka", "kacho"):                       # staff and supervisors do not edit the ledger
        with pytest.raises(PermissionDenied):
            ledger.import_folder(ctx, photo_dir, user=people[who], model=None)
    assert ledger.list_inspections(ctx) == []
    with pytest.raises(PermissionDenied):
        ledger.import_folder(ctx, photo_dir, user=None, model=None)
    list(ledger.import_folder(ctx, photo_dir, user=people["kensa"], model=None))
    row = ledger.history(ctx, "KM-1002")[0]
    for who in ("tanaka", "kacho"):
        with pytest.raises(PermissionDenied):
            ledger.confirm(ctx, row["id"], "Ⅲ", user=people[who], reason="さび")
        with pytest.raises(PermissionDenied):
            ledger.assign_mirror(ctx, row["id"], "KM-9999", user=people[who])
    with pytest.raises(PermissionDenied):
        ledger.export_csv(ctx, tmp_path / "x.csv", user=people["tanaka"])
    assert not (tmp_path / "x.csv").exists()
    assert ledger.get_inspection(ctx, row["id"])["confirmed_grade"] is None
    users.set_active(ctx.store, people["kanri"], "kakari", False)
    with pytest.raises(PermissionDenied):                 # a deactivated inspector is refused too
        ledger.confirm(ctx, row["id"], "Ⅲ", user=users.get_user(ctx.store, "kakari"), reason="さび")

    new = "Ⅲ" if row["ai_grade"] != "Ⅲ" else "Ⅱ"
    ledger.confirm(ctx, row["id"], new, user=people["kensa"], reason="支柱のさびを現地確認")
    ledger.export_csv(ctx, tmp_path / "x.csv", user=people["kacho"])
    acts = [(e.actor, e.action) for e in audit.entries(ctx.store) if e.action.startswith("mirror.")]
    assert acts == [("kensa", "mirror.import"), ("kensa", "mirror.override"), ("kacho", "mirror.export")]
    ov = next(e for e in audit.entries(ctx.store) if e.action == "mirror.override")
    assert ov.object_id == str(row["id"]) and ov.detail["new_grade"] == new
    assert ov.detail["ai_grade"] == row["ai_grade"] and ov.detail["reason"] == "支柱のさびを現地確認"
    assert audit.verify(ctx.store) == (True, None)
    with pytest.raises(Exception, match="append-only"):   # the grade's trail cannot be rewritten
        ctx.store.execute("UPDATE audit_log SET detail = '{}' WHERE id = ?", (ov.id,))
