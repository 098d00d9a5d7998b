"""The inspection ledger (same SQLite store): mirrors (管理番号, location, route, installed year),
photo inspections (hash, path, time, GPS, inspector, AI grade and findings, confirmed grade,
override reason), history per mirror, resumable batch import of a folder, confirm/override, and
CSV/XLSX export in a flat one-row-per-inspection layout a city ledger system can import.

Every change to the ledger is made by a signed-in :class:`~engine.users.User` with the role
点検員 (inspector) or 管理者 (admin) — ``engine.roles`` capability ``inspect_mirrors`` — checked here, not only in the screens;
exports are open to supervisors too. Each change (import run, grade confirm/override, 管理番号
assignment, export) is also an entry of the hash-chained audit log.
"""
from __future__ import annotations

import csv
import datetime as _dt
import json
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from .. import audit
from ..errors import MadoguchiError
from ..roles import require
from ..users import User, get_user
from .defects import GRADES, GRADES_JA, label_ja
from .intake import PHOTO_SUFFIXES, PhotoError, file_sha256


class LedgerError(MadoguchiError):
    ja_default = "台帳の操作ができませんでした。"




_GRADE_ALIASES = {"1": "Ⅰ", "2": "Ⅱ", "3": "Ⅲ", "4": "Ⅳ", "I": "Ⅰ", "II": "Ⅱ", "III": "Ⅲ", "IV": "Ⅳ"}


def normalise_grade(g: str) -> str:
    g = str(g).strip()
    g = _GRADE_ALIASES.get(g.upper(), g)
    if g not in GRADES:
        raise LedgerError(f"grade must be one of {', '.join(GRADES)} (or 1-4), got {g!r}",
                          ja="判定はⅠ・Ⅱ・Ⅲ・Ⅳのいずれかで指定してください。")
    return g


# ------------------------------------------------------------------ mirrors

def mirror_code_from_name(name: str, pattern: str) -> str | None:
    """管理番号 from a file name with the configured regex (group ``id`` if present, else the match)."""
    try:
        m = re.search(pattern, Path(name).stem)
    except re.error as e:
        raise LedgerError(f"config mirrors.id_pattern is not a valid regular expression: {e}",
                          ja="管理番号のファイル名パターン（mirrors.id_pattern）が正しくありません。") from e
    if not m:
        return None
    return (m.groupdict().get("id") or m.group(0)).upper()


def upsert_mirror(ctx, code: str, *, location: str | None = None, route: str | None = None,
                  installed_year: int | None = None, lat: float | None = None, lon: float | None = None,
                  note: str | None = None) -> int:
    """Create the mirror or update the given fields; returns its id."""
    code = code.strip()
    if not code:
        raise LedgerError("管理番号 (mirror code) is empty", ja="管理番号を入力してください。")
    now = time.time()
    with ctx.store.transaction():
        row = ctx.store.query_one("SELECT id FROM mirrors WHERE code = ?", (code,))
        if row is None:
            return ctx.store.insert("mirrors", {"code": code, "location": location or "", "route": route or "",
                                                "installed_year": installed_year, "lat": lat, "lon": lon,
                                                "note": note or "", "created_at": now, "updated_at": now})
        sets = {k: v for k, v in (("location", location), ("route", route), ("installed_year", installed_year),
                                  ("lat", lat), ("lon", lon), ("note", note)) if v is not None}
        if sets:
            ctx.store.execute(f"UPDATE mirrors SET {', '.join(f'{k} = ?' for k in sets)}, updated_at = ? WHERE id = ?",
                              (*sets.values(), now, row["id"]))
        return row["id"]


def get_mirror(ctx, code: str) -> dict | None:
    return ctx.store.query_one("SELECT * FROM mirrors WHERE code = ?", (code,))


def list_mirrors(ctx) -> list[dict]:
    """Every mirror with its latest inspection's grades (confirmed if any, else AI)."""
    return ctx.store.query(
        "SELECT m.*, i.id AS last_inspection_id, i.taken_at AS last_taken_at, i.ai_grade AS last_ai_grade, "
        "i.confirmed_grade AS last_confirmed_grade, COALESCE(i.confirmed_grade, i.ai_grade) AS last_grade, "
        "i.needs_review AS last_needs_review "
        "FROM mirrors m LEFT JOIN mirror_inspections i ON i.id = ("
        "  SELECT id FROM mirror_inspections WHERE mirror_id = m.id ORDER BY taken_at DESC, id DESC LIMIT 1) "
        "ORDER BY m.code")


