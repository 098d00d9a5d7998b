"""Run a long engine job in a child process.

Heavy CPU work that spends long stretches inside C extensions holding the GIL (tokenising a
2,000-page manual folder, decoding hundreds of photos) would stall a caller's UI thread even
from a worker thread. :func:`run_in_child` runs ``module:function`` in a spawned process with
its own :class:`~engine.context.Context`, opened with the caller's configuration as it stands
(data folder, office server, models folder, …: not re-read from the config files, which an
administrator may have changed since the caller opened its own), forwards its progress
reports, passes cancellation in, and returns its result or re-raises its error. A crash of a
native parser in the child (a hostile PDF, say) becomes a clear error instead of taking the
caller down. SQLite WAL lets both processes use the database at once.

The target is called as ``function(ctx, progress=callable, cancel=threading.Event, **kwargs)``.
"""
from __future__ import annotations

import importlib
import multiprocessing as mp
import os
import queue
import threading
import time
from typing import Any, Callable

from .errors import MadoguchiError


class JobCrashed(MadoguchiError):
    ja_default = "処理が異常終了しました。保存済みのデータは失われていません。もう一度お試しください。"


def _child(target: str, config: dict, kwargs: dict, q, cancel_flag) -> None:
    try:
        if hasattr(os, "nice"):
            os.nice(5)  # background work yields to the counter's UI and live transcription
        from .context import open_context
        ctx = open_context(None, overrides=config)
        cancel = threading.Event()
        parent = mp.parent_process()

        def watch():
            while True:
                if cancel.is_set():
                    time.sleep(0.2)
                elif cancel_flag.wait(0.2):
                    cancel.set()
                if parent is not None and not parent.is_alive():
                    # the caller was killed (kill -9, power cut of the app): nobody will take the
                    # result, so end at once instead of running on as an orphan holding the model
                    os._exit(3)
        threading.Thread(target=watch, daemon=True).start()
        mod, fn = target.split(":")
        func = getattr(importlib.import_module(mod), fn)
        result = func(ctx, progress=lambda p: q.put(("progress", p)), cancel=cancel, **kwargs)
        ctx.close()
        q.put(("result", result))
    except BaseException as e:  # reported to the parent, which re-raises it
        try:
            q.put(("error", e))
        except Exception:
            q.put(("error", MadoguchiError(f"{type(e).__name__}: {e}")))
    finally:
        cancel_flag.set()


def run_in_child(target: str, where, kwargs: dict | None = None,
                 progress: Callable[[Any], None] | None = None, cancel: threading.Event | None = None,
                 poll: float = 0.1) -> Any:
    """``where``: the caller's :class:`~engine.context.Context` (the child gets its configuration),
    or a data folder (the child loads the configuration the usual way, for that folder)."""
    config = {"data_dir": str(where)} if isinstance(where, (str, os.PathLike)) else dict(where.config.values)
    mpc = mp.get_context("spawn")
    q = mpc.Queue()
    cancel_flag = mpc.Event()
    proc = mpc.Process(target=_child, args=(target, config, kwargs or {}, q, cancel_flag), daemon=True)
    proc.start()
    try:
        while True:
            if cancel is not None and cancel.is_set():
                cancel_flag.set()
            try:
                kind, payload = q.get(timeout=poll)
            except queue.Empty:
                if not proc.is_alive():
                    try:  # a last message may still be in the pipe
                        kind, payload = q.get(timeout=1.0)
                    except queue.Empty:
                        raise JobCrashed(f"job {target} ended without a result (exit code {proc.exitcode})") from None
                else:
                    continue
            if kind == "progress":
                if progress is not None:
                    progress(payload)
            elif kind == "result":
                return payload
            elif kind == "error":
                raise payload
    finally:
        proc.join(timeout=10)
        if proc.is_alive():
            proc.kill()


# ------------------------------------------------------------------ job entry points (child side)

def manuals_index(ctx, progress, cancel, paths: list[str], username: str):
    """``username``: the signed-in user; the account is read again from the user store here."""
    from .manuals.index import update
    from .users import get_user
    return update(ctx, get_user(ctx.store, username), paths, progress=progress, cancel=cancel, prune=True)


def mirrors_import(ctx, progress, cancel, folder: str, username: str):
    """``username``: the signed-in inspector; the role is read again from the user store here."""
    from .mirrors.ledger import import_folder
    from .users import get_user
    summary: dict = {}
    for ev in import_folder(ctx, folder, user=get_user(ctx.store, username), cancel=cancel):
        progress(ev)
        summary = ev.summary
    summary = dict(summary)
    summary["cancelled"] = cancel.is_set()
    return summary


def records_refine(ctx, progress, cancel, session_id: int, user: dict):
    """The final pass of a stopped consultation (:func:`engine.consultation.refine`), off the
    caller's process: five Whisper decodes hold the GIL for long stretches, which would stall a
    counter's UI thread. ``user``: the signed-in writer's fields (checked by the caller; an
    offline sign-in has no row in the store this child may open)."""
    from .consultation import refine
    from .users import User
    return refine(ctx, User(**user), session_id, progress=progress)


def records_incremental(ctx, progress, cancel, session_id: int, template: str | None = None,
                        use_llm: bool = True, poll: float = 1.0):
    """Follow a recording session and draft its record as segments become final. ``cancel`` here
    means "the session has stopped: take the last segments and finish". Reports
    ``("snapshot", n)`` once it has read the final list of live segments (the caller may then
    replace them with the final pass), and returns the checked :class:`~engine.records.model.Draft`."""
    from .records.draft import IncrementalDrafter
    from .records import template as rtemplate
    tpl = rtemplate.load(template or ctx.config["records.template"], ctx.data_dir)
    inc = IncrementalDrafter.for_session(ctx, session_id, template=tpl, use_llm=use_llm)
    while not cancel.wait(poll):
        if inc.poll_store():
            progress(("segments", len(inc.segments)))
    inc.poll_store()
    live = list(inc.segments)
    progress(("snapshot", len(live)))
    return inc.finish(live)
