"""``madoguchi self-test`` (also ``madoguchi --self-test``): IT's post-install check.

Runs in a throw-away data folder (nothing is added to the real database), with no screen and no
network: loads every model of the manifest, transcribes the bundled sample recording, drafts one
record section with the language model, indexes and searches a bundled manual, diagnoses the
bundled mirror photo and starts the desktop's GUI toolkit offscreen, then prints one line per
check with PASS / FAIL / SKIP and the time it took.

A domain whose engine API is not part of this build is reported as ``SKIP … not built`` — never as
a pass. Exit status: 0 when nothing failed, 1 otherwise.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator

from . import models
from .errors import MadoguchiError

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"
SAMPLE_WAV = "samples/consultation_ja.wav"
SAMPLE_TEXT = "samples/consultation_ja.txt"
SAMPLE_TRANSCRIPT = "samples/consultation_ja.json"
DRAFT_SECTION = "complaint"
SAMPLE_MIRROR = "samples/mirror_ja.jpg"
SEARCH_QUERY = "車を持ったまま保護を受けられますか"
SEARCH_EXPECT = "自動車"
PHONE_QUESTION = "暗証番号を忘れました"
PHONE_EXPECT = "pin-reset"
SEARCH_MANUAL = "manuals/qa_book.txt"
MAX_SAMPLE_CER = 0.35


@dataclass
class Result:
    area: str
    name: str
    status: str      # PASS | FAIL | SKIP
    seconds: float
    detail: str

    @property
    def ok(self) -> bool:
        return self.status != FAIL


class NotBuilt(Exception):
    """The engine API a check needs is not part of this build."""


class CheckFailed(MadoguchiError):
    ja_default = "自己診断で問題が見つかりました。システム管理者に連絡してください。"


def resources_dir() -> Path:
    return models.app_root() / "resources"


def _has(module: str) -> bool:
    import importlib.util
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def _timed(area: str, name: str, fn: Callable[[], str]) -> Result:
    t0 = time.perf_counter()
    try:
        detail = fn()
        status = PASS
    except NotBuilt as e:
        status, detail = SKIP, f"not built in this version ({e})"
    except Exception as e:  # any failure of a check is a FAIL with its message, never a crash
        status, detail = FAIL, f"{type(e).__name__}: {e}"
    return Result(area, name, status, round(time.perf_counter() - t0, 2), detail)


# --------------------------------------------------------------------------- checks

def check_models(config, checksums: bool = False) -> Iterator[Result]:
    """Every model of the manifest: present (size, optionally sha256) and actually loads."""
    for name, spec in models.load_manifest().items():
        st = models.verify(name, config, deep=checksums)
        if not st.ok and spec.optional:
            yield Result("model", name, SKIP, 0.0, "optional model not in this package")
            continue

        def one(name=name, st=st) -> str:
            if not st.ok:
                raise CheckFailed(st.detail)
            return ("checksum ok; " if checksums else "size ok; ") + models.load_check(name, config)
        yield _timed("model", name, one)


def pick_llm(config) -> str:
    """The configured drafting model, or the first GGUF model present when that one is optional
    and absent (the light package)."""
    manifest = models.load_manifest()
    want = config["llm.model"]
    spec = manifest.get(want)
    if spec is None or not spec.optional or models.verify(want, config, deep=False).ok:
        return want
    for name, s in manifest.items():
        if models.KINDS[s.kind].drafts and models.verify(name, config, deep=False).ok:
            return name
    return want


def transcribe_sample(ctx) -> str:
    """The bundled recording through the ASR domain's pipeline (file source → VAD → Whisper)."""
    wav = resources_dir() / SAMPLE_WAV
    expected = (resources_dir() / SAMPLE_TEXT).read_text(encoding="utf-8").strip()
    from .asr.metrics import cer
    if _has("engine.asr.transcribe"):
        from .audio import FileSource
        from .asr.transcribe import Final, make_transcriber, stream
        tr = make_transcriber(ctx.config, partials=False)
        text = "".join(ev.text for ev in stream(FileSource(wav), tr) if isinstance(ev, Final))
        via = "engine.asr pipeline"
    else:  # the ASR domain is not built: the model loader + faster-whisper, as the domain would
        model = models.load_whisper(ctx.config["asr.model"], ctx.config, threads=ctx.config["asr.threads"])
        segments, _info = model.transcribe(str(wav), language=ctx.config["asr.language"], beam_size=1,
                                           vad_filter=False, condition_on_previous_text=False)
        text = "".join(s.text for s in segments)
        via = "faster-whisper"
    rate = cer(expected, text)
    if rate > MAX_SAMPLE_CER:
        raise CheckFailed(f"sample transcribed with CER {rate:.2f} (> {MAX_SAMPLE_CER}) via {via}")
    return f"{wav.name}: CER {rate:.2f} via {via}"


