"""Streaming Japanese transcription over faster-whisper.

The stream is cut into utterances by the silero VAD (:mod:`engine.asr.vad`, 0.6 s of silence ends
one); only speech is ever decoded, which is what keeps Whisper from inventing text on silence and
room noise. Whisper's encoder always costs a full 30 s window per call, so the design spends as
few full calls as possible and never queues stale work:

- an utterance that ends is decoded **once**, whole (beam 5, glossary hotwords), on a worker thread,
  and yielded as a :class:`Final` — its latency is the closing silence plus one decode;
- while it is open, cheap **partials** (greedy, no fallback, encoder on the utterance only) run on
  the newest audio every ``step`` seconds; a **LocalAgreement-2** policy on *characters* (Japanese
  has no spaces) commits the longest common prefix of two consecutive hypotheses, which is then
  forced as the decoder prefix, so the grey text's stable part never changes;
- utterances longer than ``max_utterance`` are cut at a committed sentence end (a Whisper segment
  boundary) and that part is finalised; the audio buffer is trimmed there, so it stays bounded.

    tr = StreamingTranscriber(load_whisper())
    for block in FileSource("a.wav"):
        for ev in tr.feed(block):
            ...                      # Partial / Final
    for ev in tr.flush(): ...
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from ..errors import MadoguchiError
from .events import Final, Partial
from .metrics import normalize
from .vad import MIN_SILENCE, RATE, VAD_THRESHOLD, SpeechEnd, SpeechStart, StreamingVad

log = logging.getLogger(__name__)

SENTENCE_END = "。？！?!"
# A Final decoded behind the previous utterance runs Whisper's encoder on that audio plus this
# margin instead of the padded 30 s window: the encoder costs 0.07 s on 10 s, 0.48 s on 30 s
# (whisper-base int8, 2 threads). Measured per utterance on the five bench dialogues (beam 5):
# CER 11.2 % → 11.7 % with a 3 s margin, 11.0 % with 10 s; mean call 1.46 s → 0.90 s / 1.15 s.
CONTEXT_MARGIN = 3.0
_JOINERS = "、。，．,.？！?! 　"


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


def glossary_prompt(config=None) -> str | None:
    """The glossary as Whisper's initial prompt (None when ``asr.glossary`` is off)."""
    return prompt_of(hotwords(config))


def prompt_of(words: str | None) -> str | None:
    """A hotwords string (see :func:`hotwords`) as an initial prompt: the words joined by 、."""
    return "、".join(words.split()) if words else None


# --------------------------------------------------------------------------- decoding

def kept(segment) -> bool:
    """A faster-whisper segment worth keeping: some text, not Whisper's own "this is silence"
    verdict, not a repetition loop."""
    return bool(segment.text.strip()) and not (segment.no_speech_prob > 0.6 and segment.avg_logprob < -1.0) \
        and segment.compression_ratio <= 2.4


@dataclass
class Seg:
    start: float
    end: float
    text: str
    words: list | None = None   # faster-whisper Word objects, when decoded with ``words=True``


