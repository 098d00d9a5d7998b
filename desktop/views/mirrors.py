"""カーブミラー: import a folder (progress, cancel), the ledger with grade badges and filters,
a photo with its overlay and findings, confirm / override the grade with a reason, export."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor, QImage, QPixmap
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QFileDialog, QHBoxLayout, QHeaderView, QLabel,
                               QLineEdit, QListWidget, QProgressBar, QPushButton, QSplitter, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from engine.jobs import run_in_child
from engine.mirrors import ledger

from .. import changes
from .. import strings as S
from ..errors import show_error, unless_offline
from ..focus import tab_chain
from ..link import server_screen
from ..ops import run_op, store_op

GRADES = ["Ⅰ", "Ⅱ", "Ⅲ", "Ⅳ"]
GRADE_JA = S.GRADE_JA


def overlay_image(row: dict, width: int = 760):
    """The photo with mirror, pole and findings drawn (engine overlay), scaled for the screen.
    Runs on a worker thread; returns (rgb bytes, w, h)."""
    from PIL import Image
    from engine.mirrors import overlay
    img = overlay.render_inspection(row, max_side=1400)
    if not isinstance(img, Image.Image):
        img = Image.fromarray(img)
    img = img.convert("RGB")
    scale = width / img.width
    img = img.resize((width, int(img.height * scale)))
    return img.tobytes(), img.width, img.height


class MirrorsView(QWidget):
    def __init__(self, ctx, user, parent=None):
        server_screen(ctx)
        super().__init__(parent)
        self.ctx, self.user = ctx, user
        self.rows: list[dict] = []
        self.current: dict | None = None
        self._import_op = None
        lay = QVBoxLayout(self)
        top = QHBoxLayout()
        self.import_btn = QPushButton(S.IMPORT_FOLDER, self)
        self.import_btn.setAccessibleName(S.IMPORT_FOLDER)
        self.import_btn.clicked.connect(lambda: self.import_folder())
        self.cancel_btn = QPushButton(S.CANCEL, self)
        self.cancel_btn.setVisible(False)
        self.cancel_btn.setAccessibleName(S.CANCEL_IMPORT)
        self.cancel_btn.clicked.connect(lambda: self._import_op and self._import_op.cancel())
        self.progress = QProgressBar(self)
        self.progress.setVisible(False)
        self.progress.setAccessibleName(S.IMPORT_PROGRESS)
        self.status = QLabel("", self)
        self.export_btn = QPushButton(S.EXPORT_XLSX, self)
        self.export_btn.setAccessibleName(S.EXPORT_XLSX)
        self.export_btn.clicked.connect(lambda: self.export())
        for w in (self.import_btn, self.cancel_btn, self.progress):
            top.addWidget(w)
        top.addWidget(self.status, 1)
        top.addWidget(self.export_btn)
        lay.addLayout(top)
        filt = QHBoxLayout()
        self.f_grade = QComboBox(self)
        self.f_grade.addItem(S.ALL_GRADES, "")
        for g in GRADES:
            self.f_grade.addItem(GRADE_JA[g], g)
        self.f_grade.addItem(S.REVIEW_ONLY, "review")
        self.f_route = QLineEdit(self)
        self.f_route.setPlaceholderText(S.ROUTE_PLACEHOLDER)
        self.f_date = QLineEdit(self)
        self.f_date.setPlaceholderText(S.DATE_PLACEHOLDER)
        self.f_date.setMinimumWidth(self.f_date.fontMetrics().horizontalAdvance(S.DATE_PLACEHOLDER) + 24)
        for w, name in ((self.f_grade, S.FILTER_GRADE), (self.f_route, S.FILTER_ROUTE), (self.f_date, S.FILTER_DATE)):
            w.setAccessibleName(name)
        self.f_grade.currentIndexChanged.connect(self._filter)    # filters: on the loaded ledger, no store call
        self.f_route.textChanged.connect(self._filter)
        self.f_date.textChanged.connect(self._filter)
        filt.addWidget(QLabel(S.FILTER_LABEL, self))
        filt.addWidget(self.f_grade)
        filt.addWidget(self.f_route, 1)
        filt.addWidget(self.f_date)
        lay.addLayout(filt)
        split = QSplitter(Qt.Orientation.Horizontal, self)
        lay.addWidget(split, 1)
        self.table = QTableWidget(0, 6, split)
        self.table.setHorizontalHeaderLabels([S.COL_MIRROR_CODE, S.COL_ROUTE, S.COL_TAKEN_AT, S.COL_AI_GRADE,
                                              S.COL_CONFIRMED_GRADE, S.COL_STATE])
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)   # dates and grades never cut off
        hh.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)           # 路線 takes the rest
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAccessibleName(S.LEDGER)
        self.table.setTabKeyNavigation(False)   # arrows move within the ledger, Tab leaves it
        self.table.itemSelectionChanged.connect(self._selected)
        right = QWidget(split)
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        self.title = QLabel("", right)
        self.title.setWordWrap(True)
        rl.addWidget(self.title)
        self.photo = QLabel(right)
        self.photo.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.photo.setMinimumHeight(360)
        self.photo.setAccessibleName(S.PHOTO_OVERLAY)
        rl.addWidget(self.photo, 3)
        self.findings = QListWidget(right)
        self.findings.setAccessibleName(S.FINDINGS)
        self.findings.setWordWrap(True)
        rl.addWidget(self.findings, 1)
        conf = QHBoxLayout()
        self.grade = QComboBox(right)
        for g in GRADES:
            self.grade.addItem(GRADE_JA[g], g)
        self.grade.setAccessibleName(S.GRADE_TO_CONFIRM)
        self.reason = QLineEdit(right)
        self.reason.setPlaceholderText(S.OVERRIDE_REASON_PLACEHOLDER)
        self.reason.setAccessibleName(S.OVERRIDE_REASON)
        self.confirm_btn = QPushButton(S.CONFIRM, right)
        self.confirm_btn.setAccessibleName(S.CONFIRM_GRADE)
        self.confirm_btn.clicked.connect(self.confirm)
        conf.addWidget(QLabel(S.GRADE_LABEL, right))
        conf.addWidget(self.grade)
        conf.addWidget(self.reason, 1)
        conf.addWidget(self.confirm_btn)
        rl.addLayout(conf)
        split.setSizes([560, 760])
        self.confirm_btn.setEnabled(False)
        tab_chain(self.import_btn, self.cancel_btn, self.export_btn, self.f_grade, self.f_route, self.f_date,
                  self.table, self.findings, self.grade, self.reason, self.confirm_btn)
        self.all_rows: list[dict] = []
        self._after_load = ""
        changes.listen(self, (changes.LEDGER, changes.LINK), lambda kind, iid: self.refresh())
        self.refresh()

    # ------------------------------------------------------------------ ledger
    def refresh(self) -> None:
        """Reload the ledger (off the GUI thread), then show it through the filters."""
        store_op(self, lambda: ledger.ledger_view(self.ctx, self.user, limit=5000), success=self._loaded,
                 failure=unless_offline(self))

    def _loaded(self, rows: list[dict]) -> None:
        self.all_rows = rows
        self._filter()
        if self._after_load:      # the import's summary, once the ledger it changed is shown
            self.status.setText(self._after_load)
            self._after_load = ""

    def _filter(self) -> None:
        rows = self.all_rows
        g = self.f_grade.currentData()
        route = self.f_route.text().strip()
        date = self.f_date.text().strip()
        out = []
        for r in rows:
            grade = r.get("confirmed_grade") or r.get("ai_grade")
            if g == "review" and not (r.get("needs_review") and not r.get("confirmed_grade")):
                continue
            if g and g != "review" and grade != g:
                continue
            if route and route not in (r["route"] or "") and route not in (r.get("mirror_code") or ""):
                continue
            if date and not (r.get("taken_at") or "").startswith(date):
                continue
            out.append(r)
        self.rows = out
        keep = self.current["id"] if self.current else None
        self.table.blockSignals(True)
        self.table.clearSelection()        # a row's inspection may differ after the reload
        self.table.setRowCount(len(out))
        for i, r in enumerate(out):
            state = S.INSPECTION_STATUS.get(r["status"], "")
            if not state:
                state = S.CONFIRMED if r.get("confirmed_grade") else (S.NEEDS_REVIEW if r.get("needs_review") else S.UNCONFIRMED)
            vals = [r.get("mirror_code") or S.NO_CODE, r["route"], (r.get("taken_at") or "")[:16].replace("T", " "),
                    r.get("ai_grade") or S.NEEDS_REVIEW, r.get("confirmed_grade") or "", state]
            for j, v in enumerate(vals):
                it = QTableWidgetItem(v)
                it.setData(Qt.ItemDataRole.UserRole, r["id"])
                if j in (3, 4) and v:
                    it.setBackground(QBrush(QColor(S.GRADE_COLORS.get(v, "#6a1b9a"))))
                    it.setForeground(QBrush(QColor("white")))
                    it.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                self.table.setItem(i, j, it)
        self.table.blockSignals(False)
        n_review = sum(1 for r in rows if r.get("needs_review") and not r.get("confirmed_grade"))
        self.status.setText(S.LEDGER_STATUS.format(total=len(rows), shown=len(out), review=n_review))
        if keep is not None:       # the open inspection stays open: selected again, not reloaded
            self.table.blockSignals(True)
            for i, r in enumerate(out):
                if r["id"] == keep:
                    self.table.selectRow(i)
            self.table.blockSignals(False)

    def _selected(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows:
            self.open_inspection(self.table.item(rows[0].row(), 0).data(Qt.ItemDataRole.UserRole))

    def open_inspection(self, iid: int) -> None:
        store_op(self, lambda: ledger.get_inspection(self.ctx, iid), success=self._show_inspection)

    def _show_inspection(self, r: dict) -> None:
        iid = r["id"]
        self.current = r
        grade = r.get("ai_grade")
        self.title.setText(S.INSPECTION_TITLE.format(code=r.get("mirror_code") or S.NONE, id=iid,
                                                     grade=GRADE_JA.get(grade, S.NEEDS_HUMAN))
                           + (S.INSPECTION_CONFIRMED.format(grade=GRADE_JA[r["confirmed_grade"]], by=r.get("confirmed_by"))
                              if r.get("confirmed_grade") else ""))
        self.findings.clear()
        for f in r.get("findings") or []:
            sev = S.SEVERITY.get(f.get("severity"), "")
            label = f.get("label_ja") or f"{f['member']} {f['defect']}"
            self.findings.addItem(S.FINDING.format(label=label, severity=sev, confidence=f.get("confidence", 0))
                                  + (S.UNCERTAIN if f.get("uncertain") else ""))
        q = r.get("quality") or {}
        for m in q.get("messages", []) if isinstance(q, dict) else []:
            self.findings.addItem(S.PHOTO_NOTE.format(message=m))
        if r.get("error"):
            self.findings.addItem(S.PHOTO_ERROR.format(error=r["error"]))
        target = r.get("confirmed_grade") or grade
        if target:
            self.grade.setCurrentIndex(GRADES.index(target))
        self.reason.clear()
        self.confirm_btn.setEnabled(r["status"] != "unreadable")
        self.photo.setText(S.BUSY)
        if r["status"] != "unreadable":
            run_op(self, lambda task: overlay_image(r, max(400, self.photo.width())), success=self._show_photo,
                   failure=lambda e: self.photo.setText(S.PHOTO_CANNOT_SHOW))
        else:
            self.photo.setText(S.PHOTO_UNREADABLE)

    def _show_photo(self, res) -> None:
        data, w, h = res
        img = QImage(data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
        pm = QPixmap.fromImage(img)
        box = self.photo.size()
        if box.width() > 50 and box.height() > 50:
            pm = pm.scaled(box, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
        self.photo.setPixmap(pm)

    def confirm(self) -> None:
        r = self.current
        if r is None:
            return
        grade, reason = self.grade.currentData(), self.reason.text()
        self.confirm_btn.setEnabled(False)
        store_op(self, lambda: ledger.confirm(self.ctx, r["id"], grade, user=self.user, reason=reason),
                 success=lambda row: self._confirmed(row, r["id"]),
                 failure=self._confirm_failed, change=(changes.LEDGER, r["id"]))

    def _confirmed(self, row: dict, iid: int) -> None:
        self.current = row
        self.confirm_btn.setEnabled(True)
        self.status.setText(S.GRADE_CONFIRMED.format(id=iid))

    def _confirm_failed(self, exc) -> None:
        self.confirm_btn.setEnabled(True)
        show_error(self, exc)  # the chosen grade and reason stay in the form

    # ------------------------------------------------------------------ import / export
    def import_folder(self, folder: str | None = None) -> None:
        if folder is None:
            folder = QFileDialog.getExistingDirectory(self, S.IMPORT_FOLDER)
            if not folder:
                return
        self.import_btn.setEnabled(False)
        self.cancel_btn.setVisible(True)
        self.progress.setVisible(True)
        self.progress.setValue(0)

        def op(task):
            return run_in_child(ledger.import_job, self.ctx,
                                {"folder": folder, "username": self.user.username},
                                progress=lambda ev: task.progress(ev.done, ev.total, ev.path.name),
                                cancel=task.cancel_event)

        self._import_op = run_op(self, op, success=self._imported, failure=self._import_failed,
                                 progress=self._import_progress)

    def _import_progress(self, done, total, name) -> None:
        self.progress.setMaximum(int(total) or 1)
        self.progress.setValue(int(done))
        self.status.setText(S.IMPORTING.format(done=int(done), total=int(total), name=name))

    def _imported(self, summary) -> None:
        self.import_btn.setEnabled(True)
        self.cancel_btn.setVisible(False)
        self.progress.setVisible(False)
        s = summary or {}
        self._after_load = (S.IMPORTED.format(new=s.get("imported", 0), duplicate=s.get("duplicate", 0),
                                              failed=s.get("failed", 0))
                            + (S.IMPORT_CANCELLED if s.get("cancelled") else ""))
        self.status.setText(self._after_load)
        changes.hub().announce(changes.LEDGER, None)

    def _import_failed(self, exc) -> None:
        self.import_btn.setEnabled(True)
        self.cancel_btn.setVisible(False)
        self.progress.setVisible(False)
        show_error(self, exc)

    def export(self, path: str | None = None) -> None:
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, S.EXPORT_XLSX, str(Path.home() / S.LEDGER_FILENAME),
                                                  "Excel (*.xlsx)")
            if not path:
                return
        run_op(self, lambda task: ledger.export_xlsx(self.ctx, path, user=self.user),
               success=lambda n: self.status.setText(S.LEDGER_EXPORTED.format(n=n, path=path)),
               failure=lambda e: show_error(self, e))
