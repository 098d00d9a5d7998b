"""カーブミラー screen: import a folder of photos in the background (UI never stalls), see the
ledger with grades, open a photo with its overlay, override a grade (reason required), export."""
import pytest

from desktop.ops import idle
from engine.mirrors import ledger, synth
from tests.qt_util import StallWatch


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    d = tmp_path_factory.mktemp("photos")
    for i, seed in enumerate((910001, 910002, 910003, 910004)):
        sc = synth.generate(seed, size=(1024, 768), defects={"pole.tilt": 3} if i == 0 else None)
        (d / f"KM-{1001 + i}_20261120.jpg").write_bytes(synth.encode_jpeg(sc.image))
    (d / "KM-1099_broken.jpg").write_bytes(b"this is not a jpeg at all")
    return d


def test_import_override_export(qtbot, qapp, ctx, photos, tmp_path):
    from desktop.views.mirrors import MirrorsView
    from engine import users
    u = users.add_user(ctx.store, None, "kensa", "検査 一郎", "admin", "password-1")
    v = MirrorsView(ctx, u)
    qtbot.addWidget(v)
    v.resize(1300, 800)
    v.show()
    qtbot.wait(300)
    watch = StallWatch().start()
    v.import_folder(str(photos))
    qtbot.waitUntil(lambda: v.import_btn.isEnabled() and idle(), timeout=300_000)
    watch.stop()
    assert watch.worst_ms < 100, f"photo import stalled the UI {watch.worst_ms:.0f} ms (wall clock {watch.worst_raw_ms:.0f} ms)"
    assert v.table.rowCount() == 5 and "新規 4件" in v.status.text() and "読めない写真 1件" in v.status.text()
    codes = {v.table.item(i, 0).text() for i in range(v.table.rowCount())}
    assert {"KM-1001", "KM-1099"} <= codes
    broken = next(i for i in range(v.table.rowCount()) if v.table.item(i, 0).text() == "KM-1099")
    assert v.table.item(broken, 5).text() == "写真が読めません"
    # a second import of the same folder skips every photo (duplicates by hash)
    v.import_folder(str(photos))
    qtbot.waitUntil(lambda: v.import_btn.isEnabled() and idle(), timeout=300_000)
    assert "重複 5件" in v.status.text() and v.table.rowCount() == 5
    # open an inspection with an AI grade, override it: a reason is required
    row = next(i for i in range(v.table.rowCount()) if v.table.item(i, 0).text() == "KM-1001")
    v.table.selectRow(row)
    qtbot.waitUntil(lambda: v.photo.pixmap() is not None and not v.photo.pixmap().isNull(), timeout=60_000)
    r = v.current
    ai = r["ai_grade"] or "Ⅱ"
    other = "Ⅰ" if ai != "Ⅰ" else "Ⅲ"
    v.grade.setCurrentIndex(["Ⅰ", "Ⅱ", "Ⅲ", "Ⅳ"].index(other))
    v.reason.setText("")
    v.confirm()
    qtbot.waitUntil(idle)
    assert ledger.get_inspection(ctx, r["id"])["confirmed_grade"] is None or r["ai_grade"] is None
    v.reason.setText("現地で支柱の傾きを再確認した")
    v.confirm()
    qtbot.waitUntil(idle)
    got = ledger.get_inspection(ctx, r["id"])
    assert got["confirmed_grade"] == other and got["confirmed_by"] == "kensa"
    # filters and export
    v.f_grade.setCurrentIndex(v.f_grade.findData(other))
    assert all(v.table.item(i, 4).text() == other or v.table.item(i, 3).text() == other for i in range(v.table.rowCount()))
    out = tmp_path / "ledger.xlsx"
    v.export(str(out))
    qtbot.waitUntil(lambda: out.exists() and "出力" in v.status.text(), timeout=30_000)
    import openpyxl
    ws = openpyxl.load_workbook(out).active
    assert ws.max_row >= 6
