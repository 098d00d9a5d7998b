"""The live interview checklist on the 相談 screen: the template's required record items tick as
the conversation covers them, the ones not asked yet stay visible, and 申請意思 not yet confirmed
stands out — before 停止. It only presents :class:`engine.records.checklist.Coverage` events that
the drafting child reports (through the recording's event stream); it never polls."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QLabel, QListView, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from .. import strings as S

ROLE_KEY = Qt.ItemDataRole.UserRole
COVERED_FG, MISSING_FG = QColor("#2e7d32"), QColor("#b71c1c")
INTENT_STYLE = {   # state → (background, text colour): anything but a stated intention stands out
    "expressed": ("#e8f5e9", "#1b5e20"),
    "undecided": ("#fff8e1", "#e65100"),
    "asked": ("#ffebee", "#b71c1c"),
    "not_asked": ("#ffebee", "#b71c1c"),
}


class InterviewChecklist(QWidget):
    updated = Signal(object)       # the Coverage just shown (tests wait on it)

    def __init__(self, parent=None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        self.intent = QLabel("", self)
        self.intent.setWordWrap(True)
        self.intent.setAccessibleName(S.CHECKLIST_INTENT_NAME)
        f = self.intent.font()
        f.setBold(True)
        self.intent.setFont(f)
        lay.addWidget(self.intent)
        self.items = QListWidget(self)
        self.items.setAccessibleName(S.CHECKLIST_NAME)
        self.items.setFlow(QListView.Flow.LeftToRight)
        self.items.setWrapping(True)
        self.items.setResizeMode(QListView.ResizeMode.Adjust)
        self.items.setSpacing(2)
        self.items.setSelectionMode(QListWidget.SelectionMode.NoSelection)
        self.items.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        rows = 2                   # at the narrowest window the list scrolls instead of growing
        self.items.setFixedHeight(rows * (self.items.fontMetrics().height() + 10) + 6)
        lay.addWidget(self.items)
        self.coverage = None
        self._rows: dict[str, QListWidgetItem] = {}

    def show_coverage(self, cov) -> None:
        """Tick the items ``cov`` covers and show the 申請意思 state: a handful of item updates, so an
        event costs the event loop well under a millisecond."""
        if cov.same_as(self.coverage):         # new lines that changed nothing: no repaint
            self.coverage = cov
            self.updated.emit(cov)
            return
        if [it.key for it in cov.items] != list(self._rows):
            self.items.clear()
            self._rows = {}
            for it in cov.items:
                row = QListWidgetItem(self.items)
                row.setData(ROLE_KEY, it.key)
                row.setFlags(Qt.ItemFlag.ItemIsEnabled)
                self._rows[it.key] = row
        for it in cov.items:
            row = self._rows[it.key]
            text = f"{S.CHECKLIST_DONE if it.covered else S.CHECKLIST_TODO} {S.CHECKLIST_ITEM.get(it.key, it.title)}"
            if row.text() != text:             # only what changed: a tick costs one item's repaint
                row.setText(text)
                row.setForeground(QBrush(COVERED_FG if it.covered else MISSING_FG))
                f = row.font()
                f.setBold(not it.covered)
                row.setFont(f)
            row.setToolTip(S.CHECKLIST_EVIDENCE.format(title=it.title, lines=S.CHECKLIST_SEP.join(map(str, it.evidence)))
                           if it.covered else S.CHECKLIST_NOT_YET.format(title=it.title))
        text = S.CHECKLIST_INTENT[cov.intent]
        if cov.intent_evidence and cov.intent in ("expressed", "undecided"):
            text += S.CHECKLIST_INTENT_LINES.format(lines=S.CHECKLIST_SEP.join(map(str, cov.intent_evidence)))
        if self.intent.text() != text:
            self.intent.setText(text)
        bg, fg = INTENT_STYLE.get(cov.intent, INTENT_STYLE["not_asked"])
        style = f"QLabel {{ background: {bg}; color: {fg}; padding: 4px; border-radius: 4px; }}"
        if self.intent.styleSheet() != style:
            self.intent.setStyleSheet(style)
        self.coverage = cov
        self.updated.emit(cov)

    def covered(self) -> dict[str, bool]:
        """Item key → ticked, as shown."""
        return {k: row.text().startswith(S.CHECKLIST_DONE) for k, row in self._rows.items()}
