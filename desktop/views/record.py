"""記録: the draft beside the transcript (evidence links both ways), flags with a jump to each,
edit, 保存, 提出. Progress while a draft is still being written."""
from __future__ import annotations

import copy

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QAbstractItemView, QHBoxLayout, QHeaderView, QLabel, QProgressBar, QPushButton,
                               QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from engine.consultation import save_edit
from engine.records import workflow

from .. import changes
from .. import strings as S
from ..errors import show_error
from ..focus import tab_chain
from ..ops import store_op
from .recordpanel import RecordPanel


class RecordView(QWidget):
    def __init__(self, ctx, user, parent=None):
        super().__init__(parent)
        self.ctx, self.user = ctx, user
        self.current: workflow.RecordDraft | None = None
        self.dirty = False
        self.edits = 0          # edits so far: one typed while a save is on its way stays unsaved
        self.saving = False     # a save or submit is on its way: no second one meanwhile
        lay = QVBoxLayout(self)
        split = QSplitter(Qt.Orientation.Horizontal, self)
        lay.addWidget(split, 1)
        left = QWidget(split)
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(QLabel(S.MY_RECORDS, left))
        # 番号 | 件名 | 状態: the title column stretches and is elided with the full text as tooltip
        self.records = QTableWidget(0, 3, left)
        self.records.setHorizontalHeaderLabels([S.COL_NUMBER, S.COL_TITLE, S.COL_STATE])
        hh = self.records.horizontalHeader()
        hh.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        hh.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        hh.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.records.verticalHeader().setVisible(False)
        self.records.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.records.setWordWrap(False)
        self.records.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.records.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.records.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.records.setMinimumWidth(340)
        self.records.setTabKeyNavigation(False)   # arrows move within the list, Tab leaves it
        self.records.setAccessibleName(S.MY_RECORDS_LIST)
        self.records.cellClicked.connect(lambda row, _col: self._open_row(row))
        self.records.itemActivated.connect(lambda it: self._open_row(it.row()))   # Enter / double-click
        ll.addWidget(self.records)
        right = QWidget(split)
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        self.header = QLabel(S.RECORD_EMPTY_HINT, right)
        self.header.setWordWrap(True)
        rl.addWidget(self.header)
        self.progress = QProgressBar(right)
        self.progress.setVisible(False)
        self.progress.setAccessibleName(S.DRAFT_PROGRESS)
        rl.addWidget(self.progress)
        self.panel = RecordPanel(right, editable=True)
        self.panel.changed.connect(self._changed)
        rl.addWidget(self.panel, 1)
        actions = QHBoxLayout()
        self.save_btn = QPushButton(S.SAVE, right)
        self.submit_btn = QPushButton(S.SUBMIT, right)
        self.save_btn.setShortcut("Ctrl+S")
        self.save_btn.setAccessibleName(S.SAVE_RECORD)
        self.submit_btn.setAccessibleName(S.SUBMIT_RECORD)
        self.save_btn.clicked.connect(self.save)
        self.submit_btn.clicked.connect(self.submit)
        self.message = QLabel("", right)
        actions.addWidget(self.message, 1)
        actions.addWidget(self.save_btn)
        actions.addWidget(self.submit_btn)
        rl.addLayout(actions)
        split.setSizes([360, 1000])
        tab_chain(self.records, self.panel.transcript, self.panel.tree, self.panel.flags, self.save_btn,
                  self.submit_btn)
        self._set_actions()
        changes.listen(self, (changes.RECORDS, changes.LINK), lambda kind, rid: self.refresh())
        changes.listen(self, (changes.REFINED,), lambda kind, rid: self.refined(rid))
        self.refresh()

    def showEvent(self, ev):
        self.refresh()
        super().showEvent(ev)

    def refresh(self) -> None:
        """Reload this user's records (off the GUI thread); a list that cannot load stays as it was."""
        store_op(self, lambda: workflow.list_records(self.ctx.store, self.user, owner=self.user.username),
                 success=self._show_list, failure=lambda e: None)

    def _show_list(self, recs: list[workflow.RecordDraft]) -> None:
        keep = self.current.id if self.current is not None else None
        self.records.blockSignals(True)
        self.records.setRowCount(len(recs))
        for i, r in enumerate(recs):
            title = r.title or S.UNTITLED
            for j, text in enumerate((str(r.id), title, r.state_ja)):
                it = QTableWidgetItem(text)
                it.setData(Qt.ItemDataRole.UserRole, r.id)
                it.setToolTip(S.RECORD_TOOLTIP.format(id=r.id, title=title, state=r.state_ja,
                                                      case=r.case_number or "—"))
                self.records.setItem(i, j, it)
        self.records.blockSignals(False)
        self._select_row(keep)

    def _select_row(self, rid: int | None) -> None:
        self.records.blockSignals(True)
        for i in range(self.records.rowCount()):
            if self.records.item(i, 0).data(Qt.ItemDataRole.UserRole) == rid:
                self.records.selectRow(i)
        self.records.blockSignals(False)

    def _open_row(self, row: int) -> None:
        it = self.records.item(row, 0)
        if it is not None:
            self.open_record(it.data(Qt.ItemDataRole.UserRole))

    def show_progress(self, done: float, total: float, label: str = "") -> None:
        self.progress.setVisible(True)
        self.progress.setMaximum(int(total) if total else 0)
        self.progress.setValue(int(done))
        self.header.setText(label or S.DRAFTING)

    def hide_progress(self) -> None:
        self.progress.setVisible(False)

    def open_record(self, rid: int) -> None:
        store_op(self, lambda: workflow.get(self.ctx.store, self.user, rid), success=self._show_record)

    def _show_record(self, rec: workflow.RecordDraft) -> None:
        self.current = rec
        self.dirty = False
        self._select_row(rec.id)
        self.hide_progress()
        self.header.setText(S.RECORD_HEADER.format(id=rec.id, version=rec.version, state=rec.state_ja, title=rec.title)
                            + (S.RETURN_REASON_LINE.format(comment=rec.comment)
                               if rec.state == "returned" and rec.comment else ""))
        self.panel.editable = rec.state in ("draft", "returned")
        self.panel.set_draft(rec.content)
        self._set_actions()

    def refined(self, rid: int) -> None:
        """The final pass has saved a new version of record ``rid`` under this view."""
        self.refresh()
        if self.current is None or self.current.id != rid:
            return
        if self.dirty:
            self.message.setText(S.REFINE_ARRIVED)   # the edits stay; save() carries them over
        else:
            self.open_record(rid)

    def _changed(self) -> None:
        self.dirty = True
        self.edits += 1
        if not self.saving:
            self.message.setText(S.UNSAVED)
        self._set_actions()

    def _set_actions(self) -> None:
        rec = self.current
        editable = (rec is not None and rec.state in ("draft", "returned") and rec.owner == self.user.username
                    and not self.saving)
        self.save_btn.setEnabled(editable and self.dirty)
        self.submit_btn.setEnabled(editable)

    def save(self, then=None) -> None:
        """保存 (off the GUI thread); ``then()`` runs once it is saved (or when there was nothing to
        save). On failure the edits stay on screen: nothing typed is lost."""
        rec = self.current
        if rec is None or not self.dirty:
            if then is not None:
                then()
            return
        draft = copy.deepcopy(self.panel.draft)   # a snapshot: typing goes on while it is saved
        edits = self.edits
        self._busy()
        store_op(self, lambda: save_edit(self.ctx, self.user, rec.id, draft, rec.revision, reason=S.REASON_STAFF_EDIT),
                 success=lambda got: self._saved(got, then, edits), failure=self._failed,
                 change=(changes.RECORDS, rec.id))

    def _saved(self, got, then, edits: int) -> None:
        self.saving = False
        self.current, carried = got
        self.dirty = self.edits != edits
        if carried:   # carried over onto the final transcript: show it
            self.open_record(self.current.id)
        self.message.setText(S.UNSAVED if self.dirty else S.SAVED)
        self._set_actions()
        if then is not None and not self.dirty:
            then()

    def submit(self) -> None:
        self.save(then=self._submit)

    def _submit(self) -> None:
        rec = self.current
        self._busy()
        store_op(self, lambda: workflow.submit(self.ctx.store, self.user, rec.id, rec.revision),
                 success=self._submitted, failure=self._failed, change=(changes.RECORDS, rec.id))

    def _submitted(self, rec) -> None:
        self.saving = False
        self.current = rec
        self.message.setText(S.SUBMITTED)
        self._show_record(rec)

    def _busy(self) -> None:
        """While the record is on its way to the store: no second click."""
        self.saving = True
        self._set_actions()
        self.message.setText(S.BUSY)

    def _failed(self, exc) -> None:
        self.saving = False
        self.message.setText(S.UNSAVED if self.dirty else "")
        self._set_actions()
        show_error(self, exc)
