"""Fuzz the untrusted-input parsers for a while and report how many inputs each survived.

    .venv/bin/python bench/fuzz.py [--seconds-per-target 60]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._report import write_section  # noqa: E402
from tests import fuzz_targets as ft  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds-per-target", type=float, default=60)
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
    md = ("### Fuzzing the untrusted-input parsers (`bench/fuzz.py`)\n\n"
          f"Mutated valid files (byte flips, truncation, splices, junk) and random bytes, "
          f"{args.seconds_per_target:.0f} s per parser.\n\n"
          "| parser | inputs tried | unhandled errors / crashes | slowest input |\n|---|---|---|---|\n"
          + "\n".join(rows))
    write_section("fuzz", md)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
