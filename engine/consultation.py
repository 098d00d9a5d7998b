"""The counter workflow: a recorded consultation that ends in a stored record draft.

    cw = CounterConsultation(ctx, user, title="…", consent=True)
    cw.start(MicSource(...), on_event=fn)     # live transcript events (Partial/Final/Level/…) and
                                              # the interview checklist (records.checklist.Coverage)
    rec = cw.stop(progress=fn)                # draft → RecordDraft (下書き), moments after 停止
    cw.refine()                               # final pass → transcript + evidence, a new version

While the session runs, an :class:`~engine.records.draft.IncrementalDrafter` in a low-priority
child process (``engine.records.draft.incremental_job``) follows the stored Final segments and drafts
them as they come, so the draft is ready moments after 停止; it also reports the live interview
checklist (:mod:`engine.records.checklist`: which required items are covered, where 申請意思
stands), passed to ``on_event`` as a ``Coverage`` event. In its own process the LLM can
neither starve live transcription nor stall the caller's UI thread, and a crash of the native
model code cannot take the counter application down. The final pass runs after the draft is
saved (:func:`refine`, also in a child process) and renumbers the transcript; the draft's evidence (live segment numbers) is mapped onto the final segments by time overlap and
every check runs again on the final text — a statement whose number no longer appears in its
re-mapped evidence is flagged 要確認, never silently kept.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import time
from pathlib import Path
from typing import Callable

from .asr import sessions
from .asr.session import ConsultationSession
from .errors import MadoguchiError
from .records import checklist, checks, workflow
from .records import template as rtemplate
from .jobs import run_in_child
from .records.draft import draft as draft_segments
from .records.draft import incremental_job, segments_from_session
from .records.model import Draft, Segment
from .roles import require
from .users import User

log = logging.getLogger(__name__)


class ConsentRequired(MadoguchiError):
    ja_default = "録音の前に、相談者の同意を確認してチェックを入れてください。"


def remap_evidence(d: Draft, live: list[Segment], final: list[Segment]) -> Draft:
    """Point every statement's evidence at the final-pass segments overlapping its live ones."""
    by_seq = {g.seq: g for g in live}
    for _sec, st in d.statements():
        new: list[int] = []
        for e in st.evidence:
            g = by_seq.get(e)
            if g is None:
                continue
            for f in final:
                if min(g.end, f.end) - max(g.start, f.start) > 0.25 * max(1e-3, min(g.end - g.start, f.end - f.start)):
                    if f.seq not in new:
                        new.append(f.seq)
        st.evidence = sorted(new)
    for fl in d.flags:
        fl.evidence = sorted({f.seq for e in fl.evidence if e in by_seq for f in final
                              if min(by_seq[e].end, f.end) > max(by_seq[e].start, f.start)})
    d.segments = final
    return d


