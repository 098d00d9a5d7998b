"""Audio sources and the crash-safe WAV writer (real files, real PyAV decoding)."""
import os
import struct
import time
import wave

import numpy as np
import pytest

from engine.audio import (AudioError, FileSource, WavWriter, level_dbfs, read_audio, read_wav_range,
                          repair_wav, resample, write_wav)


def tone(seconds, freq=440.0, rate=16000, amp=0.3):
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def encode(src_wav, dst, codec, rate=44100):
    import av
    x = read_audio(src_wav)
    y = resample(x, 16000, rate)
    with av.open(str(dst), "w") as out:
        st = out.add_stream(codec, rate=rate, layout="mono")
        fs = st.codec_context.frame_size or 1152
        for i in range(0, len(y), fs):
            fr = av.AudioFrame.from_ndarray(np.ascontiguousarray(y[None, i:i + fs]), format="fltp", layout="mono")
            fr.sample_rate = rate
            for p in st.encode(fr):
                out.mux(p)
        for p in st.encode(None):
            out.mux(p)
    return dst


@pytest.mark.parametrize("ext,codec", [("flac", "flac"), ("mp3", "libmp3lame"), ("m4a", "aac")])
def test_filesource_decodes_formats(tmp_path, ext, codec):
    wav = write_wav(tmp_path / "t.wav", tone(2.0))
    f = encode(wav, tmp_path / f"t.{ext}", codec)
    x = read_audio(f)
    assert abs(len(x) / 16000 - 2.0) < 0.15
    # same tone comes out: dominant frequency 440 Hz
    spec = np.abs(np.fft.rfft(x[4000:20000]))
    assert abs(np.argmax(spec) * 16000 / 16000 - 440) < 5
    assert -15 < level_dbfs(x[4000:20000]) < -9


def test_filesource_resamples_and_blocks(tmp_path):
    wav = tmp_path / "s.wav"
    write_wav(wav, resample(tone(1.0), 16000, 44100), rate=44100)
    blocks = list(FileSource(wav))
    assert all(b.shape[1] == 1 and b.dtype == np.float32 for b in blocks)
    assert all(len(b) == 1600 for b in blocks[:-1])
    assert abs(sum(len(b) for b in blocks) - 16000) < 50


def test_filesource_realtime_pacing(tmp_path):
    wav = write_wav(tmp_path / "p.wav", tone(1.5))
    t = time.monotonic()
    arrivals = []
    for b in FileSource(wav, realtime=True):
        arrivals.append(time.monotonic() - t)
    assert arrivals[-1] >= 1.35          # not faster than real time
    assert arrivals[4] >= 0.4            # block 5 (0.5 s of audio) did not come at once
    t = time.monotonic()
    list(FileSource(wav))
    assert time.monotonic() - t < 0.5    # unpaced is fast


def test_filesource_errors(tmp_path):
    with pytest.raises(AudioError) as e:
        FileSource(tmp_path / "missing.wav")
    assert e.value.ja
    bad = tmp_path / "bad.mp3"
    bad.write_bytes(os.urandom(3000))
    with pytest.raises(AudioError):
        list(FileSource(bad))


def test_stereo_channels_kept(tmp_path):
    st = np.stack([tone(1.0, 300), tone(1.0, 700) * 0.1], axis=1)
    wav = write_wav(tmp_path / "st.wav", st)
    x = np.concatenate(list(FileSource(wav, channels=2)))
    assert x.shape[1] == 2
    assert level_dbfs(x[:, 0]) > level_dbfs(x[:, 1]) + 15


def test_wav_writer_appends_and_syncs(tmp_path):
    p = tmp_path / "rec.wav"
    w = WavWriter(p, sync_interval=0.2)
    for i in range(10):
        w.write(tone(0.1))
    w.sync()
    # header is current after a sync even before close
    with wave.open(str(p)) as r:
        assert r.getnframes() == 16000
    w.write(tone(0.5))
    w.close()
    x = read_wav_range(p, 0.5, 1.0)
    assert len(x) == 8000
    assert np.allclose(x, tone(1.5)[8000:16000], atol=1e-3)
    # reopening appends (recovered session continues)
    w = WavWriter(p)
    w.write(tone(0.5))
    w.close()
    with wave.open(str(p)) as r:
        assert r.getnframes() == 32000


def test_repair_after_cut(tmp_path):
    p = tmp_path / "cut.wav"
    w = WavWriter(p)
    w.write(tone(1.0))
    w.sync()
    w._f.write(b"\x01\x02\x03" + b"\x00" * 3201)   # unsynced tail, odd byte count
    w._f.flush()
    os.close(os.dup(w._f.fileno()))
    seconds = repair_wav(p)
    assert seconds == pytest.approx(1.1, abs=0.001)
    with wave.open(str(p)) as r:
        assert r.getnframes() == 17602
    size = p.stat().st_size
    assert struct.unpack("<I", p.read_bytes()[40:44])[0] == size - 44


def test_level_meter():
    assert level_dbfs(np.zeros(1600, np.float32)) == -100.0
    assert level_dbfs(np.ones(1600, np.float32)) == pytest.approx(0.0, abs=0.01)
    assert level_dbfs(tone(0.1, amp=0.1)) == pytest.approx(-23.0, abs=0.2)
