"""Drafting a record from a transcript: from record items (engine.records.items, the default), with the local LLM,
incrementally, or extractively.

LLM: the transcript is cut into *stretches* of consecutive segments that fit the context with room (long sessions are
processed in pieces). For each stretch and each template section whose keywords occur in it, the model gets the
stretch's numbered lines (the lines relevant to the section are named) and must answer JSON constrained by a schema
(llama.cpp grammar from ``response_format``): at most a few short statements, each with the ids of the segments it
rests on — ids restricted by the schema to the lines it was shown. The stretch comes first in the prompt so that
llama.cpp reuses its KV cache from one section to the next.

Without a model (missing, failing, disabled or out of time) the draft is *extractive*: the relevant transcript
lines under each heading, labelled as such. Either way :func:`checks.check` runs afterwards (faithfulness + compliance
flags).
"""
from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from ..errors import MadoguchiError
from ..models import ModelError
from . import checklist, checks
from . import items as ritems
from .model import Draft, Flag, Section, Segment, Statement
from . import template as rtemplate
from .template import SectionSpec, Template

log = logging.getLogger(__name__)

SPEAKER_JA = {"staff": "職員", "citizen": "相談者", "unknown": "不明"}
SYSTEM = ("あなたは福祉事務所の面接相談記録を作る補助者です。発言から、指定された記録項目に当てはまる事実だけを"
          "短い文で書きます。発言にない数字・金額・日付・名前は書きません。推測はしません。"
          "当てはまる発言がなければ statements は空の配列にします。")
# One worked example as a chat turn (a different topic from any real section, so it is not copied).
EXAMPLE_USER = ("発言（[番号] 話者: 内容）:\n[1] 職員: 車はお持ちですか。\n[2] 相談者: 軽自動車が1台あります。\n\n"
                "記録項目「例」: 車の保有を書く。")
EXAMPLE_ANSWER = '{"statements":[{"text":"軽自動車を1台保有している。","evidence":[2]}]}'
MAX_ITEMS = 3
MAX_CHARS = 50
EXTRACTIVE_PER_SECTION = 6


class DraftError(MadoguchiError):
    ja_default = "記録の下書きを作れませんでした。文字起こしの内容を確認してください。"


# ----------------------------------------------------------------------------- transcripts

def _segment(d: dict, default_seq: int, where: str) -> Segment:
    try:
        text = str(d["text"])
        start, end = float(d.get("start", 0.0)), float(d.get("end", 0.0))
    except (KeyError, TypeError, ValueError) as e:
        raise DraftError(f"{where}: segment {default_seq} needs 'text', 'start' and 'end' ({e})",
                         ja="文字起こしの形式が正しくありません。") from None
    sp = d.get("speaker", "unknown") or "unknown"
    if sp not in SPEAKER_JA:
        sp = "unknown"
    return Segment(int(d.get("seq", default_seq)), start, end, sp, text)


def segments_from_json(items, where: str = "transcript") -> list[Segment]:
    """The JSON array ``madoguchi transcribe --json`` prints: [{start, end, speaker, text, final}].
    Evidence ids are ``seq`` when present, else the 1-based position; non-final items are skipped."""
    if not isinstance(items, list):
        raise DraftError(f"{where}: expected a JSON array of segments", ja="文字起こしの形式が正しくありません。")
    out = []
    for i, d in enumerate(items, 1):
        if not isinstance(d, dict):
            raise DraftError(f"{where}: item {i} is not an object", ja="文字起こしの形式が正しくありません。")
        if d.get("final", True) is False:
            continue
        out.append(_segment(d, i, where))
    return out


def segments_from_file(path: Path) -> list[Segment]:
    try:
        items = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DraftError(f"transcript {path} does not exist", ja="文字起こしのファイルが見つかりません。") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DraftError(f"transcript {path} is not valid JSON: {e}", ja="文字起こしのファイルが壊れています。") from None
    return segments_from_json(items, str(path))


def segments_from_session(store, session_id: int) -> list[Segment]:
    """Segments of a stored session (``seq`` numbers are the evidence ids)."""
    from ..asr import sessions
    if sessions.get(store, session_id) is None:
        raise DraftError(f"no session {session_id}", ja="その相談の録音が見つかりません。")
    rows = sessions.segments(store, session_id)
    return [Segment(r["seq"], r["start"], r["end"], r["speaker"], r["text"]) for r in rows]


