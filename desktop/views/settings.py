"""設定: microphone, models, folders, users (admin only), diagnostics (the doctor table)."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QComboBox, QFormLayout, QGroupBox, QHBoxLayout, QHeaderView, QLabel, QLineEdit,
                               QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget, QScrollArea)

from engine import admin, doctor, models, users
from engine.roles import can

from .. import strings as S
from ..errors import show_error, unless_offline
from ..focus import tab_chain
from ..ops import run_op, store_op


class SettingsView(QWidget):
    def __init__(self, ctx, user, parent=None):
        super().__init__(parent)
        self.ctx, self.user = ctx, user
        outer = QVBoxLayout(self)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        outer.addWidget(scroll)
        inner = QWidget()
        scroll.setWidget(inner)
        lay = QVBoxLayout(inner)

        g = QGroupBox(S.SETTINGS_GENERAL, inner)
        form = QFormLayout(g)
        self.mic = QComboBox(g)
        self.mic.setAccessibleName(S.MIC)
        self.mic.addItem(S.MIC_DEFAULT, "")
        try:
            import sounddevice as sd
            for d in sd.query_devices():
                if d["max_input_channels"] > 0:
                    self.mic.addItem(d["name"], d["name"])
        except OSError:
            pass
        form.addRow(S.MIC, self.mic)
        self.whisper = QComboBox(g)
        self.llm = QComboBox(g)
        self._fill_models()
        form.addRow(S.WHISPER_MODEL, self.whisper)
        form.addRow(S.LLM_MODEL_GGUF, self.llm)
        self.manuals_dir = QLineEdit(ctx.config["manuals_dir"], g)
        self.manuals_dir.setAccessibleName(S.MANUALS_DIR)
        form.addRow(S.MANUALS_DIR, self.manuals_dir)
        for w in (self.whisper, self.llm, self.manuals_dir):   # models and folders: administrators only
            w.setEnabled(can(user, "administer"))
            if not can(user, "administer"):
                w.setToolTip(S.ADMIN_ONLY)
        self.whisper.setAccessibleName(S.WHISPER_MODEL)
        self.llm.setAccessibleName(S.LLM_MODEL)
        data = QLabel(str(ctx.data_dir), g)
        data.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        data.setAccessibleName(S.DATA_DIR)
        form.addRow(S.DATA_DIR, data)
        save = self.save_btn = QPushButton(S.SAVE, g)
        save.setAccessibleName(S.SAVE_SETTINGS)
        save.clicked.connect(self.save)
        form.addRow("", save)
        self.saved = QLabel("", g)
        form.addRow("", self.saved)
        lay.addWidget(g)

        if can(user, "administer"):
            lay.addWidget(self._users_box(inner))

        dg = QGroupBox(S.DOCTOR, inner)
        dl = QVBoxLayout(dg)
        self.doctor_btn = QPushButton(S.RUN_DOCTOR, dg)
        self.doctor_btn.setAccessibleName(S.RUN_DOCTOR)
        self.doctor_btn.clicked.connect(self.run_doctor)
        dl.addWidget(self.doctor_btn)
        self.doctor_table = QTableWidget(0, 4, dg)
        self.doctor_table.setHorizontalHeaderLabels([S.COL_AREA, S.COL_ITEM, S.COL_RESULT, S.COL_DETAIL])
        self.doctor_table.horizontalHeader().setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.doctor_table.setMinimumHeight(260)
        self.doctor_table.setAccessibleName(S.DOCTOR)
        self.doctor_table.setTabKeyNavigation(False)
        dl.addWidget(self.doctor_table)
        self.verdict = QLabel("", dg)
        dl.addWidget(self.verdict)
        lay.addWidget(dg)
        lay.addStretch(1)
        chain = [self.mic, self.whisper, self.llm, self.manuals_dir, self.save_btn]
        if can(user, "administer"):
            chain += [self.users_table, self.new_user, self.new_name, self.new_role, self.new_pw, self.add_btn]
        tab_chain(*chain, self.doctor_btn, self.doctor_table)

    def _fill_models(self) -> None:
        base = models.models_dir(self.ctx.config)
        whispers = [n for n, s in models.load_manifest().items() if s.kind == "whisper-ct2"]
        llms = [n for n, s in models.load_manifest().items() if s.kind == "gguf"]
        if base.is_dir():
            for p in sorted(base.iterdir()):
                if p.is_dir() and (p / "model.bin").is_file() and p.name not in whispers:
                    whispers.append(p.name)
                if p.suffix == ".gguf":
                    llms.append(p.stem)
        for combo, names, key in ((self.whisper, whispers, "asr.model"), (self.llm, llms, "llm.model")):
            for n in names:
                combo.addItem(n, n)
            i = combo.findData(self.ctx.config[key])
            if i >= 0:
                combo.setCurrentIndex(i)

    def save(self) -> None:
        wanted = [("asr.device", self.mic.currentData() or "")]
        if can(self.user, "administer"):       # the engine checks it too (admin.change_setting)
            wanted += [("asr.model", self.whisper.currentData()), ("llm.model", self.llm.currentData()),
                       ("manuals_dir", self.manuals_dir.text().strip())]
        self.save_btn.setEnabled(False)
        store_op(self, lambda: admin.change_settings(self.ctx, self.user, wanted), success=self._saved,
                 failure=self._save_failed)

    def _saved(self, _changed) -> None:
        self.save_btn.setEnabled(True)
        self.saved.setText(S.SETTINGS_SAVED)

    def _save_failed(self, exc) -> None:
        self.save_btn.setEnabled(True)
        show_error(self, exc)   # what was chosen stays on screen

    # ------------------------------------------------------------------ users
    def _users_box(self, parent) -> QGroupBox:
        g = QGroupBox(S.USERS_BOX, parent)
        lay = QVBoxLayout(g)
        self.users_table = QTableWidget(0, 3, g)
        self.users_table.setHorizontalHeaderLabels([S.SIGNIN_USER, S.DISPLAY_NAME, S.COL_ROLE])
        self.users_table.setAccessibleName(S.USERS_TABLE)
        self.users_table.setTabKeyNavigation(False)
        self.users_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.users_table.verticalHeader().setVisible(False)
        lay.addWidget(self.users_table)
        row = QHBoxLayout()
        self.new_user = QLineEdit(g)
        self.new_user.setPlaceholderText(S.SIGNIN_USER)
        self.new_user.setAccessibleName(S.NEW_USER_NAME)
        self.new_name = QLineEdit(g)
        self.new_name.setPlaceholderText(S.DISPLAY_NAME)
        self.new_name.setAccessibleName(S.NEW_USER_DISPLAY)
        self.new_role = QComboBox(g)
        self.new_role.setAccessibleName(S.NEW_USER_ROLE)
        for r in ("staff", "supervisor", "admin", "inspector"):
            self.new_role.addItem(users.ROLE_JA[r], r)
        self.new_pw = QLineEdit(g)
        self.new_pw.setPlaceholderText(S.SIGNIN_PASSWORD)
        self.new_pw.setAccessibleName(S.NEW_USER_PASSWORD)
        self.new_pw.setEchoMode(QLineEdit.EchoMode.Password)
        add = self.add_btn = QPushButton(S.ADD_USER, g)
        add.setAccessibleName(S.ADD_USER_NAME)
        add.clicked.connect(self.add_user)
        for w in (self.new_user, self.new_name, self.new_role, self.new_pw, add):
            row.addWidget(w)
        lay.addLayout(row)
        self.refresh_users()
        return g

    def refresh_users(self) -> None:
        store_op(self, lambda: users.list_users(self.ctx.store, self.user), success=self._show_users,
                 failure=unless_offline(self))

    def _show_users(self, rows: list[users.User]) -> None:
        self.users_table.setRowCount(len(rows))
        for i, u in enumerate(rows):
            for j, v in enumerate((u.username, u.display_name, u.role_ja)):
                self.users_table.setItem(i, j, QTableWidgetItem(v))
        # tall enough for every user (up to 8 rows, then it scrolls): no half-hidden last row
        t = self.users_table
        shown = min(len(rows), 8) or 1
        t.setFixedHeight(t.horizontalHeader().sizeHint().height() + shown * t.verticalHeader().defaultSectionSize()
                         + 2 * t.frameWidth() + 2)

    def add_user(self) -> None:
        name, display, role, pw = (self.new_user.text().strip(), self.new_name.text().strip(),
                                   self.new_role.currentData(), self.new_pw.text())
        store_op(self, lambda: users.add_user(self.ctx.store, self.user, name, display, role, pw),
                 success=self._user_added)

    def _user_added(self, _user) -> None:
        self.new_user.clear(), self.new_name.clear(), self.new_pw.clear()
        self.refresh_users()

    # ------------------------------------------------------------------ doctor
    def run_doctor(self) -> None:
        self.doctor_btn.setEnabled(False)
        self.verdict.setText(S.BUSY)
        run_op(self, lambda task: doctor.run_isolated(self.ctx.data_dir), success=self.show_doctor,
               failure=self._doctor_failed)

    def _doctor_failed(self, exc) -> None:
        self.doctor_btn.setEnabled(True)
        self.verdict.setText("")
        show_error(self, exc)

    def show_doctor(self, checks) -> None:
        self.doctor_btn.setEnabled(True)
        self.doctor_table.setRowCount(len(checks))
        for i, c in enumerate(checks):
            mark = "OK" if c.ok else (S.DOCTOR_FAIL if c.required else S.DOCTOR_WARN)
            items = [QTableWidgetItem(c.area), QTableWidgetItem(c.name), QTableWidgetItem(mark), QTableWidgetItem(c.detail)]
            if not c.ok:
                items[2].setForeground(QColor("#c62828" if c.required else "#ef6c00"))
            for j, it in enumerate(items):
                self.doctor_table.setItem(i, j, it)
        self.doctor_table.resizeColumnsToContents()
        ok = doctor.verdict(checks)
        self.verdict.setText(S.DOCTOR_OK if ok else S.DOCTOR_NG)
