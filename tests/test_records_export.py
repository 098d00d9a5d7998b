"""Export of an approved record: real PDF (read back with pypdfium2), DOCX (python-docx), text."""
import pytest

from engine import users
from engine.cli import main
from engine.records import export, workflow
from engine.records.model import Draft, Section, Segment, Statement


@pytest.fixture
def approved(ctx):
    s = ctx.store
    admin = users.add_user(s, None, "admin", "管理者", "admin", "admin-pass-1")
    staff = users.add_user(s, admin, "tanaka", "田中", "staff", "staff-pass-1")
    sup = users.add_user(s, admin, "sato", "佐藤", "supervisor", "super-pass-1")
    d = Draft("seikatsu_hogo", "面接相談記録（生活保護）",
              [Section("income_assets", "収入・資産", True, [Statement("所持金は約3千円。", [2])]),
               Section("next_steps", "今後の対応", True, [])],
              segments=[Segment(1, 0, 2, "staff", "お手持ちは？"), Segment(2, 2, 4, "citizen", "三千円くらいです。")])
    rec = workflow.create(s, staff, d, case_number="R6-0042")
    rec = workflow.submit(s, staff, rec.id, rec.revision)
    return workflow.approve(s, sup, rec.id, rec.revision), staff


def test_japanese_font_found():
    assert export.japanese_font().is_file()


def test_pdf_docx_text(approved, tmp_path):
    rec, _ = approved
    pdf = export.export(rec, "pdf", tmp_path / "r.pdf", office_name="小倉北区役所 保護課")
    import pypdfium2 as pdfium
    doc = pdfium.PdfDocument(str(pdf))
    text = "".join(doc[i].get_textpage().get_text_range() for i in range(len(doc)))
    for want in ("面接相談記録", "小倉北区役所", "R6-0042", "所持金は約3千円", "承認済", "sato", "（記載なし）"):
        assert want in text, want
    from docx import Document
    dx = Document(str(export.export(rec, "docx", tmp_path / "r.docx", office_name="小倉北区役所 保護課")))
    body = "\n".join(p.text for p in dx.paragraphs)
    cells = [c.text for t in dx.tables for row in t.rows for c in row.cells]
    assert "所持金は約3千円。 ［発言 2］" in body and "収入・資産" in body
    assert "R6-0042" in cells and "sato" in cells
    txt = export.export(rec, "txt", tmp_path / "r.txt", office_name="小倉北区役所 保護課").read_text(encoding="utf-8")
    assert "■ 収入・資産" in txt and "・所持金は約3千円。 [2]" in txt and "承認者: sato" in txt


def test_cli_export_only_approved(approved, data_dir, tmp_path, monkeypatch, capsys, ctx):
    rec, staff = approved
    draft_rec = workflow.create(ctx.store, staff, rec.content)
    ctx.close()
    monkeypatch.setenv("MADOGUCHI_PASSWORD", "staff-pass-1")
    dd = ["--data-dir", str(data_dir)]
    out = tmp_path / "x.pdf"
    assert main(dd + ["records", "export", str(rec.id), "--format", "pdf", "-o", str(out), "--user", "tanaka"]) == 0
    assert out.read_bytes()[:5] == b"%PDF-"
    assert main(dd + ["records", "export", str(draft_rec.id), "--format", "txt", "--user", "tanaka",
                      "-o", str(tmp_path / "d.txt")]) == 2
    assert "no approved version" in capsys.readouterr().err