def line(g: Segment) -> str:
    return f"[{g.seq}] {SPEAKER_JA.get(g.speaker, '不明')}: {g.text.strip()}"


# ----------------------------------------------------------------------------- relevance

def relevant(segments: list[Segment], spec: SectionSpec) -> list[Segment]:
    """Segments whose text holds one of the section's keywords, with the question before a matching
    answer and the answer after a matching question (Q/A pairs stay together)."""
    keys = [unicodedata.normalize("NFKC", k) for k in spec.keywords]
    hit = set()
    for i, g in enumerate(segments):
        t = unicodedata.normalize("NFKC", g.text)
        if any(k in t for k in keys):
            hit.add(i)
            if g.speaker == "citizen" and i > 0 and segments[i - 1].speaker != "citizen":
                hit.add(i - 1)
            if g.speaker != "citizen" and i + 1 < len(segments) and segments[i + 1].speaker == "citizen":
                hit.add(i + 1)
    return [segments[i] for i in sorted(hit)]


def _score(g: Segment, spec: SectionSpec) -> int:
    t = unicodedata.normalize("NFKC", g.text)
    return sum(unicodedata.normalize("NFKC", k) in t for k in spec.keywords)


# ----------------------------------------------------------------------------- extractive

def empty_draft(template: Template, segments: list[Segment], method: str) -> Draft:
    return Draft(template.name, template.title,
                 [Section(s.key, s.title, s.required) for s in template.sections],
                 method=method, segments=list(segments))


def extractive_section(segments: list[Segment], spec: SectionSpec,
                       template: Template | None = None) -> list[Statement]:
    """The lines whose keywords point to this section most (ties: to each), best first, in order."""
    chosen = []
    for g in segments:
        score = _score(g, spec)
        if score == 0:
            continue
        if template is not None and score < max(_score(g, o) for o in template.sections if o.kind != "judgement"):
            continue
        chosen.append((score, g))
    best = sorted(sorted(chosen, key=lambda x: -x[0])[:EXTRACTIVE_PER_SECTION], key=lambda x: x[1].seq)
    kind = "fact" if spec.kind == "judgement" else spec.kind
    return [Statement(f"{SPEAKER_JA.get(g.speaker, '不明')}「{g.text.strip()}」", [g.seq], kind=kind,
                      source="extractive", flags=[Flag("extractive")]) for _, g in best]


def extractive(segments: list[Segment], template: Template) -> Draft:
    """The no-LLM draft: the relevant transcript lines under each heading, labelled 自動抜粋."""
    d = empty_draft(template, segments, "extractive")
    for spec, sec in zip(template.sections, d.sections):
        if spec.kind == "judgement":
            continue  # judgement is the staff's to write, never the transcript's
        sec.statements = extractive_section(segments, spec, template)
    return d


# ----------------------------------------------------------------------------- LLM

def statement_schema(ids: list[int], max_items: int = MAX_ITEMS, max_chars: int = MAX_CHARS) -> dict:
    """JSON schema of one answer: at most ``max_items`` short statements, each citing 1–2 of ``ids``."""
    return {
        "type": "object",
        "properties": {
            "statements": {
                "type": "array", "maxItems": max_items,
                "items": {
                    "type": "object",
                    "properties": {
                        "text": {"type": "string", "minLength": 2, "maxLength": max_chars},
                        "evidence": {"type": "array", "minItems": 1, "maxItems": 2,
                                     "items": {"type": "integer", "enum": sorted(set(ids))}},
                    },
                    "required": ["text", "evidence"],
                },
            },
        },
        "required": ["statements"],
    }


def _norm_key(text: str) -> str:
    return checks.normalize(checks.strip_marks(text)).rstrip("。.")


def set_priority_low() -> None:
    """Lower the calling thread's OS priority (Linux: per-thread nice; Windows: thread priority)."""
    try:
        if sys.platform == "win32":
            import ctypes
            k = ctypes.windll.kernel32
            k.SetThreadPriority(k.GetCurrentThread(), -2)  # THREAD_PRIORITY_LOWEST
        else:
            os.nice(10)
    except (OSError, AttributeError):
        log.warning("could not lower the drafting thread's priority")


