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


class StallProbe:
    """Debug aid (STALL_DEBUG=1): a thread that prints the GUI thread's Python stack whenever the
    GUI has not ticked for ``threshold`` seconds — shows what a stall is made of."""

    def __init__(self, watch: StallWatch, threshold: float = 0.08):
        import sys
        import threading
        self.watch, self.threshold = watch, threshold
        self.main = threading.main_thread().ident
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.sys = sys

    def start(self):
        self.t.start()
        return self

    def _run(self):
        import traceback
        reported = None
        while not self.stop_ev.wait(0.02):
            last = self.watch.last
            if last is None:
                continue
            lag = time.perf_counter() - last
            if lag > self.threshold and reported != last:
                reported = last
                frames = self.sys._current_frames()
                out = [f"--- GUI thread silent {lag * 1000:.0f} ms; stacks:"]
                for tid, fr in frames.items():
                    name = "GUI" if tid == self.main else str(tid)
                    out.append(f"[{name}] " + " <- ".join(f"{f.name}:{f.lineno}@{f.filename.split('/')[-1]}"
                                                        for f in reversed(traceback.extract_stack(fr)[-6:])))
                print("\n".join(out), flush=True)

    def stop(self):
        self.stop_ev.set()
