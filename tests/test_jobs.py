"""engine.jobs: a job in a child process reports progress, can be cancelled, and its errors
(with their Japanese message) and crashes come back as exceptions."""
import threading

import pytest

from engine.errors import MadoguchiError
from engine.jobs import JobCrashed, run_in_child
from engine.manuals.index import index_job


def test_manuals_index_in_child_with_progress(data_dir, tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "a.txt").write_text("第1章 総則\n問1-1 家賃の扱いは？\n答 住宅扶助の範囲で認める。\n", encoding="utf-8")
    from engine import users
    from engine.context import open_context
    c = open_context(data_dir)
    users.add_user(c.store, None, "kanri", "管理", "admin", "password-123")
    c.close()
    seen = []
    rep = run_in_child(index_job, data_dir, {"paths": [str(tmp_path / "m")], "username": "kanri"},
                       progress=seen.append)
    assert seen and rep is not None
    from engine.store import open_store
    st = open_store(data_dir)
    assert st.query_one("SELECT COUNT(*) AS n FROM manual_chunks")["n"] >= 1
    st.close()


def test_error_keeps_japanese_message(data_dir):
    with pytest.raises(MadoguchiError) as e:
        run_in_child(_fail, data_dir, {})
    assert str(e.value) == "disk is full" and e.value.ja == "ディスクがいっぱいです。"
    with pytest.raises(TypeError):
        run_in_child(index_job, data_dir, {"paths": [], "username": "x", "bogus": 1})


def test_cancel_and_crash(data_dir):
    cancel = threading.Event()
    cancel.set()
    run_in_child(_slow, data_dir, {}, cancel=cancel)  # returns once it sees the cancel
    with pytest.raises(JobCrashed):
        run_in_child(_crash, data_dir, {})


def test_child_works_with_the_callers_configuration(data_dir, tmp_path):
    """The child opens its context with the caller's configuration, not by re-reading the config
    files: here the caller was opened with settings no file holds (as the self-test and an office
    whose administrator changed the settings file since the app started)."""
    from engine.context import open_context
    other_models = tmp_path / "other-models"
    c = open_context(data_dir, overrides={"office_name": "小倉北区役所 保護課", "models_dir": str(other_models)})
    try:
        seen = run_in_child(_config_of, c, {"keys": ["office_name", "models_dir", "data_dir"]})
    finally:
        c.close()
    assert seen == {"office_name": "小倉北区役所 保護課", "models_dir": str(other_models), "data_dir": str(data_dir)}
    # a bare data folder still works: the child loads the usual configuration for it
    assert run_in_child(_config_of, data_dir, {"keys": ["data_dir"]}) == {"data_dir": str(data_dir)}


def _config_of(ctx, progress, cancel, keys):
    return {k: str(ctx.config[k]) for k in keys}


def _slow(ctx, progress, cancel):
    for i in range(600):
        if cancel.wait(0.1):
            return "cancelled"
        progress(i)
    raise AssertionError("never cancelled")


def _crash(ctx, progress, cancel):
    import os
    os._exit(3)


def _fail(ctx, progress, cancel):
    raise MadoguchiError("disk is full", ja="ディスクがいっぱいです。")
