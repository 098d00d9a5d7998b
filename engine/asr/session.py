"""A consultation session: record, transcribe live, keep everything safe, recover after a crash.

The desktop sits on exactly this API::

    sess = ConsultationSession(ctx, title="…", staff_user="…", consent=True)
    sess.start(MicSource(device, channels))          # or FileSource(path, realtime=True)
    for ev in sess.events():                         # blocks; ends after stop() or end of source
        Partial / Final / Level / DeviceLost / DeviceRestored / Ended
    sess.stop(final_pass=True)                       # re-transcribes the recording (finalpass)

or with a callback instead of the generator: ``sess.start(source, on_event=fn)`` (``fn`` runs on
the session's worker thread; a Qt client re-emits it as a signal).

Safety: the audio goes to ``<data>/audio/<uid>.wav`` through :class:`engine.audio.WavWriter`
(fsync at least every second), every :class:`Final` is committed to ``segments`` the moment it
exists, and the row's ``heartbeat_at`` is refreshed at every fsync. A session whose process died
(state ``recording`` without a live heartbeat) is listed by :func:`unfinished_sessions`;
:func:`recover` repairs its audio file and keeps every final segment.

Other functions: :func:`edit_segment`, :func:`swap_speakers`, :func:`list_sessions`,
:func:`get_session`, :func:`audio_range` (play from a time), :func:`delete_audio`.
"""
from __future__ import annotations

import itertools
import logging
import os
import queue
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ..audio import (AudioError, DeviceLostError, Level, WavWriter, disk_full, level_dbfs, read_wav_range,
                     repair_wav)
from ..errors import MadoguchiError
from . import sessions as table
from .transcribe import Final, Partial

log = logging.getLogger(__name__)

HEARTBEAT_STALE = 10.0     # seconds without heartbeat → the recording process is gone
SPEAKERS = ("staff", "citizen", "unknown")


class SessionError(MadoguchiError):
    ja_default = "相談記録の操作に失敗しました。"


@dataclass
class DeviceLost:
    """The microphone went away: recording is paused, nothing recorded so far is lost."""
    time: float
    message: str
    ja: str


@dataclass
class DeviceRestored:
    time: float


@dataclass
class Ended:
    """No more events: the session stopped (or its source ended)."""
    time: float
    error: str = ""
    ja: str = ""         # the error for the UI, in Japanese (a full disk stopped the recording, …)