def draft_record(ctx) -> str:
    """One real model-drafted section (主訴) of the bundled sample consultation — one constrained LLM
    call, so the check stays short; the full draft is the records domain's own business."""
    if not _has("engine.records.draft"):
        raise NotBuilt("engine.records.draft")
    from .records import draft as draft_mod
    from .records import template as template_mod
    segments = draft_mod.segments_from_file(resources_dir() / SAMPLE_TRANSCRIPT)
    tpl = template_mod.load(ctx.config["records.template"], ctx.data_dir)
    spec = next((s for s in tpl.sections if s.key == DRAFT_SECTION), None) or \
        next(s for s in tpl.sections if draft_mod.relevant(segments, s))
    llm = pick_llm(ctx.config)
    drafter = draft_mod.LLMDrafter(tpl, ctx.config, model=llm, n_ctx=2048)
    task = next((t for t in drafter.tasks(segments) if t.spec.key == spec.key), None)
    found = drafter.run_task(task) if task is not None else []
    if not found:
        raise CheckFailed(f"{llm} wrote no statement for section '{spec.key}' "
                          f"({drafter.stats['failed_calls']} unusable answers)")
    known = {g.seq for g in segments}
    if not all(st.evidence and set(st.evidence) <= known for st in found):
        raise CheckFailed(f"{llm} gave a statement without valid evidence for section '{spec.key}'")
    return (f"section '{spec.key}': {len(found)} statements by {llm}, "
            f"{drafter.stats['completion_tokens']} tokens in {drafter.stats['wall_s']:.1f}s")


def search_manuals(ctx) -> str:
    """Index a bundled sample manual (with embeddings) and find the passage a known question needs."""
    if not (_has("engine.manuals.index") and _has("engine.manuals.search")):
        raise NotBuilt("engine.manuals.index / engine.manuals.search")
    from .manuals import index, search
    manual = resources_dir() / SEARCH_MANUAL   # one sample book keeps the embedding step short
    if not manual.is_file():
        raise CheckFailed(f"the bundled sample manual {manual} is missing")
    rep = index.index_paths(ctx.local, [manual])
    if not (rep.added or rep.updated or rep.unchanged):
        raise CheckFailed(f"no sample manual could be indexed ({len(rep.skipped)} skipped)")
    hits = search.search(ctx.local, SEARCH_QUERY, top=3)
    if not hits or not any(SEARCH_EXPECT in (h.heading + h.text) for h in hits):
        raise CheckFailed(f"no passage about {SEARCH_EXPECT} in the top 3 for a question the samples answer")
    return f"{manual.name}: {rep.chunks} passages, {rep.embedded} embedded; top hit {hits[0].citation or hits[0].doc}"


def phone_inquiry(ctx) -> str:
    """The AI phone's shipped FAQ answers a question it covers and hands a request for a person to staff."""
    if not _has("engine.phone.inquiry"):
        raise NotBuilt("engine.phone.inquiry")
    from .phone.inquiry import Inquiries
    inq = Inquiries(ctx.config, ctx.data_dir)
    r = inq.ask(PHONE_QUESTION)
    if r.decision.handoff or r.decision.item.id != PHONE_EXPECT:
        raise CheckFailed(f"'{PHONE_EXPECT}' was not answered for a question the FAQ covers "
                          f"({r.decision.reason or r.decision.best})")
    h = inq.ask("人と話したいです")
    if not h.decision.handoff:
        raise CheckFailed("a request for a person was answered instead of handed to staff")
    return f"{len(inq.faq.items)} FAQ items; '{PHONE_EXPECT}' answered in {r.seconds * 1000:.0f} ms, a person request handed off"


def diagnose_mirror(ctx) -> str:
    """Diagnose the bundled (synthetic) mirror photo: the mirror must be located where it is drawn."""
    if not _has("engine.mirrors.diagnose"):
        raise NotBuilt("engine.mirrors.diagnose")
    from .mirrors import diagnose, grading
    from .mirrors import model as mirror_model
    photo = resources_dir() / SAMPLE_MIRROR
    truth = json.loads(photo.with_suffix(".json").read_text(encoding="utf-8"))
    cnn = mirror_model.load_model(mirror_model.default_model_path(ctx.data_dir))
    insp = diagnose.diagnose(photo, table=grading.load_table(grading.table_path(ctx.data_dir)), model=cnn)
    if not insp.quality.ok:
        raise CheckFailed("the sample photo was judged unusable")
    cx, cy = truth["mirror_center"]
    if not any(m["box"][0] <= cx <= m["box"][2] and m["box"][1] <= cy <= m["box"][3] for m in insp.mirrors):
        raise CheckFailed(f"the mirror was not located ({len(insp.mirrors)} candidates)")
    grade = insp.grade or "要確認"
    return f"{photo.name}: mirror located, grade {grade}, {'CNN + geometry' if cnn else 'geometry only (no CNN model shipped)'}"


