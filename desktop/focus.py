"""Keyboard helpers: an explicit tab order for each screen."""
from __future__ import annotations

from PySide6.QtWidgets import QWidget


def tab_chain(*widgets: QWidget) -> None:
    """Tab moves through ``widgets`` in this order (QWidget.setTabOrder pairwise)."""
    for a, b in zip(widgets, widgets[1:]):
        QWidget.setTabOrder(a, b)