class CounterConsultation:
    def __init__(self, ctx, user: User, *, title: str = "", case_number: str = "", consent: bool = False,
                 template: str | None = None, use_llm: bool | None = None, transcriber=None):
        require(user, "record")
        if not consent:
            raise ConsentRequired("the citizen's consent must be recorded before recording starts")
        self.ctx, self.user = ctx, user
        self.template = rtemplate.load(template or ctx.config["records.template"], ctx.data_dir)
        self.use_llm = ctx.config["llm.enabled"] if use_llm is None else use_llm
        # the live interview checklist: nothing covered yet; the drafting child reports each change
        self.coverage: checklist.Coverage = checklist.coverage([], self.template)
        self._on_event: Callable | None = None
        self.session = ConsultationSession(ctx, title=title, case_number=case_number, staff_user=user.username,
                                           consent=consent, transcriber=transcriber)
        self.title, self.case_number = title, case_number

    @property
    def session_id(self) -> int | None:
        return self.session.id

    def start(self, source, on_event: Callable | None = None, seconds: float | None = None) -> int:
        self._on_event = on_event
        sid = self.session.start(source, seconds=seconds, on_event=on_event)
        self._finish = threading.Event()
        self._snapshot = threading.Event()
        self._draft_out: dict = {}

        def run():
            try:
                self._draft_out["draft"] = run_in_child(
                    incremental_job, self.ctx,
                    {"session_id": sid, "template": self.template.path or self.template.name, "use_llm": self.use_llm},
                    progress=self._child_progress, cancel=self._finish)
            except BaseException as e:  # reported by stop(), which falls back to drafting here
                self._draft_out["error"] = e
            finally:
                self._snapshot.set()
        self._drafting = threading.Thread(target=run, name=f"draft-{sid}", daemon=True)
        self._drafting.start()
        return sid

    def _child_progress(self, p) -> None:
        if isinstance(p, tuple) and p and p[0] == "snapshot":
            self._snapshot.set()
        elif isinstance(p, tuple) and p and p[0] == "coverage":
            self.coverage = p[1]
            if self._on_event is not None:
                self._on_event(p[1])

    def wait(self, timeout: float | None = None) -> bool:
        return self.session.wait(timeout)

    def stop(self, final_pass: bool = True, progress: Callable | None = None) -> workflow.RecordDraft:
        """Stop recording, finish the draft from the live transcript and save it as a 下書き record
        — moments after 停止. With ``final_pass`` the more accurate second transcription is left to
        :meth:`refine`, which the caller runs next (in the background: it takes about half the
        recording's length on a 2-core PC, and staff can read the draft meanwhile)."""
        t0 = time.perf_counter()
        if progress:
            progress(0, 2, "記録の下書きを仕上げています…")
        self.session.stop(final_pass=False)
        store = self.session.store   # the backend this consultation was recorded in (see ConsultationSession)
        try:
            live = segments_from_session(store, self.session.id)
        finally:
            self._finish.set()                 # the drafter takes the last live segments and finishes
        if not live:
            self._drafting.join()
            raise MadoguchiError("nothing was transcribed in this session",
                                 ja="発言が文字になりませんでした。マイクと音量を確認してください。録音は保存されています。")
        self._drafting.join()
        d = self._draft_out.get("draft")
        if d is None:  # the drafting process failed: draft here, visibly flagged
            err = self._draft_out.get("error")
            log.warning("incremental drafting failed (%s); drafting after stop", type(err).__name__)
            d = draft_segments(live, self.template, self.ctx.config, use_llm=self.use_llm)
        d.stats = {**d.stats, "stop_to_draft_s": round(time.perf_counter() - t0, 1)}
        if progress:
            progress(1, 2, "保存しています…")
        rec = workflow.create(store, self.user, d, session_id=self.session.id,
                              case_number=self.case_number, title=self.title or d.title)
        self.record_id = rec.id
        log.info("consultation %s → record %s in %.1f s after stop", self.session.id, rec.id, time.perf_counter() - t0)
        if not final_pass:
            sessions.mark_finalized(store, self.session.id)
        return rec

    def refine(self, progress: Callable | None = None) -> workflow.RecordDraft | None:
        """The final pass for this consultation's saved record (see :func:`refine`), run in a
        child process like the drafting: the caller is usually the counter's UI process, and
        the decodes hold the GIL long enough to stall its event loop."""
        return run_in_child(refine_job, self.ctx,
                            {"session_id": self.session.id, "user": dataclasses.asdict(self.user)},
                            progress=progress)


def refine(ctx, user: User, session_id: int, progress: Callable | None = None) -> workflow.RecordDraft | None:
    """Re-transcribe a stopped consultation (beam 5, whole recording) and bring its record along:
    in one transaction the live transcript lines are replaced by the final ones (staff edits kept)
    and the draft's evidence is pointed at them by time overlap, saved as a new version
    (高精度の文字起こしを反映); every check runs again on the final text, so a statement whose number
    is no longer in its evidence is flagged 要確認. If the record has left 下書き/差戻し in the
    meantime (submitted or approved), its transcript stays exactly as it was reviewed and ``None``
    is returned. A session that was already refined returns ``None`` too."""
    require(user, "record")
    store = ctx.store
    s = sessions.get(store, session_id)
    record_id = workflow.record_id_for_session(store, session_id)
    if s is None or record_id is None or s["state"] != "stopped" or not s["audio_seconds"] or s["audio_deleted_at"]:
        return None
    from .asr.finalpass import run_final_pass
    out: dict = {}

    class _Reviewed(Exception):
        pass

    def on_replace(live_rows, final_rows) -> None:
        rec = workflow.get(store, user, record_id)
        if rec.state not in ("draft", "returned"):
            raise _Reviewed
        as_seg = lambda r: Segment(r["seq"], r["start"], r["end"], r["speaker"], r["text"])  # noqa: E731
        d = remap_evidence(rec.content, [as_seg(r) for r in live_rows], [as_seg(r) for r in final_rows])
        tpl = rtemplate.load(d.template or ctx.config["records.template"], ctx.data_dir)
        checks.check(d, tpl)
        out["rec"] = workflow.save(store, user, record_id, d, expected_revision=rec.revision,
                                   reason=REFINED)

    try:
        run_final_pass(ctx, session_id, progress=progress, on_replace=on_replace)
    except _Reviewed:
        sessions.mark_finalized(store, session_id)
        log.info("session %s: record already under review; live transcript kept", session_id)
        return None
    return out.get("rec")


