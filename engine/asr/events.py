"""What a transcriber yields: :class:`Partial` (the utterance in progress) and :class:`Final`
(a committed segment), shared by every transcriber (``transcribe``, ``vosk_engine``)."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Partial:
    """Hypothesis of the utterance in progress (grey in the UI, may still change)."""
    start: float
    end: float
    text: str
    speaker: str = "unknown"
    stable: int = 0                 # leading characters already committed (will not change)
    final: bool = False


@dataclass
class Final:
    """Committed segment: text that will not change any more (until the final pass)."""
    start: float
    end: float
    text: str
    speaker: str = "unknown"
    final: bool = True
    emitted_at: float = field(default=0.0, repr=False)   # time.monotonic() when produced
    id: int | None = None           # segments.id once a session has stored it
