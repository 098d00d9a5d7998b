"""Fuzz the untrusted-input parsers for a while and report how many inputs each survived.

    .venv/bin/python bench/fuzz.py [--seconds-per-target 60] [--atheris-seconds 60]
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench._report import write_section  # noqa: E402
from devkit import fuzz_targets as ft  # noqa: E402


def atheris_rows(seconds: float) -> tuple[list[str], int]:
    """Run each target under atheris (``python -m devkit.fuzz_targets NAME``) for ``seconds``;
    read the inputs tried and the coverage from libFuzzer's last lines."""
    rows, bad = [], 0
    art = Path(tempfile.mkdtemp(prefix="madoguchi-atheris-"))
    for name, (label, _t, _s) in ft.by_short_name().items():
        r = subprocess.run([sys.executable, "-m", "devkit.fuzz_targets", name, f"-max_total_time={seconds:.0f}",
                            "-timeout=10", "-rss_limit_mb=3072", "-max_len=65536", f"-artifact_prefix={art}/{name}-"],
                           cwd=ROOT, capture_output=True, text=True, timeout=seconds + 900)
        runs = re.findall(r"Done (\d+) runs in", r.stderr)
        cov = re.findall(r"cov: (\d+)", r.stderr)
        finding = r.returncode != 0
        bad += finding
        what = "none" if not finding else (re.findall(r"(Uncaught Python exception: .*|ERROR: libFuzzer: .*)", r.stderr)
                                          or [f"exit {r.returncode}"])[0][:120]
        rows.append(f"| {label} | {int(runs[-1]) if runs else 0:,} | {cov[-1] if cov else '?'} | {what} |")
        print(f"atheris {name}: {runs[-1] if runs else '?'} runs, cov {cov[-1] if cov else '?'}, {what}")
    return rows, bad


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds-per-target", type=float, default=60)
    ap.add_argument("--atheris-seconds", type=float, default=60, help="per parser under atheris (0: skip)")
    args = ap.parse_args()
    rows, failures = [], 0
    for name, (target, seed_fn) in ft.TARGETS.items():
        seed = seed_fn()
        rng = np.random.default_rng(7)
        n = bad = 0
        worst = 0.0
        end = time.monotonic() + args.seconds_per_target
        while time.monotonic() < end:
            data = ft.mutate(seed, rng) if n % 4 else rng.integers(0, 256, int(rng.integers(0, 4096)), dtype=np.uint8).tobytes()
            t0 = time.perf_counter()
            try:
                target(data)
            except Exception as e:  # a non-Madoguchi exception is a finding
                bad += 1
                print(f"  {name}: {type(e).__name__}: {e}"[:300])
            worst = max(worst, time.perf_counter() - t0)
            n += 1
        failures += bad
        rows.append(f"| {name} | {n:,} | {bad} | {worst * 1000:.0f} ms |")
        print(f"{name}: {n} inputs, {bad} unhandled, slowest {worst * 1000:.0f} ms")
    load = os.getloadavg()[0]
    per = f"{args.seconds_per_target:.0f} s per parser"
    if load > 3:
        per += f" (load average {load:.1f} at the end: other jobs shared the cores, so the counts are low)"
    md = ("### Fuzzing the untrusted-input parsers (`bench/fuzz.py`)\n\n"
          f"Mutated valid files (byte flips, truncation, splices, junk) and random bytes, {per}.\n\n"
          "| parser | inputs tried | unhandled errors / crashes | slowest input |\n|---|---|---|---|\n"
          + "\n".join(rows))
    if args.atheris_seconds > 0:
        arows, afail = atheris_rows(args.atheris_seconds)
        failures += afail
        md += ("\n\n**atheris** (coverage-guided libFuzzer over the same targets, seeded with the valid file; "
               f"{args.atheris_seconds:.0f} s per parser, 10 s per-input time limit, load average "
               f"{os.getloadavg()[0]:.1f} at the end):\n\n"
               "| parser | inputs tried | coverage edges | findings |\n|---|---|---|---|\n" + "\n".join(arows))
    write_section("fuzz", md)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