def _decode(row: dict) -> dict:
    for k in ("findings", "quality", "geometry"):
        if k in row and isinstance(row[k], str):
            row[k] = json.loads(row[k] or "null")
    return row


def get_inspection(ctx, inspection_id: int) -> dict:
    row = ctx.store.query_one("SELECT i.*, m.code AS mirror_code FROM mirror_inspections i "
                              "LEFT JOIN mirrors m ON m.id = i.mirror_id WHERE i.id = ?", (inspection_id,))
    if row is None:
        raise LedgerError(f"no inspection {inspection_id}", ja=f"点検記録 {inspection_id} が見つかりません。")
    return _decode(row)


def history(ctx, code: str) -> list[dict]:
    """All inspections of one mirror, newest first, each with its grade changes."""
    rows = ctx.store.query("SELECT i.*, m.code AS mirror_code FROM mirror_inspections i JOIN mirrors m "
                           "ON m.id = i.mirror_id WHERE m.code = ? ORDER BY i.taken_at DESC, i.id DESC", (code,))
    for r in rows:
        _decode(r)
        r["changes"] = ctx.store.query("SELECT * FROM mirror_grade_changes WHERE inspection_id = ? ORDER BY id",
                                       (r["id"],))
    return rows


def list_inspections(ctx, *, needs_review: bool | None = None, unconfirmed: bool | None = None,
                     code: str | None = None, limit: int = 500, offset: int = 0) -> list[dict]:
    where, params = [], []
    if needs_review is not None:
        where.append("i.needs_review = ?")
        params.append(int(needs_review))
    if unconfirmed:
        where.append("i.confirmed_grade IS NULL")
    if code is not None:
        where.append("m.code = ?")
        params.append(code)
    sql = ("SELECT i.*, m.code AS mirror_code FROM mirror_inspections i LEFT JOIN mirrors m ON m.id = i.mirror_id"
           + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY i.id DESC LIMIT ? OFFSET ?")
    return [_decode(r) for r in ctx.store.query(sql, (*params, limit, offset))]


def confirmed_inspections(ctx) -> list[dict]:
    """Inspections whose grade a person confirmed (photo, AI grade, confirmed grade, findings):
    what training on the office's own ledger learns from."""
    return ctx.store.query("SELECT photo_path, ai_grade, confirmed_grade, findings FROM mirror_inspections "
                           "WHERE confirmed_grade IS NOT NULL")


def ledger_view(ctx, user: User, limit: int = 5000) -> list[dict]:
    """The ledger as a reader sees it (the カーブミラー screen): the latest ``limit`` inspections,
    newest first, each with its mirror's route (``route``, "" without a mirror)."""
    require(user, "read_ledger")
    routes = {m["code"]: m.get("route") or "" for m in list_mirrors(ctx)}
    rows = list_inspections(ctx, limit=limit)
    for r in rows:
        r["route"] = routes.get(r.get("mirror_code") or "", "")
    return rows


# ------------------------------------------------------------------ inspections

def _taken_at(insp_taken: str | None, path: Path) -> str:
    if insp_taken:
        return insp_taken
    return _dt.datetime.fromtimestamp(path.stat().st_mtime).isoformat(timespec="seconds")


def record_inspection(ctx, insp, *, code: str | None = None, inspector: str = "") -> int:
    """Store a :class:`diagnose.MirrorInspection`; creates the mirror if ``code`` is new."""
    path = Path(insp.path)
    mirror_id = None
    if code:
        lat, lon = (insp.gps or (None, None))
        mirror_id = upsert_mirror(ctx, code)
        if lat is not None:
            ctx.store.execute("UPDATE mirrors SET lat = ?, lon = ? WHERE id = ? AND lat IS NULL",
                              (lat, lon, mirror_id))
    geometry = {"mirrors": [{k: v for k, v in m.items() if k != "outline"} for m in insp.mirrors],
                "pole": insp.pole, "size": list(insp.size), "reasons": insp.reasons}
    return ctx.store.insert("mirror_inspections", {
        "mirror_id": mirror_id, "photo_hash": insp.sha256, "photo_path": str(path.resolve()),
        "taken_at": _taken_at(insp.taken_at, path), "lat": insp.gps[0] if insp.gps else None,
        "lon": insp.gps[1] if insp.gps else None, "inspector": inspector,
        "status": "diagnosed" if insp.quality.ok else "unjudgeable",
        "ai_grade": insp.grade, "ai_provisional_grade": insp.provisional_grade,
        "needs_review": int(insp.needs_review), "findings": [f.to_json() for f in insp.findings],
        "quality": insp.quality.to_json(), "geometry": geometry, "model_version": insp.model,
        "created_at": time.time()})


def assign_mirror(ctx, inspection_id: int, code: str, *, user: User) -> None:
    """Attach an inspection (e.g. one whose file name had no 管理番号) to a mirror."""
    require(user, "inspect_mirrors")
    with ctx.store.transaction():
        old = get_inspection(ctx, inspection_id)["mirror_id"]
        mid = upsert_mirror(ctx, code)
        ctx.store.execute("UPDATE mirror_inspections SET mirror_id = ? WHERE id = ?", (mid, inspection_id))
        audit.append(ctx.store, user.username, "mirror.assign", "mirror_inspection", inspection_id,
                     {"code": code, "old_mirror_id": old, "mirror_id": mid})


def confirm(ctx, inspection_id: int, grade: str, *, user: User, reason: str = "") -> dict:
    """Confirm the AI grade or override it. An override (grade ≠ AI grade) needs a reason. The
    change is kept twice: in ``mirror_grade_changes`` (the ledger's history) and as a
    ``mirror.confirm`` / ``mirror.override`` entry of the hash-chained audit log."""
    require(user, "inspect_mirrors")
    grade = normalise_grade(grade)
    with ctx.store.transaction():
        row = get_inspection(ctx, inspection_id)
        if row["status"] == "unreadable":
            raise LedgerError(f"inspection {inspection_id} has no readable photo",
                              ja="写真が読み込めなかった記録には判定を確定できません。撮り直してください。")
        overriding = row["ai_grade"] is not None and grade != row["ai_grade"]
        if overriding and not reason.strip():
            raise LedgerError(f"overriding the AI grade {row['ai_grade']} with {grade} needs a reason",
                              ja=f"AI判定（{row['ai_grade']}）と異なる判定にするには、変更理由を入力してください。")
        now = time.time()
        change = {"inspection_id": inspection_id, "ai_grade": row["ai_grade"], "old_grade": row["confirmed_grade"],
                  "new_grade": grade, "reason": reason.strip(), "actor": user.username, "ts": now}
        ctx.store.insert("mirror_grade_changes", change)
        ctx.store.execute("UPDATE mirror_inspections SET confirmed_grade = ?, confirmed_by = ?, confirmed_at = ?, "
                          "override_reason = ? WHERE id = ?",
                          (grade, user.username, now, reason.strip() if overriding or reason.strip() else "",
                           inspection_id))
        audit.append(ctx.store, user.username, "mirror.override" if overriding else "mirror.confirm",
                     "mirror_inspection", inspection_id,
                     {k: change[k] for k in ("ai_grade", "old_grade", "new_grade", "reason")}
                     | {"photo_hash": row["photo_hash"]})
    return get_inspection(ctx, inspection_id)


# ------------------------------------------------------------------ batch import

@dataclass
class ImportEvent:
    path: Path
    status: str                  # imported | duplicate | failed | no_id (imported without 管理番号)
    done: int
    total: int
    inspection_id: int | None = None
    grade: str | None = None
    code: str | None = None
    message: str = ""
    summary: dict = field(default_factory=dict)


def photo_files(folder: Path | str, recursive: bool = True) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise LedgerError(f"{folder} is not a folder", ja=f"フォルダが見つかりません: {folder}")
    it = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in it if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES)


