"""G.711 μ-law at 8 kHz, the telephone's audio: encode/decode (ITU-T G.711, as numpy) and
:func:`telephone_band`, which puts 16 kHz audio through what a phone line does to it (300–3400 Hz,
8 kHz, μ-law) and back to 16 kHz for Whisper."""
from __future__ import annotations

import numpy as np

PHONE_RATE = 8000
_BIAS = 0x84


def ulaw_encode(x: np.ndarray) -> np.ndarray:
    """float32 −1..1 → μ-law bytes (uint8), as the reference G.711 encoder (14-bit magnitude)."""
    s = np.clip(np.round(np.asarray(x, np.float64) * 32767), -32768, 32767).astype(np.int32) >> 2
    mask = np.where(s < 0, 0x7F, 0xFF)
    mag = np.minimum(np.abs(s), 8159) + 33
    seg = np.searchsorted(np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF]), mag)
    u = np.where(seg >= 8, 0x7F, (seg << 4) | ((mag >> (seg + 1)) & 0x0F))
    return (u ^ mask).astype(np.uint8)


def ulaw_decode(b: np.ndarray) -> np.ndarray:
    """μ-law bytes → float32 −1..1."""
    u = ~np.asarray(b, np.int32) & 0xFF
    sign, exp, mant = u & 0x80, (u >> 4) & 0x07, u & 0x0F
    mag = (((mant << 3) + _BIAS) << exp) - _BIAS
    return (np.where(sign, -mag, mag) / 32768.0).astype(np.float32)


def _bandpass(x: np.ndarray, rate: int, lo: float = 300.0, hi: float = 3400.0) -> np.ndarray:
    n = 255
    t = np.arange(n) - (n - 1) / 2
    h = (2 * hi / rate) * np.sinc(2 * hi / rate * t) - (2 * lo / rate) * np.sinc(2 * lo / rate * t)
    h *= np.hamming(n)
    return np.convolve(x, h, mode="same").astype(np.float32)


def telephone_band(x16k: np.ndarray, rate: int = 16000) -> tuple[np.ndarray, bytes]:
    """(the audio as heard over the phone, resampled back to ``rate``; the 8 kHz μ-law bytes)."""
    from ..audio import resample
    y = resample(_bandpass(np.asarray(x16k, np.float32), rate), rate, PHONE_RATE)
    b = ulaw_encode(y)
    return resample(ulaw_decode(b), PHONE_RATE, rate), b.tobytes()


def write_ulaw_wav(path, ulaw: bytes) -> None:
    """A WAV file of 8 kHz μ-law (format 7), as a phone system records it."""
    import struct
    n = len(ulaw)
    fmt = struct.pack("<HHIIHHH", 7, 1, PHONE_RATE, PHONE_RATE, 1, 8, 0)
    data = b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + n) + b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    data += b"data" + struct.pack("<I", n) + ulaw + (b"\0" if n % 2 else b"")
    with open(path, "wb") as f:
        f.write(data)
