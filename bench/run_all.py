"""`make bench`: run every benchmark script in bench/ (each prints its figures and writes its own
section of docs/benchmarks.md). Pass names to run some: `bench/run_all.py asr manuals`."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = ["asr", "records", "records_legacy", "manuals", "mirrors", "mirrors_cross", "fuzz", "crash", "installer", "server"]


def main() -> int:
    wanted = sys.argv[1:] or ORDER
    failed = []
    for name in wanted:
        script = HERE / f"{name}.py"
        if not script.is_file():
            print(f"== {name}: no bench/{name}.py in this version, skipped")
            continue
        print(f"== {name}")
        t0 = time.monotonic()
        r = subprocess.run([sys.executable, str(script)], cwd=HERE.parent)
        print(f"== {name}: exit {r.returncode} after {time.monotonic() - t0:.0f} s")
        if r.returncode:
            failed.append(name)
    if failed:
        print("benchmarks that failed or missed a floor:", ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
