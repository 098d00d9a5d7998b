"""kill -9 at random moments: run a CLI job, SIGKILL it after a random delay, check the store,
run the job again to completion, check again. Shared by tests/test_crash.py and bench/crash.py."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "engine.cli"]


@dataclass
class CrashResult:
    runs: int = 0
    killed: int = 0          # runs actually killed before finishing on their own
    integrity_failures: int = 0
    lost: int = 0            # items committed before the kill and missing afterwards
    incomplete_after_resume: int = 0
    notes: list[str] = field(default_factory=list)


def integrity(db: Path) -> bool:
    from engine.store import Store
    s = Store(db, migrate=False)
    try:
        return s.integrity_ok()
    finally:
        s.close()


def kill_after(cmd: list[str], delay: float, env: dict | None = None) -> bool:
    """Start cmd, SIGKILL it after ``delay`` s. True if it was still running (really killed)."""
    p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        p.wait(timeout=delay)
        return False
    except subprocess.TimeoutExpired:
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        return True


def count(db: Path, sql: str) -> int:
    from engine.store import Store
    s = Store(db, migrate=False)
    try:
        return s.query_one(sql)["n"]
    finally:
        s.close()


def crash_job(data: Path, job: list[str], count_sql: str, runs: int, max_delay: float, seed: int = 0,
              env: dict | None = None) -> CrashResult:
    """Kill ``job`` ``runs`` times at random moments; after each kill the DB must be intact and the
    committed count must not shrink; after the final uninterrupted run the job must be complete."""
    rng = random.Random(seed)
    res = CrashResult()
    db = data / "madoguchi.db"
    before = 0
    for _ in range(runs):
        res.runs += 1
        res.killed += kill_after(CLI + ["--data-dir", str(data)] + job, rng.uniform(0.3, max_delay), env)
        if db.exists():
            if not integrity(db):
                res.integrity_failures += 1
                continue
            after = count(db, count_sql)
            if after < before:
                res.lost += before - after
            before = after
    r = subprocess.run(CLI + ["--data-dir", str(data)] + job, cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=1800)
    if r.returncode != 0:
        res.incomplete_after_resume += 1
        res.notes.append(r.stderr[-500:])
    if not integrity(db):
        res.integrity_failures += 1
    return res


def crash_migration(tmp: Path, runs: int, seed: int = 0) -> CrashResult:
    """Kill the first open of a new data folder (all migrations) at random moments."""
    rng = random.Random(seed)
    res = CrashResult()
    for i in range(runs):
        data = tmp / f"mig{i}"
        res.runs += 1
        res.killed += kill_after(CLI + ["--data-dir", str(data), "doctor", "--quick"], rng.uniform(0.05, 1.5))
        db = data / "madoguchi.db"
        if db.exists() and not integrity(db):
            res.integrity_failures += 1
            continue
        from engine.store import Store
        s = Store(db)  # finishes the migrations
        if s.schema_version() != s.latest_version() or not s.integrity_ok():
            res.incomplete_after_resume += 1
        s.close()
    return res
