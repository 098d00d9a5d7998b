"""Audio capture and storage: sources that yield blocks of 16 kHz float32 samples, a level meter,
and a crash-safe WAV writer.

Sources are iterables of blocks shaped ``(frames, channels)`` (float32, -1..1, 16 kHz):

- :class:`FileSource` decodes WAV/FLAC/MP3/M4A with PyAV (resampled by PyAV), optionally paced in
  real time so the live code path runs on files;
- :class:`MicSource` reads a sounddevice ``InputStream``; when the device disappears it raises
  :class:`DeviceLostError` from its iterator, and :meth:`MicSource.reopen` tries to get it back.

:class:`WavWriter` appends PCM16 to a WAV file, fsyncs at least every ``sync_interval`` seconds and
keeps the RIFF header's sizes current at every sync, so after a crash the file plays up to the last
sync; :func:`repair_wav` fixes the header of a file cut mid-write.
"""
from __future__ import annotations

import errno
import logging
import os
import queue
import struct
import threading
import time
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import MadoguchiError

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
BLOCK_SECONDS = 0.1
STARTUP_GRACE = 5.0   # seconds a just-opened input stream may take to deliver its first block


class AudioError(MadoguchiError):
    ja_default = "音声を読み込めません。ファイルまたはマイクを確認してください。"


class NoDeviceError(AudioError):
    ja_default = "マイクが見つかりません。マイクを接続してから、もう一度「録音」を押してください。"


class DeviceLostError(AudioError):
    """The input device went away mid-session. The session pauses and keeps everything recorded."""
    ja_default = "マイクが外れました。録音は一時停止中です（ここまでの音声と文字は保存されています）。マイクを接続すると再開します。"


# --------------------------------------------------------------------------- helpers

def level_dbfs(block: np.ndarray) -> float:
    """RMS level of a block in dBFS (-100 for digital silence): the input meter's value."""
    if block.size == 0:
        return -100.0
    rms = float(np.sqrt(np.mean(np.square(block, dtype=np.float64))))
    return max(-100.0, 20.0 * np.log10(rms + 1e-10))


@dataclass
class Level:
    """An input-level reading for the meter (one per block, per channel)."""
    time: float            # audio clock, seconds since the session's start
    dbfs: list[float]      # one value per channel


def to_mono(block: np.ndarray) -> np.ndarray:
    return block if block.ndim == 1 else block.mean(axis=1).astype(np.float32)


def resample(samples: np.ndarray, rate_in: int, rate_out: int = SAMPLE_RATE) -> np.ndarray:
    """Resample mono float audio with PyAV (libswresample)."""
    import av
    x = np.ascontiguousarray(np.asarray(samples, dtype=np.float32).reshape(1, -1))
    if rate_in == rate_out:
        return x[0].copy()
    r = av.AudioResampler(format="flt", layout="mono", rate=rate_out)
    frame = av.AudioFrame.from_ndarray(x, format="fltp", layout="mono")
    frame.sample_rate = rate_in
    out = [f.to_ndarray().reshape(-1) for f in r.resample(frame)]
    out += [f.to_ndarray().reshape(-1) for f in r.resample(None)]
    return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)


# --------------------------------------------------------------------------- sources

