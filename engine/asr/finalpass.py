"""Final pass: when a session stops, re-transcribe the whole recording (beam 5, VAD, glossary) and
replace the live segments — keeping every edit the staff already made.

Merge rule: a live segment whose text was edited is kept as it is, and final-pass segments that
mostly overlap it are dropped; a live segment whose speaker was edited passes its speaker on to the
final-pass segments that overlap it. The session's speaker swap is applied to the new labels.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from ..audio import read_audio
from . import sessions
from .speakers import ChannelSpeakers, features, split_two
from .transcribe import TranscriptionError, glossary_prompt, hotwords, kept

log = logging.getLogger(__name__)
RATE = 16000


def utterances(audio: np.ndarray) -> list[tuple[float, float]]:
    """Utterance spans of a whole recording, cut exactly as the live transcriber cuts them."""
    from .vad import MIN_SILENCE, VAD_THRESHOLD, StreamingVad
    v = StreamingVad(threshold=VAD_THRESHOLD, min_silence=MIN_SILENCE)
    spans = []
    for i in range(0, len(audio), RATE):
        spans += [(e.start / RATE, e.sample / RATE) for e in v.process(audio[i:i + RATE]) if hasattr(e, "voiced")]
    spans += [(e.start / RATE, e.sample / RATE) for e in v.flush()]
    return spans


# The final pass decodes the recording several times, each time cut differently into chunks of
# whole utterances and with the glossary given differently, and takes a character-level majority
# vote per utterance (ROVER, Fiscus 1997). Each decode makes different mistakes where Whisper is
# unsure (homophones, cut-off words at chunk edges); the vote keeps what most of them agree on.
# Measured on the five dialogues (bench/asr.py): one decode 10.5–12.2 % CER depending on its
# chunking, the vote of five ~9 %. ``asr.final_systems`` limits how many decodes are voted on
# (1 = the first system only, the cheapest).
SYSTEMS: tuple[tuple[float, str], ...] = (
    (0.0, "hotwords"),      # faster-whisper's own VAD windows over the whole recording
    (28.0, "hotwords"),     # utterances merged into chunks of at most 28 s
    (24.0, "prompt"),       # ... 24 s, glossary as the initial prompt
    (20.0, "prompt+prev"),  # ... 20 s, glossary and the previous chunk's text as the prompt
    (20.0, "hotwords+prev"),
)


def chunks(spans: list[tuple[float, float]], upto: float) -> list[tuple[float, float]]:
    """Consecutive utterances merged into chunks no longer than ``upto`` seconds (a longer
    utterance is a chunk of its own)."""
    out: list[tuple[float, float]] = []
    for a, b in spans:
        if out and b - out[-1][0] <= upto:
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


@dataclass
class Word:
    start: float
    end: float
    word: str
    probability: float


@dataclass
class FinalSegment:
    """One utterance of the final pass: its voted text and the words (timings, probabilities) of
    the decode whose text is closest to the vote — those words can differ from ``text`` where the
    vote mixed decodes."""
    start: float
    end: float
    text: str
    words: list[Word] = field(default_factory=list)
    speaker: str = "unknown"

    def as_dict(self) -> dict:
        """The ``transcribe --final --json`` shape: the live shape plus ``words``."""
        return {"start": round(self.start, 2), "end": round(self.end, 2), "speaker": self.speaker,
                "text": self.text, "final": True,
                "words": [{"start": round(w.start, 2), "end": round(w.end, 2), "word": w.word,
                           "probability": round(w.probability, 3)} for w in self.words]}


def _words(segs, offset: float = 0.0) -> list[Word]:
    return [Word(offset + float(w.start), offset + float(w.end), w.word, float(w.probability))
            for s in segs if kept(s) for w in (s.words or [])]


def _group(words: list[Word], spans) -> list[list[Word]]:
    """Each word goes to the utterance its middle falls in (or the nearest one)."""
    groups: list[list[Word]] = [[] for _ in spans]
    for w in words:
        mid = (w.start + w.end) / 2
        k = min(range(len(spans)), key=lambda i: 0 if spans[i][0] <= mid <= spans[i][1]
                else min(abs(mid - spans[i][0]), abs(mid - spans[i][1])))
        groups[k].append(w)
    return groups


def _text(words: list[Word]) -> str:
    return "".join(w.word for w in words).strip()


def _align(pivot: str, hyp: str) -> tuple[list[str], list[str]]:
    """``hyp`` aligned to ``pivot``: the character standing in for each pivot character ('' when
    deleted) and the text inserted before each pivot position (index len(pivot) = at the end)."""
    import difflib
    sub = [""] * len(pivot)
    ins = [""] * (len(pivot) + 1)
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, pivot, hyp, autojunk=False).get_opcodes():
        if op in ("equal", "replace"):
            n, m = i2 - i1, j2 - j1
            for k in range(n):
                sub[i1 + k] = hyp[j1 + k] if k < m else ""
            if m > n:
                ins[i2] += hyp[j1 + n:j2]
        elif op == "insert":
            ins[i1] += hyp[j1:j2]
    return sub, ins


def vote(hyps: list[str]) -> str:
    """Character-level ROVER: align every hypothesis to the medoid one and keep, at each position,
    what the majority has (an insertion only when more than half of them insert the same text)."""
    from collections import Counter
    from .metrics import edit_distance
    if len(hyps) <= 2:
        return hyps[0] if hyps else ""
    pivot_i = min(range(len(hyps)), key=lambda i: sum(edit_distance(hyps[i], h) for h in hyps))
    pivot = hyps[pivot_i]
    aligned = [_align(pivot, h) for i, h in enumerate(hyps) if i != pivot_i]
    out = []
    for i in range(len(pivot) + 1):
        inserted = Counter(a[1][i] for a in aligned if a[1][i])
        if inserted:
            text, n = inserted.most_common(1)[0]
            if n > len(hyps) / 2:
                out.append(text)
        if i < len(pivot):
            out.append(Counter([pivot[i]] + [a[0][i] for a in aligned]).most_common(1)[0][0])
    return "".join(out)


def transcribe_whole(audio: np.ndarray, config=None, model=None, progress=None) -> list[tuple[float, float, str]]:
    """:func:`final_segments` as (start, end, text)."""
    return [(s.start, s.end, s.text) for s in final_segments(audio, config, model, progress)]


def final_segments(audio: np.ndarray, config=None, model=None, progress=None) -> list[FinalSegment]:
    """The recording's utterances (cut as the live transcriber cuts them) with their final text:
    beam 5, each of :data:`SYSTEMS` (up to ``asr.final_systems``) decoded and voted on per utterance."""
    from ..models import load_whisper
    from .transcribe import WhisperDecoder
    if model is None:
        name = (config.get("asr.final_model") or config.get("asr.model", "whisper-base")) if config else "whisper-base"
        model = load_whisper(name, config, threads=config.get("asr.threads", 2) if config else 2)
    language = config.get("asr.language", "ja") if config is not None else "ja"
    hot = hotwords(config)
    prompt = glossary_prompt(config)
    systems = SYSTEMS[:max(1, int(config.get("asr.final_systems", len(SYSTEMS)) if config is not None else len(SYSTEMS)))]
    spans = utterances(audio)
    if not spans:
        return []
    common = dict(language=language, beam_size=5, word_timestamps=True, condition_on_previous_text=False,
                  compression_ratio_threshold=2.4, log_prob_threshold=-1.0, no_speech_threshold=0.6)
    speech = sum(b - a for a, b in spans)
    seconds = speech * len(systems) or 1.0
    done = 0.0
    decodes: list[list[list[Word]]] = []   # per system, per utterance: its words
    try:
        for upto, how in systems:
            if upto <= 0:
                segs, _ = model.transcribe(audio, vad_filter=True, hotwords=hot,
                                           vad_parameters={"min_silence_duration_ms": 500, "speech_pad_ms": 200,
                                                           "threshold": 0.35}, **common)
                segs = list(segs)
                words = _words(segs)
                done += speech
                if progress:
                    progress(min(1.0, done / seconds))
            else:
                words, prev = [], ""
                for a, b in chunks(spans, upto):
                    p = "。".join(x for x in ((prompt if "prompt" in how else None),
                                             (prev[-120:] if "prev" in how else None)) if x) or None
                    segs, _ = model.transcribe(audio[int(a * RATE):int(b * RATE)], vad_filter=False,
                                               hotwords=hot if "hotwords" in how and not p else None,
                                               initial_prompt=p if p else None, **common)
                    w = _words(segs, a)
                    prev += "".join(x.word for x in w)
                    words += w
                    done += b - a
                    if progress:
                        progress(min(1.0, done / seconds))
            decodes.append(_group(words, spans))
    except Exception as e:
        raise TranscriptionError(f"final pass failed: {e}") from e
    from .metrics import edit_distance
    out = []
    decoder = None
    for k, (a, b) in enumerate(spans):
        texts = [_text(d[k]) for d in decodes]
        text = vote(texts).strip()
        words = decodes[min(range(len(texts)), key=lambda i: edit_distance(texts[i], text))][k]
        if len(text) < 2.0 * (b - a) - 2:
            # every decode skipped speech here (Whisper sometimes ends a window early): decode the
            # utterance on its own (same beam, same glossary) instead of losing it
            decoder = decoder or WhisperDecoder(model, language, hot)
            segs = decoder.decode(audio[int(a * RATE):int(b * RATE)], beam_size=5, words=True)
            alone = "".join(x.text for x in segs).strip()
            if len(alone) > len(text):
                text = alone
                words = [Word(a + float(w.start), a + float(w.end), w.word, float(w.probability))
                         for x in segs for w in (x.words or [])]
        if text:
            out.append(FinalSegment(a, b, text, words))
    return out


def label_speakers(audio: np.ndarray, spans: list[tuple[float, float]]) -> list[str]:
    if audio.ndim == 2 and audio.shape[1] == 2:
        ch = ChannelSpeakers()
        return [ch(audio[int(a * RATE):int(b * RATE)], a, b) for a, b in spans]
    mono = audio if audio.ndim == 1 else audio.mean(axis=1)
    return split_two([features(mono[int(a * RATE):int(b * RATE)]) for a, b in spans])


def finalize(audio: np.ndarray, config=None, model=None, progress=None) -> list[FinalSegment]:
    """The final pass over a whole recording (mono, or (n, 2) with staff left / citizen right):
    :func:`final_segments` on the mono mix, each labelled with its speaker."""
    segs = final_segments(audio if audio.ndim == 1 else audio.mean(axis=1), config, model, progress)
    for g, spk in zip(segs, label_speakers(audio, [(g.start, g.end) for g in segs])):
        g.speaker = spk
    return segs


def final_transcript(path, config=None, channels: int = 1, model=None) -> list[FinalSegment]:
    """``madoguchi transcribe AUDIO --final``: the final pass the desktop runs after 停止, on a file."""
    return finalize(read_audio(path, mono=channels == 1), config, model)


def _overlap(a0, a1, b0, b1) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def merge(new: list[dict], live: list[dict]) -> list[dict]:
    """Final-pass segments merged with the staff's edits on the live segments (see module doc)."""
    kept = [dict(s) for s in live if s["edited"]]
    spk_fixed = [s for s in live if s["speaker_edited"] and not s["edited"]]
    out = []
    for n in new:
        dur = max(n["end"] - n["start"], 1e-6)
        if any(_overlap(n["start"], n["end"], k["start"], k["end"]) > 0.5 * dur for k in kept):
            continue
        best = max(spk_fixed, key=lambda s: _overlap(n["start"], n["end"], s["start"], s["end"]), default=None)
        if best is not None and _overlap(n["start"], n["end"], best["start"], best["end"]) > 0.3 * dur:
            n = dict(n, speaker=best["speaker"], speaker_edited=1)
        out.append(n)
    for k in kept:
        out.append({"start": k["start"], "end": k["end"], "speaker": k["speaker"], "text": k["text"],
                    "edited": 1, "speaker_edited": k["speaker_edited"]})
    return sorted(out, key=lambda s: s["start"])


