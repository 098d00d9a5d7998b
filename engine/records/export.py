"""Export a record: plain text (for pasting into the welfare case system), PDF (fpdf2 with a
Japanese TrueType font) and DOCX (python-docx), in one official layout: header with office name,
case number, date, staff and approver; then the sections with their statements."""
from __future__ import annotations

import datetime
import os
import subprocess
import sys
from pathlib import Path

from ..errors import MadoguchiError
from .model import Draft

FONT_CANDIDATES_WIN = ["YuGothM.ttc", "YuGothR.ttc", "msgothic.ttc", "meiryo.ttc"]
FONT_CANDIDATES = [
    "/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf",
    "/usr/share/fonts/truetype/fonts-japanese-gothic.ttf",
    "/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf",
    "/usr/share/fonts/truetype/takao-gothic/TakaoGothic.ttf",
    "/System/Library/Fonts/ヒラギノ角ゴシック W3.ttc",
]


class ExportError(MadoguchiError):
    ja_default = "記録を出力できませんでした。出力先と日本語フォントを確認してください。"


def japanese_font() -> Path:
    """A Japanese TrueType font file: IPAGothic via fc-match or known paths; Yu/MS Gothic on Windows."""
    env = os.environ.get("MADOGUCHI_PDF_FONT")
    if env and Path(env).is_file():
        return Path(env)
    if sys.platform == "win32":
        fonts = Path(os.environ.get("WINDIR", r"C:\Windows")) / "Fonts"
        for name in FONT_CANDIDATES_WIN:
            if (fonts / name).is_file():
                return fonts / name
    try:
        out = subprocess.run(["fc-match", "-f", "%{file}", "IPAGothic:lang=ja"], capture_output=True,
                             text=True, timeout=10).stdout.strip()
        if out and Path(out).suffix.lower() in (".ttf", ".otf", ".ttc") and Path(out).is_file():
            return Path(out)
    except (OSError, subprocess.SubprocessError):
        pass
    for c in FONT_CANDIDATES:
        if Path(c).is_file():
            return Path(c)
    raise ExportError("no Japanese font found for the PDF; install fonts-ipafont-gothic "
                      "(or set MADOGUCHI_PDF_FONT to a .ttf file)",
                      ja="PDFに使う日本語フォントがありません。システム管理者に連絡してください。")


def _date(ts: float | None) -> str:
    if not ts:
        return ""
    return datetime.datetime.fromtimestamp(ts).strftime("%Y年%m月%d日")


def header_fields(rec=None, d: Draft | None = None, office_name: str = "") -> list[tuple[str, str]]:
    d = d or rec.content
    approved = rec is not None and rec.version_state == "approved"
    return [("所属", office_name), ("ケース番号", rec.case_number if rec is not None else ""),
            ("相談日", _date(d.created_at)),
            ("記録者", (rec.author or rec.owner) if rec is not None else ""),
            ("承認者", (rec.approver or "") if approved else ""),
            ("状態", f"{rec.state_ja if not approved else '承認済'}（第{rec.version}版）" if rec is not None
             else "下書き（未保存）")]


def to_text(d: Draft, show_flags: bool = True, rec=None, office_name: str = "") -> str:
    """Plain text: headings and statements, evidence ids in brackets; flags when ``show_flags``."""
    out = [d.title]
    if rec is not None or office_name:
        out += [f"{k}: {v}" for k, v in header_fields(rec, d, office_name)]
    if d.method in ("extractive", "mixed"):
        out.append("※ 自動抜粋を含みます（AIによる要約ではありません）。必ず内容を確認してください。")
    for sec in d.sections:
        out.append("")
        out.append(f"■ {sec.title}{'（必須）' if sec.required else ''}")
        if not sec.statements:
            out.append("  （記載なし）")
        for st in sec.statements:
            ev = f" [{','.join(map(str, st.evidence))}]" if st.evidence else ""
            out.append(f"  ・{st.text}{ev}")
            if show_flags:
                for f in st.flags:
                    if f.code != "extractive":
                        out.append(f"    要確認: {f.message}{'（' + f.detail + '）' if f.detail else ''}")
    if show_flags and d.flags:
        out.append("")
        out.append("■ 確認事項（査察指導員向け）")
        for f in d.flags:
            out.append(f"  ・{f.message}")
    return "\n".join(out) + "\n"