class FileSource:
    """Decode an audio file (WAV/FLAC/MP3/M4A/…) with PyAV into 16 kHz blocks.

    ``realtime=True`` paces the blocks on the wall clock (as a microphone would deliver them);
    ``channels=2`` keeps a stereo file's two channels (staff, citizen), else audio is mixed to mono.
    """

    def __init__(self, path: str | Path, realtime: bool = False, channels: int = 1,
                 block_seconds: float = BLOCK_SECONDS, speed: float = 1.0, key: bytes | None = None):
        self.path = Path(path)
        self.key = key  # data key for a recording sealed by engine.crypto (encryption at rest)
        self.realtime = realtime
        self.channels = channels
        self.sample_rate = SAMPLE_RATE
        self.block = int(SAMPLE_RATE * block_seconds)
        self.speed = speed
        self._closed = threading.Event()
        if not self.path.is_file():
            raise AudioError(f"audio file not found: {self.path}",
                             ja="音声ファイルが見つかりません。ファイルの場所を確認してください。")
        self._open()  # fail early on a non-audio file

    def _open(self):
        import av
        from .crypto import SealedFileError, is_sealed, wav_bytes
        try:
            if self.path.stat().st_size >= 6 and is_sealed(self.path):
                import io
                try:
                    container = av.open(io.BytesIO(wav_bytes(self.path, self.key)), format="wav")
                except SealedFileError as e:
                    raise AudioError(str(e), ja=e.ja) from e
            else:
                container = av.open(str(self.path))
        except (av.error.FFmpegError, OSError, ValueError) as e:
            raise AudioError(f"cannot read {self.path.name} as audio: {e}",
                             ja="音声ファイルとして読み込めません（WAV/FLAC/MP3/M4A に対応）。") from e
        if not container.streams.audio:
            container.close()
            raise AudioError(f"{self.path.name} has no audio stream",
                             ja="このファイルには音声が含まれていません。")
        return container

    def close(self) -> None:
        self._closed.set()

    def _decoded(self) -> Iterator[np.ndarray]:
        import av
        container = self._open()
        try:
            stream = container.streams.audio[0]
            layout = "stereo" if self.channels == 2 else "mono"
            res = av.AudioResampler(format="flt", layout=layout, rate=SAMPLE_RATE)
            try:
                for frame in container.decode(stream):
                    for f in res.resample(frame):
                        yield f.to_ndarray().reshape(-1, self.channels)
                for f in res.resample(None):
                    yield f.to_ndarray().reshape(-1, self.channels)
            except av.error.FFmpegError as e:
                raise AudioError(f"{self.path.name} is damaged: {e}",
                                 ja="音声ファイルが壊れています。") from e
        finally:
            container.close()

    def __iter__(self) -> Iterator[np.ndarray]:
        pending = np.zeros((0, self.channels), np.float32)
        t0 = time.monotonic()
        sent = 0
        for chunk in self._decoded():
            pending = np.concatenate([pending, chunk])
            while len(pending) >= self.block:
                if self._closed.is_set():
                    return
                out, pending = pending[:self.block], pending[self.block:]
                sent += len(out)
                if self.realtime:
                    delay = t0 + sent / SAMPLE_RATE / self.speed - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                yield out.astype(np.float32, copy=False)
        if len(pending) and not self._closed.is_set():
            yield pending.astype(np.float32, copy=False)


def read_audio(path: str | Path, mono: bool = True, key: bytes | None = None) -> np.ndarray:
    """The whole file as 16 kHz float32 (mono unless ``mono=False``, then (frames, channels))."""
    src = FileSource(path, channels=1 if mono else 2, key=key)
    blocks = list(src)
    a = np.concatenate(blocks) if blocks else np.zeros((0, src.channels), np.float32)
    return a[:, 0] if mono else a


def list_input_devices() -> list[dict]:
    """Input devices sounddevice sees (name, index, channels, default rate)."""
    import sounddevice as sd
    try:
        devs = sd.query_devices()
    except Exception as e:  # PortAudio missing or broken
        raise NoDeviceError(f"audio system unavailable: {e}") from e
    return [{"index": i, "name": d["name"], "channels": d["max_input_channels"],
             "default_samplerate": d["default_samplerate"]}
            for i, d in enumerate(devs) if d["max_input_channels"] > 0]


