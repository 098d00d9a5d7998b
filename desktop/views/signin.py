"""Sign-in (and first-run admin registration) dialogs."""
from __future__ import annotations

from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QLineEdit,
                               QVBoxLayout)

from engine import users

from .. import strings as S
from ..errors import japanese_message
from ..focus import tab_chain
from ..ops import store_op


def buttons(dlg: QDialog, ok_text: str, on_ok) -> QDialogButtonBox:
    """OK (named ``ok_text``) and キャンセル, kept as ``dlg.ok_btn`` / ``dlg.cancel_btn``."""
    bb = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, dlg)
    dlg.ok_btn = bb.button(QDialogButtonBox.StandardButton.Ok)
    dlg.cancel_btn = bb.button(QDialogButtonBox.StandardButton.Cancel)
    for b, text in ((dlg.ok_btn, ok_text), (dlg.cancel_btn, S.CANCEL_BUTTON)):
        b.setText(text)
        b.setAccessibleName(text)
    bb.accepted.connect(on_ok)
    bb.rejected.connect(dlg.reject)
    return bb


class SignInDialog(QDialog):
    def __init__(self, ctx, parent=None):
        super().__init__(parent)
        self.ctx = ctx
        self.user: users.User | None = None
        self.setWindowTitle(f"{S.SIGNIN_TITLE} — {S.APP_TITLE}")
        self.setMinimumWidth(420)
        lay = QVBoxLayout(self)
        form = QFormLayout()
        self.username = QLineEdit(self)
        self.username.setAccessibleName(S.SIGNIN_USER)
        self.password = QLineEdit(self)
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setAccessibleName(S.SIGNIN_PASSWORD)
        form.addRow(S.SIGNIN_USER, self.username)
        form.addRow(S.SIGNIN_PASSWORD, self.password)
        lay.addLayout(form)
        self.offline_note = QLabel(S.SIGNIN_OFFLINE_NOTE, self)
        self.offline_note.setWordWrap(True)
        self.offline_note.setStyleSheet("color: #8a3b00;")
        self.offline_note.setVisible(not ctx.online)
        lay.addWidget(self.offline_note)
        self.message = QLabel("", self)
        self.message.setStyleSheet("color: #c62828;")
        self.message.setWordWrap(True)
        lay.addWidget(self.message)
        lay.addWidget(buttons(self, S.SIGNIN_BUTTON, self.try_sign_in))
        tab_chain(self.username, self.password, self.ok_btn, self.cancel_btn)
        self.username.setFocus()

    def try_sign_in(self) -> None:
        """Sign in off the GUI thread (a password check and, with an office server, round trips)."""
        name, pw = self.username.text().strip(), self.password.text()
        self.ok_btn.setEnabled(False)
        self.message.setText("")
        store_op(self, lambda: users.sign_in_at_counter(self.ctx, name, pw), success=self._signed_in,
                 failure=self._refused)

    def _signed_in(self, got: users.CounterSignIn) -> None:
        self.user = got.user
        self.offline_note.setVisible(got.offline)
        self.accept()

    def _refused(self, exc) -> None:
        self.ok_btn.setEnabled(True)
        self.message.setText(japanese_message(exc))
        self.password.selectAll()
        self.password.setFocus()


class FirstRunDialog(QDialog):
    """No user exists yet: register the first administrator."""

    def __init__(self, store, parent=None):
        super().__init__(parent)
        self.store = store
        self.user: users.User | None = None
        self.setWindowTitle(S.FIRST_RUN_TITLE)
        self.setMinimumWidth(460)
        lay = QVBoxLayout(self)
        intro = QLabel(S.FIRST_RUN_TEXT, self)
        intro.setWordWrap(True)
        lay.addWidget(intro)
        form = QFormLayout()
        self.username = QLineEdit(self)
        self.display = QLineEdit(self)
        self.password = QLineEdit(self)
        self.password2 = QLineEdit(self)
        for w, label in ((self.username, S.SIGNIN_USER), (self.display, S.DISPLAY_NAME),
                         (self.password, S.SIGNIN_PASSWORD), (self.password2, S.PASSWORD_AGAIN)):
            w.setAccessibleName(label)
            form.addRow(label, w)
        for w in (self.password, self.password2):
            w.setEchoMode(QLineEdit.EchoMode.Password)
        lay.addLayout(form)
        self.message = QLabel("", self)
        self.message.setStyleSheet("color: #c62828;")
        self.message.setWordWrap(True)
        lay.addWidget(self.message)
        lay.addWidget(buttons(self, S.REGISTER, self.register))
        tab_chain(self.username, self.display, self.password, self.password2, self.ok_btn, self.cancel_btn)

    def register(self) -> None:
        if self.password.text() != self.password2.text():
            self.message.setText(S.PASSWORDS_DIFFER)
            return
        name, display, pw = self.username.text().strip(), self.display.text().strip(), self.password.text()
        self.ok_btn.setEnabled(False)
        store_op(self, lambda: users.register_first_admin(self.store, name, display, pw),
                 success=self._registered, failure=self._refused)

    def _registered(self, user: users.User) -> None:
        self.user = user
        self.accept()

    def _refused(self, exc) -> None:
        self.ok_btn.setEnabled(True)
        self.message.setText(japanese_message(exc))
