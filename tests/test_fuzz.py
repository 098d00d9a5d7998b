"""Hostile and broken input: every parser that takes an untrusted file answers with a clear
error (MadoguchiError) or a result — never another exception, a crash or a hang.
CI-sized runs; bench/fuzz.py runs the same targets far longer and reports the counts."""
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devkit import fuzz_targets as ft

pytestmark = pytest.mark.slow   # whole pipelines / real-time audio / subprocess runs: `make test`, not `make check`

EXAMPLES = 40
DEADLINE_MS = 10_000


@pytest.mark.parametrize("name", list(ft.TARGETS))
def test_mutated_files(name):
    target, seed_fn = ft.TARGETS[name]
    seed = seed_fn()
    target(seed)  # the valid seed itself parses
    rng = np.random.default_rng(20261122)
    worst = 0.0
    for _ in range(EXAMPLES):
        data = ft.mutate(seed, rng)
        t0 = time.perf_counter()
        target(data)
        worst = max(worst, time.perf_counter() - t0)
    assert worst < DEADLINE_MS / 1000, f"{name}: slowest input took {worst:.1f} s"


@pytest.mark.parametrize("name", list(ft.TARGETS))
@settings(max_examples=EXAMPLES, deadline=DEADLINE_MS, suppress_health_check=list(HealthCheck), derandomize=True)
@given(data=st.binary(max_size=4096))
def test_random_bytes(name, data):
    ft.TARGETS[name][0](data)


@pytest.mark.parametrize("name", ["transcript_json", "html_ingest"])
def test_atheris_runs_clean(name, tmp_path):
    """The coverage-guided harness (atheris/libFuzzer) on two parsers, a few hundred inputs:
    no finding, and libFuzzer reports the inputs it tried (bench/fuzz.py runs all parsers longer)."""
    import subprocess
    import sys
    pytest.importorskip("atheris", reason="atheris has no wheel for this platform (Linux only)")
    # the harness process carries the whole engine (Sudachi dictionary, numpy, …: ~1–4 GB RSS once
    # instrumented), so libFuzzer's default 2 GB limit reports the process, not the input; any
    # crash artefact goes to the test's folder, never into the repository
    r = subprocess.run([sys.executable, "-m", "devkit.fuzz_targets", name, "-runs=300", "-timeout=10", "-seed=1",
                        "-rss_limit_mb=8192", f"-artifact_prefix={tmp_path}/"],
                       cwd=ft.ROOT, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Done 300 runs" in r.stderr, r.stderr[-2000:]
