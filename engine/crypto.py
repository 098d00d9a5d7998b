"""Audio (and other file) encryption at rest: AES-256-GCM in sealed, append-only records.

File layout: magic ``MDGA1\\n`` then records ``[u32 length][12-byte nonce][ciphertext+tag]``.
Each record is sealed on its own, so a recording can be appended to every second (fsync'd) and
a crash loses at most the record being written: :func:`read_sealed` stops at a torn tail.
The record index is bound into each record (associated data), so records cannot be reordered
or dropped from the middle without detection.
"""
from __future__ import annotations

import os
import struct
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import MadoguchiError

MAGIC = b"MDGA1\n"


class SealedFileError(MadoguchiError):
    ja_default = "暗号化されたファイルを読み込めません（鍵が違うか、ファイルが壊れています）。"


class SealedWriter:
    def __init__(self, path: Path | str, key: bytes, append: bool = True):
        self.path = Path(path)
        self.aes = AESGCM(key)
        exists = self.path.is_file() and self.path.stat().st_size >= len(MAGIC)
        if exists and append:
            self.index, good = _scan(self.path, self.aes)
            with open(self.path, "r+b") as f:  # drop a torn tail before appending
                f.truncate(good)
        else:
            with open(self.path, "wb") as f:
                f.write(MAGIC)
            self.index = 0
        self.f = open(self.path, "ab", buffering=0)   # every record goes to the OS at once
        self.size = self.path.stat().st_size

    def write(self, data: bytes, sync: bool = True) -> None:
        """Append one sealed record. If the write fails (disk full, I/O error) the partial record
        is cut off again before the error is raised, so the file stays a valid sealed file."""
        nonce = os.urandom(12)
        ct = self.aes.encrypt(nonce, data, struct.pack("<Q", self.index))
        rec = memoryview(struct.pack("<I", len(ct)) + nonce + ct)
        try:
            while rec:
                rec = rec[self.f.write(rec):]
            if sync:
                self.sync()
        except OSError:
            self.rollback()
            raise
        self.size += 16 + len(ct)
        self.index += 1

    def rollback(self) -> None:
        """Drop whatever follows the last complete record (never needs free space)."""
        try:
            os.ftruncate(self.f.fileno(), self.size)
            os.fsync(self.f.fileno())
        except OSError:
            pass

    def sync(self) -> None:
        os.fsync(self.f.fileno())

    def close(self) -> None:
        if not self.f.closed:
            try:
                self.sync()
            finally:
                self.f.close()


def _records(path: Path, aes: AESGCM):
    with open(path, "rb") as f:
        if f.read(len(MAGIC)) != MAGIC:
            raise SealedFileError(f"{path.name} is not a Madoguchi sealed file")
        pos, i = len(MAGIC), 0
        while True:
            head = f.read(16)
            if len(head) < 16:
                return
            (n,) = struct.unpack("<I", head[:4])
            ct = f.read(n)
            if len(ct) < n:
                return  # torn tail from a crash
            try:
                pt = aes.decrypt(head[4:16], ct, struct.pack("<Q", i))
            except Exception as e:
                raise SealedFileError(f"{path.name}: record {i} does not decrypt (wrong key or tampered)") from e
            pos += 16 + n
            i += 1
            yield pt, i, pos


def _scan(path: Path, aes: AESGCM) -> tuple[int, int]:
    count, good = 0, len(MAGIC)
    for _pt, count, good in _records(path, aes):
        pass
    return count, good


def read_sealed(path: Path | str, key: bytes) -> bytes:
    return b"".join(pt for pt, _i, _p in _records(Path(path), AESGCM(key)))


def is_sealed(path: Path | str) -> bool:
    with open(path, "rb") as f:
        return f.read(len(MAGIC)) == MAGIC


def seal_file(src: Path | str, dst: Path | str, key: bytes, chunk: int = 1 << 20) -> Path:
    w = SealedWriter(dst, key, append=False)
    with open(src, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            w.write(b, sync=False)
    w.close()
    return Path(dst)


def wav_bytes(path: Path | str, key: bytes | None) -> bytes:
    """A recording as plain WAV bytes: decrypted when the file is sealed (header sizes fixed from
    the data actually present, so a recording cut by a crash reads like a repaired one)."""
    path = Path(path)
    if not is_sealed(path):
        return path.read_bytes()
    if key is None:
        raise SealedFileError(f"{path.name} is encrypted and no data key is loaded")
    raw = bytearray(read_sealed(path, key))
    if len(raw) >= 44 and raw[:4] == b"RIFF":
        channels = struct.unpack("<H", raw[22:24])[0] or 1
        data = (len(raw) - 44) // (2 * channels) * (2 * channels)
        del raw[44 + data:]
        raw[4:8] = struct.pack("<I", 36 + data)
        raw[40:44] = struct.pack("<I", data)
    return bytes(raw)
