"""相談者の書類 at the counter: a window beside the consultation (not a wider 相談 screen) showing
what was read from a citizen's paper — the key fields (差出人, 宛先, 金額, 期限, each with its
page), the cited summary and the whole text read. The paper is read by
:func:`engine.manuals.paper.paper_job` in a child process (Tesseract and the model never run in
the counter window's process); nothing of it is stored (the dialog holds it while it is open)."""
from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QHeaderView, QLabel, QTableWidget, QTableWidgetItem,
                               QTabWidget, QTextBrowser, QVBoxLayout)

from engine.jobs import run_in_child
from engine.manuals import paper as mpaper

from .. import strings as S
from ..errors import japanese_message
from ..ops import run_op
from .summary import summary_html


class PaperDialog(QDialog):
    def __init__(self, ctx, user, path: str, parent=None):
        super().__init__(parent)
        from pathlib import Path
        self.ctx, self.user, self.path = ctx, user, str(path)
        self.paper: mpaper.Paper | None = None
        self.error: BaseException | None = None
        self.setWindowTitle(S.PAPER_TITLE.format(name=Path(path).name))
        self.setAccessibleName(S.PAPER_READ_NAME)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
        self.resize(720, 640)
        lay = QVBoxLayout(self)
        self.status = QLabel(S.PAPER_READING, self)
        self.status.setWordWrap(True)
        lay.addWidget(self.status)
        lay.addWidget(QLabel(S.PAPER_FIELDS, self))
        self.fields = QTableWidget(len(mpaper.FIELD_NAMES), 3, self)
        self.fields.setAccessibleName(S.PAPER_FIELDS)
        self.fields.setHorizontalHeaderLabels([S.PAPER_COL_ITEM, S.PAPER_COL_VALUE, S.PAPER_COL_PAGE])
        self.fields.verticalHeader().setVisible(False)
        self.fields.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.fields.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for i, name in enumerate(mpaper.FIELD_NAMES):
            self.fields.setItem(i, 0, QTableWidgetItem(name))
        self.fields.setMaximumHeight(44 + 30 * len(mpaper.FIELD_NAMES))
        lay.addWidget(self.fields)
        self.tabs = QTabWidget(self)
        self.summary = QTextBrowser(self)
        self.summary.setAccessibleName(S.PAPER_TAB_SUMMARY)
        self.text = QTextBrowser(self)
        self.text.setAccessibleName(S.PAPER_TAB_TEXT)
        self.tabs.addTab(self.summary, S.PAPER_TAB_SUMMARY)
        self.tabs.addTab(self.text, S.PAPER_TAB_TEXT)
        lay.addWidget(self.tabs, 1)
        note = QLabel(S.PAPER_RETENTION, self)
        note.setWordWrap(True)
        note.setStyleSheet("color: #555;")
        lay.addWidget(note)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.button(QDialogButtonBox.StandardButton.Close).setText(S.PAPER_CLOSE)
        buttons.rejected.connect(self.close)
        lay.addWidget(buttons)
        self.op = None

    def start(self) -> "PaperDialog":
        """Read the paper in the background (cancelled when the dialog closes)."""
        path, username = self.path, self.user.username
        self.op = run_op(self, lambda task: run_in_child(mpaper.paper_job, self.ctx,
                                                         {"path": path, "username": username},
                                                         cancel=task.cancel_event),
                         success=self.show_paper, failure=self.show_failure)
        return self

    @property
    def done(self) -> bool:
        return self.paper is not None or self.error is not None

    def show_paper(self, paper: mpaper.Paper) -> None:
        self.paper = paper
        self.status.setText(S.PAPER_DONE.format(seconds=paper.seconds)
                            + ("\n" + S.PAPER_LOW_CONFIDENCE.format(pages="、".join(map(str, paper.low_confidence)))
                               if paper.low_confidence else ""))
        for i, f in enumerate(paper.fields):
            self.fields.setItem(i, 1, QTableWidgetItem(f.value or S.PAPER_FIELD_NOT_FOUND))
            self.fields.setItem(i, 2, QTableWidgetItem(S.PAPER_FIELD_PAGE.format(n=f.page) if f.page else ""))
        if paper.summary is not None:
            self.summary.setHtml(summary_html(paper.summary))
        self.text.setHtml("".join(f"<h4>{S.PAGE_N.format(n=n)}</h4><p>{html.escape(t).replace(chr(10), '<br>')}</p>"
                                  for n, t in paper.pages))

    def show_failure(self, exc: BaseException) -> None:
        self.error = exc
        self.status.setText(S.PAPER_FAILED.format(message=japanese_message(exc)))
        self.status.setStyleSheet("color: #c62828;")

    def closeEvent(self, event) -> None:
        if self.op is not None and self.op.running:
            self.op.cancel()
        self.paper = None          # what was read goes with the window
        self.summary.clear()
        self.text.clear()
        super().closeEvent(event)