class MicSource:
    """Microphone input through a sounddevice ``InputStream`` (16 kHz, 1 or 2 channels).

    Iterating yields blocks as they arrive. If no block arrives for ``stall_seconds`` or PortAudio
    reports the stream gone, the iterator raises :class:`DeviceLostError`; call :meth:`reopen` (it
    returns False while no device is back) and iterate again.
    """

    def __init__(self, device: str | int | None = None, channels: int = 1,
                 block_seconds: float = BLOCK_SECONDS, stall_seconds: float = 2.0):
        if isinstance(device, str) and device.strip().isdigit():
            device = int(device)
        self.device = device if device not in ("", None) else None
        self.channels = channels
        self.sample_rate = SAMPLE_RATE
        self.block = int(SAMPLE_RATE * block_seconds)
        self.stall_seconds = stall_seconds
        self._q: queue.Queue = queue.Queue()
        self._closed = threading.Event()
        self._stream = None
        self.first_callback = threading.Event()
        self._open()

    def _open(self) -> None:
        import sounddevice as sd
        if not list_input_devices():
            raise NoDeviceError("no input device (microphone) found")
        self.first_callback.clear()

        def callback(indata, frames, time_info, status):
            if status:
                log.debug("input status: %s", status)
            self.first_callback.set()
            self._q.put(indata.copy())
        try:
            self._stream = sd.InputStream(samplerate=SAMPLE_RATE, channels=self.channels, dtype="float32",
                                          blocksize=self.block, device=self.device, callback=callback)
            self._stream.start()
        except Exception as e:
            self._stream = None
            raise NoDeviceError(f"cannot open input device {self.device if self.device is not None else '(default)'}: {e}") from e

    def reopen(self) -> bool:
        self._close_stream()
        try:
            import sounddevice as sd
            sd._terminate()
            sd._initialize()  # PortAudio re-scans devices only on initialisation
            self._open()
            return True
        except NoDeviceError:
            return False

    def _close_stream(self) -> None:
        s, self._stream = self._stream, None
        if s is not None:
            try:
                s.abort()
                s.close()
            except Exception:
                pass

    def close(self) -> None:
        self._closed.set()
        self._close_stream()

    def __iter__(self) -> Iterator[np.ndarray]:
        last = time.monotonic()
        while not self._closed.is_set():
            try:
                block = self._q.get(timeout=0.2)
            except queue.Empty:
                if self._closed.is_set():
                    break
                s = self._stream
                gone = s is None or not s.active
                # PortAudio's first callback can take 1.5 s after start() (or reopen()): a stream
                # that has not started delivering yet gets STARTUP_GRACE before it counts as stalled
                limit = self.stall_seconds if self.first_callback.is_set() else max(self.stall_seconds, STARTUP_GRACE)
                if gone or time.monotonic() - last > limit:
                    raise DeviceLostError("the input device stopped delivering audio (unplugged?)")
                continue
            last = time.monotonic()
            yield block
        # deliver what is still queued after close()
        while True:
            try:
                yield self._q.get_nowait()
            except queue.Empty:
                return


def mic_from_config(config) -> "MicSource":
    """The microphone the config names (``asr.device``, ``asr.channels``)."""
    return MicSource(device=config.get("asr.device") or None, channels=config.get("asr.channels", 1))


# --------------------------------------------------------------------------- crash-safe writer

def _wav_header(channels: int, rate: int, data_bytes: int) -> bytes:
    return (b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE"
            + b"fmt " + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * channels * 2, channels * 2, 16)
            + b"data" + struct.pack("<I", data_bytes))


HEADER_BYTES = 44


class DiskFullError(AudioError):
    """The disk (or the user's quota) is full: the recording stopped, what was written is kept."""
    ja_default = ("ディスクの空き容量がなくなったため、録音を停止しました。ここまでの音声と文字起こしは保存されています。"
                  "空き容量を確保するよう、システム管理者に連絡してください。")


class RecordingWriteError(AudioError):
    ja_default = ("録音ファイルに書き込めなくなったため、録音を停止しました。ここまでの音声と文字起こしは保存されています。"
                  "システム管理者に連絡してください。")


def disk_full(e: BaseException) -> DiskFullError | None:
    """The clear error for a full disk seen anywhere (a write's ENOSPC/EDQUOT, SQLite's
    "database or disk is full"), or None when ``e`` is something else."""
    if isinstance(e, DiskFullError):
        return e
    full = (isinstance(e, OSError) and e.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
            or type(e).__name__ == "OperationalError" and "disk is full" in str(e))
    return DiskFullError(f"the disk holding the data folder is full ({e}); what was saved is kept") if full else None


def _write_all(f, data) -> int:
    """Write through an unbuffered file; returns the bytes written before an error (then raises
    the error with ``written`` set on it)."""
    view, done = memoryview(data), 0
    try:
        while done < len(view):
            done += f.write(view[done:])
    except OSError as e:
        e.written = done
        raise
    return done