class LLMDrafter:
    """Drafts stretches of transcript section by section with a llama.cpp model."""

    def __init__(self, template: Template, config=None, *, model: str | None = None, llm=None,
                 n_ctx: int | None = None, threads: int | None = None, max_items: int = MAX_ITEMS,
                 stretch_tokens: int | None = None):
        self.template = template
        self.model_name = model or (config["llm.model"] if config is not None else "llm-default")
        self.threads = threads or (config["llm.threads"] if config is not None else 2)
        self.n_ctx = n_ctx or (config["llm.n_ctx"] if config is not None else 4096)
        self.max_items = max_items
        if llm is not None:
            self.n_ctx = llm.n_ctx()
        # room: system (~120) + question (~150) + answer (max_items * ~90) + chat markup
        self.stretch_tokens = stretch_tokens or max(256, min(1200, self.n_ctx - 600 - max_items * 100))
        if llm is None:
            from ..models import load_llm
            llm = load_llm(self.model_name, config, n_ctx=self.n_ctx, threads=self.threads)
        self.llm = llm
        self.interrupt: Callable[[], bool] | None = None   # polled per generated token
        self.lock = threading.Lock()
        self.stats = {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0, "prompt_ms": 0.0, "gen_ms": 0.0, "wall_s": 0.0,
                      "failed_calls": 0}

    def set_threads(self, n: int) -> None:
        import llama_cpp
        llama_cpp.llama_set_n_threads(self.llm._ctx.ctx, n, n)

    def ntokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def stretches(self, segments: list[Segment]) -> list[list[Segment]]:
        out, cur, size = [], [], 0
        for g in segments:
            n = self.ntokens(line(g)) + 1
            if cur and size + n > self.stretch_tokens:
                out.append(cur)
                cur, size = [], 0
            cur.append(g)
            size += n
        if cur:
            out.append(cur)
        return out

    def _call(self, stretch: list[Segment], spec: SectionSpec, hints: list[int]) -> list[Statement]:
        import llama_cpp
        ids = [g.seq for g in stretch]
        lines = "\n".join(line(g) for g in stretch)
        question = (f"記録項目「{spec.title}」: {spec.instruction}"
                    f"（関係しそうな発言: {', '.join(map(str, hints))}。{self.max_items}件以内）")
        messages = [{"role": "system", "content": SYSTEM},
                    {"role": "user", "content": EXAMPLE_USER},
                    {"role": "assistant", "content": EXAMPLE_ANSWER},
                    {"role": "user", "content": f"発言（[番号] 話者: 内容）:\n{lines}\n\n{question}"}]
        schema = statement_schema(ids, self.max_items)
        ctx = self.llm._ctx.ctx
        llama_cpp.llama_perf_context_reset(ctx)
        t0 = time.perf_counter()
        stream = self.llm.create_chat_completion(
            messages=messages, response_format={"type": "json_object", "schema": schema},
            temperature=0.0, max_tokens=self.max_items * 60 + 30, stream=True)
        parts = []
        for chunk in stream:       # streamed so that 停止 (or a deadline) can cut a call short
            if self.interrupt is not None and self.interrupt():
                stream.close()
                self.stats["interrupted_calls"] = self.stats.get("interrupted_calls", 0) + 1
                raise Interrupted(f"drafting of section {spec.key} interrupted")
            parts.append(chunk["choices"][0]["delta"].get("content") or "")
        out = {"choices": [{"message": {"content": "".join(parts)}}]}
        perf = llama_cpp.llama_perf_context(ctx)
        self.stats["wall_s"] += time.perf_counter() - t0
        self.stats["calls"] += 1
        self.stats["prompt_tokens"] += perf.n_p_eval
        self.stats["completion_tokens"] += perf.n_eval
        self.stats["prompt_ms"] += perf.t_p_eval_ms
        self.stats["gen_ms"] += perf.t_eval_ms
        try:
            data = json.loads(out["choices"][0]["message"]["content"])
            items = data["statements"]
        except (json.JSONDecodeError, KeyError, TypeError):
            self.stats["failed_calls"] += 1   # cut off at max_tokens: nothing usable from this call
            return []
        res = []
        for it in items:
            text = str(it.get("text", "")).strip()
            ev = [int(e) for e in it.get("evidence", []) if isinstance(e, int)]
            if text:
                res.append(Statement(text, sorted(set(ev)), kind=spec.kind, source="llm"))
        return res

    def tasks(self, stretch: list[Segment], context: list[Segment] | None = None) -> list["SectionTask"]:
        """One model call per section the stretch has relevant lines for."""
        shown = list(context or []) + list(stretch)
        out = []
        for spec in self.template.sections:
            rel = [g.seq for g in relevant(stretch, spec)]
            if rel:
                out.append(SectionTask(spec, stretch, shown, rel))
        return out

    def run_task(self, t: "SectionTask") -> list[Statement]:
        with self.lock:
            return self._call(t.shown, t.spec, t.hints)

    def draft_stretch(self, stretch: list[Segment], context: list[Segment] | None = None) -> dict[str, list[Statement]]:
        """Statements per section key for one stretch (``context``: earlier lines shown too)."""
        return {t.spec.key: self.run_task(t) for t in self.tasks(stretch, context)}

    def merge(self, d: Draft, found: dict[str, list[Statement]]) -> None:
        for key, sts in found.items():
            sec = d.section(key)
            seen = {_norm_key(s.text) for s in sec.statements}
            for st in sts:
                k = _norm_key(st.text)
                if k and k not in seen:
                    sec.statements.append(st)
                    seen.add(k)

    def draft(self, segments: list[Segment], deadline: float | None = None,
              progress: Callable[[int, int], None] | None = None) -> Draft:
        d = empty_draft(self.template, segments, "llm")
        d.model = self.model_name
        parts = self.stretches(segments)
        done_upto = 0
        for i, stretch in enumerate(parts):
            if deadline is not None and time.monotonic() > deadline:
                break
            self.merge(d, self.draft_stretch(stretch))
            done_upto = i + 1
            if progress:
                progress(i + 1, len(parts))
        if done_upto < len(parts):   # out of time: the rest goes in extractively, labelled
            rest = [g for p in parts[done_upto:] for g in p]
            for spec in self.template.sections:
                if spec.kind != "judgement":
                    d.section(spec.key).statements += extractive_section(rest, spec, self.template)
            d.method = "mixed"
        d.stats = {**self.stats, "stretches": len(parts), "stretches_llm": done_upto}
        return d