REFINED = "高精度の文字起こしを反映"


def draft_record(ctx, *, session_id: int | None = None, transcript: Path | None = None,
                 template: str | None = None, use_llm: bool | None = None, model: str | None = None,
                 save_as: User | None = None, case_number: str = "") -> tuple[Draft, workflow.RecordDraft | None]:
    """``madoguchi draft``: a record drafted from a stored session or a transcript file (the JSON
    of ``madoguchi transcribe --json``), with the language model if ``use_llm`` (default: the
    configuration's ``llm.enabled``, as in :func:`resume`); ``save_as``: saved as that user's 下書き.
    Returns the draft and the record."""
    from .records.draft import segments_from_file
    if session_id is not None:
        segs = segments_from_session(ctx.store, session_id)
    elif transcript is not None:
        segs = segments_from_file(Path(transcript))
    else:
        raise MadoguchiError("give TRANSCRIPT.json or --session ID", ja="文字起こしを指定してください。")
    tpl = rtemplate.load(template or ctx.config["records.template"], ctx.data_dir)
    d = draft_segments(segs, tpl, ctx.config, use_llm=ctx.config["llm.enabled"] if use_llm is None else use_llm,
                       model=model)
    rec = None
    if save_as is not None:
        rec = workflow.create(ctx.store, save_as, d, session_id=session_id, case_number=case_number)
    return d, rec


def carry_over_refined(ctx, user: User, record_id: int, edited: Draft, revision: int) -> tuple[Draft, int]:
    """Staff edited a draft while :func:`refine` saved the final transcript under it: point the
    edited draft's evidence at the final lines and return it with the revision to save against.
    Any other intervening change raises :class:`~engine.records.workflow.ConflictError` as before."""
    latest = workflow.get(ctx.store, user, record_id)
    if latest.revision == revision:
        return edited, revision
    if latest.reason != REFINED or latest.revision != revision + 1:
        raise workflow.ConflictError(f"record {record_id} changed meanwhile; reload it and try again")
    d = remap_evidence(edited, list(edited.segments), list(latest.content.segments))
    checks.check(d, rtemplate.load(d.template or ctx.config["records.template"], ctx.data_dir))
    return d, latest.revision


def save_edit(ctx, user: User, record_id: int, edited: Draft, revision: int, reason: str) -> tuple[workflow.RecordDraft, bool]:
    """Save staff's edits of a record (the 記録 screen's 保存): carried over onto the final
    transcript if :func:`refine` saved it meanwhile (:func:`carry_over_refined`). Returns the saved
    record and whether it was carried over (the screen then shows the new version)."""
    draft, new_revision = carry_over_refined(ctx, user, record_id, edited, revision)
    rec = workflow.save(ctx.store, user, record_id, draft, new_revision, reason=reason)
    return rec, new_revision != revision


def warm_up(ctx) -> None:
    """Load what a consultation needs (Whisper, the VAD, the Japanese tokenizer of the checks)
    before the first 録音, so that the first recording neither waits for nor stalls on a load.
    Native loaders keep the GIL while they read; done once at start-up this costs nothing later."""
    from .asr.vad import silero
    from .records.checks import proper_nouns
    from .asr.transcribe import live_model
    cfg = ctx.config
    if cfg.get("asr.engine", "faster-whisper") == "faster-whisper":
        live_model(cfg)
        live_model(cfg, for_partials=True)   # loaded at 録音 it held the GIL 240 ms on a loaded PC
    silero()
    proper_nouns("北九州市小倉北区の窓口")