def import_folder(ctx, folder: Path | str, *, user: User, recursive: bool = True,
                  id_pattern: str | None = None, cancel: threading.Event | None = None,
                  table=None, model="default") -> Iterator[ImportEvent]:
    """Import every photo of a folder; yields one :class:`ImportEvent` per file (progress).

    Resumable: a photo whose SHA-256 is already in the ledger is skipped (``duplicate``), so an
    interrupted import simply runs again. Unreadable photos are recorded (``status='unreadable'``)
    so the ledger shows what must be re-shot; each photo is committed on its own. ``user`` is the
    inspector (recorded on every inspection); the run ends with one ``mirror.import`` audit entry.
    """
    require(user, "inspect_mirrors")     # checked at the call, before the first photo is asked for
    from .grading import load_table, table_path
    from .model import default_model_path, load_model
    files = photo_files(folder, recursive)
    pattern = id_pattern or ctx.config["mirrors.id_pattern"]
    table = table or load_table(table_path(ctx.data_dir))
    if model == "default":
        model = load_model(default_model_path(ctx.data_dir))

    def run() -> Iterator[ImportEvent]:
        counts = {"total": len(files), "imported": 0, "duplicate": 0, "failed": 0, "no_id": 0}
        try:
            yield from _import_files(ctx, files, counts, pattern, table, model, user.username, cancel)
        finally:   # also when cancelled or when the caller stops iterating
            audit.append(ctx.store, user.username, "mirror.import", "folder", str(Path(folder).resolve()),
                         {**counts, "cancelled": bool(cancel is not None and cancel.is_set())})
    return run()