Event = Partial | Final | Level | DeviceLost | DeviceRestored | Ended


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ConsultationSession:
    def __init__(self, ctx, title: str = "", case_number: str = "", staff_user: str = "",
                 consent: bool = False, transcriber=None, speaker_fn=None):
        self.ctx = ctx
        # the backend it starts on, kept to the end: on the office server its segments go on being
        # written there (journaled on this PC while the server is away), whatever the link does
        self.store = ctx.store.current()
        self.title, self.case_number, self.staff_user, self.consent = title, case_number, staff_user, consent
        self._transcriber = transcriber
        self._speaker_fn = speaker_fn
        self.id: int | None = None
        self.uid = uuid.uuid4().hex
        self.audio_path: Path | None = None
        self._events: queue.Queue = queue.Queue()
        self._blocks: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._writer: WavWriter | None = None
        self._source = None
        self._callback: Callable | None = None
        self._seq = 0
        self._ended = threading.Event()
        self.error: BaseException | None = None
        self.paused = False

    # ------------------------------------------------------------------ lifecycle
    def start(self, source, seconds: float | None = None, on_event: Callable[[Event], None] | None = None) -> int:
        """Create the session row and start recording + live transcription. Returns the session id."""
        from .speakers import speaker_fn_for
        from .transcribe import make_transcriber
        if self.id is not None:
            raise SessionError("session already started")
        channels = getattr(source, "channels", 1)
        if self._transcriber is None:
            fn = self._speaker_fn or speaker_fn_for(channels)
            self._transcriber = make_transcriber(self.ctx.config, speaker_fn=fn)
        cfg = self.ctx.config
        engine = cfg.get("asr.engine", "faster-whisper")
        model = cfg.get("asr.vosk_model" if engine == "vosk" else "asr.model", "")
        self.audio_path = self.ctx.audio_dir / f"{self.uid}.wav"
        self._writer = WavWriter(self.audio_path, channels=channels, key=self.store.key)
        now = time.time()
        self.id = table.create(self.store, {
            "uid": self.uid, "title": self.title, "case_number": self.case_number,
            "staff_user": self.staff_user, "state": "recording", "consent": int(bool(self.consent)),
            "audio_path": str(self.audio_path), "sample_rate": 16000, "channels": channels,
            "engine": engine, "model": model, "started_at": now, "pid": os.getpid(), "heartbeat_at": now})
        log.info("session %s started (%d channel(s))", self.id, channels)
        self._source = source
        self._callback = on_event
        self._limit = int(seconds * 16000) if seconds else None
        self._threads = [threading.Thread(target=self._capture, name=f"capture-{self.id}", daemon=True),
                         threading.Thread(target=self._process, name=f"asr-{self.id}", daemon=True)]
        for t in self._threads:
            t.start()
        return self.id

    def _emit(self, ev) -> None:
        if self._callback is not None:
            try:
                self._callback(ev)
            except Exception:
                log.exception("session event callback failed")
        self._events.put(ev)

    def _heartbeat(self) -> None:
        table.heartbeat(self.store, self.id, self._writer.seconds)

    def _capture(self) -> None:
        w = self._writer
        last_beat = 0.0
        try:
            while not self._stop.is_set():
                try:
                    for block in self._source:
                        if self._limit is not None and w.frames + len(block) >= self._limit:
                            block = block[:max(0, self._limit - w.frames)]
                            self._stop.set()
                        t = w.seconds
                        w.write(block)
                        self._blocks.put(block)
                        b = np.asarray(block).reshape(len(block), -1)
                        self._emit(Level(t, [level_dbfs(b[:, c]) for c in range(b.shape[1])]))
                        if time.monotonic() - last_beat >= 0.5:
                            w.sync()
                            self._heartbeat()
                            last_beat = time.monotonic()
                        if self._stop.is_set():
                            break
                    break  # the source ended (file) or stop() closed it
                except DeviceLostError as e:
                    w.sync()
                    self._heartbeat()
                    self.paused = True
                    log.warning("session %s: input device lost; paused", self.id)
                    self._emit(DeviceLost(w.seconds, str(e), e.ja))
                    while not self._stop.is_set():
                        if self._stop.wait(1.0):
                            break
                        self._heartbeat()
                        if getattr(self._source, "reopen", None) and self._source.reopen():
                            self.paused = False
                            log.info("session %s: input device back; resumed", self.id)
                            self._emit(DeviceRestored(w.seconds))
                            break
        except Exception as e:  # anything else (a full disk: AudioError from the writer): keep what we have, tell the UI
            log.exception("session %s: capture failed", self.id)
            self.error = e
        finally:
            try:
                w.sync()
                self._heartbeat()
            except Exception as e:   # the database may be on the same full disk: never leave the queue open
                log.warning("session %s: last sync failed: %s", self.id, type(e).__name__)
                self.error = self.error or e
            self._blocks.put(None)

    def _store_final(self, f: Final) -> None:
        self._seq += 1
        f.id = table.add_segment(self.store, self.id, self._seq, f.start, f.end,
                                 f.speaker if f.speaker in SPEAKERS else "unknown", f.text)

    def _process(self) -> None:
        tr = self._transcriber
        err = ""
        done = False
        try:
            while not done:
                try:
                    blocks = [self._blocks.get(timeout=0.2)]
                except queue.Empty:   # no audio right now (device lost …): still deliver decoded Finals
                    blocks = []
                while True:   # take everything queued: a slow decode never lets audio pile up
                    try:
                        blocks.append(self._blocks.get_nowait())
                    except queue.Empty:
                        break
                ends = [i for i, b in enumerate(blocks) if b is None]
                if ends:
                    done = True
                    blocks = blocks[:ends[0]]
                if blocks:
                    audio = np.concatenate(blocks)
                    # more than a second queued: we are behind real time, so skip partial
                    # decodes until caught up (Finals keep their latency, partials wait)
                    if hasattr(tr, "behind"):
                        tr.behind = len(audio) > 16000
                    evs = tr.feed(audio)
                else:
                    evs = tr.poll() if hasattr(tr, "poll") else []
                if done:   # the last Finals one by one, each as soon as it is decoded
                    evs = itertools.chain(evs, tr.drain()) if hasattr(tr, "drain") else evs + tr.flush()
                for ev in evs:
                    if isinstance(ev, Final):
                        self._store_final(ev)
                    self._emit(ev)
        except Exception as e:
            log.exception("session %s: transcription failed", self.id)
            self.error = self.error or disk_full(e) or e
            err = str(e)
            while not done and self._blocks.get() is not None:   # keep draining so capture never blocks
                pass
        finally:
            self._ended.set()
            if isinstance(self.error, MadoguchiError):   # the recording itself stopped (disk full …)
                err = str(self.error)
            self._emit(Ended(self._writer.seconds if self._writer else 0.0, err,
                             self.error.ja if isinstance(self.error, MadoguchiError) else ""))

    def events(self, timeout: float | None = None) -> Iterator[Event]:
        """Every event until :class:`Ended` (included). ``timeout``: stop waiting after that many
        seconds without an event (then the generator returns)."""
        while True:
            try:
                ev = self._events.get(timeout=timeout)
            except queue.Empty:
                return
            yield ev
            if isinstance(ev, Ended):
                return

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the source has ended and every Final is stored."""
        return self._ended.wait(timeout)

    def stop(self, final_pass: bool = True, progress=None) -> dict:
        """Stop recording, store the last segments, close the audio file; with ``final_pass``
        re-transcribe the whole recording (keeping staff edits). Returns :meth:`summary`."""
        if self.id is None:
            raise SessionError("session was never started")
        self._stop.set()
        if self._source is not None and hasattr(self._source, "close"):
            self._source.close()
        for t in self._threads:
            t.join()
        if self._writer is not None:
            self._writer.close()
        table.mark_stopped(self.store, self.id, self._writer.seconds)
        log.info("session %s stopped (%.1f s of audio, %d live segments)", self.id, self._writer.seconds, self._seq)
        if final_pass and self._writer.frames:
            from .finalpass import run_final_pass
            run_final_pass(self.ctx, self.id, progress=progress)
        return self.summary()

    def summary(self) -> dict:
        return session_summary(self.store, self.id)


# --------------------------------------------------------------------------- queries and edits
# (the SQL is in engine/asr/sessions.py, the tables' one owner)

def _existing(store, session_id: int) -> dict:
    s = table.get(store, session_id)
    if s is None:
        raise SessionError(f"no session {session_id}", ja="指定された相談記録が見つかりません。")
    return s


def session_summary(store, session_id: int) -> dict:
    s = _existing(store, session_id)
    n = table.count_segments(store, session_id)
    return {"id": s["id"], "uid": s["uid"], "title": s["title"], "state": s["state"],
            "audio_seconds": s["audio_seconds"], "segments": n, "audio_path": s["audio_path"],
            "started_at": s["started_at"], "stopped_at": s["stopped_at"]}


# A transcript is 要配慮個人情報: only the welfare roles read it, only its own staff member (or a
# supervisor) corrects it, and never once its record is under review or approved. Recovering a
# crashed session (which shows no transcript) is also an administrator's job.


def may_edit(store, user, session_id: int) -> None:
    """Raise unless ``user`` may correct the transcript of ``session_id`` (see above)."""
    from ..roles import PermissionDenied, can, require
    require(user, "record")
    from ..records.workflow import review_state
    s = _existing(store, session_id)
    if s["staff_user"] and s["staff_user"] != user.username and not can(user, "approve"):
        raise PermissionDenied(f"session {session_id} belongs to {s['staff_user']}",
                               ja="この文字起こしを修正できるのは担当の職員と査察指導員だけです。")
    state = review_state(store, session_id)
    if state is not None:
        raise SessionError(f"the record of session {session_id} is {state}; its transcript is fixed",
                           ja="記録が提出済または承認済のため、この文字起こしは修正できません。")


def list_sessions(store, unfinished: bool = False, *, user) -> list[dict]:
    from ..roles import require
    require(user, "recover" if unfinished else "read_records")
    rows = table.listing(store)
    if unfinished:
        ids = {r["id"] for r in unfinished_sessions(store)}
        rows = [r for r in rows if r["id"] in ids]
    return rows


def unfinished_sessions(store) -> list[dict]:
    """Sessions cut off by a crash (for the recovery prompt at start-up): state ``recording`` whose
    process is gone or silent, or ``interrupted``."""
    now = time.time()
    out = []
    for r in table.in_states(store, ("recording", "interrupted")):
        fresh = (r["heartbeat_at"] or 0) > now - HEARTBEAT_STALE
        if r["state"] == "recording" and fresh and _pid_alive(r["pid"]):
            continue          # being recorded right now
        r["segments"] = table.count_segments(store, r["id"])
        out.append(r)
    return out


def recover(ctx, session_id: int, final_pass: bool = False, progress=None) -> dict:
    """Make a crashed session whole again: repair the WAV header, record the true audio length,
    keep every stored segment, mark it ``stopped`` (``finalized`` after an optional final pass)."""
    store = ctx.store
    s = _existing(store, session_id)
    seconds = 0.0
    path = Path(s["audio_path"])
    if path.is_file():
        try:
            seconds = repair_wav(path, key=store.key)
        except AudioError:
            log.warning("session %s: audio file could not be repaired", session_id)
    table.mark_stopped(store, session_id, seconds, recovered=True)
    log.info("session %s recovered: %.1f s of audio", session_id, seconds)
    if final_pass and seconds > 0:
        from .finalpass import run_final_pass
        run_final_pass(ctx, session_id, progress=progress)
    return session_summary(store, session_id)


def recover_sessions(ctx, user, session_ids: list[int] | None = None, final_pass: bool = False) -> list[dict]:
    """``madoguchi sessions recover``: :func:`recover` the given sessions, or every unfinished
    one (:func:`unfinished_sessions`), for a user who may recover; their summaries."""
    from ..roles import require
    require(user, "recover")
    ids = session_ids if session_ids else [r["id"] for r in unfinished_sessions(ctx.store)]
    return [recover(ctx, i, final_pass=final_pass) for i in ids]


def get_session(store, session_id: int, *, user) -> dict:
    from ..roles import require
    require(user, "read_records")
    return {"session": _existing(store, session_id), "segments": table.segments(store, session_id)}


def edit_segment(store, segment_id: int, text: str | None = None, speaker: str | None = None, *, user) -> dict:
    """Staff correct a segment's text and/or speaker; the final pass keeps these edits."""
    row = table.get_segment(store, segment_id)
    if row is None:
        raise SessionError(f"no segment {segment_id}", ja="指定された発言が見つかりません。")
    may_edit(store, user, row["session_id"])
    if speaker is not None and speaker not in SPEAKERS:
        raise SessionError(f"speaker must be one of {', '.join(SPEAKERS)}", ja="話者の指定が正しくありません。")
    with store.transaction():
        if text is not None and text != row["text"]:
            table.set_segment_text(store, segment_id, text)
        if speaker is not None and speaker != row["speaker"]:
            table.set_segment_speaker(store, segment_id, speaker)
    return table.get_segment(store, segment_id)


def swap_speakers(store, session_id: int, *, user) -> None:
    """The UI's one-click swap of 職員 / 相談者 for a whole session (remembered for the final pass)."""
    may_edit(store, user, session_id)
    with store.transaction():
        table.swap_segment_speakers(store, session_id)
        table.toggle_swapped(store, session_id)


def audio_range(store, session_id: int, start: float = 0.0, end: float | None = None) -> np.ndarray:
    """The recording between ``start`` and ``end`` seconds (float32, 16 kHz): play-from-time."""
    s = _existing(store, session_id)
    if s["audio_deleted_at"] or not Path(s["audio_path"]).is_file():
        raise SessionError(f"the audio of session {session_id} is no longer kept",
                           ja="この相談の音声は保存期間を過ぎたため削除されています。")
    return read_wav_range(s["audio_path"], start, end, key=store.key)


def delete_audio(store, session_id: int) -> None:
    """Delete a session's audio file (retention); segments stay."""
    s = table.get(store, session_id)
    if s and s["audio_path"] and Path(s["audio_path"]).exists():
        Path(s["audio_path"]).unlink()
    table.mark_audio_deleted(store, session_id)
