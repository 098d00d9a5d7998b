"""マニュアル検索: instant results (citation, document, page, highlighted snippet), the PDF page at
the hit on the right (rendered with pypdfium2), 回答案 on request, 要約 of the hit's pages or of its
whole document (cited points, in a child process), indexing with progress/cancel."""
from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QLineEdit, QListWidget, QListWidgetItem, QProgressBar,
                               QPushButton, QScrollArea, QSplitter, QTextBrowser, QVBoxLayout, QWidget)

from engine.manuals import index as mindex
from engine.jobs import run_in_child
from engine.manuals import search as msearch
from engine.manuals import summarize as msummarize

from .. import strings as S
from ..errors import show_error
from ..focus import tab_chain
from ..ops import run_op, store_op

ROLE_HIT = Qt.ItemDataRole.UserRole


def render_page(path: str, page: int, width: int = 900):
    """Render one PDF page to a QImage-compatible RGB buffer (runs on a worker thread)."""
    import pypdfium2 as pdfium
    pdf = pdfium.PdfDocument(path)
    try:
        n = len(pdf)
        idx = max(0, min(n - 1, page - 1))
        pg = pdf[idx]
        scale = width / pg.get_width()
        pil = pg.render(scale=scale).to_pil().convert("RGB")
        return pil.tobytes(), pil.width, pil.height, idx + 1, n
    finally:
        pdf.close()


