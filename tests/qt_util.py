"""Helpers for the Qt tests: an event-loop stall meter."""
from __future__ import annotations

import time

from PySide6.QtCore import QObject, QTimer


class StallWatch(QObject):
    """Ticks every 10 ms on the GUI thread; records the longest gap between ticks (a stall)."""

    def __init__(self, interval_ms: int = 10):
        super().__init__()
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)
        self.last = None
        self.gaps: list[float] = []

    def _tick(self):
        now = time.perf_counter()
        if self.last is not None:
            self.gaps.append(now - self.last)
        self.last = now

    def start(self):
        self.last = None
        self.gaps.clear()
        self.timer.start()
        return self

    def stop(self):
        self.timer.stop()

    @property
    def worst_ms(self) -> float:
        return max(self.gaps, default=0.0) * 1000