def check_desktop() -> str:
    """The desktop program starts its GUI toolkit without a screen (frozen bundle only)."""
    if not getattr(sys, "frozen", False):
        import importlib.util
        if importlib.util.find_spec("desktop") is None:
            raise NotBuilt("desktop package")
        r = subprocess.run([sys.executable, "-c", "import desktop.app"], capture_output=True, text=True,
                           timeout=120, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    else:
        exe = Path(sys.executable).with_name("madoguchi-desktop" + (".exe" if sys.platform == "win32" else ""))
        if not exe.is_file():
            raise CheckFailed(f"{exe.name} is missing beside {Path(sys.executable).name}")
        r = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=120,
                           env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["no output"]
        raise CheckFailed(f"desktop program does not start (exit {r.returncode}): {tail[0]}")
    return "Qt loads offscreen"


def check_install(ctx) -> Iterator[Result]:
    """The doctor's checks on the database, disk, fonts and audio (in the throw-away folder)."""
    from . import doctor
    for c in doctor.check_store(ctx) + doctor.check_fonts() + doctor.check_audio():
        status = PASS if c.ok else (FAIL if c.required else SKIP)
        yield Result(c.area, c.name, status, 0.0, c.detail)


def _bundle_imports() -> str:
    from . import bundle
    return bundle.import_all()


def _open(opened: list, data_dir: Path, overrides: dict) -> str:
    from .context import open_context
    ctx = open_context(data_dir, overrides=overrides)
    opened.append(ctx)
    return f"database schema version {ctx.store.schema_version()}"


def configured_data_dir_writable(config) -> str:
    d = Path(config["data_dir"])
    d.mkdir(parents=True, exist_ok=True)
    probe = d / ".self-test-probe"
    probe.write_bytes(b"x")
    probe.unlink()
    return str(d)


# --------------------------------------------------------------------------- runner

def run(config=None, checksums: bool = False, progress: Callable[[Result], None] | None = None) -> list[Result]:
    """Run every check; returns the results (``progress`` is called after each one)."""
    from . import config as config_mod

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    config = config or config_mod.load()
    out: list[Result] = []

    def emit(r: Result) -> None:
        out.append(r)
        if progress:
            progress(r)

    emit(_timed("install", "data folder writable", lambda: configured_data_dir_writable(config)))
    tmp = Path(tempfile.mkdtemp(prefix="madoguchi-selftest-"))
    try:
        overrides = {k: config[k] for k in ("models_dir", "manuals_dir") if config[k]}
        opened: list = []
        emit(_timed("install", "open data folder", lambda: _open(opened, tmp / "data", overrides)))
        if not opened:
            return out
        ctx = opened[0]
        try:
            for r in check_models(ctx.config, checksums):
                emit(r)
            for r in check_install(ctx):
                emit(r)
            emit(_timed("install", "native packages", _bundle_imports))
            emit(_timed("asr", "transcription", lambda: transcribe_sample(ctx)))
            emit(_timed("records", "draft", lambda: draft_record(ctx)))
            emit(_timed("manuals", "search", lambda: search_manuals(ctx)))
            emit(_timed("phone", "inquiry", lambda: phone_inquiry(ctx)))
            emit(_timed("mirrors", "diagnosis", lambda: diagnose_mirror(ctx)))
            emit(_timed("desktop", "start-up", check_desktop))
        finally:
            ctx.close()
    finally:
        import logging
        root = logging.getLogger()
        for h in list(root.handlers):  # release the throw-away folder's log file before removing it
            if str(tmp) in str(getattr(h, "baseFilename", "")):
                root.removeHandler(h)
                h.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def format_line(r: Result) -> str:
    return f"{r.status:<4}  {r.area + ' ' + r.name:<34} {r.seconds:7.2f}s  {r.detail}"


def cmd_self_test(args) -> int:
    from . import config as config_mod
    from .cli_support import print_json
    config = config_mod.load({"data_dir": args.data_dir} if args.data_dir else None)
    t0 = time.perf_counter()
    results = run(config, checksums=args.checksums,
                  progress=None if args.json else (lambda r: print(format_line(r), flush=True)))
    failed = [r for r in results if r.status == FAIL]
    total = round(time.perf_counter() - t0, 2)
    if args.json:
        print_json({"passed": not failed, "seconds": total, "results": [asdict(r) for r in results]})
    else:
        skipped = sum(r.status == SKIP for r in results)
        print(f"self-test {'PASSED' if not failed else 'FAILED'}: {len(results) - len(failed) - skipped} passed, "
              f"{len(failed)} failed, {skipped} skipped in {total:.1f}s")
    return 1 if failed else 0


def register(subparsers) -> None:
    p = subparsers.add_parser("self-test", help="post-install check: load every model, run each domain once "
                                                "on bundled samples (also: madoguchi --self-test)")
    p.add_argument("--checksums", action="store_true", help="also verify the sha256 of every model file")
    p.add_argument("--json", action="store_true")
    # `madoguchi --self-test --data-dir X` puts the global option after the subcommand: accept it here too.
    p.add_argument("--data-dir", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_self_test)
