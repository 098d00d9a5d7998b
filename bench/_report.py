"""Write one benchmark's figures into docs/benchmarks.md, between its own markers, with the
machine and the date. Each bench script owns one section; other sections are left alone."""
from __future__ import annotations

import datetime
import fcntl
import os
import platform
import re
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
HEADER = "# Benchmarks\n\nEach section is written by its `bench/` script; re-run `make bench` to refresh.\n"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024**2:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} cores{mem}, Python {platform.python_version()}"


def write_section(name: str, markdown: str) -> Path:
    DOC.parent.mkdir(parents=True, exist_ok=True)
    stamp = f"_Measured {datetime.date.today().isoformat()} on {machine()}._\n\n"
    block = f"<!-- bench:{name}:start -->\n{stamp}{markdown.rstrip()}\n<!-- bench:{name}:end -->"
    with open(DOC.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        text = DOC.read_text(encoding="utf-8") if DOC.exists() else HEADER
        pat = re.compile(rf"<!-- bench:{re.escape(name)}:start -->.*?<!-- bench:{re.escape(name)}:end -->", re.S)
        text = pat.sub(lambda m: block, text) if pat.search(text) else text.rstrip() + "\n\n" + block + "\n"
        DOC.write_text(text, encoding="utf-8")
    return DOC


def publish(name: str, markdown: str, write: bool = True) -> None:
    """Print a benchmark's section and (unless ``write`` is false) write it into docs/benchmarks.md."""
    print(markdown)
    if write:
        write_section(name, markdown)