class WhisperDecoder:
    """One call of faster-whisper on an utterance, with the hallucination guards applied.

    ``short_context=True`` runs Whisper's encoder on the utterance itself (plus ``context_margin``
    seconds of padding) instead of the 30 s window faster-whisper always pads to: the encoder is
    most of a call's cost, so this makes a call on a few seconds of audio several times cheaper, at
    some loss of accuracy (measured: greedy CER 15 % → 19 % per utterance). Used for partials only.
    """

    def __init__(self, model, language: str = "ja", hotwords: str | None = None,
                 max_chars_per_second: float = 20.0, short_context: bool = False, context_margin: float = 3.0):
        self.model = _short_context(model, context_margin) if short_context else model
        self.short_context = short_context
        self.language = language
        self.hotwords = hotwords
        self.max_cps = max_chars_per_second

    def decode(self, audio: np.ndarray, prefix: str | None = None, beam_size: int = 1,
               timestamps: bool = False, prompt: str | None = None, fallback: bool = True,
               use_hotwords: bool = True, max_new_tokens: int | None = None, words: bool = False) -> list[Seg]:
        if len(audio) < int(0.1 * RATE):
            return []
        if self.short_context:
            self.model.frames = len(audio) // 160 + 1
        try:
            segments, _ = self.model.transcribe(
                np.asarray(audio, np.float32), language=self.language, beam_size=beam_size,
                vad_filter=False, condition_on_previous_text=False, without_timestamps=not timestamps,
                prefix=prefix or None, hotwords=self.hotwords if use_hotwords else None, word_timestamps=words,
                initial_prompt=prompt or None, temperature=[0.0, 0.2, 0.4] if fallback else 0.0,
                compression_ratio_threshold=2.4, log_prob_threshold=-1.0, no_speech_threshold=0.6,
                max_new_tokens=max_new_tokens)
            segments = list(segments)
        except Exception as e:  # ctranslate2 runtime errors
            raise TranscriptionError(f"whisper failed: {e}") from e
        out = [Seg(float(s.start), float(s.end), s.text.strip(), list(s.words or []) if words else None)
               for s in segments if kept(s)]
        n = sum(len(s.text) for s in out) - len(prefix or "")
        if out and n / max(len(audio) / RATE, 0.5) > self.max_cps:
            log.info("dropped a hypothesis of %d chars for %.1f s of audio", n, len(audio) / RATE)
            return []                         # far more text than the audio can hold
        return out


def _short_context(model, margin: float):
    """A shallow copy of a faster-whisper ``WhisperModel`` (same CTranslate2 weights) whose encoder
    sees only ``copy.frames`` mel frames plus ``margin`` seconds instead of the padded 30 s window
    (CTranslate2 accepts any length up to 3000 frames). Set ``frames`` before each call."""
    import copy
    m = copy.copy(model)
    full = model.encode
    m.frames = 3000

    def encode(features):
        n = min(3000, int(np.ceil((m.frames + margin * 100) / 100.0)) * 100)
        return full(features[..., :n])
    m.encode = encode
    return m


