"""Crash safety: kill -9 during manual indexing, photo import and database migration. The
database stays intact, nothing committed is lost, and running the job again completes it.
(CI runs a few kills each; bench/crash.py runs 20 each and reports the figures.)"""
import pytest

from engine.manuals import samples
from engine.mirrors import synth
from tests import crashkit

RUNS = 3


def test_kill_during_indexing(tmp_path):
    mdir = tmp_path / "manuals"
    made = samples.build(mdir)
    for extra in made[2:]:  # two documents are enough to be killed in the middle of
        extra.unlink()
    data = tmp_path / "data"
    res = crashkit.crash_job(data, ["manuals", "add", str(mdir)], "SELECT COUNT(*) AS n FROM manual_chunks",
                             RUNS, max_delay=12)
    assert res.integrity_failures == 0 and res.lost == 0 and res.incomplete_after_resume == 0, res
    # the resumed index equals a clean one
    clean = tmp_path / "clean"
    import subprocess
    subprocess.run(crashkit.CLI + ["--data-dir", str(clean), "manuals", "add", str(mdir)], cwd=crashkit.ROOT,
                   check=True, capture_output=True, timeout=1800)
    q = "SELECT COUNT(*) AS n FROM manual_chunks"
    assert crashkit.count(data / "madoguchi.db", q) == crashkit.count(clean / "madoguchi.db", q)


def test_kill_during_photo_import(tmp_path):
    pdir = tmp_path / "photos"
    pdir.mkdir()
    for seed in range(930001, 930009):
        (pdir / f"KM-{seed % 10000}.jpg").write_bytes(synth.encode_jpeg(synth.generate(seed, size=(1024, 768)).image))
    data = tmp_path / "data"
    res = crashkit.crash_job(data, ["mirror", "import", str(pdir), "--quiet"],
                             "SELECT COUNT(*) AS n FROM mirror_inspections", RUNS, max_delay=8)
    assert res.integrity_failures == 0 and res.lost == 0 and res.incomplete_after_resume == 0, res
    assert crashkit.count(data / "madoguchi.db", "SELECT COUNT(*) AS n FROM mirror_inspections") == 8
    assert crashkit.count(data / "madoguchi.db", "SELECT COUNT(DISTINCT photo_hash) AS n FROM mirror_inspections") == 8


def test_kill_during_migration(tmp_path):
    res = crashkit.crash_migration(tmp_path, 5)
    assert res.integrity_failures == 0 and res.incomplete_after_resume == 0, res
