"""Who spoke: 職員 (staff) or 相談者 (citizen).

- Two microphones (2 channels: staff left, citizen right): the louder channel wins.
- One microphone: an unsupervised two-speaker split on acoustic features of each VAD segment —
  MFCC means from faster-whisper's own log-mel front end, plus voice pitch (median log F0 and
  voiced share by autocorrelation) — clustered online into two groups. No pretrained diarization
  model is involved. The first speaker is labelled staff (the UI offers a one-click swap,
  :func:`engine.asr.session.swap_speakers`). :func:`split_two` re-clusters a whole session
  offline (2-means) for the final pass.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

RATE = 16000
LABELS = ("staff", "citizen")


# --------------------------------------------------------------------------- features

_fe = None


def _mel(audio: np.ndarray) -> np.ndarray:
    global _fe
    if _fe is None:
        from faster_whisper.feature_extractor import FeatureExtractor
        _fe = FeatureExtractor(feature_size=80)
    return _fe(np.asarray(audio, np.float32), padding=0)   # (80, frames), log10 mel


def _dct_matrix(n_out: int, n_in: int) -> np.ndarray:
    k = np.arange(n_out)[:, None]
    n = np.arange(n_in)[None, :]
    return np.cos(np.pi / n_in * (n + 0.5) * k) * np.sqrt(2.0 / n_in)


_DCT = _dct_matrix(13, 80)


def pitch_track(audio: np.ndarray, fmin: float = 70.0, fmax: float = 450.0,
                frame: int = 800, hop: int = 320) -> np.ndarray:
    """F0 per 20 ms hop with YIN (cumulative-mean-normalised difference; 0 where unvoiced)."""
    x = np.asarray(audio, np.float64)
    if len(x) < frame:
        return np.zeros(0)
    nfr = 1 + (len(x) - frame) // hop
    idx = np.arange(frame)[None, :] + hop * np.arange(nfr)[:, None]
    fr = x[idx]
    fr = fr - fr.mean(axis=1, keepdims=True)
    W = frame // 2
    tau_max = min(int(RATE / fmin), W)
    spec = np.fft.rfft(fr, n=2 * frame)
    r = np.fft.irfft(np.abs(spec) ** 2)[:, :tau_max + 1]            # autocorrelation
    e = np.cumsum(fr ** 2, axis=1)
    energy0 = e[:, W - 1:W]                                          # sum of x^2 over the first W
    # d(tau) ≈ e0 + e_tau - 2 r(tau), e_tau from the cumulative energy
    lags = np.arange(tau_max + 1)
    e_tau = e[:, np.minimum(lags + W - 1, frame - 1)] - np.where(lags > 0, e[:, np.maximum(lags - 1, 0)], 0)
    d = energy0 + e_tau - 2 * r
    d[:, 0] = 0
    cm = np.cumsum(d[:, 1:], axis=1) / np.arange(1, tau_max + 1)
    cmnd = np.ones_like(d)
    cmnd[:, 1:] = d[:, 1:] / (cm + 1e-12)
    lo = int(RATE / fmax)
    f0 = np.zeros(nfr)
    loud = np.sqrt((fr ** 2).mean(axis=1))
    loud_ok = loud > 0.1 * (loud.max() + 1e-12)
    for i in np.flatnonzero(loud_ok):
        c = cmnd[i, lo:]
        below = np.flatnonzero(c < 0.15)
        if len(below):
            t = below[0]
            while t + 1 < len(c) and c[t + 1] < c[t]:
                t += 1                                              # walk down to the dip
            f0[i] = RATE / (lo + t)
    return f0


def features(audio: np.ndarray) -> np.ndarray:
    """Speaker features of one segment: [median log2 F0, F0 spread, 13 MFCC means]."""
    a = np.asarray(audio, np.float32)
    if a.ndim == 2:
        a = a.mean(axis=1)
    f0 = pitch_track(a)
    v = f0[f0 > 0]
    logf0 = np.log2(v) if len(v) >= 3 else np.array([np.log2(150.0)])
    mel = _mel(a)
    # speech frames only: the louder half
    e = mel.mean(axis=0)
    keep = mel[:, e >= np.median(e)] if mel.shape[1] > 4 else mel
    mfcc = _DCT @ keep
    return np.concatenate([[np.median(logf0), logf0.std()], mfcc.mean(axis=1)])


# weights (chosen on the synthesized dialogues, see bench/asr.py): the median pitch dominates
# (3 semitones ≈ 2.0), MFCC means add timbre/channel colour; the pitch spread is left out.
_W = np.concatenate([[8.0, 0.0], np.full(13, 0.3)])


def distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.sum((_W * (a - b)) ** 2)))


# --------------------------------------------------------------------------- assigners

class ChannelSpeakers:
    """Two microphones: channel 0 = staff, channel 1 = citizen; the louder one spoke."""

    def __call__(self, audio: np.ndarray, start: float, end: float) -> str:
        a = np.asarray(audio)
        if a.ndim != 2 or a.shape[1] < 2 or len(a) == 0:
            return "unknown"
        e = np.sqrt(np.mean(np.square(a[:, :2], dtype=np.float64), axis=0))
        return "staff" if e[0] >= e[1] else "citizen"


@dataclass
class OnlineTwoSpeakers:
    """One microphone: online two-cluster split. The first voice heard is staff."""
    new_speaker_distance: float = 1.0
    centroids: list = field(default_factory=list)
    counts: list = field(default_factory=list)

    def __call__(self, audio: np.ndarray, start: float, end: float) -> str:
        if len(audio) < int(0.3 * RATE):
            return LABELS[0] if not self.centroids else self._nearest(None)
        f = features(audio)
        if not self.centroids:
            self._add(f)
            return LABELS[0]
        d = [distance(f, c) for c in self.centroids]
        k = int(np.argmin(d))
        if len(self.centroids) == 1 and d[0] > self.new_speaker_distance:
            self._add(f)
            return LABELS[1]
        # running mean, bounded memory so a drifting voice is followed
        n = min(self.counts[k], 20)
        self.centroids[k] = (self.centroids[k] * n + f) / (n + 1)
        self.counts[k] += 1
        return LABELS[k]

    def _nearest(self, f) -> str:
        return LABELS[0]

    def _add(self, f: np.ndarray) -> None:
        self.centroids.append(f)
        self.counts.append(1)


def speaker_fn_for(channels: int = 1):
    return ChannelSpeakers() if channels == 2 else OnlineTwoSpeakers()


def split_two(feats: list[np.ndarray], iters: int = 20) -> list[str]:
    """Offline 2-means over the segments' features; the first segment's cluster is staff."""
    if not feats:
        return []
    X = np.stack(feats) * _W
    if len(X) == 1:
        return [LABELS[0]]
    # init: first segment and the one farthest from it
    c = np.stack([X[0], X[np.argmax(np.linalg.norm(X - X[0], axis=1))]])
    lab = np.zeros(len(X), int)
    for _ in range(iters):
        lab = np.argmin(np.linalg.norm(X[:, None, :] - c[None], axis=2), axis=1)
        new = np.stack([X[lab == k].mean(axis=0) if np.any(lab == k) else c[k] for k in range(2)])
        if np.allclose(new, c):
            break
        c = new
    if np.linalg.norm(c[0] - c[1]) < 1.0:   # one voice only
        return [LABELS[0]] * len(X)
    first = lab[0]
    return [LABELS[0] if v == first else LABELS[1] for v in lab]
