"""Test audio synthesized offline: real Japanese speech from pyopenjtalk-plus (the mei voice),
two speakers told apart by pitch, speed and channel colour, mixed into a counter conversation with
pauses and room noise. Used by the tests and by bench/asr.py.

    from devkit.audiogen import load_dialogue, render_dialogue
    conv = render_dialogue(load_dialogue("welfare"), seed=0)
    conv.audio  # float32 16 kHz mono;  conv.turns: [Turn(speaker, text, start, end)]
"""
from __future__ import annotations

import functools
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine.audio import SAMPLE_RATE, resample, write_wav  # noqa: E402

DIALOGUES = ROOT / "resources" / "dialogues"

# Two "people" from one TTS voice: a lower staff voice and a higher, slower citizen voice heard
# through a slightly duller channel (further from the microphone).
VOICES = {
    "staff": {"half_tone": -1.0, "speed": 1.0, "gain": 0.45, "lowpass": None},
    "citizen": {"half_tone": 2.0, "speed": 0.95, "gain": 0.33, "lowpass": 5000.0},
}


@dataclass
class Turn:
    speaker: str
    text: str
    start: float = 0.0
    end: float = 0.0


@dataclass
class Conversation:
    id: str
    audio: np.ndarray                       # mono, or (n, 2) when rendered with two channels
    turns: list[Turn] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return len(self.audio) / SAMPLE_RATE

    @property
    def reference(self) -> str:
        return "".join(t.text for t in self.turns)

    def write(self, path) -> Path:
        return write_wav(path, self.audio)


def dialogue_ids() -> list[str]:
    return sorted(p.stem for p in DIALOGUES.glob("*.toml"))


def load_dialogue(name: str) -> list[Turn]:
    raw = tomllib.loads((DIALOGUES / f"{name}.toml").read_text(encoding="utf-8"))
    return [Turn(t["speaker"], t["text"]) for t in raw["turns"]]


def _lowpass(x: np.ndarray, cutoff: float) -> np.ndarray:
    n = 101
    t = np.arange(n) - (n - 1) / 2
    h = np.sinc(2 * cutoff / SAMPLE_RATE * t) * np.hamming(n)
    return np.convolve(x, h / h.sum(), mode="same").astype(np.float32)


@functools.lru_cache(maxsize=512)
def _speech(text: str, speaker: str) -> np.ndarray:
    import pyopenjtalk
    v = VOICES[speaker]
    wav, sr = pyopenjtalk.tts(text, speed=v["speed"], half_tone=v["half_tone"])
    x = resample((wav / 32768.0).astype(np.float32), sr, SAMPLE_RATE)
    if v["lowpass"]:
        x = _lowpass(x, v["lowpass"])
    peak = float(np.abs(x).max()) or 1.0
    return (x / peak * v["gain"]).astype(np.float32)


def speech(text: str, speaker: str = "staff") -> np.ndarray:
    """One utterance, 16 kHz float32, without leading/trailing padding beyond the TTS's own."""
    return _speech(text, speaker).copy()


def room_noise(seconds: float, level_db: float = -50.0, seed: int = 0) -> np.ndarray:
    """Office room tone: brownish noise, a mains hum and an air-conditioner band, at ``level_db`` RMS."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    white = rng.standard_normal(n)
    brown = np.cumsum(white)
    brown -= np.convolve(brown, np.ones(801) / 801, mode="same")  # keep it from drifting
    t = np.arange(n) / SAMPLE_RATE
    hum = 0.3 * np.sin(2 * np.pi * 50 * t) + 0.1 * np.sin(2 * np.pi * 150 * t)
    x = brown / (brown.std() + 1e-9) + 0.5 * white + hum
    x = x / (np.sqrt(np.mean(x ** 2)) + 1e-9) * 10 ** (level_db / 20)
    return x.astype(np.float32)


def render_dialogue(turns: list[Turn], name: str = "dialogue", seed: int = 0, lead: float = 1.0,
                    pause: tuple[float, float] = (0.7, 1.4), noise_db: float = -50.0,
                    two_channels: bool = False, tail: float = 1.5) -> Conversation:
    """Mix the turns into one conversation with random pauses and room noise (reference times kept)."""
    rng = np.random.default_rng(seed)
    pieces: list[tuple[int, np.ndarray, Turn]] = []
    pos = int(lead * SAMPLE_RATE)
    out_turns = []
    for t in turns:
        x = speech(t.text, t.speaker)
        # trim the TTS's own silence so reference times are the speech itself
        idx = np.flatnonzero(np.abs(x) > 0.01)
        x = x[idx[0]:idx[-1] + 1] if len(idx) else x
        tt = Turn(t.speaker, t.text, pos / SAMPLE_RATE, (pos + len(x)) / SAMPLE_RATE)
        pieces.append((pos, x, tt))
        out_turns.append(tt)
        pos += len(x) + int(rng.uniform(*pause) * SAMPLE_RATE)
    total = pos + int(tail * SAMPLE_RATE)
    if two_channels:
        mix = np.zeros((total, 2), np.float32)
        for p, x, tt in pieces:
            own, other = (0, 1) if tt.speaker == "staff" else (1, 0)
            mix[p:p + len(x), own] += x
            mix[p:p + len(x), other] += 0.25 * x  # cross-talk: each mic hears the other person too
        mix[:, 0] += room_noise(total / SAMPLE_RATE, noise_db, seed + 1)[:total]
        mix[:, 1] += room_noise(total / SAMPLE_RATE, noise_db, seed + 2)[:total]
    else:
        mix = np.zeros(total, np.float32)
        for p, x, _ in pieces:
            mix[p:p + len(x)] += x
        mix += room_noise(total / SAMPLE_RATE, noise_db, seed + 1)[:total]
    return Conversation(name, mix, out_turns)


def conversation(name: str, seed: int = 0, **kw) -> Conversation:
    return render_dialogue(load_dialogue(name), name=name, seed=seed, **kw)