class WavWriter:
    """Append-only PCM16 WAV writer that survives ``kill -9`` and a full disk.

    Samples are written straight to the file; every ``sync_interval`` seconds (of wall clock, and
    at least once per second of audio) the header's sizes are rewritten and the file is fsync'd.
    Opening an existing file appends to it (after repairing its header), which is how a recovered
    session continues. When a write fails (disk full, I/O error) the file is cut back to the last
    whole frame written, its header made to match, and :class:`DiskFullError` (or
    :class:`RecordingWriteError`) raised; the writer then refuses further writes and ``close``
    only closes. Everything written up to the failure stays playable.
    """

    def __init__(self, path: str | Path, channels: int = 1, rate: int = SAMPLE_RATE,
                 sync_interval: float = 0.5, key: bytes | None = None):
        self.path = Path(path)
        self.channels = channels
        self.rate = rate
        self.sync_interval = min(sync_interval, 1.0)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._sealed = None
        self.failed: AudioError | None = None
        if key is not None:
            # encryption at rest: the header and then each second of PCM as AES-GCM sealed records
            from .crypto import SealedWriter, wav_bytes
            fresh = not (self.path.exists() and self.path.stat().st_size > 0)
            self._sealed = SealedWriter(self.path, key, append=not fresh)
            if fresh:
                self._sealed.write(_wav_header(channels, rate, 0))
                self._data = 0
            else:
                self._data = len(wav_bytes(self.path, key)) - HEADER_BYTES
            self._buf = bytearray()
            self._last_sync = time.monotonic()
            self._unsynced = 0
            return
        if self.path.exists() and self.path.stat().st_size >= HEADER_BYTES:
            repair_wav(self.path)
            self._f = open(self.path, "r+b", buffering=0)
            self._f.seek(0, os.SEEK_END)
        else:
            self._f = open(self.path, "w+b", buffering=0)
            _write_all(self._f, _wav_header(channels, rate, 0))
            self._data = 0
            self._sync()
        self._data = self._f.tell() - HEADER_BYTES
        self._last_sync = time.monotonic()
        self._unsynced = 0

    @property
    def frames(self) -> int:
        return self._data // (2 * self.channels)

    @property
    def seconds(self) -> float:
        return self.frames / self.rate

    def write(self, block: np.ndarray) -> None:
        b = np.asarray(block, dtype=np.float32).reshape(-1, self.channels)
        pcm = (np.clip(b, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
        with self._lock:
            if self.failed is not None:
                raise self.failed
            try:
                if self._sealed is not None:
                    self._buf += pcm
                else:
                    _write_all(self._f, pcm)
                self._data += len(pcm)
                self._unsynced += len(b)
                if (time.monotonic() - self._last_sync >= self.sync_interval
                        or self._unsynced >= self.rate * self.sync_interval):
                    self._sync()
            except OSError as e:
                self._data += getattr(e, "written", 0) if self._sealed is None else 0
                raise self._fail(e) from e

    def _fail(self, e: OSError) -> AudioError:
        """Keep what was written: cut back to whole frames (sealed: the last whole record), make
        the header match, and remember the error for every later write."""
        frame = 2 * self.channels
        if self._sealed is not None:
            self._data -= len(self._buf)   # the unsealed second that could not be written
            self._buf.clear()
        else:
            self._data = self._data // frame * frame
            try:
                os.ftruncate(self._f.fileno(), HEADER_BYTES + self._data)
                self._f.seek(4)
                self._f.write(struct.pack("<I", 36 + self._data))
                self._f.seek(40)
                self._f.write(struct.pack("<I", self._data))
                os.fsync(self._f.fileno())
            except OSError:
                log.warning("recording %s: header not updated after a write error", self.path.name)
        if disk_full(e):
            self.failed = DiskFullError(f"the disk holding {self.path.parent} is full: recording stopped after "
                                        f"{self.seconds:.1f} s; the audio up to there is kept")
        else:
            self.failed = RecordingWriteError(f"cannot write the recording {self.path.name} ({e.strerror or e}): "
                                              f"stopped after {self.seconds:.1f} s; the audio up to there is kept")
        log.error("recording %s: %s", self.path.name, type(self.failed).__name__)
        return self.failed

    def _sync(self) -> None:
        if self._sealed is not None:
            if self._buf:
                self._sealed.write(bytes(self._buf))
                self._buf.clear()
            self._last_sync = time.monotonic()
            self._unsynced = 0
            return
        f = self._f
        end = HEADER_BYTES + self._data
        f.seek(4)
        f.write(struct.pack("<I", 36 + self._data))
        f.seek(40)
        f.write(struct.pack("<I", self._data))
        f.seek(end)
        os.fsync(f.fileno())
        self._last_sync = time.monotonic()
        self._unsynced = 0

    def sync(self) -> None:
        with self._lock:
            if self.failed is not None:
                return
            try:
                self._sync()
            except OSError as e:
                raise self._fail(e) from e

    def close(self) -> None:
        with self._lock:
            f = self._sealed.f if self._sealed is not None else self._f
            if f.closed:
                return
            try:
                if self.failed is None:
                    self._sync()
                    if self._sealed is not None:
                        self._sealed.sync()
            except OSError as e:
                self._fail(e)
            finally:
                f.close()


def repair_wav(path: str | Path, key: bytes | None = None) -> float:
    """Make a WAV file cut by a crash valid again (header sizes from the file size, trailing partial
    frame dropped). Returns its duration in seconds. A sealed (encrypted) recording loses its torn
    last record instead."""
    path = Path(path)
    from .crypto import SealedWriter, is_sealed, wav_bytes
    if path.stat().st_size >= 6 and is_sealed(path):
        if key is None:
            raise AudioError(f"{path.name} is encrypted and no data key is loaded",
                             ja="録音ファイルが暗号化されていますが、鍵を読み込めません。")
        SealedWriter(path, key).close()
        raw = wav_bytes(path, key)
        channels, rate = struct.unpack("<HI", raw[22:28])
        return (len(raw) - HEADER_BYTES) / (2 * channels) / rate
    with open(path, "r+b") as f:
        head = f.read(HEADER_BYTES)
        if len(head) < HEADER_BYTES or head[:4] != b"RIFF" or head[12:16] != b"fmt ":
            raise AudioError(f"{path.name} is not a Madoguchi recording (bad WAV header)",
                             ja="録音ファイルが壊れているため復元できません。")
        channels, rate = struct.unpack("<HI", head[22:28])
        size = os.fstat(f.fileno()).st_size
        frame = 2 * channels
        data = (size - HEADER_BYTES) // frame * frame
        if HEADER_BYTES + data != size:
            f.truncate(HEADER_BYTES + data)
        f.seek(4)
        f.write(struct.pack("<I", 36 + data))
        f.seek(40)
        f.write(struct.pack("<I", data))
        f.flush()
        os.fsync(f.fileno())
    return data / frame / rate


def write_wav(path: str | Path, samples: np.ndarray, rate: int = SAMPLE_RATE) -> Path:
    """Write float samples ((n,) or (n, channels)) as a PCM16 WAV file (test audio, exports)."""
    a = np.asarray(samples, dtype=np.float32)
    ch = 1 if a.ndim == 1 else a.shape[1]
    with wave.open(str(path), "wb") as w:
        w.setnchannels(ch)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(a, -1, 1) * 32767).astype("<i2").tobytes())
    return Path(path)


def read_wav_range(path: str | Path, start: float = 0.0, end: float | None = None,
                   key: bytes | None = None) -> np.ndarray:
    """Samples of a recording between ``start`` and ``end`` seconds as float32 ((n,) for mono,
    (n, channels) otherwise): the desktop's play-from-time."""
    import io
    from .crypto import wav_bytes
    with wave.open(io.BytesIO(wav_bytes(path, key)), "rb") as w:
        rate, ch = w.getframerate(), w.getnchannels()
        n = w.getnframes()
        a = max(0, min(n, int(round(start * rate))))
        b = n if end is None else max(a, min(n, int(round(end * rate))))
        w.setpos(a)
        raw = w.readframes(b - a)
    x = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32767.0
    return x if ch == 1 else x.reshape(-1, ch)
