"""承認: the supervisor's queue (age, flags), a record with its transcript and flags, a diff against
the previous version, 承認 or 差戻し with a comment; approved records read-only with export/print."""
from __future__ import annotations

import difflib
import time
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QTextDocument
from PySide6.QtWidgets import (QCheckBox, QFileDialog, QHBoxLayout, QHeaderView, QInputDialog, QLabel, QPushButton,
                               QSplitter, QTableWidget, QTableWidgetItem, QTabWidget, QTextBrowser, QVBoxLayout,
                               QWidget, QAbstractItemView)

from engine.roles import can
from engine.records import export as rexport
from engine.records import workflow
from engine.records.model import Draft

from .. import changes
from .. import strings as S
from ..errors import show_error, unless_offline
from ..focus import tab_chain
from ..link import server_screen
from ..ops import run_op, store_op
from .recordpanel import RecordPanel


def age_text(ts: float) -> str:
    mins = int((time.time() - ts) / 60)
    if mins < 60:
        return S.AGE_MINUTES.format(n=mins)
    if mins < 60 * 24:
        return S.AGE_HOURS.format(n=mins // 60)
    return S.AGE_DAYS.format(n=mins // 1440)


def draft_lines(d: Draft) -> list[str]:
    out = []
    for sec in d.sections:
        out.append(S.DIFF_SECTION.format(title=sec.title))
        for st in sec.statements:
            out.append(S.DIFF_STATEMENT.format(text=st.text))
    return out


class ApprovalView(QWidget):
    def __init__(self, ctx, user, parent=None):
        server_screen(ctx)
        super().__init__(parent)
        self.ctx, self.user = ctx, user
        self.current: workflow.RecordDraft | None = None
        lay = QVBoxLayout(self)
        top = QHBoxLayout()
        self.show_all = QCheckBox(S.SHOW_ALL_RECORDS, self)
        self.show_all.setAccessibleName(S.SHOW_ALL_RECORDS)
        self.show_all.toggled.connect(self.refresh)
        refresh = self.refresh_btn = QPushButton(S.REFRESH, self)
        refresh.setAccessibleName(S.REFRESH)
        refresh.clicked.connect(self.refresh)
        top.addWidget(QLabel(S.SUBMITTED_RECORDS, self))
        top.addStretch(1)
        top.addWidget(self.show_all)
        top.addWidget(refresh)
        lay.addLayout(top)
        split = QSplitter(Qt.Orientation.Vertical, self)
        lay.addWidget(split, 1)
        self.queue = QTableWidget(0, 6, split)
        self.queue.setHorizontalHeaderLabels([S.COL_NUMBER, S.COL_TITLE, S.CASE_NUMBER, S.COL_OWNER, S.COL_STATE,
                                              S.COL_AGE_FLAGS])
        hh = self.queue.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)   # nothing cut off
        hh.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)           # 件名 takes the rest (elided, tooltip)
        self.queue.verticalHeader().setVisible(False)
        self.queue.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.queue.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.queue.setAccessibleName(S.APPROVAL_QUEUE)
        self.queue.setTabKeyNavigation(False)   # arrows move within the queue, Tab leaves it
        self.queue.itemSelectionChanged.connect(self._selected)
        detail = QWidget(split)
        dl = QVBoxLayout(detail)
        dl.setContentsMargins(0, 0, 0, 0)
        self.header = QLabel("", detail)
        self.header.setWordWrap(True)
        dl.addWidget(self.header)
        self.tabs = QTabWidget(detail)
        self.panel = RecordPanel(detail, editable=False)
        self.diff = QTextBrowser(detail)
        self.diff.setAccessibleName(S.DIFF_TAB)
        self.tabs.setAccessibleName(S.RECORD_AND_DIFF)
        self.tabs.tabBar().setAccessibleName(S.RECORD_AND_DIFF)
        self.tabs.addTab(self.panel, S.RECORD_TAB)
        self.tabs.addTab(self.diff, S.DIFF_TAB)
        dl.addWidget(self.tabs, 1)
        actions = QHBoxLayout()
        self.ack = QCheckBox(S.ACK_FLAGS, detail)
        self.approve_btn = QPushButton(S.APPROVE, detail)
        self.return_btn = QPushButton(S.RETURN, detail)
        self.pdf_btn = QPushButton(S.EXPORT_PDF, detail)
        self.docx_btn = QPushButton(S.EXPORT_DOCX, detail)
        self.print_btn = QPushButton(S.PRINT, detail)
        self.approve_btn.clicked.connect(self.approve)
        self.return_btn.clicked.connect(self.return_record)
        self.pdf_btn.clicked.connect(lambda: self.export("pdf"))
        self.docx_btn.clicked.connect(lambda: self.export("docx"))
        self.print_btn.clicked.connect(self.print_record)
        for w, name in ((self.ack, S.ACK_FLAGS), (self.approve_btn, S.APPROVE), (self.return_btn, S.RETURN),
                        (self.pdf_btn, S.EXPORT_PDF), (self.docx_btn, S.EXPORT_DOCX), (self.print_btn, S.PRINT)):
            w.setAccessibleName(name)
        for w in (self.ack, self.approve_btn, self.return_btn):
            actions.addWidget(w)
        actions.addStretch(1)
        for w in (self.pdf_btn, self.docx_btn, self.print_btn):
            actions.addWidget(w)
        dl.addLayout(actions)
        split.setSizes([260, 640])
        self.message = QLabel("", self)
        lay.addWidget(self.message)
        tab_chain(self.show_all, self.refresh_btn, self.queue, self.tabs, self.panel.transcript, self.panel.tree,
                  self.panel.flags, self.diff, self.ack, self.approve_btn, self.return_btn, self.pdf_btn,
                  self.docx_btn, self.print_btn)
        self.records: list[workflow.RecordDraft] = []
        self._set_actions()
        changes.listen(self, (changes.RECORDS, changes.LINK), lambda kind, rid: self.refresh())
        self.refresh()

    def showEvent(self, ev):
        self.refresh()
        super().showEvent(ev)

    # ------------------------------------------------------------------ queue
    def refresh(self) -> None:
        """Reload the queue (off the GUI thread); the open record is reloaded with it."""
        state = None if self.show_all.isChecked() else "submitted"
        store_op(self, lambda: workflow.list_records(self.ctx.store, self.user, state=state), success=self._show_queue,
                 failure=unless_offline(self))

    def _show_queue(self, recs: list[workflow.RecordDraft]) -> None:
        keep = self.current.id if self.current else None
        self.records = recs
        self.queue.blockSignals(True)
        self.queue.clearSelection()        # a row's record may differ after the reload
        self.queue.setRowCount(len(recs))
        for i, r in enumerate(recs):
            flagged = len(r.content.flagged()) + len(r.content.flags)
            vals = [str(r.id), r.title, r.case_number, r.owner, r.state_ja,
                    S.AGE_AND_FLAGS.format(age=age_text(r.submitted_at or r.updated_at), n=flagged)]
            for j, v in enumerate(vals):
                it = QTableWidgetItem(v)
                it.setData(Qt.ItemDataRole.UserRole, r.id)
                it.setToolTip(v)
                self.queue.setItem(i, j, it)
        self.queue.blockSignals(False)
        if keep is not None:
            for i, r in enumerate(recs):
                if r.id == keep:
                    self.queue.selectRow(i)

    def _selected(self) -> None:
        rows = self.queue.selectionModel().selectedRows()
        if not rows:
            return
        rid = self.queue.item(rows[0].row(), 0).data(Qt.ItemDataRole.UserRole)
        self.open_record(rid)

    def open_record(self, rid: int) -> None:
        store_op(self, lambda: workflow.with_previous(self.ctx.store, self.user, rid), success=self._show_record)

    def _show_record(self, got) -> None:
        rec, prev = got
        self.current = rec
        self.header.setText(S.APPROVAL_HEADER.format(id=rec.id, version=rec.version, state=rec.state_ja,
                                                     title=rec.title, owner=rec.owner)
                            + (S.APPROVAL_RETURN_REASON.format(comment=rec.comment) if rec.comment else ""))
        self.panel.set_draft(rec.content)
        self.diff.setHtml(self._diff_html(rec, prev))
        self.ack.setChecked(False)
        self._set_actions()

    def _diff_html(self, rec, prev) -> str:
        if prev is None:
            return f"<p>{S.DIFF_FIRST_VERSION}</p>"
        rows = []
        for line in difflib.ndiff(draft_lines(prev.content), draft_lines(rec.content)):
            tag, text = line[:2], line[2:]
            if tag == "? ":
                continue
            color = {"+ ": "#e8f5e9", "- ": "#ffebee"}.get(tag, "white")
            sign = {"+ ": "＋", "- ": "－"}.get(tag, "　")
            rows.append(f"<div style='background:{color}'>{sign} {text}</div>")
        return f"<p>{S.DIFF_VERSIONS.format(old=rec.version - 1, new=rec.version)}</p>" + "".join(rows)

    def _set_actions(self) -> None:
        rec = self.current
        pending = rec is not None and rec.state == "submitted"
        own = rec is not None and rec.owner == self.user.username
        self.approve_btn.setEnabled(pending and not own and can(self.user, "approve"))
        self.return_btn.setEnabled(pending and not own and can(self.user, "approve"))
        self.ack.setEnabled(pending)
        approved = rec is not None and rec.approved_version is not None
        for b in (self.pdf_btn, self.docx_btn, self.print_btn):
            b.setEnabled(approved)
        if own and pending:
            self.message.setText(S.OWN_RECORD)

    # ------------------------------------------------------------------ actions
    def approve(self) -> None:
        rec, ack = self.current, self.ack.isChecked()
        self._busy()
        store_op(self, lambda: workflow.approve(self.ctx.store, self.user, rec.id, rec.revision, acknowledge_flags=ack),
                 success=lambda r: self._done(r, S.APPROVED_MSG), failure=self._failed,
                 change=(changes.RECORDS, rec.id))

    def return_record(self, comment: str | None = None) -> None:
        rec = self.current
        if not comment:
            comment, ok = QInputDialog.getMultiLineText(self, S.RETURN, S.RETURN_COMMENT)
            if not ok or not comment.strip():
                return
        self._busy()
        store_op(self, lambda: workflow.return_record(self.ctx.store, self.user, rec.id, rec.revision, comment.strip()),
                 success=lambda r: self._done(r, S.RETURNED_MSG), failure=self._failed,
                 change=(changes.RECORDS, rec.id))

    def _busy(self) -> None:
        """While a decision is on its way to the store: no second click."""
        self.approve_btn.setEnabled(False)
        self.return_btn.setEnabled(False)
        self.message.setText(S.BUSY)

    def _done(self, rec, msg: str) -> None:
        self.current = rec     # the queue reloads on the change hub
        self.message.setText(msg.format(id=rec.id))
        self.open_record(rec.id)

    def _failed(self, exc) -> None:
        self.message.setText("")
        self._set_actions()
        show_error(self, exc)

    def export(self, fmt: str, path: str | None = None) -> None:
        rec = self.current
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, S.EXPORT_PDF if fmt == "pdf" else S.EXPORT_DOCX,
                                                  str(Path.home() / S.EXPORT_FILENAME.format(id=rec.id, ext=fmt)),
                                                  "PDF (*.pdf)" if fmt == "pdf" else "Word (*.docx)")
            if not path:
                return
        self.message.setText(S.BUSY)
        run_op(self, lambda task: rexport.export_record(self.ctx, self.user, rec.id, fmt, Path(path)),
               success=lambda p: self.message.setText(S.EXPORTED.format(path=p)),
               failure=lambda e: (self.message.setText(""), show_error(self, e)))

    def print_record(self) -> None:
        rid = self.current.id
        store_op(self, lambda: workflow.approved(self.ctx.store, self.user, rid), success=self._print)

    def _print(self, rec) -> None:
        from PySide6.QtPrintSupport import QPrintDialog, QPrinter
        doc = QTextDocument(self)
        doc.setPlainText(rexport.to_text(rec.content, rec=rec, office_name=self.ctx.config["office_name"]))
        printer = QPrinter()
        dlg = QPrintDialog(printer, self)
        if dlg.exec():
            doc.print_(printer)
