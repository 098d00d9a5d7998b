"""The caller's speech to text with the project's Whisper path: audio of any rate (the phone's
8 kHz μ-law is resampled to 16 kHz by the file reader), the silero VAD deciding whether anything
was said at all, then one :class:`~engine.asr.transcribe.WhisperDecoder` call (beam 5, the
hallucination guards) on the whole question, primed with the FAQ's hotwords.

A question is a few seconds long, so it is decoded whole after it ends; the streaming
transcriber's utterance cutting lost the first words of short telephone questions
(「暗証番号を忘れてしまいました」 → 「忘れてしまいました」), which this avoids."""
from __future__ import annotations

from pathlib import Path

MIN_SPEECH = 0.02        # share of 32 ms VAD frames that must be speech


def transcribe_question(config, path: Path | str, hotwords: str = "") -> str:
    from ..asr.transcribe import WhisperDecoder, live_model
    from ..asr.vad import speech_ratio
    from ..audio import read_audio
    audio = read_audio(path)
    if len(audio) == 0 or speech_ratio(audio) < MIN_SPEECH:
        return ""
    language = config.get("asr.language", "ja") if config is not None else "ja"
    dec = WhisperDecoder(live_model(config), language, hotwords or None)
    return "".join(s.text for s in dec.decode(audio, beam_size=5)).strip()