def _import_files(ctx, files, counts, pattern, table, model, inspector, cancel) -> Iterator[ImportEvent]:
    from .diagnose import diagnose_photo
    from .intake import load_photo
    for i, path in enumerate(files, 1):
        if cancel is not None and cancel.is_set():
            break
        code = mirror_code_from_name(path.name, pattern)
        try:
            digest = file_sha256(path)
        except OSError as e:
            counts["failed"] += 1
            yield ImportEvent(path, "failed", i, len(files), message=str(e), summary=dict(counts))
            continue
        if ctx.store.query_one("SELECT id FROM mirror_inspections WHERE photo_hash = ?", (digest,)):
            counts["duplicate"] += 1
            yield ImportEvent(path, "duplicate", i, len(files), code=code, summary=dict(counts))
            continue
        try:
            insp = diagnose_photo(load_photo(path, sha256=digest), table, model)
        except PhotoError as e:
            mirror_id = upsert_mirror(ctx, code) if code else None
            iid = ctx.store.insert("mirror_inspections", {
                "mirror_id": mirror_id, "photo_hash": digest, "photo_path": str(path.resolve()),
                "taken_at": _taken_at(None, path), "inspector": inspector, "status": "unreadable",
                "needs_review": 1, "error": str(e), "created_at": time.time()})
            counts["failed"] += 1
            yield ImportEvent(path, "failed", i, len(files), iid, code=code, message=e.ja, summary=dict(counts))
            continue
        iid = record_inspection(ctx, insp, code=code, inspector=inspector)
        status = "imported" if code else "no_id"
        counts["imported"] += 1
        if not code:
            counts["no_id"] += 1
        yield ImportEvent(path, status, i, len(files), iid, insp.grade, code,
                          "" if code else "ファイル名から管理番号を読み取れませんでした", summary=dict(counts))


# ------------------------------------------------------------------ export

EXPORT_COLUMNS = ["管理番号", "路線名", "設置場所", "設置年度", "点検ID", "点検日時", "点検者", "緯度", "経度",
                  "AI判定", "要確認", "確定判定", "確定者", "確定日時", "判定変更理由", "判定", "所見",
                  "写真品質", "写真ファイル", "写真SHA256", "モデル"]


