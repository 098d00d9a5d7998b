"""Crash figures: kill -9 at 20 random moments during each long job; report integrity and loss.

    .venv/bin/python bench/crash.py [--runs 20] [--drafter-runs 5] [--llm-runs 0]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._report import write_section  # noqa: E402
from devkit import crashkit  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--kinds", choices=("all", "jobs", "import", "drafting"), default="all",
                    help="jobs: indexing, migration (section 'crash'); import: photo import (section "
                         "'crash-import'); drafting: the counter workflow (section 'crash-drafting'); they "
                         "can run as separate processes")
    ap.add_argument("--drafter-runs", type=int, default=5, help="kills of the drafting child alone")
    ap.add_argument("--photos", type=int, default=1500, help="photos in the import folder")
    ap.add_argument("--llm-runs", type=int, default=0,
                    help="also this many drafting kills with the LLM (llm-small) drafting; minutes per run")
    args = ap.parse_args()
    from engine.manuals import samples
    from engine.mirrors import synth
    tmp = Path(tempfile.mkdtemp(prefix="madoguchi-crash-"))
    rows, phases = [], []
    if args.kinds in ("all", "jobs"):
        mdir = tmp / "manuals"
        samples.build(mdir)
        env = crashkit.user_env(tmp / "idx")
        r = crashkit.crash_job(tmp / "idx", ["manuals", "add", str(mdir), "--user", "kanri"],
                               "SELECT COUNT(*) AS n FROM manual_chunks", args.runs, seed=1, env=env,
                               prepare=crashkit.user_env)
        print("manual indexing:", "; ".join(r.notes[:1]), flush=True)
        rows.append(("manual indexing (`manuals add`)", r))
        r = crashkit.crash_migration(tmp / "mig", args.runs, seed=3, max_delay=None)
        rows.append(("database migration (first open)", r))
    if args.kinds in ("all", "import"):
        # enough photos (40 scenes, each file unique by a trailing comment) that every kill lands
        # while the import is still running, however much the earlier runs already imported
        pdir = tmp / "photos"
        pdir.mkdir()
        scenes = [synth.encode_jpeg(synth.generate(seed, size=(1024, 768)).image) for seed in range(940001, 940041)]
        for k in range(args.photos):
            (pdir / f"KM-{10000 + k}.jpg").write_bytes(scenes[k % len(scenes)] + f"copy{k}".encode())
        r = crashkit.crash_job(tmp / "imp", ["mirror", "import", str(pdir), "--quiet", "--user", "kensa"],
                               "SELECT COUNT(*) AS n FROM mirror_inspections", args.runs, max_delay=8, seed=2,
                               env=crashkit.user_env(tmp / "imp"))
        db = tmp / "imp" / "madoguchi.db"
        n = crashkit.count(db, "SELECT COUNT(*) AS n FROM mirror_inspections")
        if n != args.photos or crashkit.count(db, "SELECT COUNT(DISTINCT photo_hash) AS n FROM mirror_inspections") != n:
            r.incomplete_after_resume += 1
            r.notes.append(f"{n} inspections for {args.photos} photos after the resumed import")
        rows.append((f"photo import (`mirror import`, {args.photos} photos)", r))
    # record drafting: the counter workflow (recording paced in real time → live drafting in the
    # engine.jobs child → 停止 → draft saved → final pass); killed from its first final segment on
    wav = crashkit.counter_wav(tmp / "counter.wav") if args.kinds in ("all", "drafting") else None
    for target, runs, seed, what in (("app", args.runs, 4, "counter app killed"),
                                     ("drafter", args.drafter_runs, 5, "drafting child killed")):
        if runs <= 0 or args.kinds not in ("all", "drafting"):
            continue
        for use_llm, n in ((False, runs), (True, args.llm_runs)):
            if n <= 0:
                continue
            data = tmp / f"draft-{target}-{'llm' if use_llm else 'ext'}"
            (tmp / f"cfg-{data.name}").mkdir()
            env = crashkit.counter_env(tmp / f"cfg-{data.name}", use_llm=use_llm)
            os.environ.update({k: env[k] for k in ("MADOGUCHI_USER_CONFIG", "MADOGUCHI_MACHINE_CONFIG")})
            crashkit.seed_counter(data)
            r = crashkit.crash_drafting(data, wav, n, max_delay=60 if use_llm else 35, seed=seed, env=env,
                                        target=target)
            name = f"record drafting, {what} ({'LLM llm-small' if use_llm else 'extractive drafter'})"
            rows.append((name, r))
            phases.append(f"{name}: " + ", ".join(f"{k} {v}" for k, v in sorted(r.phases.items())))
    bad = 0
    groups = {"crash": [], "crash-import": [], "crash-drafting": []}
    for name, r in rows:
        bad += r.integrity_failures + r.lost + r.incomplete_after_resume
        groups["crash-drafting" if name.startswith("record drafting") else
               "crash-import" if name.startswith("photo import") else "crash"].append(
            f"| {name} | {r.runs} | {r.killed} | {r.integrity_failures} | {r.lost} | "
            f"{'yes' if not r.incomplete_after_resume else 'NO'} |")
        print(name, r)
    head = ("| job | runs | killed mid-job | integrity failures | committed rows lost | resumed to completion |\n"
            "|---|---|---|---|---|---|\n")
    load = f"Load average {os.getloadavg()[0]:.1f} at the end (other jobs shared the 2 cores)."
    intros = {
        "crash": "### Crash safety (`bench/crash.py`)\n\nSIGKILL at a random moment, then "
                 "`PRAGMA integrity_check`, committed rows counted, and the job run again to completion. ",
        "crash-import": "### Crash safety during photo import (`bench/crash.py --kinds import`)\n\n"
                        "SIGKILL at a random moment of `madoguchi mirror import` (signed in as an inspector), then "
                        "`PRAGMA integrity_check`, committed inspections counted (never fewer than before), and "
                        "the import run again to completion: every photo exactly once (duplicates by SHA-256). ",
        "crash-drafting": "### Crash safety while drafting (`bench/crash.py --kinds drafting`)\n\n"
                          "The counter workflow on a 20 s synthesized consultation (recording paced in real time, "
                          "live drafting in the `engine.jobs` child, 停止, draft saved, final pass), SIGKILLed at a "
                          "random moment after its first final segment — the counter app, or the drafting child "
                          "alone. Afterwards `PRAGMA integrity_check`, the audit chain verifies, approved record "
                          "versions and finished sessions' segments are byte-identical, the killed session's "
                          "committed segments are all there, no process of the run is left, and "
                          "`engine.consultation.resume` leaves every consultation with exactly one record, final "
                          "pass done. ",
    }
    for section, lines in groups.items():
        if lines:
            tail = ("\n\nWhere the kills landed: " + "; ".join(phases) + ".") if section == "crash-drafting" else ""
            if section == "crash":
                tail = "\n\nKill windows: " + "; ".join(f"{n}: {r.notes[0]}" for n, r in rows
                                                         if r.notes and r.notes[0].startswith("kill window")) + (
                    ". A run the job finished before its kill starts the next run on a fresh data folder.")
            write_section(section, intros[section] + f"{load}\n\n" + head + "\n".join(lines) + tail)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
