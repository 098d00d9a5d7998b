"""相談: one big 録音 / 停止 button, consent, microphone, elapsed time, level meter; the live
interview checklist (required items tick as they are covered, 申請意思 not yet confirmed stands out); the live
transcript (final lines with speaker colours, the current partial in grey); edit a line or its
speaker inline, play from a line; after 停止 the final pass and the draft run in the background
and the record opens in 記録."""
from __future__ import annotations

import time

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QKeySequence, QShortcut
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QHBoxLayout, QLabel, QLineEdit, QListWidget, QListWidgetItem,
                               QMessageBox, QProgressBar, QPushButton, QVBoxLayout, QWidget)

from engine.asr import session as asession
from engine.asr import sessions
from engine.asr.transcribe import Final, Partial
from engine.audio import Level, list_input_devices
from engine.errors import MadoguchiError
from engine.records.checklist import Coverage

from .. import changes
from .. import strings as S
from ..errors import show_error, unless_offline
from ..focus import tab_chain
from ..ops import run_op, store_op
from .checklist import InterviewChecklist
from .recordpanel import SPEAKER_FG, fmt_time

ROLE_SEG = Qt.ItemDataRole.UserRole          # segment row id
ROLE_START = Qt.ItemDataRole.UserRole + 1
ROLE_SPEAKER = Qt.ItemDataRole.UserRole + 2