def run_final_pass(ctx, session_id: int, model=None, progress=None, on_replace=None) -> int:
    """Re-transcribe a stopped session and replace its segments (edits kept). Returns the count.
    ``on_replace(live_rows, final_rows)`` runs inside the replacing transaction (the rows as
    stored, ``seq`` included); if it raises, nothing is replaced."""
    store = ctx.store
    s = sessions.get(store, session_id)
    audio = read_audio(s["audio_path"], mono=s["channels"] == 1, key=store.key)
    t = time.perf_counter()
    segs = finalize(audio, ctx.config, model, progress)
    swap = {"staff": "citizen", "citizen": "staff"} if s["speakers_swapped"] else {}
    new = [{"start": g.start, "end": g.end, "text": g.text, "speaker": swap.get(g.speaker, g.speaker),
            "edited": 0, "speaker_edited": 0} for g in segs]
    live = sessions.all_segment_rows(store, session_id)
    merged = merge(new, live)
    with store.transaction():
        sessions.replace_segments(store, session_id, merged, pass_="final")
        sessions.mark_finalized(store, session_id)
        if on_replace is not None:
            on_replace(live, sessions.all_segment_rows(store, session_id))
    log.info("session %s final pass: %d segments in %.1f s", session_id, len(merged), time.perf_counter() - t)
    return len(merged)
