"""A record beside its transcript: click a statement → its evidence lines light up; click a line →
the statements resting on it light up. Flags listed with a jump to each. Used by 記録 and 承認."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (QAbstractItemView, QLabel, QListWidget, QListWidgetItem, QSplitter, QTreeWidget,
                               QTreeWidgetItem, QVBoxLayout, QWidget)

from engine.records.model import Draft, Statement

from .. import strings as S

HILITE = QColor("#fff59d")
FLAG_FG = QColor("#c62828")
SPEAKER_FG = {"staff": QColor("#1565c0"), "citizen": QColor("#2e7d32"), "unknown": QColor("#616161")}
ROLE_STATEMENT = Qt.ItemDataRole.UserRole
ROLE_SEQ = Qt.ItemDataRole.UserRole + 1


def fmt_time(t: float) -> str:
    t = int(t)
    return f"{t // 60:02d}:{t % 60:02d}"


class RecordPanel(QWidget):
    changed = Signal()

    def __init__(self, parent=None, editable: bool = False):
        super().__init__(parent)
        self.editable = editable
        self.draft: Draft | None = None
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        split = QSplitter(Qt.Orientation.Horizontal, self)
        lay.addWidget(split)

        left = QWidget(split)
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(QLabel(S.TRANSCRIPT_WITH_SEQ, left))
        self.transcript = QListWidget(left)
        self.transcript.setWordWrap(True)
        self.transcript.setAccessibleName(S.TRANSCRIPT)
        self.transcript.itemClicked.connect(self._segment_clicked)
        ll.addWidget(self.transcript)

        right = QWidget(split)
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        self.method = QLabel("", right)
        self.method.setWordWrap(True)
        rl.addWidget(self.method)
        self.tree = QTreeWidget(right)
        self.tree.setHeaderLabels([S.COL_RECORD_ITEM, S.COL_EVIDENCE])
        self.tree.setColumnWidth(0, 560)
        self.tree.setWordWrap(True)
        self.tree.setAccessibleName(S.DRAFT_TREE)
        self.tree.itemClicked.connect(self._statement_clicked)
        self.tree.itemChanged.connect(self._statement_edited)
        if editable:
            self.tree.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked
                                      | QAbstractItemView.EditTrigger.EditKeyPressed)
        rl.addWidget(self.tree, 3)
        rl.addWidget(QLabel(S.FLAGS_LABEL, right))
        self.flags = QListWidget(right)
        self.flags.setAccessibleName(S.FLAGS_LIST)
        self.flags.setWordWrap(True)   # long reasons wrap instead of running off the right edge
        self.flags.itemClicked.connect(self._flag_clicked)
        rl.addWidget(self.flags, 1)
        split.setSizes([480, 720])
        self._loading = False

    # ------------------------------------------------------------------ content
    def set_draft(self, draft: Draft | None) -> None:
        self._loading = True
        self.draft = draft
        self.transcript.clear()
        self.tree.clear()
        self.flags.clear()
        if draft is None:
            self.method.setText("")
            self._loading = False
            return
        self.method.setText(S.DRAFT_METHOD.format(method=S.DRAFT_METHODS.get(draft.method, draft.method))
                            + (f"（{draft.model}）" if draft.model else ""))
        for seg in draft.segments:
            it = QListWidgetItem(f"[{seg.seq}] {fmt_time(seg.start)} {S.SPEAKER.get(seg.speaker, seg.speaker)}：{seg.text}")
            it.setData(ROLE_SEQ, seg.seq)
            it.setForeground(QBrush(SPEAKER_FG.get(seg.speaker, SPEAKER_FG["unknown"])))
            self.transcript.addItem(it)
        bold = QFont()
        bold.setBold(True)
        for sec in draft.sections:
            top = QTreeWidgetItem([sec.title + (S.REQUIRED_MARK if sec.required else ""), ""])
            top.setFont(0, bold)
            top.setFlags(top.flags() & ~Qt.ItemFlag.ItemIsEditable)
            self.tree.addTopLevelItem(top)
            for st in sec.statements:
                self._add_statement(top, st)
            top.setExpanded(True)
        for f in draft.flags:
            it = QListWidgetItem(f"■ {f.message}" + (f"：{f.detail}" if f.detail else ""))
            it.setForeground(QBrush(FLAG_FG))
            it.setData(ROLE_SEQ, f.evidence[0] if f.evidence else None)
            self.flags.addItem(it)
        self._loading = False

    def _add_statement(self, parent: QTreeWidgetItem, st: Statement) -> QTreeWidgetItem:
        mark = S.REVIEW_MARK if st.needs_review else ""
        it = QTreeWidgetItem([f"{mark}{st.text}", ", ".join(str(e) for e in st.evidence)])
        it.setData(0, ROLE_STATEMENT, st)
        flags = it.flags() | (Qt.ItemFlag.ItemIsEditable if self.editable else Qt.ItemFlag.NoItemFlags)
        it.setFlags(flags)
        if st.needs_review:
            it.setForeground(0, QBrush(FLAG_FG))
            reasons = "、".join(f.message for f in st.flags if f.code != "extractive")
            it.setToolTip(0, reasons)
            fl = QListWidgetItem(f"{S.REVIEW_MARK}{st.text[:40]} — {reasons}")
            fl.setForeground(QBrush(FLAG_FG))
            fl.setData(ROLE_STATEMENT, id(st))
            self.flags.addItem(fl)
        parent.addChild(it)
        return it

    def statement_items(self):
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            for j in range(top.childCount()):
                yield top.child(j)

    # ------------------------------------------------------------------ linking
    def _clear_highlight(self) -> None:
        for i in range(self.transcript.count()):
            self.transcript.item(i).setBackground(QBrush())
        for it in self.statement_items():
            it.setBackground(0, QBrush())

    def highlight_evidence(self, seqs: list[int]) -> list[int]:
        self._clear_highlight()
        hit = []
        first = None
        for i in range(self.transcript.count()):
            it = self.transcript.item(i)
            if it.data(ROLE_SEQ) in seqs:
                it.setBackground(QBrush(HILITE))
                hit.append(it.data(ROLE_SEQ))
                first = first or it
        if first is not None:
            self.transcript.scrollToItem(first)
        return hit

    def highlight_statements_for(self, seq: int) -> list[str]:
        self._clear_highlight()
        out = []
        for it in self.statement_items():
            st: Statement = it.data(0, ROLE_STATEMENT)
            if st is not None and seq in st.evidence:
                it.setBackground(0, QBrush(HILITE))
                self.tree.scrollToItem(it)
                out.append(st.text)
        for i in range(self.transcript.count()):
            if self.transcript.item(i).data(ROLE_SEQ) == seq:
                self.transcript.item(i).setBackground(QBrush(HILITE))
        return out

    def _statement_clicked(self, item: QTreeWidgetItem, _col: int) -> None:
        st = item.data(0, ROLE_STATEMENT)
        if st is not None:
            self.highlight_evidence(list(st.evidence))

    def _segment_clicked(self, item: QListWidgetItem) -> None:
        self.highlight_statements_for(item.data(ROLE_SEQ))

    def _flag_clicked(self, item: QListWidgetItem) -> None:
        key = item.data(ROLE_STATEMENT)
        if key is not None:
            for it in self.statement_items():
                if id(it.data(0, ROLE_STATEMENT)) == key:
                    self.tree.setCurrentItem(it)
                    self.tree.scrollToItem(it)
                    self._statement_clicked(it, 0)
                    return
        seq = item.data(ROLE_SEQ)
        if seq is not None:
            self.highlight_statements_for(seq)

    def _statement_edited(self, item: QTreeWidgetItem, col: int) -> None:
        if self._loading or col != 0:
            return
        st: Statement = item.data(0, ROLE_STATEMENT)
        if st is None:
            return
        text = item.text(0).replace(S.REVIEW_MARK, "").strip()
        if text != st.text:
            st.text = text
            st.source = "staff"
            self.changed.emit()
