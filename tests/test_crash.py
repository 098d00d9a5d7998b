"""Crash safety: kill -9 during manual indexing, photo import, database migration and record drafting. The
database stays intact, nothing committed is lost, and running the job again completes it.
(CI runs a few kills each; bench/crash.py runs 20 each and reports the figures.)"""
import pytest

from engine.manuals import samples
from engine.mirrors import synth
from devkit import crashkit

pytestmark = pytest.mark.slow   # whole pipelines / real-time audio / subprocess runs: `make test`, not `make check`

RUNS = 3


def test_kill_during_indexing(tmp_path):
    mdir = tmp_path / "manuals"
    made = samples.build(mdir)
    for extra in made[2:]:  # two documents are enough to be killed in the middle of
        extra.unlink()
    data = tmp_path / "data"
    env = crashkit.user_env(data)
    res = crashkit.crash_job(data, ["manuals", "add", str(mdir), "--user", "kanri"],
                             "SELECT COUNT(*) AS n FROM manual_chunks", RUNS, max_delay=12, env=env)
    assert res.integrity_failures == 0 and res.lost == 0 and res.incomplete_after_resume == 0, res
    # the resumed index equals a clean one
    clean = tmp_path / "clean"
    import subprocess
    subprocess.run(crashkit.CLI + ["--data-dir", str(clean), "manuals", "add", str(mdir), "--user", "kanri"],
                   cwd=crashkit.ROOT, env=crashkit.user_env(clean), check=True, capture_output=True, timeout=1800)
    q = "SELECT COUNT(*) AS n FROM manual_chunks"
    assert crashkit.count(data / "madoguchi.db", q) == crashkit.count(clean / "madoguchi.db", q)


def test_kill_during_photo_import(tmp_path):
    pdir = tmp_path / "photos"
    pdir.mkdir()
    for seed in range(930001, 930009):
        (pdir / f"KM-{seed % 10000}.jpg").write_bytes(synth.encode_jpeg(synth.generate(seed, size=(1024, 768)).image))
    data = tmp_path / "data"
    env = crashkit.user_env(data)    # importing is an inspector's job: the CLI signs in as one
    res = crashkit.crash_job(data, ["mirror", "import", str(pdir), "--quiet", "--user", "kensa"],
                             "SELECT COUNT(*) AS n FROM mirror_inspections", RUNS, max_delay=8, env=env)
    assert res.integrity_failures == 0 and res.lost == 0 and res.incomplete_after_resume == 0, res
    assert crashkit.count(data / "madoguchi.db", "SELECT COUNT(*) AS n FROM mirror_inspections") == 8
    assert crashkit.count(data / "madoguchi.db", "SELECT COUNT(DISTINCT photo_hash) AS n FROM mirror_inspections") == 8


def test_kill_during_migration(tmp_path):
    res = crashkit.crash_migration(tmp_path, 5)
    assert res.integrity_failures == 0 and res.incomplete_after_resume == 0, res


@pytest.fixture(scope="module")
def counter_data(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("counter")
    env = crashkit.counter_env(tmp, use_llm=False, final_systems=1)   # the process structure, not the vote
    import os
    old = {k: os.environ.get(k) for k in ("MADOGUCHI_USER_CONFIG", "MADOGUCHI_MACHINE_CONFIG")}
    os.environ.update({k: env[k] for k in old})
    try:
        crashkit.seed_counter(tmp / "data")
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return tmp / "data", crashkit.counter_wav(tmp / "counter.wav"), env


# The extractive drafter here: what is proven is the process structure (the drafting job's child
# killed, or the counter app killed while it drafts) and the resume, not the model's text;
# bench/crash.py --llm-runs N kills runs drafting with the LLM (llm-small; minutes per run).
# app: one kill while recording (4 s after the first final segment), one after 停止 (25 s);
# drafter: the child lives while recording, so both kills land in the first 12 s.
@pytest.mark.parametrize("target,max_delay,seed", [("app", 30, 1), ("drafter", 12, 3)])
def test_kill_during_drafting(counter_data, target, max_delay, seed):
    data, wav, env = counter_data
    res = crashkit.crash_drafting(data, wav, 2, max_delay=max_delay, seed=seed, env=env, target=target)
    assert res.killed >= 1, res
    assert res.integrity_failures == 0 and res.lost == 0 and res.incomplete_after_resume == 0, res