def to_pdf(rec, path: Path, office_name: str = "") -> Path:
    from fpdf import FPDF
    d = rec.content
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(True, margin=15)
    font = japanese_font()
    pdf.add_font("jp", "", str(font))
    pdf.add_page()
    pdf.set_font("jp", size=16)
    pdf.cell(0, 10, d.title, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("jp", size=10)
    with pdf.table(col_widths=(30, 60, 30, 60), first_row_as_headings=False, line_height=7) as table:
        fields = header_fields(rec, d, office_name)
        for i in range(0, len(fields), 2):
            row = table.row()
            for k, v in fields[i:i + 2]:
                row.cell(k)
                row.cell(v)
    pdf.ln(4)
    for sec in d.sections:
        pdf.set_font("jp", size=12)
        pdf.set_fill_color(230, 230, 230)
        pdf.cell(0, 8, f"{sec.title}", fill=True, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("jp", size=10)
        if not sec.statements:
            pdf.multi_cell(0, 6, "（記載なし）", new_x="LMARGIN", new_y="NEXT")
        for st in sec.statements:
            ev = f"［発言 {','.join(map(str, st.evidence))}］" if st.evidence else ""
            pdf.multi_cell(0, 6, f"・{st.text} {ev}", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
    pdf.set_font("jp", size=8)
    pdf.cell(0, 6, f"出力日 {_date(datetime.datetime.now().timestamp())}  記録ID {rec.uid}",
             new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))
    return path


def to_docx(rec, path: Path, office_name: str = "") -> Path:
    from docx import Document
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.oxml.ns import qn
    from docx.shared import Pt
    d = rec.content
    doc = Document()
    style = doc.styles["Normal"]
    style.font.name = "MS Gothic"
    style.font.size = Pt(10.5)
    style.element.rPr.rFonts.set(qn("w:eastAsia"), "MS Gothic")
    t = doc.add_heading(d.title, level=1)
    t.alignment = WD_ALIGN_PARAGRAPH.CENTER
    fields = header_fields(rec, d, office_name)
    table = doc.add_table(rows=(len(fields) + 1) // 2, cols=4)
    table.style = "Table Grid"
    for i, (k, v) in enumerate(fields):
        row = table.rows[i // 2]
        row.cells[(i % 2) * 2].text = k
        row.cells[(i % 2) * 2 + 1].text = v
    for sec in d.sections:
        doc.add_heading(sec.title, level=2)
        if not sec.statements:
            doc.add_paragraph("（記載なし）")
        for st in sec.statements:
            ev = f"［発言 {','.join(map(str, st.evidence))}］" if st.evidence else ""
            doc.add_paragraph(f"{st.text} {ev}".strip(), style="List Bullet")
    doc.add_paragraph(f"記録ID {rec.uid}")
    doc.save(str(path))
    return path


def export(rec, fmt: str, path: Path | None = None, office_name: str = "") -> Path:
    """Write ``rec`` (a :class:`workflow.RecordDraft`) as ``pdf``, ``docx`` or ``txt``."""
    path = Path(path or f"record-{rec.id}-v{rec.version}.{fmt}")
    try:
        if fmt == "pdf":
            return to_pdf(rec, path, office_name)
        if fmt == "docx":
            return to_docx(rec, path, office_name)
        if fmt == "txt":
            path.write_text(to_text(rec.content, show_flags=False, rec=rec, office_name=office_name),
                            encoding="utf-8")
            return path
    except OSError as e:
        raise ExportError(f"cannot write {path}: {e}") from e
    raise ExportError(f"unknown export format '{fmt}' (pdf, docx, txt)")


def export_record(ctx, user, record_id: int, fmt: str, path: Path | None = None, draft: bool = False) -> Path:
    """Export a record for ``user`` — its approved version, or the current one with ``draft`` —
    and put the export in the audit log. The CLI and the desktop both export through this."""
    from .. import audit
    from . import workflow
    rec = workflow.get(ctx.store, user, record_id) if draft else workflow.approved(ctx.store, user, record_id)
    out = export(rec, fmt, path, office_name=ctx.config["office_name"])
    audit.append(ctx.store, user.username, "record.export", "record", rec.id, {"version": rec.version, "format": fmt})
    return out
