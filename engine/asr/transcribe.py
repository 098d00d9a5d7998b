"""Streaming Japanese transcription over faster-whisper.

The stream is cut into utterances by the silero VAD (:mod:`engine.asr.vad`); only speech is ever
decoded, which is what keeps Whisper from inventing text on silence and room noise. While an
utterance is open it is re-decoded every ``step`` seconds and a **LocalAgreement-2** policy runs on
*characters* (Japanese has no spaces): the longest common prefix of two consecutive hypotheses is
committed and is forced as the decoder prefix from then on, so committed text never changes. Each
hypothesis is shown as a :class:`Partial` (grey). When the utterance ends (``min_silence`` of
silence) it is decoded once more, whole, with the office glossary as hotwords, and yielded as a
:class:`Final`.
Utterances longer than ``max_utterance`` are cut at a committed sentence end (a Whisper segment
boundary) and the audio buffer is trimmed there, so the buffer stays bounded.

    tr = StreamingTranscriber(load_whisper())
    for block in FileSource("a.wav"):
        for ev in tr.feed(block):
            ...                      # Partial / Final
    for ev in tr.flush(): ...
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from ..errors import MadoguchiError
from .vad import RATE, SpeechEnd, SpeechStart, StreamingVad

log = logging.getLogger(__name__)

SENTENCE_END = "。？！?!"


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


def as_dict(seg) -> dict:
    """The CLI/JSON shape: {start, end, speaker, text, final}."""
    return {"start": round(seg.start, 2), "end": round(seg.end, 2), "speaker": seg.speaker,
            "text": seg.text, "final": bool(seg.final)}


class TranscriptionError(MadoguchiError):
    ja_default = "音声の文字起こしに失敗しました。録音は保存されています。"


# --------------------------------------------------------------------------- glossary

def glossary_path() -> Path:
    from ..models import app_root
    return app_root() / "resources" / "glossary.txt"


def load_glossary(path: Path | None = None) -> list[str]:
    p = path or glossary_path()
    if not p.is_file():
        return []
    return [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines()
            if ln.strip() and not ln.lstrip().startswith("#")]


def hotwords(config=None) -> str | None:
    """The glossary as Whisper ``hotwords`` (None when ``asr.glossary`` is off)."""
    if config is not None and not config.get("asr.glossary", True):
        return None
    words = load_glossary()
    return " ".join(words) if words else None


# --------------------------------------------------------------------------- decoding

@dataclass
class Seg:
    start: float
    end: float
    text: str


class WhisperDecoder:
    """One call of faster-whisper on an utterance, with the hallucination guards applied."""

    def __init__(self, model, language: str = "ja", hotwords: str | None = None,
                 max_chars_per_second: float = 20.0):
        self.model = model
        self.language = language
        self.hotwords = hotwords
        self.max_cps = max_chars_per_second

    def decode(self, audio: np.ndarray, prefix: str | None = None, beam_size: int = 1,
               timestamps: bool = False, prompt: str | None = None) -> list[Seg]:
        if len(audio) < int(0.1 * RATE):
            return []
        try:
            segments, _ = self.model.transcribe(
                np.asarray(audio, np.float32), language=self.language, beam_size=beam_size,
                vad_filter=False, condition_on_previous_text=False, without_timestamps=not timestamps,
                prefix=prefix or None, hotwords=self.hotwords, initial_prompt=prompt or None, temperature=[0.0, 0.2, 0.4],
                compression_ratio_threshold=2.4, log_prob_threshold=-1.0, no_speech_threshold=0.6)
            segments = list(segments)
        except Exception as e:  # ctranslate2 runtime errors
            raise TranscriptionError(f"whisper failed: {e}") from e
        out = []
        for s in segments:
            text = s.text.strip()
            if not text:
                continue
            if s.no_speech_prob > 0.6 and s.avg_logprob < -1.0:
                continue                      # whisper's own "this is silence" verdict
            if s.compression_ratio > 2.4:
                continue                      # repetition loop
            out.append(Seg(float(s.start), float(s.end), text))
        n = sum(len(s.text) for s in out) - len(prefix or "")
        if out and n / max(len(audio) / RATE, 0.5) > self.max_cps:
            log.info("dropped a hypothesis of %d chars for %.1f s of audio", n, len(audio) / RATE)
            return []                         # far more text than the audio can hold
        return out


def common_prefix(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


# --------------------------------------------------------------------------- streaming

SpeakerFn = Callable[[np.ndarray, float, float], str]


class StreamingTranscriber:
    """Feed blocks ``(frames,)`` or ``(frames, channels)`` at 16 kHz; get Partial/Final events."""

    def __init__(self, model, *, language: str = "ja", hotwords: str | None = None,
                 step: float = 1.0, first_partial: float = 0.6, min_silence: float = 0.7,
                 max_utterance: float = 12.0, hard_limit: float = 25.0, partials: bool = True,
                 speaker_fn: SpeakerFn | None = None, vad_threshold: float = 0.35,
                 min_voiced: float = 0.2, adaptive: bool = True):
        self.decoder = model if isinstance(model, WhisperDecoder) else WhisperDecoder(model, language, hotwords)
        self.vad = StreamingVad(threshold=vad_threshold, min_silence=min_silence, min_voiced=min_voiced)
        self.step = int(step * RATE)
        self.first_partial = int(first_partial * RATE)
        self.max_utterance = int(max_utterance * RATE)
        self.hard_limit = int(hard_limit * RATE)
        self.partials = partials
        self.speaker_fn = speaker_fn
        self.min_voiced = int(min_voiced * RATE)
        self.adaptive = adaptive                   # stretch the partial step on a slow/busy CPU
        self.behind = False                        # set by a live caller with a backlog: Finals first
        self._buf = np.zeros((0, 1), np.float32)   # audio from sample self._base on
        self._base = 0
        self._pos = 0                              # samples fed so far (audio clock)
        self._utt: int | None = None               # start sample of the open utterance
        self._committed = ""
        self._prev_hyp = ""
        self._last_decode = 0
        self._voiced_since_start = 0
        self.decode_seconds = 0.0                  # wall time spent in Whisper (for RTF)
        self._last_cost = 0.0                      # wall time of the last partial decode

    # -------------------------------------------------------------- helpers
    def _audio(self, a: int, b: int) -> np.ndarray:
        a, b = max(a, self._base), min(b, self._base + len(self._buf))
        return self._buf[a - self._base:b - self._base]

    def _mono(self, a: int, b: int) -> np.ndarray:
        x = self._audio(a, b)
        return x[:, 0] if x.shape[1] == 1 else x.mean(axis=1)

    def _speaker(self, a: int, b: int) -> str:
        if self.speaker_fn is None:
            return "unknown"
        return self.speaker_fn(self._audio(a, b), a / RATE, b / RATE)

    def _decode(self, a: int, b: int, prefix: str = "", timestamps: bool = False) -> list[Seg]:
        t = time.perf_counter()
        segs = self.decoder.decode(self._mono(a, b), prefix=prefix or None, timestamps=timestamps)
        self.decode_seconds += time.perf_counter() - t
        return segs

    def _trim(self) -> None:
        keep_from = self._utt if self._utt is not None else self._pos - self.vad.pad - 512
        cut = max(0, keep_from - self._base)
        if cut > RATE:  # trim in >1 s steps
            self._buf = self._buf[cut:]
            self._base += cut

    # -------------------------------------------------------------- API
    def feed(self, block: np.ndarray) -> list[Partial | Final]:
        x = np.asarray(block, np.float32)
        x = x.reshape(-1, 1) if x.ndim == 1 else x
        if self._buf.shape[1] != x.shape[1]:
            if len(self._buf):
                raise ValueError("channel count changed mid-stream")
            self._buf = np.zeros((0, x.shape[1]), np.float32)
        self._buf = np.concatenate([self._buf, x])
        mono = x[:, 0] if x.shape[1] == 1 else x.mean(axis=1)
        self._pos += len(x)
        out: list[Partial | Final] = []
        for ev in self.vad.process(mono):
            if isinstance(ev, SpeechStart):
                self._open(ev.sample)
            elif isinstance(ev, SpeechEnd):
                out += self._close(ev.sample, ev.voiced)
        if self._utt is not None:
            out += self._progress()
        self._trim()
        return out

    def flush(self) -> list[Final]:
        """End of stream: close the open utterance."""
        out: list = []
        for ev in self.vad.flush():
            out += self._close(ev.sample, ev.voiced)
        return [e for e in out if isinstance(e, Final)]

    # -------------------------------------------------------------- policy
    def _open(self, start: int) -> None:
        self._utt = start
        self._committed = ""
        self._prev_hyp = ""
        self._last_decode = start

    def _progress(self) -> list[Partial | Final]:
        start = self._utt
        length = self._pos - start
        # adaptive step: partial decodes never take more than ~2/3 of the machine, so a slow or
        # busy CPU delays partials instead of letting the stream fall behind real time
        step = max(self.step, int(1.5 * self._last_cost * RATE)) if self.adaptive else self.step
        due = self._last_decode + (step if self._last_decode > start else self.first_partial)
        if length >= self.hard_limit:
            return self._cut_all()
        if not self.partials or self.behind or self._pos < due:
            return []
        self._last_decode = self._pos
        long = length >= self.max_utterance
        t0 = time.perf_counter()
        segs = self._decode(start, self._pos, self._committed, timestamps=long)
        self._last_cost = time.perf_counter() - t0
        hyp = "".join(s.text for s in segs)
        if not hyp.startswith(self._committed):  # guards filtered the forced prefix's segment
            hyp = self._committed + hyp[len(self._committed):] if hyp else self._committed
        # LocalAgreement-2 on characters: commit what two consecutive hypotheses share
        agreed = common_prefix(self._prev_hyp, hyp)
        if agreed > len(self._committed):
            self._committed = hyp[:agreed]
        self._prev_hyp = hyp
        out: list[Partial | Final] = []
        if long and len(segs) > 1:
            out += self._cut_at_sentence(segs)
        if self._utt is not None and self._prev_hyp:
            out.append(Partial(self._utt / RATE, self._pos / RATE, self._prev_hyp,
                               self._speaker(self._utt, self._pos), stable=len(self._committed)))
        return out

    def _cut_at_sentence(self, segs: list[Seg]) -> list[Final]:
        """Emit the committed whole segments before the last one as a Final; trim the buffer there."""
        start = self._utt
        done, text = 0, ""
        for i, s in enumerate(segs[:-1]):
            cand = text + s.text
            if len(cand) <= len(self._committed) and self._committed.startswith(cand):
                done, text = i + 1, cand
            else:
                break
        if not done:
            return []
        end = start + int(segs[done - 1].end * RATE)
        if end <= start or end >= self._pos:
            return []
        fin = Final(start / RATE, end / RATE, text, self._speaker(start, end), emitted_at=time.monotonic())
        self._utt = end
        self._committed = self._committed[len(text):]
        self._prev_hyp = self._prev_hyp[len(text):]
        return [fin]

    def _cut_all(self) -> list[Final]:
        """An utterance without any pause for ``hard_limit`` seconds: finalize it here."""
        start, end = self._utt, self._pos
        out = self._finalize(start, end)
        self._open(end)
        return out

    def _finalize(self, start: int, end: int) -> list[Final]:
        # A fresh decode of the whole utterance with the glossary as hotwords (a forced prefix would
        # switch the hotwords off): measured lower CER than decoding behind the committed partial text.
        segs = self._decode(start, end)
        text = "".join(s.text for s in segs).strip()
        if not text:
            return []
        return [Final(start / RATE, end / RATE, text, self._speaker(start, end), emitted_at=time.monotonic())]

    def _close(self, end: int, voiced: int) -> list[Final]:
        start = self._utt if self._utt is not None else end
        self._utt = None
        if voiced < self.min_voiced or end - start < self.min_voiced:
            return []
        return self._finalize(start, end)


# --------------------------------------------------------------------------- factories

def make_transcriber(config=None, speaker_fn: SpeakerFn | None = None, partials: bool = True, **kw):
    """The streaming transcriber the config asks for (faster-whisper by default, or vosk)."""
    engine = config.get("asr.engine", "faster-whisper") if config is not None else "faster-whisper"
    if engine == "vosk":
        from .vosk_engine import VoskTranscriber, load_vosk
        return VoskTranscriber(load_vosk(config.get("asr.vosk_model", ""), config), speaker_fn=speaker_fn,
                               partials=partials)
    from ..models import load_whisper
    name = config.get("asr.model", "whisper-base") if config is not None else "whisper-base"
    threads = config.get("asr.threads", 2) if config is not None else 2
    language = config.get("asr.language", "ja") if config is not None else "ja"
    model = load_whisper(name, config, threads=threads)
    return StreamingTranscriber(model, language=language, hotwords=hotwords(config),
                                speaker_fn=speaker_fn, partials=partials, **kw)


def stream(source: Iterable[np.ndarray], transcriber) -> Iterator[Partial | Final]:
    """Run a transcriber over a source (FileSource, MicSource…), yielding every event."""
    for block in source:
        yield from transcriber.feed(block)
    yield from transcriber.flush()