def _export_rows(ctx, latest_only: bool = False) -> list[list]:
    rows = ctx.store.query(
        "SELECT i.*, m.code, m.route, m.location, m.installed_year FROM mirror_inspections i "
        "LEFT JOIN mirrors m ON m.id = i.mirror_id ORDER BY m.code IS NULL, m.code, i.taken_at, i.id")
    if latest_only:
        seen, keep = set(), []
        for r in reversed(rows):
            key = r["code"] or f"#{r['id']}"
            if key not in seen:
                seen.add(key)
                keep.append(r)
        rows = list(reversed(keep))
    out = []
    for r in rows:
        findings = json.loads(r["findings"] or "[]")
        quality = json.loads(r["quality"] or "{}")
        text = "、".join(f"{label_ja(f['member'] + '.' + f['defect'])}(重症度{f['severity']}"
                        + ("・要確認" if f.get("uncertain") else "") + ")"
                        for f in findings if not f.get("possible"))
        qtext = "良好" if quality.get("ok") else ("読込不可" if r["status"] == "unreadable" else
                                                  "・".join(quality.get("reasons", [])))
        final = r["confirmed_grade"] or r["ai_grade"]
        out.append([r["code"] or "", r["route"] or "", r["location"] or "", r["installed_year"] or "", r["id"],
                    r["taken_at"] or "", r["inspector"], r["lat"] if r["lat"] is not None else "",
                    r["lon"] if r["lon"] is not None else "", r["ai_grade"] or "", "要" if r["needs_review"] else "",
                    r["confirmed_grade"] or "", r["confirmed_by"] or "",
                    _dt.datetime.fromtimestamp(r["confirmed_at"]).isoformat(timespec="seconds") if r["confirmed_at"] else "",
                    r["override_reason"], GRADES_JA.get(final, "要確認") if r["status"] != "unreadable" else "撮り直し",
                    text, qtext, r["photo_path"], r["photo_hash"], r["model_version"] or ""])
    return out


def _exporting(ctx, user: User, path: Path, fmt: str, n: int) -> None:
    audit.append(ctx.store, user.username, "mirror.export", "file", str(path.resolve()), {"format": fmt, "rows": n})


def export_csv(ctx, path: Path | str, latest_only: bool = False, *, user: User) -> int:
    """UTF-8 with BOM (opens correctly in Excel), one header row, one row per inspection."""
    require(user, "read_ledger")
    rows = _export_rows(ctx, latest_only)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f)
        w.writerow(EXPORT_COLUMNS)
        w.writerows(rows)
    tmp.replace(path)
    _exporting(ctx, user, path, "csv", len(rows))
    return len(rows)


def export_xlsx(ctx, path: Path | str, latest_only: bool = False, *, user: User) -> int:
    """Sheet 点検台帳 (one row per inspection, same columns as the CSV) + sheet 施設台帳 (per mirror)."""
    require(user, "read_ledger")
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill
    rows = _export_rows(ctx, latest_only)
    wb = Workbook()
    ws = wb.active
    ws.title = "点検台帳"
    ws.append(EXPORT_COLUMNS)
    for r in rows:
        ws.append(r)
    fills = {"Ⅳ": "F8B4B4", "Ⅲ": "FCD9A8", "Ⅱ": "FFF2A8"}
    gcol = EXPORT_COLUMNS.index("判定") + 1
    for row in ws.iter_rows(min_row=2):
        g = str(row[gcol - 1].value or "")[:1]
        if g in fills:
            row[gcol - 1].fill = PatternFill("solid", fgColor=fills[g])
    for c in ws[1]:
        c.font = Font(bold=True)
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = ws.dimensions
    ms = wb.create_sheet("施設台帳")
    ms.append(["管理番号", "路線名", "設置場所", "設置年度", "緯度", "経度", "最新点検日時", "最新判定", "確定済み"])
    for m in list_mirrors(ctx):
        ms.append([m["code"], m["route"], m["location"], m["installed_year"] or "",
                   m["lat"] if m["lat"] is not None else "", m["lon"] if m["lon"] is not None else "",
                   m["last_taken_at"] or "", m["last_grade"] or ("要確認" if m["last_inspection_id"] else ""),
                   "済" if m["last_confirmed_grade"] else ""])
    for c in ms[1]:
        c.font = Font(bold=True)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    wb.save(tmp)
    tmp.replace(path)
    _exporting(ctx, user, path, "xlsx", len(rows))
    return len(rows)


def import_job(ctx, progress, cancel, folder: str, username: str):
    """Child-process entry point of :func:`import_folder` (:func:`engine.jobs.run_in_child`).
    ``username``: the signed-in inspector; the role is read again from the user store here."""
    summary: dict = {}
    for ev in import_folder(ctx, folder, user=get_user(ctx.store, username), cancel=cancel):
        progress(ev)
        summary = ev.summary
    summary = dict(summary)
    summary["cancelled"] = cancel.is_set()
    return summary