class Interrupted(Exception):
    """A model call was cut short (停止 came, or the finishing deadline passed)."""


@dataclass
class SectionTask:
    """One section of one stretch of transcript: the unit of incremental drafting."""
    spec: SectionSpec
    stretch: list[Segment]
    shown: list[Segment]
    hints: list[int]


def draft(segments: list[Segment], template: Template, config=None, *, use_llm: bool = True,
          model: str | None = None, llm=None, time_budget: float | None = None,
          progress: Callable[[int, int], None] | None = None, drafter: str | None = None) -> Draft:
    """Draft a record from transcript segments, then run the checks. Without ``use_llm``: extractive.
    Else the ``drafter`` (:func:`~engine.records.items.drafter_name`): ``items``, or ``llm`` (falls
    back to the extractive draft, flagged ``llm_failed``, when the model is missing or fails;
    ``time_budget`` seconds cap the model time, the rest becomes extractive)."""
    if not segments:
        raise DraftError("the transcript has no segments", ja="文字起こしが空です。録音の内容を確認してください。")
    d = None
    if use_llm and ritems.drafter_name(config, drafter or ("llm" if model or llm is not None else None)) == "items":
        d, use_llm = ritems.draft_items(segments, template), False
    if use_llm:
        try:
            drafter = LLMDrafter(template, config, model=model, llm=llm)
            deadline = time.monotonic() + time_budget if time_budget else None
            d = drafter.draft(segments, deadline=deadline, progress=progress)
        except (ModelError, RuntimeError, ValueError) as e:
            log.warning("LLM drafting unavailable, extractive draft instead: %s", type(e).__name__)
            d = extractive(segments, template)
            d.stats["llm_error"] = str(e)
            fallback = Flag("llm_failed", detail=str(e))
    if d is None:
        d = extractive(segments, template)
    checks.check(d, template)
    if use_llm and d.method == "extractive":
        d.flags.insert(0, fallback)
    return d


# ----------------------------------------------------------------------------- incremental
def _as_segment(x) -> Segment:
    if isinstance(x, Segment):
        return x
    if isinstance(x, dict):
        return _segment(x, int(x.get("seq", 0)), "segment")
    return Segment(int(x.seq), float(x.start), float(x.end), str(getattr(x, "speaker", "unknown")), str(x.text))