class ConsultView(QWidget):
    record_ready = Signal(int)

    def __init__(self, ctx, user, parent=None):
        super().__init__(parent)
        self.ctx, self.user = ctx, user
        self.cw = None                 # the CounterConsultation being recorded
        self.refining = None           # record id whose final pass is running
        self.session_id: int | None = None
        self.partial_item: QListWidgetItem | None = None
        self.started = 0.0
        self._rec_op = None
        self._loading = False
        lay = QVBoxLayout(self)

        form = QHBoxLayout()
        self.title = QLineEdit(self)
        self.title.setPlaceholderText(S.SUBJECT_PLACEHOLDER)
        self.title.setAccessibleName(S.SUBJECT)
        self.case = QLineEdit(self)
        self.case.setPlaceholderText(S.CASE_NUMBER)
        self.case.setAccessibleName(S.CASE_NUMBER)
        self.mic = QComboBox(self)
        self.mic.setAccessibleName(S.MIC)
        self.refresh_mics()
        form.addWidget(self.title, 2)
        form.addWidget(self.case, 1)
        form.addWidget(QLabel(S.MIC + "：", self))
        form.addWidget(self.mic, 1)
        lay.addLayout(form)

        self.consent = QCheckBox(S.CONSENT, self)
        self.consent.setAccessibleName(S.CONSENT_NAME)
        f = self.consent.font()
        f.setPointSize(f.pointSize() + 1)
        self.consent.setFont(f)
        lay.addWidget(self.consent)

        row = QHBoxLayout()
        self.record_btn = QPushButton(S.RECORD + "（F5）", self)
        self.record_btn.setAccessibleName(S.RECORD_STOP_NAME)
        self.record_btn.setMinimumHeight(72)
        self.record_btn.setMinimumWidth(280)
        big = QFont(self.record_btn.font())
        big.setPointSize(big.pointSize() + 8)
        big.setBold(True)
        self.record_btn.setFont(big)
        self._style_button(False)
        self.record_btn.clicked.connect(self.toggle)
        QShortcut(QKeySequence("F5"), self, activated=self.toggle)
        row.addWidget(self.record_btn)
        side = QVBoxLayout()
        self.elapsed = QLabel(f"{S.ELAPSED} 00:00", self)
        ef = QFont(self.elapsed.font())
        ef.setPointSize(ef.pointSize() + 6)
        self.elapsed.setFont(ef)
        self.level = QProgressBar(self)
        self.level.setRange(0, 60)
        self.level.setTextVisible(False)
        self.level.setAccessibleName(S.INPUT_LEVEL)
        self.level.setMaximumHeight(14)
        self.status = QLabel("", self)
        self.status.setWordWrap(True)
        side.addWidget(self.elapsed)
        side.addWidget(self.level)
        side.addWidget(self.status)
        row.addLayout(side, 1)
        lay.addLayout(row)

        # the live interview checklist: shown from 録音 on, kept after 停止 until the next consultation
        self.checklist = InterviewChecklist(self)
        self.checklist.hide()
        lay.addWidget(self.checklist)

        self.transcript = QListWidget(self)
        self.transcript.setWordWrap(True)
        self.transcript.setAccessibleName(S.TRANSCRIPT)
        tf = QFont(self.transcript.font())
        tf.setPointSize(tf.pointSize() + 2)
        self.transcript.setFont(tf)
        self.transcript.itemChanged.connect(self._edited)
        # a click selects a line, a click on the selected line (or F2) edits it;
        # double-click or Enter plays the recording from the start of that line
        self.transcript.setEditTriggers(QAbstractItemView.EditTrigger.SelectedClicked
                                        | QAbstractItemView.EditTrigger.EditKeyPressed)
        self.transcript.itemActivated.connect(self.play_line)
        lay.addWidget(self.transcript, 1)

        tools = QHBoxLayout()
        self.play_btn = QPushButton(S.PLAY_FROM_LINE, self)
        self.swap_btn = QPushButton(S.SWAP_LINE, self)
        self.swap_all_btn = QPushButton(S.SWAP_ALL, self)
        self.play_btn.setAccessibleName(S.PLAY_FROM_LINE_NAME)
        self.swap_btn.setAccessibleName(S.SWAP_LINE)
        self.swap_all_btn.setAccessibleName(S.SWAP_ALL)
        self.play_btn.clicked.connect(self.play_selected)
        self.swap_btn.clicked.connect(self.swap_selected)
        self.swap_all_btn.clicked.connect(self.swap_all)
        for b in (self.play_btn, self.swap_btn, self.swap_all_btn):
            tools.addWidget(b)
        tools.addStretch(1)
        lay.addLayout(tools)
        hint_row = QHBoxLayout()
        hint = QLabel(S.TRANSCRIPT_HINT, self)
        hint.setWordWrap(True)
        hint.setStyleSheet("color: #555;")
        hint_row.addWidget(hint, 1)
        # a citizen's paper opens in its own window beside the consultation (the screen stays as wide)
        self.paper_btn = QPushButton(S.PAPER_READ, self)
        self.paper_btn.setAccessibleName(S.PAPER_READ_NAME)
        self.paper_btn.clicked.connect(self.pick_paper)
        hint_row.addWidget(self.paper_btn)
        lay.addLayout(hint_row)
        self.papers: list = []         # the paper windows of this consultation (nothing of them is stored)
        tab_chain(self.title, self.case, self.mic, self.consent, self.record_btn, self.checklist.items, self.transcript,
                  self.play_btn, self.swap_btn, self.swap_all_btn, self.paper_btn)
        self.timer = QTimer(self)
        self.timer.setInterval(250)
        self.timer.timeout.connect(self._tick)
        self.ready = False
        from engine.consultation import warm_up
        self.status.setText(S.WARMING_UP)
        run_op(self, lambda task: warm_up(self.ctx), success=self._warmed,
               failure=lambda e: (self.status.setText(""), show_error(self, e)))

    def _warmed(self, _=None) -> None:
        self.ready = True
        if not self.recording:
            self.status.setText(S.READY)

    # ------------------------------------------------------------------ helpers
    def _style_button(self, recording: bool) -> None:
        color = "#424242" if recording else "#c62828"
        self.record_btn.setStyleSheet(f"QPushButton {{ background: {color}; color: white; border-radius: 10px; }}"
                                      "QPushButton:disabled { background: #9e9e9e; }")
        self.record_btn.setText((S.STOP if recording else S.RECORD) + "（F5）")

    def refresh_mics(self) -> None:
        self.mic.clear()
        self.mic.addItem(S.MIC_DEFAULT, "")
        try:
            for d in list_input_devices():
                self.mic.addItem(d["name"], d["name"])
        except Exception:
            pass
        i = self.mic.findData(self.ctx.config["asr.device"])
        if i >= 0:
            self.mic.setCurrentIndex(i)

    @property
    def recording(self) -> bool:
        return self.cw is not None

    def _tick(self) -> None:
        s = int(time.monotonic() - self.started)
        self.elapsed.setText(f"{S.ELAPSED} {s // 60:02d}:{s % 60:02d}")

    # ------------------------------------------------------------------ record / stop
    def toggle(self) -> None:
        if not self.record_btn.isEnabled():
            return
        if self.recording:
            self.stop()
        else:
            self.start()

    def make_source(self):
        from engine.audio import MicSource
        return MicSource(self.mic.currentData() or None, channels=self.ctx.config["asr.channels"])

    def start(self, source=None) -> bool:
        if not self.consent.isChecked():
            self.status.setText(S.CONSENT_NEEDED)
            self.status.setStyleSheet("color: #c62828;")
            self.consent.setFocus()
            return False
        self.status.setStyleSheet("")
        from engine.consultation import CounterConsultation
        try:
            cw = CounterConsultation(self.ctx, self.user, title=self.title.text().strip(),
                                     case_number=self.case.text().strip(), consent=True)
            source = source or self.make_source()
        except MadoguchiError as e:
            show_error(self, e)
            return False
        self.cw = cw
        self.forget_papers()           # the previous citizen's papers go before the next consultation
        self.transcript.clear()
        self.partial_item = None
        self.checklist.show_coverage(cw.coverage)      # every required item still to ask
        self.checklist.show()
        self.started = time.monotonic()
        self.timer.start()
        self._style_button(True)
        self.consent.setEnabled(False)
        self.status.setText(S.RECORDING)

        def op(task):
            self.session_id = cw.start(source, on_event=task.emit)
            cw.wait()
            return cw.session_id

        self._rec_op = run_op(self, op, on_event=self.on_event, success=lambda _sid: None,
                              failure=self._recording_failed)
        return True

    def _recording_failed(self, exc) -> None:
        self.timer.stop()
        self._style_button(False)
        self.consent.setEnabled(True)
        self.cw = None
        show_error(self, exc)

    def on_event(self, ev) -> None:
        if isinstance(ev, Coverage):
            if self.cw is not None:
                self.checklist.show_coverage(ev)
        elif isinstance(ev, Level):
            db = max(ev.dbfs) if ev.dbfs else -60.0
            self.level.setValue(int(max(0.0, min(60.0, db + 60.0))))
        elif isinstance(ev, Partial):
            if self.partial_item is None:
                self.partial_item = QListWidgetItem()
                self.partial_item.setForeground(QBrush(QColor("#9e9e9e")))
                self.partial_item.setFlags(Qt.ItemFlag.ItemIsEnabled)
                self.transcript.addItem(self.partial_item)
            self.partial_item.setText(f"{fmt_time(ev.start)} …{ev.text}")
            self.transcript.scrollToBottom()
        elif isinstance(ev, Final):
            if self.partial_item is not None:
                self.transcript.takeItem(self.transcript.row(self.partial_item))
                self.partial_item = None
            self._add_line(getattr(ev, "id", None), ev.start, ev.speaker, ev.text)
            self.transcript.scrollToBottom()
        elif isinstance(ev, asession.DeviceLost):
            self.status.setText(ev.ja or S.MIC_LOST)
            self.status.setStyleSheet("color: #ef6c00;")
        elif isinstance(ev, asession.DeviceRestored):
            self.status.setText(S.MIC_RESTORED)
            self.status.setStyleSheet("")
        elif isinstance(ev, asession.Ended) and ev.ja and self.cw is not None:
            # the recording itself stopped (a full disk, …): say why, then finish with what was kept
            self.status.setText(ev.ja)
            self.status.setStyleSheet("color: #c62828;")
            self.error_box = show_error(self, self.cw.session.error)
            QTimer.singleShot(0, self.stop)
        elif isinstance(ev, asession.Ended) and ev.error:
            self.status.setText(S.TRANSCRIBE_ERROR)

    def _add_line(self, seg_id, start: float, speaker: str, text: str) -> QListWidgetItem:
        self._loading = True
        it = QListWidgetItem(f"{fmt_time(start)} {S.SPEAKER.get(speaker, speaker)}：{text}")
        it.setData(ROLE_SEG, seg_id)
        it.setData(ROLE_START, start)
        it.setData(ROLE_SPEAKER, speaker)
        it.setForeground(QBrush(SPEAKER_FG.get(speaker, SPEAKER_FG["unknown"])))
        it.setFlags(it.flags() | Qt.ItemFlag.ItemIsEditable)
        self.transcript.addItem(it)
        self._loading = False
        return it

    def stop(self) -> None:
        cw = self.cw
        if cw is None:
            return
        self.record_btn.setEnabled(False)
        self.timer.stop()
        self.status.setText(S.FINISHING_DRAFT)

        def op(task):
            return cw.stop(progress=lambda d, t, label: task.progress(d, t, label))

        run_op(self, op, success=self._stopped, failure=self._stop_failed,
               progress=lambda d, t, label: self.status.setText(label))

    def _stopped(self, rec) -> None:
        cw = self.cw
        sid = cw.session_id
        self.cw = None
        self._style_button(False)
        self.record_btn.setEnabled(True)
        self.consent.setEnabled(True)
        self.consent.setChecked(False)   # the next citizen must consent again
        self.level.setValue(0)
        self.show_session(sid)
        self.status.setText(S.DRAFT_READY_REFINING.format(id=rec.id))
        self.record_ready.emit(rec.id)
        self.refine(cw, rec.id)

    def refine(self, cw, record_id: int) -> None:
        """The final pass after the draft is on screen: a better transcript, then the record follows."""
        self.refining = record_id

        def done(new) -> None:
            self.refining = None
            if self.session_id == cw.session_id:
                self.show_session(cw.session_id)
            self.status.setText(S.REFINED if new is not None else S.REFINE_SKIPPED)
            changes.hub().announce(changes.REFINED, record_id)

        def failed(exc) -> None:
            self.refining = None
            show_error(self, exc)   # the draft and the live transcript are saved already

        run_op(self, lambda task: cw.refine(progress=lambda f: task.progress(f, 1.0, S.FINAL_PASS)),
               success=done, failure=failed,
               progress=lambda d, t, label: self.status.setText(f"{label}（{int(100 * d / (t or 1))}%）"))

    def _stop_failed(self, exc) -> None:
        self.cw = None
        self._style_button(False)
        self.record_btn.setEnabled(True)
        self.consent.setEnabled(True)
        show_error(self, exc)

    # ------------------------------------------------------------------ transcript edits
    def show_session(self, session_id: int | None) -> None:
        if session_id is None:
            return
        self.session_id = session_id
        store_op(self, lambda: sessions.segments(self.ctx.store, session_id),
                 success=lambda rows: self._show_lines(session_id, rows))

    def _show_lines(self, session_id: int, rows: list[dict]) -> None:
        if self.session_id != session_id:
            return             # another consultation was opened meanwhile
        self.transcript.clear()
        self.partial_item = None
        for g in rows:
            self._add_line(g["id"], g["start"], g["speaker"], g["text"])

    def _edited(self, item: QListWidgetItem) -> None:
        if self._loading or item.data(ROLE_SEG) is None:
            return
        text, seg = item.text().split("：", 1)[-1].strip(), item.data(ROLE_SEG)
        store_op(self, lambda: asession.edit_segment(self.ctx.store, seg, text=text, user=self.user),
                 change=(changes.SESSIONS, self.session_id))

    def _selected(self) -> QListWidgetItem | None:
        it = self.transcript.currentItem()
        return it if it is not None and it.data(ROLE_SEG) is not None else None

    def swap_selected(self) -> None:
        it = self._selected()
        if it is None:
            return
        new, seg = ("citizen" if it.data(ROLE_SPEAKER) == "staff" else "staff"), it.data(ROLE_SEG)
        store_op(self, lambda: asession.edit_segment(self.ctx.store, seg, speaker=new, user=self.user),
                 success=lambda _row: self._speaker_swapped(it, new), change=(changes.SESSIONS, self.session_id))

    def _speaker_swapped(self, it: QListWidgetItem, new: str) -> None:
        if it.listWidget() is None:
            return             # the list was reloaded meanwhile
        self._loading = True
        it.setData(ROLE_SPEAKER, new)
        it.setText(f"{fmt_time(it.data(ROLE_START))} {S.SPEAKER[new]}：{it.text().split('：', 1)[-1]}")
        it.setForeground(QBrush(SPEAKER_FG[new]))
        self._loading = False

    def swap_all(self) -> None:
        if self.session_id is None or self.recording:
            return
        sid = self.session_id
        store_op(self, lambda: asession.swap_speakers(self.ctx.store, sid, user=self.user),
                 success=lambda _r: self.show_session(sid), change=(changes.SESSIONS, sid))

    def play_selected(self) -> None:
        self.play_line(self._selected())

    def play_line(self, it: QListWidgetItem | None) -> None:
        """Play the recording from the start of transcript line ``it`` (double-click / Enter on a line)."""
        if it is None or it.data(ROLE_SEG) is None or self.session_id is None:
            return
        if self.recording:   # the speakers would be recorded too
            self.status.setText(S.NO_PLAY_WHILE_RECORDING)
            return
        self.play_from(float(it.data(ROLE_START)))

    def play_from(self, start: float):
        sid = self.session_id
        self.play_requested = (sid, start)

        def op(task):
            audio = asession.audio_range(self.ctx.store, sid, start, start + 60.0)
            self.play_loaded = (sid, start, len(audio))
            try:
                import sounddevice as sd
                sd.play(audio, 16000)
            except Exception as e:
                raise MadoguchiError(f"cannot play audio: {e}", ja=S.ERR_PLAYBACK) from e
            return len(audio) / 16000

        return run_op(self, op, success=lambda secs: self.status.setText(S.PLAYING_FROM.format(time=fmt_time(start))),
                      failure=lambda e: show_error(self, e))

    # ------------------------------------------------------------------ the citizen's paper
    def pick_paper(self) -> None:
        from PySide6.QtWidgets import QFileDialog
        path, _ = QFileDialog.getOpenFileName(self, S.PAPER_PICK_TITLE, "", S.PAPER_FILTER)
        if path:
            self.read_paper(path)

    def read_paper(self, path: str):
        """Read a citizen's paper (photo, scan, PDF) in the background and show it in its own window."""
        from .paperdialog import PaperDialog
        dlg = PaperDialog(self.ctx, self.user, path, self)
        self.papers.append(dlg)
        dlg.destroyed.connect(lambda *_: self.papers.remove(dlg) if dlg in self.papers else None)
        dlg.show()
        return dlg.start()

    def forget_papers(self) -> None:
        for dlg in list(self.papers):
            dlg.close()
        self.papers.clear()

    # ------------------------------------------------------------------ crash recovery
    def offer_recovery(self) -> None:
        """At start-up: sessions cut off by a crash (while recording, drafting or in the final
        pass) → ask whether to recover them (looked up off the GUI thread)."""
        from engine.consultation import pending_recovery
        store_op(self, lambda: pending_recovery(self.ctx, self.user), success=self._ask_recovery,
                 failure=unless_offline(self))

    def _ask_recovery(self, pending: list[dict]) -> None:
        if not pending:
            return
        box = QMessageBox(QMessageBox.Icon.Question, S.RECOVER_TITLE, S.RECOVER_TEXT.format(n=len(pending)),
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self)
        box.button(QMessageBox.StandardButton.Yes).setText(S.RECOVER_YES)
        box.button(QMessageBox.StandardButton.No).setText(S.RECOVER_LATER)
        box.accepted.connect(lambda: self.recover(pending))
        box.open()
        self.recovery_box = box

    def recover(self, pending: list[dict]) -> None:
        self.status.setText(S.RECOVERING)

        def op(task):
            from engine.consultation import recover
            return recover(self.ctx, self.user, [s["id"] for s in pending], progress=task.progress), pending[-1]["id"]

        def done(res):
            made, last = res
            self.show_session(last)
            self.status.setText(S.RECOVERED.format(n=len(pending)))
            for rid in made:
                self.record_ready.emit(rid)

        run_op(self, op, success=done, failure=lambda e: show_error(self, e))

    def shutdown(self) -> None:
        self.forget_papers()
        if self.cw is not None:
            try:
                self.cw.session.stop(final_pass=False)
            except Exception:
                pass