# ----------------------------------------------------------------------------- after a crash

def interrupted(store) -> list[dict]:
    """Counter consultations a crash (``kill -9``, power cut) cut off before they were finished: a
    consented session with transcript lines whose process is gone and that is not finalized: no
    record yet (killed while recording or drafting) or a record still waiting for the final pass
    (killed during :func:`refine`). A finalized session without a record (``madoguchi record``)
    is finished as it is. :func:`resume` finishes each of them."""
    from .asr.session import HEARTBEAT_STALE, _pid_alive
    now = time.time()
    out = []
    for r in sessions.in_states(store, ("recording", "interrupted", "stopped"), attributed_with_segments=True):
        if r["pid"] and _pid_alive(r["pid"]) and (r["state"] != "recording" or (r["heartbeat_at"] or 0) > now - HEARTBEAT_STALE):
            continue   # its process is still recording or finishing it
        out.append(r)
    return out


def resume(ctx, user: User, session_id: int, *, final_pass: bool = True, use_llm: bool | None = None,
           template: str | None = None) -> workflow.RecordDraft:
    """Finish a consultation a crash cut off, from what was committed: repair the recording
    (:func:`~engine.asr.session.recover`), draft from the stored segments and save the 下書き if
    no record was saved yet, then (``final_pass``) :func:`refine` it. Idempotent: a session whose
    record was saved before the crash keeps that record, never gets a second one."""
    require(user, "record")
    from .asr import session as asession
    store = ctx.store
    s = sessions.get(store, session_id)
    if s is None:
        raise asession.SessionError(f"no session {session_id}", ja="指定された相談記録が見つかりません。")
    if s["state"] in ("recording", "interrupted"):
        asession.recover(ctx, session_id)
    record_id = workflow.record_id_for_session(store, session_id)
    if record_id is None:
        segs = segments_from_session(store, session_id)
        if not segs:
            raise MadoguchiError(f"session {session_id} has no transcript to draft from",
                                 ja="この相談には文字起こしがないため、記録の下書きを作れません。録音は保存されています。")
        tpl = rtemplate.load(template or ctx.config["records.template"], ctx.data_dir)
        d = draft_segments(segs, tpl, ctx.config, use_llm=ctx.config["llm.enabled"] if use_llm is None else use_llm)
        rec = workflow.create(store, user, d, session_id=session_id, case_number=s["case_number"],
                              title=s["title"] or d.title)
        log.info("consultation %s resumed after a crash → record %s", session_id, rec.id)
    else:
        rec = workflow.get(store, user, record_id)
    if final_pass:
        rec = refine(ctx, user, session_id) or rec
    else:
        sessions.mark_finalized(store, session_id, only_if_stopped=True)
    return rec


def pending_recovery(ctx, user: User) -> list[dict]:
    """Sessions a crash cut off (while recording, drafting or in the final pass) that ``user``
    is asked at start-up whether to recover: unfinished recordings and :func:`interrupted`
    consultations, each once."""
    require(user, "recover")
    from .asr import session as asession
    pending = {s["id"]: s for s in asession.unfinished_sessions(ctx.store) + interrupted(ctx.store)}
    return list(pending.values())


def recover(ctx, user: User, session_ids: list[int], progress: Callable | None = None) -> list[int]:
    """Recover the sessions of :func:`pending_recovery`: one with transcript lines is drafted
    (once) and refined (:func:`resume`); one where nothing was said yet keeps its audio
    (:func:`~engine.asr.session.recover`). Returns the ids of the records made or refined."""
    require(user, "recover")
    from .asr import session as asession
    made = []
    for i, sid in enumerate(session_ids):
        if progress is not None:
            progress(i, len(session_ids), "")
        if sessions.has_segments(ctx.store, sid):
            made.append(resume(ctx, user, sid).id)
        else:
            asession.recover(ctx, sid)
    return made


def refine_job(ctx, progress, cancel, session_id: int, user: dict):
    """Child-process entry point of :func:`refine` (:func:`engine.jobs.run_in_child`): five Whisper
    decodes hold the GIL for long stretches, which would stall a counter's UI thread. ``user``: the
    signed-in writer's fields (checked by the caller; an offline sign-in has no row in the store
    this child may open)."""
    return refine(ctx, User(**user), session_id, progress=progress)
