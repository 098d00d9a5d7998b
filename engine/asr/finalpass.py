"""Final pass: when a session stops, re-transcribe the whole recording (beam 5, VAD, glossary) and
replace the live segments — keeping every edit the staff already made.

Merge rule: a live segment whose text was edited is kept as it is, and final-pass segments that
mostly overlap it are dropped; a live segment whose speaker was edited passes its speaker on to the
final-pass segments that overlap it. The session's speaker swap is applied to the new labels.
"""
from __future__ import annotations

import logging
import time

import numpy as np

from ..audio import read_audio
from .speakers import ChannelSpeakers, features, split_two
from .transcribe import TranscriptionError, hotwords

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


def transcribe_whole(audio: np.ndarray, config=None, model=None, progress=None) -> list[tuple[float, float, str]]:
    """faster-whisper over a whole recording (beam 5, silero VAD, glossary hotwords, 30 s context),
    its words regrouped into the recording's utterances (so segments follow turns, not Whisper's
    30 s windows)."""
    from ..models import load_whisper
    if model is None:
        name = (config.get("asr.final_model") or config.get("asr.model", "whisper-base")) if config else "whisper-base"
        model = load_whisper(name, config, threads=config.get("asr.threads", 2) if config else 2)
    language = config.get("asr.language", "ja") if config is not None else "ja"
    try:
        segs, info = model.transcribe(audio, language=language, beam_size=5, vad_filter=True,
                                      vad_parameters={"min_silence_duration_ms": 500, "speech_pad_ms": 200,
                                                      "threshold": 0.35},
                                      word_timestamps=True,
                                      condition_on_previous_text=False, hotwords=hotwords(config),
                                      compression_ratio_threshold=2.4, log_prob_threshold=-1.0,
                                      no_speech_threshold=0.6)
        words = []
        for s in segs:
            if progress:
                progress(min(1.0, s.end / max(info.duration, 1e-6)))
            if not s.text.strip() or (s.no_speech_prob > 0.6 and s.avg_logprob < -1.0):
                continue
            words += [(float(w.start), float(w.end), w.word) for w in (s.words or [])]
    except Exception as e:
        raise TranscriptionError(f"final pass failed: {e}") from e
    spans = utterances(audio)
    if not spans:
        spans = [(words[0][0], words[-1][1])] if words else []
    groups: list[list[tuple]] = [[] for _ in spans]
    for w in words:
        mid = (w[0] + w[1]) / 2
        k = min(range(len(spans)), key=lambda i: 0 if spans[i][0] <= mid <= spans[i][1]
                else min(abs(mid - spans[i][0]), abs(mid - spans[i][1])))
        groups[k].append(w)
    out = []
    decoder = None
    for (a, b), ws in zip(spans, groups):
        text = "".join(w[2] for w in ws).strip()
        if len(text) < 2.0 * (b - a) - 2:
            # Whisper sometimes ends a 30 s window early and skips speech in it: decode such an
            # utterance on its own (same beam, same hotwords) instead of losing it.
            from .transcribe import WhisperDecoder
            decoder = decoder or WhisperDecoder(model, language, hotwords(config))
            alone = "".join(x.text for x in decoder.decode(audio[int(a * RATE):int(b * RATE)], beam_size=5)).strip()
            if len(alone) > len(text):
                out.append((a, b, alone))
                continue
        if text:
            out.append((min(a, ws[0][0]), max(b, ws[-1][1]), text))
    return out


def label_speakers(audio: np.ndarray, spans: list[tuple[float, float]]) -> list[str]:
    if audio.ndim == 2 and audio.shape[1] == 2:
        ch = ChannelSpeakers()
        return [ch(audio[int(a * RATE):int(b * RATE)], a, b) for a, b in spans]
    mono = audio if audio.ndim == 1 else audio.mean(axis=1)
    return split_two([features(mono[int(a * RATE):int(b * RATE)]) for a, b in spans])


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
    s = store.query_one("SELECT * FROM sessions WHERE id = ?", (session_id,))
    audio = read_audio(s["audio_path"], mono=s["channels"] == 1, key=store.key)
    t = time.perf_counter()
    spans = transcribe_whole(audio if audio.ndim == 1 else audio.mean(axis=1), ctx.config, model, progress)
    labels = label_speakers(audio, [(a, b) for a, b, _ in spans])
    if s["speakers_swapped"]:
        labels = [{"staff": "citizen", "citizen": "staff"}.get(x, x) for x in labels]
    new = [{"start": a, "end": b, "text": txt, "speaker": spk, "edited": 0, "speaker_edited": 0}
           for (a, b, txt), spk in zip(spans, labels)]
    live = store.query("SELECT * FROM segments WHERE session_id = ? ORDER BY seq", (session_id,))
    merged = merge(new, live)
    now = time.time()
    with store.transaction():
        store.execute("DELETE FROM segments WHERE session_id = ?", (session_id,))
        store.executemany(
            "INSERT INTO segments (session_id, seq, start, end, speaker, text, pass, edited, speaker_edited, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, 'final', ?, ?, ?)",
            [(session_id, i + 1, m["start"], m["end"], m["speaker"], m["text"], m["edited"], m["speaker_edited"], now)
             for i, m in enumerate(merged)])
        store.execute("UPDATE sessions SET state = 'finalized' WHERE id = ?", (session_id,))
        if on_replace is not None:
            on_replace(live, store.query("SELECT * FROM segments WHERE session_id = ? ORDER BY seq", (session_id,)))
    log.info("session %s final pass: %d segments in %.1f s", session_id, len(merged), time.perf_counter() - t)
    return len(merged)
