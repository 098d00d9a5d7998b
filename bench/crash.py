"""Crash figures: kill -9 at 20 random moments during each long job; report integrity and loss.

    .venv/bin/python bench/crash.py [--runs 20]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._report import write_section  # noqa: E402
from tests import crashkit  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    from engine.manuals import samples
    from engine.mirrors import synth
    tmp = Path(tempfile.mkdtemp(prefix="madoguchi-crash-"))
    rows = []
    mdir = tmp / "manuals"
    samples.build(mdir)
    r = crashkit.crash_job(tmp / "idx", ["manuals", "add", str(mdir)], "SELECT COUNT(*) AS n FROM manual_chunks",
                           args.runs, max_delay=40, seed=1)
    rows.append(("manual indexing (`manuals add`)", r))
    pdir = tmp / "photos"
    pdir.mkdir()
    for seed in range(940001, 940041):
        (pdir / f"KM-{seed % 10000}.jpg").write_bytes(synth.encode_jpeg(synth.generate(seed, size=(1024, 768)).image))
    r = crashkit.crash_job(tmp / "imp", ["mirror", "import", str(pdir), "--quiet"],
                           "SELECT COUNT(*) AS n FROM mirror_inspections", args.runs, max_delay=20, seed=2)
    rows.append(("photo import (`mirror import`, 40 photos)", r))
    r = crashkit.crash_migration(tmp / "mig", args.runs, seed=3)
    rows.append(("database migration (first open)", r))
    bad = 0
    lines = []
    for name, r in rows:
        bad += r.integrity_failures + r.lost + r.incomplete_after_resume
        lines.append(f"| {name} | {r.runs} | {r.killed} | {r.integrity_failures} | {r.lost} | "
                     f"{'yes' if not r.incomplete_after_resume else 'NO'} |")
        print(name, r)
    md = ("### Crash safety (`bench/crash.py`)\n\nSIGKILL at a random moment, then `PRAGMA integrity_check`, "
          "committed rows counted, and the job run again to completion.\n\n"
          "| job | runs | killed mid-job | integrity failures | committed rows lost | resumed to completion |\n"
          "|---|---|---|---|---|---|\n" + "\n".join(lines))
    write_section("crash", md)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