class ManualsView(QWidget):
    def __init__(self, ctx, user, parent=None):
        super().__init__(parent)
        self.ctx, self.user = ctx, user
        self.hits: list[msearch.Hit] = []
        self._search_op = None
        self._index_op = None
        self._pending_query = None
        lay = QVBoxLayout(self)
        top = QHBoxLayout()
        self.query = QLineEdit(self)
        self.query.setPlaceholderText(S.SEARCH_PLACEHOLDER)
        self.query.setAccessibleName(S.SEARCH_TERMS)
        self.query.setClearButtonEnabled(True)
        f = self.query.font()
        f.setPointSize(f.pointSize() + 3)
        self.query.setFont(f)
        self.query.textChanged.connect(self._debounce)
        self.query.returnPressed.connect(self.search_now)
        self.answer_btn = QPushButton(S.ANSWER, self)
        self.answer_btn.setAccessibleName(S.ANSWER)
        self.answer_btn.clicked.connect(self.answer)
        top.addWidget(self.query, 1)
        top.addWidget(self.answer_btn)
        lay.addLayout(top)
        status_row = QHBoxLayout()
        self.status = QLabel("", self)
        self.index_btn = QPushButton(S.UPDATE_INDEX, self)
        self.index_btn.setAccessibleName(S.UPDATE_INDEX)
        self.index_btn.clicked.connect(self.reindex)
        self.cancel_btn = QPushButton(S.CANCEL, self)
        self.cancel_btn.setVisible(False)
        self.cancel_btn.setAccessibleName(S.CANCEL_INDEXING)
        self.cancel_btn.clicked.connect(lambda: self._index_op and self._index_op.cancel())
        self.progress = QProgressBar(self)
        self.progress.setVisible(False)
        self.progress.setAccessibleName(S.INDEX_PROGRESS)
        status_row.addWidget(self.status, 1)
        status_row.addWidget(self.progress)
        status_row.addWidget(self.index_btn)
        status_row.addWidget(self.cancel_btn)
        lay.addLayout(status_row)
        split = QSplitter(Qt.Orientation.Horizontal, self)
        lay.addWidget(split, 1)
        left = QWidget(split)
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        self.results = QListWidget(left)
        self.results.setWordWrap(True)
        self.results.setAccessibleName(S.SEARCH_RESULTS)
        self.results.currentItemChanged.connect(lambda cur, _prev: cur and self.show_hit(cur.data(ROLE_HIT)))
        ll.addWidget(self.results, 3)
        self.answer_box = QTextBrowser(left)
        self.answer_box.setAccessibleName(S.ANSWER_BOX)
        self.answer_box.setVisible(False)
        ll.addWidget(self.answer_box, 2)
        self.summary_box = QTextBrowser(left)
        self.summary_box.setAccessibleName(S.SUMMARY_BOX)
        self.summary_box.setVisible(False)
        ll.addWidget(self.summary_box, 2)
        right = QWidget(split)
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        page_row = QHBoxLayout()
        self.page_label = QLabel("", right)
        self.page_label.setWordWrap(True)
        page_row.addWidget(self.page_label, 1)
        self.sum_hit_btn = QPushButton(S.SUMMARIZE_HIT, right)
        self.sum_hit_btn.setAccessibleName(S.SUMMARIZE_HIT)
        self.sum_hit_btn.clicked.connect(self.summarize_hit)
        self.sum_doc_btn = QPushButton(S.SUMMARIZE_DOC, right)
        self.sum_doc_btn.setAccessibleName(S.SUMMARIZE_DOC)
        self.sum_doc_btn.clicked.connect(self.summarize_document)
        for b in (self.sum_hit_btn, self.sum_doc_btn):
            b.setEnabled(False)          # until a hit is shown
            page_row.addWidget(b)
        rl.addLayout(page_row)
        self.summary = None              # the last summary shown
        self._summary_op = None
        self.page_scroll = QScrollArea(right)
        self.page_scroll.setWidgetResizable(False)
        self.page_view = QLabel(right)
        self.page_view.setAccessibleName(S.MANUAL_PAGE)
        self.page_view.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignHCenter)
        self.page_scroll.setWidget(self.page_view)
        rl.addWidget(self.page_scroll, 1)
        self.passage = QTextBrowser(right)
        self.passage.setVisible(False)
        self.passage.setAccessibleName(S.MANUAL_PASSAGE)
        self.page_scroll.setAccessibleName(S.MANUAL_PAGE)
        rl.addWidget(self.passage, 1)
        tab_chain(self.query, self.answer_btn, self.results, self.answer_box, self.summary_box, self.sum_hit_btn,
                  self.sum_doc_btn, self.page_scroll, self.passage, self.index_btn, self.cancel_btn)
        split.setSizes([560, 700])
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(250)
        self.timer.timeout.connect(self.search_now)
        self.update_status()

    # ------------------------------------------------------------------ status / indexing
    def update_status(self, suffix: str = "") -> None:
        """The index's counts (read off the GUI thread), then ``suffix`` (what the last indexing
        run has to say)."""
        folder = self.ctx.config["manuals_dir"] or S.MANUALS_DIR_UNSET

        def show(st) -> None:
            self.status.setText(S.MANUALS_STATUS.format(docs=st.documents, pages=st.pages, chunks=st.chunks)
                                + (S.MANUALS_UNREADABLE.format(n=st.skipped) if st.skipped else "")
                                + S.MANUALS_FOLDER.format(folder=folder) + suffix)
        store_op(self, lambda: mindex.status(self.ctx.local), success=show)

    def reindex(self, paths: list[str] | None = None) -> None:
        paths = paths or ([self.ctx.config["manuals_dir"]] if self.ctx.config["manuals_dir"] else [])
        if not paths:
            self.status.setText(S.MANUALS_DIR_MISSING)
            return
        self.index_btn.setEnabled(False)
        self.cancel_btn.setVisible(True)
        self.progress.setVisible(True)
        self.progress.setValue(0)

        def op(task):
            def prog(p):
                task.progress(p.done, p.total, p.path if p.phase == "read" else S.PREPARING_SEMANTIC)
            return run_in_child(mindex.index_job, self.ctx, {"paths": paths, "username": self.user.username},
                                progress=prog, cancel=task.cancel_event)

        self._index_op = run_op(self, op, success=self._indexed, failure=self._index_failed,
                                progress=self._index_progress)

    def _index_progress(self, done, total, label) -> None:
        self.progress.setMaximum(int(total) or 1)
        self.progress.setValue(int(done))
        self.status.setText(S.INDEXING.format(done=int(done), total=int(total), name=Path(label).name if label else ""))

    def _indexed(self, report) -> None:
        self.index_btn.setEnabled(True)
        self.cancel_btn.setVisible(False)
        self.progress.setVisible(False)
        suffix = S.INDEX_CANCELLED if getattr(report, "cancelled", False) else ""
        skipped = getattr(report, "skipped", [])
        if skipped:
            suffix += S.UNREADABLE_FILES + "、".join(
                f"{Path(s.path).name}（{getattr(s, 'message_ja', '') or s.reason}）" for s in skipped[:3])
        self.update_status(suffix)

    def _index_failed(self, exc) -> None:
        self.index_btn.setEnabled(True)
        self.cancel_btn.setVisible(False)
        self.progress.setVisible(False)
        show_error(self, exc)

    # ------------------------------------------------------------------ search
    def _debounce(self) -> None:
        self.timer.start()

    def search_now(self) -> None:
        self.timer.stop()
        q = self.query.text().strip()
        if not q:
            self.results.clear()
            return
        if self._search_op is not None and self._search_op.running:
            self._pending_query = q  # run again when the current search returns
            return
        self._search_op = run_op(self, lambda task: msearch.search(self.ctx.local, q, top=10),
                                 success=lambda hits: self._show_results(q, hits),
                                 failure=lambda e: show_error(self, e))

    def _show_results(self, q: str, hits) -> None:
        nxt, self._pending_query = self._pending_query, None
        if nxt and nxt != q:
            self.search_now()  # the text changed while searching: search again, show the newest
            return
        self.hits = hits
        self.results.clear()
        if not hits:
            it = QListWidgetItem(S.NO_HITS)
            self.results.addItem(it)
            return
        for h in hits:
            page = S.PAGE_N.format(n=h.page) if h.page else ""
            label = QLabel()
            label.setWordWrap(True)
            label.setTextFormat(Qt.TextFormat.RichText)
            snip = h.marked("\x01", "\x02")
            snip = html.escape(snip).replace("\x01", "<b style='background:#fff59d'>").replace("\x02", "</b>")
            label.setText(f"<b>{html.escape(h.citation)}</b>　<span style='color:#555'>{html.escape(h.doc)} {page}"
                          f"　{html.escape(h.heading)}</span><br>{snip}")
            label.setContentsMargins(6, 4, 6, 4)
            label.setAccessibleName(f"{h.citation} {h.doc} {page}")
            it = QListWidgetItem()
            it.setData(ROLE_HIT, h)
            it.setToolTip(h.heading)
            self.results.addItem(it)
            label.setFixedWidth(max(300, self.results.viewport().width() - 8))
            label.adjustSize()
            it.setSizeHint(label.sizeHint())
            self.results.setItemWidget(it, label)
        self.results.setCurrentRow(0)

    def show_hit(self, h: msearch.Hit | None) -> None:
        if h is None:
            return
        self.current_hit = h
        busy = self._summary_op is not None and self._summary_op.running
        self.sum_hit_btn.setEnabled(not busy)
        self.sum_doc_btn.setEnabled(not busy)
        self.page_label.setText(f"{h.citation}　{h.doc}" + ("　" + S.PAGE_N.format(n=h.page) if h.page else ""))
        if h.path.lower().endswith(".pdf") and h.page:
            self.page_scroll.setVisible(True)
            self.passage.setVisible(False)
            width = max(400, self.page_scroll.viewport().width() - 4)   # the page fits: no sideways scrolling
            run_op(self, lambda task: render_page(h.path, h.page, width), success=self._show_page,
                   failure=lambda e: self._show_passage(h))
        else:
            self._show_passage(h)

    def _show_page(self, r) -> None:
        data, w, hgt, page, n = r
        img = QImage(data, w, hgt, 3 * w, QImage.Format.Format_RGB888).copy()
        self.page_view.setPixmap(QPixmap.fromImage(img))
        self.page_view.resize(w, hgt)
        self.page_label.setText(self.page_label.text() + f"（{page}/{n}）")

    def _show_passage(self, h) -> None:
        self.page_scroll.setVisible(False)
        self.passage.setVisible(True)
        self.passage.setPlainText(f"{h.heading}\n\n{h.text or h.snippet}")

    # ------------------------------------------------------------------ 要約
    def summarize_hit(self) -> None:
        """Summarise the pages around the shown hit (its page and the ones beside it)."""
        h = getattr(self, "current_hit", None)
        if h is None:
            return
        pages = f"{max(1, h.page - 1)}-{(h.page_end or h.page) + 1}" if h.page else None
        self._summarize(h.path, pages, f"{h.citation} {S.PAGE_N.format(n=h.page) if h.page else ''}")

    def summarize_document(self) -> None:
        h = getattr(self, "current_hit", None)
        if h is not None:
            self._summarize(h.path, None, h.doc)

    def _summarize(self, doc: str, pages: str | None, label: str) -> None:
        self.summary_box.setVisible(True)
        self.summary_box.setPlainText(S.SUMMARY_WORKING.format(doc=label))
        self.sum_hit_btn.setEnabled(False)
        self.sum_doc_btn.setEnabled(False)
        self._summary_op = run_op(self, lambda task: run_in_child(msummarize.summarize_job, self.ctx,
                                                                  {"doc": doc, "pages": pages},
                                                                  cancel=task.cancel_event),
                                  success=self._show_summary, failure=self._summary_failed)

    def _show_summary(self, s) -> None:
        from .summary import summary_html
        self.summary = s
        self.sum_hit_btn.setEnabled(True)
        self.sum_doc_btn.setEnabled(True)
        self.summary_box.setHtml(summary_html(s))

    def _summary_failed(self, exc) -> None:
        self.sum_hit_btn.setEnabled(True)
        self.sum_doc_btn.setEnabled(True)
        self.summary_box.setPlainText("")
        self.summary_box.setVisible(False)
        show_error(self, exc)

    # ------------------------------------------------------------------ 回答案
    def answer(self) -> None:
        q = self.query.text().strip()
        if not q:
            return
        try:
            from engine.manuals import answer as manswer
        except ModuleNotFoundError:
            self.answer_box.setVisible(True)
            self.answer_box.setPlainText(S.ANSWER_UNAVAILABLE)
            return
        self.answer_box.setVisible(True)
        self.answer_box.setPlainText(S.ANSWER_WORKING)
        self.answer_btn.setEnabled(False)
        run_op(self, lambda task: manswer.answer(self.ctx, q), success=self._show_answer,
               failure=lambda e: (self.answer_btn.setEnabled(True), show_error(self, e)))

    def _show_answer(self, ans) -> None:
        self.answer_btn.setEnabled(True)
        text = getattr(ans, "text", None) or str(ans)
        self.answer_box.setPlainText(S.ANSWER_HEADER + "\n" + text)
