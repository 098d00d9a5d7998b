"""Helpers for the Qt tests: an event-loop stall meter."""
from __future__ import annotations

import threading
import time

from PySide6.QtCore import QObject, QTimer


def _runqueue_wait() -> float:
    """Seconds this thread has spent runnable but waiting for a CPU (Linux schedstat; 0 elsewhere)."""
    try:
        with open(f"/proc/self/task/{threading.get_native_id()}/schedstat") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


class StallWatch(QObject):
    """Ticks every 10 ms on the GUI thread; records the longest gap between ticks (a stall).

    A stall is what the application does to its event loop: work on the GUI thread, a blocking
    call, the GIL held by a loader. On a loaded machine (two suites side by side, CI beside a
    build) the GUI thread also waits for a CPU now and then, which no design of ours removes:
    each gap is counted without the time the kernel kept the GUI thread waiting in its run queue
    (``/proc/self/task/<tid>/schedstat``). ``worst_raw_ms`` is the plain wall-clock gap."""

    def __init__(self, interval_ms: int = 10):
        super().__init__()
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)
        self.last = None
        self.gaps: list[float] = []
        self.raw_gaps: list[float] = []

    def _tick(self):
        now, waited = time.perf_counter(), _runqueue_wait()
        if self.last is not None:
            gap = now - self.last
            self.raw_gaps.append(gap)
            self.gaps.append(max(0.0, gap - (waited - self.last_waited)))
        self.last, self.last_waited = now, waited

    def start(self):
        self.last = None
        self.gaps.clear()
        self.raw_gaps.clear()
        self.timer.start()
        return self

    def stop(self):
        self.timer.stop()

    @property
    def worst_ms(self) -> float:
        return max(self.gaps, default=0.0) * 1000

    @property
    def worst_raw_ms(self) -> float:
        return max(self.raw_gaps, default=0.0) * 1000


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