def common_prefix(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


# --------------------------------------------------------------------------- streaming

SpeakerFn = Callable[[np.ndarray, float, float], str]


class StreamingTranscriber:
    """Feed blocks ``(frames,)`` or ``(frames, channels)`` at 16 kHz; get Partial/Final events.

    Two decoders so the stream never falls behind on a small CPU:

    - **Finals** run on a worker thread (``background=True``): when the VAD closes an utterance its
      audio is handed over and decoded once, whole (full 30 s encoder context, ``final_beam``,
      glossary hotwords). Finals come back from the next :meth:`feed` call, in order. Nothing is
      dropped; with a backlog the worker decodes greedily until it has caught up.
    - **Partials** run in the caller's thread on the open utterance only, greedy, no temperature
      fallback, with a short encoder context (:func:`_short_context`) and a token cap: a few tenths
      of a second per call. They are throttled (``step``, stretched to 1.5 × the last call's cost) and
      skipped while the caller is behind real time (``behind``) or a Final has waited more than
      ``final_late`` seconds (a busy CPU: Finals first) — always on the newest audio, never queued. ``partial_model``: a second model instance (e.g. 1 thread) so a partial does not wait
      for a Final decode on the same CTranslate2 replica.
    """

    def __init__(self, model, *, language: str = "ja", hotwords: str | None = None,
                 step: float = 1.0, first_partial: float = 0.5, min_silence: float = MIN_SILENCE,
                 max_utterance: float = 12.0, hard_limit: float = 25.0, partials: bool = True,
                 speaker_fn: SpeakerFn | None = None, vad_threshold: float = VAD_THRESHOLD,
                 min_voiced: float = 0.2, adaptive: bool = True, final_beam: int = 5,
                 partial_model=None, background: bool = True, context_seconds: float = 10.0,
                 glossary_prompt: bool = True):
        self.decoder = model if isinstance(model, WhisperDecoder) else WhisperDecoder(model, language, hotwords)
        # the glossary reaches Finals as the initial prompt (see _decode_final), unless told not to
        self.glossary_prompt = prompt_of(hotwords) if glossary_prompt else None
        self.context_decoder = WhisperDecoder(self.decoder.model, language, None, short_context=True,
                                              context_margin=CONTEXT_MARGIN)
        pm = partial_model if partial_model is not None else self.decoder.model
        self.partial_decoder = WhisperDecoder(pm, language, None, short_context=True)
        self.vad = StreamingVad(threshold=vad_threshold, min_silence=min_silence, min_voiced=min_voiced)
        self.step = int(step * RATE)
        self.first_partial = int(first_partial * RATE)
        self.max_utterance = int(max_utterance * RATE)
        self.hard_limit = int(hard_limit * RATE)
        self.partials = partials
        self.speaker_fn = speaker_fn
        self.min_voiced = int(min_voiced * RATE)
        self.adaptive = adaptive                   # stretch the partial step on a slow/busy CPU
        self.final_beam = final_beam
        self.behind = False                        # set by a live caller with a backlog: Finals first
        self._buf = np.zeros((0, 1), np.float32)   # audio from sample self._base on
        self._base = 0
        self._pos = 0                              # samples fed so far (audio clock)
        self._utt: int | None = None               # start sample of the open utterance
        self._committed = ""
        self._prev_hyp = ""
        self._last_decode = 0
        self.decode_seconds = 0.0                  # wall time spent in Whisper (for RTF)
        self._last_cost = 0.0                      # wall time of the last partial decode
        self._lock = threading.Lock()
        self._done: list[Final] = []               # Finals decoded by the worker, not yet returned
        self._error: BaseException | None = None
        self._jobs: queue.Queue | None = queue.Queue() if background else None
        self._worker: threading.Thread | None = None
        self._submitted: list[float] = []          # time.monotonic() of each Final job not yet done
        self.final_late = 1.5                      # a Final older than this pauses partials
        self.context_seconds = context_seconds     # a Final is decoded behind the previous one if it began this recently (0: never)
        self._context: tuple | None = None         # (start, end, text, audio) of the last Final (worker thread only)

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

    def _timed(self, decoder: WhisperDecoder, audio: np.ndarray, **kw) -> list[Seg]:
        t = time.perf_counter()
        try:
            return decoder.decode(audio, **kw)
        finally:
            dt = time.perf_counter() - t
            with self._lock:
                self.decode_seconds += dt

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
                self._close(ev.sample, ev.voiced)
        out += self._take_done()
        if self._utt is not None:
            self._progress()
            out += self._take_done()
            if self._utt is not None and self._partial is not None:
                out.append(self._partial)
        self._partial = None
        self._trim()
        return out

    def flush(self) -> list[Final]:
        """End of stream: close the open utterance and wait for every Final."""
        return list(self.drain())

    def drain(self) -> Iterator[Final]:
        """:meth:`flush` as a generator: each remaining Final as soon as it is decoded."""
        for ev in self.vad.flush():
            self._close(ev.sample, ev.voiced)
        while True:
            yield from self._take_done()
            if self.pending() == 0:
                return
            time.sleep(0.05)

    def poll(self) -> list[Final]:
        """Finals decoded since the last call (for a caller that has no audio to feed right now)."""
        return self._take_done()

    def pending(self) -> int:
        """Utterances handed to the Final worker and not yet returned."""
        return (self._jobs.unfinished_tasks if self._jobs is not None else 0) + len(self._done)

    # -------------------------------------------------------------- Finals (worker)
    def _submit(self, start: int, end: int) -> None:
        """Hand an utterance to the Final decoder (its audio copied: the buffer moves on)."""
        job = (start, end, self._mono(start, end).copy(), self._speaker(start, end))
        if self._jobs is None:
            self._decode_final(*job, beam=self.final_beam)
            return
        with self._lock:
            self._submitted.append(time.monotonic())
        if self._worker is None:
            self._worker = threading.Thread(target=self._work, name="asr-finals", daemon=True)
            self._worker.start()
        self._jobs.put(job)

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                # a backlog: decode greedily until caught up (latency over the last % of accuracy)
                beam = self.final_beam if self._jobs.qsize() == 0 else 1
                self._decode_final(*job, beam=beam)
            except BaseException as e:   # surfaced by the next feed()/flush()
                log.exception("final decode failed")
                self._error = e
            finally:
                with self._lock:
                    self._submitted.pop(0)
                self._jobs.task_done()

    def _decode_final(self, start: int, end: int, audio: np.ndarray, speaker: str, beam: int) -> None:
        # A decode of the whole utterance, with the glossary as Whisper's initial prompt, behind the
        # previous utterance: its audio goes in front (same 30 s encoder window, so almost free) and
        # its Final text is forced as the decoder prefix, so Whisper hears and reads the context
        # and only writes the new words. Per utterance (beam 5, the five dialogues): 11.2 % CER
        # with that context, 12.7 % without, 15.6 % with the glossary as hotwords instead. The
        # context decode encodes only its own audio (+ CONTEXT_MARGIN), which pays for the
        # token-by-token forced prefix: a Final ~0.5 s sooner at ~0.5 point of CER.
        mono = audio if audio.ndim == 1 else audio.mean(axis=1)
        text = ""
        prev = self._context
        if (prev is not None and self.context_seconds > 0 and start - prev[0] <= self.context_seconds * RATE
                and len(prev[3]) + RATE // 2 + len(mono) <= 28 * RATE):
            gap = np.zeros(min(max(start - prev[1], 0), RATE // 2), np.float32)
            both = np.concatenate([prev[3], gap, mono])
            segs = self._timed(self.context_decoder, both, beam_size=beam, prompt=self.glossary_prompt,
                               prefix=prev[2], use_hotwords=False)
            full = "".join(s.text for s in segs).strip()
            # the punctuation between the two utterances comes out in front of the new words
            new = full[len(prev[2]):].lstrip(_JOINERS) if full.startswith(prev[2]) else ""
            # the prefix can derail Whisper (e.g. a run of "?" after a question): then fall back
            if len(normalize(new)) >= 2.0 * len(mono) / RATE - 2:
                text = new
        if not text:
            segs = self._timed(self.decoder, mono, beam_size=beam, prompt=self.glossary_prompt, use_hotwords=False)
            text = "".join(s.text for s in segs).strip()
        self._context = (start, end, text, mono) if text else None
        if text:
            with self._lock:
                self._done.append(Final(start / RATE, end / RATE, text, speaker, emitted_at=time.monotonic()))

    def _finals_late(self) -> bool:
        """A Final has waited longer than ``final_late``: the CPU is short, so partials give way."""
        with self._lock:
            return bool(self._submitted) and time.monotonic() - self._submitted[0] > self.final_late

    def _take_done(self) -> list[Final]:
        if self._error is not None:
            e, self._error = self._error, None
            raise e
        with self._lock:
            out, self._done = self._done, []
        return out

    # -------------------------------------------------------------- policy
    _partial: Partial | None = None

    def _open(self, start: int) -> None:
        self._utt = start
        self._committed = ""
        self._prev_hyp = ""
        self._last_decode = start

    def _progress(self) -> None:
        start = self._utt
        length = self._pos - start
        # adaptive step: partial decodes never take more than ~2/3 of the machine, so a slow or
        # busy CPU delays partials instead of letting the stream fall behind real time
        step = max(self.step, int(1.5 * self._last_cost * RATE)) if self.adaptive else self.step
        due = self._last_decode + (step if self._last_decode > start else self.first_partial)
        if length >= self.hard_limit:
            self._cut_all()
            return
        if not self.partials or self.behind or self._pos < due or self._finals_late():
            return
        self._last_decode = self._pos
        long = length >= self.max_utterance
        t0 = time.perf_counter()
        seconds = length / RATE
        segs = self._timed(self.partial_decoder, self._mono(start, self._pos), prefix=self._committed,
                           timestamps=long, fallback=False, use_hotwords=False,
                           max_new_tokens=int(12 * seconds) + 8)
        self._last_cost = time.perf_counter() - t0
        hyp = "".join(s.text for s in segs)
        if not hyp.startswith(self._committed):  # guards filtered the forced prefix's segment
            hyp = self._committed + hyp[len(self._committed):] if hyp else self._committed
        # LocalAgreement-2 on characters: commit what two consecutive hypotheses share
        agreed = common_prefix(self._prev_hyp, hyp)
        if agreed > len(self._committed):
            self._committed = hyp[:agreed]
        self._prev_hyp = hyp
        if long and len(segs) > 1:
            self._cut_at_sentence(segs)
        if self._utt is not None and self._prev_hyp:
            self._partial = Partial(self._utt / RATE, self._pos / RATE, self._prev_hyp,
                                    self._speaker(self._utt, self._pos), stable=len(self._committed))

    def _cut_at_sentence(self, segs: list[Seg]) -> None:
        """A long utterance: the whole segments before the last one that LocalAgreement has committed
        go to the Final decoder; the utterance (and the buffer) continues from there."""
        start = self._utt
        done, text = 0, ""
        for i, s in enumerate(segs[:-1]):
            cand = text + s.text
            if len(cand) <= len(self._committed) and self._committed.startswith(cand):
                done, text = i + 1, cand
            else:
                break
        if not done:
            return
        end = start + int(segs[done - 1].end * RATE)
        if end <= start or end >= self._pos:
            return
        self._submit(start, end)
        self._utt = end
        self._committed = self._committed[len(text):]
        self._prev_hyp = self._prev_hyp[len(text):]

    def _cut_all(self) -> None:
        """An utterance without any pause for ``hard_limit`` seconds: finalize it here."""
        start, end = self._utt, self._pos
        self._submit(start, end)
        self._open(end)

    def _close(self, end: int, voiced: int) -> None:
        start = self._utt if self._utt is not None else end
        self._utt = None
        if voiced < self.min_voiced or end - start < self.min_voiced:
            return
        self._submit(start, end)


# --------------------------------------------------------------------------- factories

def live_model(config=None, for_partials: bool = False):
    """The Whisper instance the live transcriber decodes with (cached by :mod:`engine.models`):
    Finals on ``asr.threads`` threads, partials on their own 1-thread instance so that they never
    wait behind a Final decode. :func:`engine.consultation.warm_up` loads both before the first 録音."""
    from ..models import load_whisper
    name = config.get("asr.model", "whisper-base") if config is not None else "whisper-base"
    threads = 1 if for_partials else (config.get("asr.threads", 2) if config is not None else 2)
    return load_whisper(name, config, threads=threads)


def make_transcriber(config=None, speaker_fn: SpeakerFn | None = None, partials: bool = True, **kw):
    """The streaming transcriber the config asks for (faster-whisper by default, or vosk)."""
    engine = config.get("asr.engine", "faster-whisper") if config is not None else "faster-whisper"
    if engine == "vosk":
        from .vosk_engine import VoskTranscriber, load_vosk
        return VoskTranscriber(load_vosk(config.get("asr.vosk_model", ""), config), speaker_fn=speaker_fn,
                               partials=partials)
    language = config.get("asr.language", "ja") if config is not None else "ja"
    model = live_model(config)
    if partials and "partial_model" not in kw:
        kw["partial_model"] = live_model(config, for_partials=True)
    if config is not None and "context_seconds" not in kw:
        kw["context_seconds"] = float(config.get("asr.live_context", 10.0))
    if config is not None and "glossary_prompt" not in kw:
        kw["glossary_prompt"] = config.get("asr.live_prompt", "glossary") != "none"
    return StreamingTranscriber(model, language=language, hotwords=hotwords(config),
                                speaker_fn=speaker_fn, partials=partials, **kw)


def stream(source: Iterable[np.ndarray], transcriber) -> Iterator[Partial | Final]:
    """Run a transcriber over a source (FileSource, MicSource…), yielding every event."""
    for block in source:
        yield from transcriber.feed(block)
    yield from transcriber.flush()
