"""Run a long engine job in a child process.

Heavy CPU work that spends long stretches inside C extensions holding the GIL (tokenising a
2,000-page manual folder, decoding hundreds of photos) would stall a caller's UI thread even
from a worker thread. :func:`run_in_child` runs a module-level function in a spawned process with
its own :class:`~engine.context.Context`, opened with the caller's configuration as it stands
(data folder, office server, models folder, …: not re-read from the config files, which an
administrator may have changed since the caller opened its own), forwards its progress
reports, passes cancellation in, and returns its result or re-raises its error. A crash of a
native parser in the child (a hostile PDF, say) becomes a clear error instead of taking the
caller down. SQLite WAL lets both processes use the database at once.

The target is called as ``function(ctx, progress=callable, cancel=threading.Event, **kwargs)``;
each job's entry point lives beside its domain function (``consultation.refine_job``,
``records.draft.incremental_job``, ``manuals.index.index_job``, ``mirrors.ledger.import_job``).
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


def run_in_child(target: Callable[..., Any], where, kwargs: dict | None = None,
                 progress: Callable[[Any], None] | None = None, cancel: threading.Event | None = None,
                 poll: float = 0.1) -> Any:
    """``where``: the caller's :class:`~engine.context.Context` (the child gets its configuration),
    or a data folder (the child loads the configuration the usual way, for that folder).
    ``target``: a module-level function, imported again in the child by its module and name."""
    target = f"{target.__module__}:{target.__qualname__}"
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
