"""記録: the draft beside the transcript (evidence links both ways), flags with a jump to each,
edit, 保存, 提出. Progress while a draft is still being written."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QAbstractItemView, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QProgressBar,
                               QPushButton, QSplitter, QVBoxLayout, QWidget)

from engine.errors import MadoguchiError
from engine.records import workflow

from .. import strings as S
from ..errors import show_error
from .recordpanel import RecordPanel


class RecordView(QWidget):
    def __init__(self, ctx, user, parent=None):
        super().__init__(parent)
        self.ctx, self.user = ctx, user
        self.current: workflow.RecordDraft | None = None
        self.dirty = False
        lay = QVBoxLayout(self)
        split = QSplitter(Qt.Orientation.Horizontal, self)
        lay.addWidget(split, 1)
        left = QWidget(split)
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(QLabel("自分の記録", left))
        self.list = QListWidget(left)
        self.list.setAccessibleName("自分の記録の一覧")
        self.list.itemClicked.connect(lambda it: self.open_record(it.data(Qt.ItemDataRole.UserRole)))
        ll.addWidget(self.list)
        right = QWidget(split)
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        self.header = QLabel("相談タブで録音を停止すると、ここに記録の下書きが表示されます。", right)
        self.header.setWordWrap(True)
        rl.addWidget(self.header)
        self.progress = QProgressBar(right)
        self.progress.setVisible(False)
        self.progress.setAccessibleName("下書きの作成状況")
        rl.addWidget(self.progress)
        self.panel = RecordPanel(right, editable=True)
        self.panel.changed.connect(self._changed)
        rl.addWidget(self.panel, 1)
        actions = QHBoxLayout()
        self.save_btn = QPushButton(S.SAVE, right)
        self.submit_btn = QPushButton(S.SUBMIT, right)
        self.save_btn.setShortcut("Ctrl+S")
        self.save_btn.clicked.connect(self.save)
        self.submit_btn.clicked.connect(self.submit)
        self.message = QLabel("", right)
        actions.addWidget(self.message, 1)
        actions.addWidget(self.save_btn)
        actions.addWidget(self.submit_btn)
        rl.addLayout(actions)
        split.setSizes([240, 1000])
        self._set_actions()
        self.refresh()

    def showEvent(self, ev):
        self.refresh()
        super().showEvent(ev)

    def refresh(self) -> None:
        try:
            recs = workflow.list_records(self.ctx.store, self.user, owner=self.user.username)
        except MadoguchiError:
            recs = []
        self.list.clear()
        for r in recs:
            it = QListWidgetItem(f"{r.id}　{r.title}（{r.state_ja}）")
            it.setData(Qt.ItemDataRole.UserRole, r.id)
            self.list.addItem(it)

    def show_progress(self, done: float, total: float, label: str = "") -> None:
        self.progress.setVisible(True)
        self.progress.setMaximum(int(total) if total else 0)
        self.progress.setValue(int(done))
        self.header.setText(label or S.DRAFTING)

    def hide_progress(self) -> None:
        self.progress.setVisible(False)

    def open_record(self, rid: int) -> None:
        try:
            rec = workflow.get(self.ctx.store, self.user, rid)
        except MadoguchiError as e:
            show_error(self, e)
            return
        self.current = rec
        self.dirty = False
        self.hide_progress()
        self.header.setText(f"記録 {rec.id}（第{rec.version}版・{rec.state_ja}）　{rec.title}"
                            + (f"\n差戻し理由：{rec.comment}" if rec.state == "returned" and rec.comment else ""))
        self.panel.editable = rec.state in ("draft", "returned")
        self.panel.set_draft(rec.content)
        self._set_actions()

    def _changed(self) -> None:
        self.dirty = True
        self.message.setText("未保存の変更があります")
        self._set_actions()

    def _set_actions(self) -> None:
        rec = self.current
        editable = rec is not None and rec.state in ("draft", "returned") and rec.owner == self.user.username
        self.save_btn.setEnabled(editable and self.dirty)
        self.submit_btn.setEnabled(editable)

    def save(self) -> bool:
        rec = self.current
        if rec is None or not self.dirty:
            return True
        try:
            self.current = workflow.save(self.ctx.store, self.user, rec.id, self.panel.draft, rec.revision,
                                         reason="職員が修正")
        except MadoguchiError as e:
            show_error(self, e)  # the edits stay on screen: nothing typed is lost
            return False
        self.dirty = False
        self.message.setText("保存しました")
        self._set_actions()
        return True

    def submit(self) -> None:
        if not self.save():
            return
        rec = self.current
        try:
            self.current = workflow.submit(self.ctx.store, self.user, rec.id, rec.revision)
        except MadoguchiError as e:
            show_error(self, e)
            return
        self.message.setText("提出しました。査察指導員の承認を待っています。")
        self.open_record(rec.id)
        self.refresh()
