"""The caller's speech to text: the live Whisper path (VAD-cut utterances, Finals only) on audio
of any rate — the phone's 8 kHz is resampled to 16 kHz by the file reader — primed with the FAQ's
hotwords instead of the counter glossary."""
from __future__ import annotations

from pathlib import Path


def transcribe_question(config, path: Path | str, hotwords: str = "") -> str:
    from ..asr.transcribe import StreamingTranscriber, live_model, stream
    from ..audio import FileSource
    language = config.get("asr.language", "ja") if config is not None else "ja"
    tr = StreamingTranscriber(live_model(config), language=language, hotwords=hotwords or None,
                              partials=False, background=False)
    texts = [ev.text for ev in stream(FileSource(path), tr) if getattr(ev, "final", False)]
    return "".join(texts).strip()
