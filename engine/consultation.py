"""The counter workflow: a recorded consultation that ends in a stored record draft.

    cw = CounterConsultation(ctx, user, title="…", consent=True)
    cw.start(MicSource(...), on_event=fn)     # live transcript events (Partial/Final/Level/…)
    rec = cw.stop(progress=fn)                # final pass → draft → RecordDraft (下書き)

While the session runs, an :class:`~engine.records.draft.IncrementalDrafter` in a low-priority
child process (``engine.jobs.records_incremental``) follows the stored Final segments and drafts
them as they come, so the draft is ready moments after 停止. In its own process the LLM can
neither starve live transcription nor stall the caller's UI thread, and a crash of the native
model code cannot take the counter application down. The final pass renumbers the transcript; the incremental
draft's evidence (live segment numbers) is mapped onto the final segments by time overlap and
every check runs again on the final text — a statement whose number no longer appears in its
re-mapped evidence is flagged 要確認, never silently kept.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from .asr.session import ConsultationSession
from .errors import MadoguchiError
from .records import checks, workflow
from .records import template as rtemplate
from .jobs import run_in_child
from .records.draft import draft as draft_segments
from .records.draft import segments_from_session
from .records.model import Draft, Segment
from .users import User, require_role

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
        require_role(user, *workflow.WRITERS)
        if not consent:
            raise ConsentRequired("the citizen's consent must be recorded before recording starts")
        self.ctx, self.user = ctx, user
        self.template = rtemplate.load(template or ctx.config["records.template"], ctx.data_dir)
        self.use_llm = ctx.config["llm.enabled"] if use_llm is None else use_llm
        self.session = ConsultationSession(ctx, title=title, case_number=case_number, staff_user=user.username,
                                           consent=consent, transcriber=transcriber)
        self.title, self.case_number = title, case_number

    @property
    def session_id(self) -> int | None:
        return self.session.id

    def start(self, source, on_event: Callable | None = None, seconds: float | None = None) -> int:
        sid = self.session.start(source, seconds=seconds, on_event=on_event)
        self._finish = threading.Event()
        self._snapshot = threading.Event()
        self._draft_out: dict = {}

        def run():
            try:
                self._draft_out["draft"] = run_in_child(
                    "engine.jobs:records_incremental", self.ctx.data_dir,
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

    def wait(self, timeout: float | None = None) -> bool:
        return self.session.wait(timeout)

    def stop(self, final_pass: bool = True, progress: Callable | None = None) -> workflow.RecordDraft:
        """Stop recording, run the final pass, finish the draft and save it as a 下書き record."""
        t0 = time.perf_counter()
        if progress:
            progress(0, 3, "高精度の文字起こしと記録の下書きを仕上げています…")
        self.session.stop(final_pass=False)
        live = segments_from_session(self.ctx.store, self.session.id)
        self._finish.set()                     # the drafter takes the last live segments …
        self._snapshot.wait(120)
        if final_pass and live:                # … while the final pass re-transcribes beside it
            from .asr.finalpass import run_final_pass
            run_final_pass(self.ctx, self.session.id)
        t_final = time.perf_counter() - t0
        if progress:
            progress(1, 3, "記録の下書きを仕上げています…")
        final = segments_from_session(self.ctx.store, self.session.id)
        if not final:
            raise MadoguchiError("nothing was transcribed in this session",
                                 ja="発言が文字になりませんでした。マイクと音量を確認してください。録音は保存されています。")
        self._drafting.join()
        d = self._draft_out.get("draft")
        if d is None:  # the drafting process failed: draft here, visibly flagged
            err = self._draft_out.get("error")
            log.warning("incremental drafting failed (%s); drafting after stop", type(err).__name__)
            d = draft_segments(live or final, self.template, self.ctx.config, use_llm=self.use_llm)
        if final_pass:
            remap_evidence(d, live, final)
            checks.check(d, self.template)
        d.stats = {**d.stats, "final_pass_s": round(t_final, 1), "stop_to_draft_s": round(time.perf_counter() - t0, 1)}
        if progress:
            progress(2, 3, "保存しています…")
        rec = workflow.create(self.ctx.store, self.user, d, session_id=self.session.id,
                              case_number=self.case_number, title=self.title or d.title)
        log.info("consultation %s → record %s in %.1f s after stop", self.session.id, rec.id, time.perf_counter() - t0)
        return rec


def warm_up(ctx) -> None:
    """Load what a consultation needs (Whisper, the VAD, the Japanese tokenizer of the checks)
    before the first 録音, so that the first recording neither waits for nor stalls on a load.
    Native loaders keep the GIL while they read; done once at start-up this costs nothing later."""
    from .asr.vad import silero
    from .records.checks import proper_nouns
    from .models import load_whisper
    cfg = ctx.config
    if cfg.get("asr.engine", "faster-whisper") == "faster-whisper":
        load_whisper(cfg.get("asr.model", "whisper-base"), cfg, threads=cfg.get("asr.threads", 2))
    silero()
    proper_nouns("北九州市小倉北区の窓口")