class IncrementalDrafter:
    """Drafts while the session runs. Call :meth:`feed` with each newly final stretch of segments (non-blocking); a
    background thread at low OS priority drafts every ``batch_segments`` new segments, one section call at a time.
    :meth:`finish` stops it at once (the call in flight is cut short and redone), drafts what is left with all
    threads within ``finish_budget`` seconds — lines the model does not reach by then go into the draft as labelled
    extracts (method ``mixed``) — and returns the checked :class:`Draft`: moments after 停止 instead of minutes.
    The ``items`` drafter needs no model and no thread: :meth:`finish` drafts everything in milliseconds.

    Use ``IncrementalDrafter.for_session(ctx, session_id)`` and :meth:`poll_store` to follow a stored session.
    """

    def __init__(self, template: Template, config=None, *, model: str | None = None, llm=None,
                 use_llm: bool = True, batch_segments: int = 2, context_segments: int = 2,
                 low_priority: bool = True, finish_budget: float | None = None, drafter: str | None = None):
        self.template = template
        self.items = use_llm and ritems.drafter_name(config, drafter or ("llm" if model or llm is not None else None)) == "items"
        use_llm = use_llm and not self.items
        self.config = config
        self.batch_segments = batch_segments
        self.context_segments = context_segments
        self.low_priority = low_priority
        self.finish_budget = finish_budget if finish_budget is not None else (
            config.get("records.finish_budget", 15.0) if config is not None else 15.0)
        self.segments: list[Segment] = []
        self._seen: set[int] = set()
        self._pending: list[Segment] = []
        self._tasks: list[SectionTask] = []
        self._cond = threading.Condition()
        self._stop = False
        self._error: Exception | None = None
        self.store = None
        self.session_id = None
        self.drafter: LLMDrafter | None = None
        self.d: Draft | None = None
        if use_llm:
            try:
                self.drafter = LLMDrafter(template, config, model=model, llm=llm)
            except ModelError as e:
                log.warning("LLM drafting unavailable, extractive draft instead: %s", e)
                self._error = e
        if self.drafter is not None:
            self.drafter.interrupt = lambda: self._stop
            self.d = empty_draft(template, [], "llm")
            self.d.model = self.drafter.model_name
            self._thread = threading.Thread(target=self._run, name="record-drafter", daemon=True)
            self._thread.start()

    @classmethod
    def for_session(cls, ctx, session_id: int, template: Template | None = None, **kw) -> "IncrementalDrafter":
        from .template import load
        tpl = template or load(ctx.config["records.template"], ctx.data_dir)
        inc = cls(tpl, ctx.config, **kw)
        inc.store, inc.session_id = ctx.store, session_id
        return inc

    def poll_store(self) -> int:
        """Feed segments of the stored session not seen yet; returns how many were new."""
        from ..asr import sessions
        rows = sessions.segments(self.store, self.session_id, after_seq=max(self._seen, default=0))
        self.feed(rows)
        return len(rows)

    def feed(self, segments: Iterable) -> None:
        new = []
        for x in segments:
            g = _as_segment(x)
            if g.seq in self._seen:
                continue
            self._seen.add(g.seq)
            new.append(g)
        with self._cond:
            self.segments.extend(new)
            self._pending.extend(new)
            self._cond.notify()

    @property
    def pending(self) -> int:
        """Segments the worker has not taken up yet."""
        with self._cond:
            return len(self._pending)

    @property
    def undrafted(self) -> int:
        """Segments not drafted yet: not taken up, or with section calls still to run."""
        with self._cond:
            return len(self._pending) + len({g.seq for t in self._tasks for g in t.stretch})

    def _batch_tasks(self, all_: bool = False) -> None:
        """Turn pending segments into section tasks (caller holds the lock)."""
        while self._pending and (all_ or len(self._pending) >= self.batch_segments):
            batch = self._pending[:max(self.batch_segments, len(self._pending) if all_ else 0)]
            self._pending = self._pending[len(batch):]
            pos = self.segments.index(batch[0])
            ctxt = self.segments[max(0, pos - self.context_segments):pos]
            for stretch in (self.drafter.stretches(batch) if all_ else [batch]):
                self._tasks.extend(self.drafter.tasks(stretch, ctxt))
                ctxt = stretch[-self.context_segments:]

    def _run(self) -> None:
        if self.low_priority:
            # nice +10 (Windows: lowest thread priority) and passive OpenMP waiting: live
            # transcription always wins the CPU, and the drafter takes what it leaves — with both
            # threads, which on an otherwise idle counter PC nearly doubles what it keeps up with
            set_priority_low()
        while True:
            with self._cond:
                while not self._stop and not self._tasks and len(self._pending) < self.batch_segments:
                    self._cond.wait()
                if self._stop:
                    return
                self._batch_tasks()
                if not self._tasks:
                    continue
                task = self._tasks[0]
            try:
                found = self.drafter.run_task(task)
            except Interrupted:
                return                       # finish() runs the task again at full speed
            except Exception as e:  # keep the session going; finish() reports it
                log.warning("incremental drafting failed: %s", type(e).__name__)
                self._error = e
                return
            with self._cond:
                self.drafter.merge(self.d, {task.spec.key: found})
                self._tasks.remove(task)

    def finish(self, final_segments: Iterable | None = None) -> Draft:
        """Stop the background work, draft what is left at full speed within ``finish_budget``
        seconds (the rest as labelled extracts), run the checks."""
        t0 = time.monotonic()
        if final_segments is not None:
            self.feed(final_segments)
        elif self.store is not None:
            self.poll_store()
        if not self.segments:
            raise DraftError("the transcript has no segments", ja="文字起こしが空です。録音の内容を確認してください。")
        if self.drafter is None:
            d = (ritems.draft_items(sorted(self.segments, key=lambda g: g.seq), self.template, incremental=True)
                 if self.items else extractive(self.segments, self.template))
            checks.check(d, self.template)
            if self._error is not None:
                d.flags.insert(0, Flag("llm_failed", detail=str(self._error)))
            return d
        with self._cond:
            self._stop = True                 # the call in flight stops at its next token
            self._cond.notify()
        self._thread.join()
        self.drafter.set_threads(self.drafter.threads)
        deadline = t0 + self.finish_budget
        self.drafter.interrupt = lambda: time.monotonic() > deadline
        with self._cond:
            self._batch_tasks(all_=True)
            tasks = list(self._tasks)
        d = self.d
        left: list[SectionTask] = []
        for i, task in enumerate(tasks):
            if self._error is not None or time.monotonic() > deadline:
                left = tasks[i:]
                break
            try:
                self.drafter.merge(d, {task.spec.key: self.drafter.run_task(task)})
            except Interrupted:
                left = tasks[i:]
                break
            except (ModelError, RuntimeError, ValueError) as e:   # the model broke: the rest goes in extractively
                self._error = e
                left = tasks[i:]
                break
        self.drafter.interrupt = None
        if left:
            # lines the model did not reach: quoted under the sections they were meant for, labelled
            for task in left:
                d.section(task.spec.key).statements += extractive_section(task.stretch, task.spec, self.template)
            d.method = "mixed"
        d.segments = sorted(self.segments, key=lambda g: g.seq)
        d.stats = {**self.drafter.stats, "incremental": True, "finish_s": round(time.monotonic() - t0, 2),
                   "finish_tasks": len(tasks), "finish_tasks_extractive": len(left)}
        checks.check(d, self.template)
        if self._error is not None:
            d.flags.insert(0, Flag("llm_failed", detail=type(self._error).__name__))
        return d


def incremental_job(ctx, progress, cancel, session_id: int, template: str | None = None,
                    use_llm: bool = True, poll: float = 1.0):
    """Child-process entry point (:func:`engine.jobs.run_in_child`): follow a recording session and draft its
    record as segments become final. ``cancel`` here means "the session has stopped: take the last segments and
    finish". Reports ``("coverage", Coverage)`` (:mod:`.checklist`: the interview checklist) when new segments
    arrive, ``("snapshot", n)`` once it has read the final list of live segments (the caller may then replace
    them with the final pass), and returns the checked :class:`~engine.records.model.Draft`."""
    tpl = rtemplate.load(template or ctx.config["records.template"], ctx.data_dir)
    inc = IncrementalDrafter.for_session(ctx, session_id, template=tpl, use_llm=use_llm)
    report = checklist.reporter(tpl, progress)
    while not cancel.wait(poll):
        if inc.poll_store():
            progress(("segments", len(inc.segments)))
            report(inc.segments)
    inc.poll_store()
    live = list(inc.segments)
    progress(("snapshot", len(live)))
    return inc.finish(live)
