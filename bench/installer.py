"""Installer figures: bundle and MSI sizes, build times, frozen self-test timings.

    python bench/installer.py            # report what the last `make -C installer …` runs produced
                                         # (builds the light package first when none is built)
    python bench/installer.py --build    # first run `make -C installer LIGHT=1 smoke` (light package)
    python bench/installer.py --build --full   # also the full package's bundle + frozen self-test
                                               # (`make -C installer full-selftest`; its MSI needs WiX 3)

Build times come from installer/out/timings.tsv, which the installer Makefile appends to (step,
seconds, UTC time); the newest row of each step is reported. Writes the "installer" section of
docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from bench._report import write_section  # noqa: E402

INSTALLER = REPO / "installer"


def tree_size(path: Path) -> tuple[int, int]:
    """Bytes and number of regular files (PyInstaller's symlinks to libraries are not counted twice)."""
    files = [p for p in path.rglob("*") if not p.is_symlink() and p.is_file() and not p.name.startswith(".")]
    return sum(p.stat().st_size for p in files), len(files)


def mib(n: float) -> str:
    return f"{n / 1024**2:,.0f} MiB"


def timings() -> dict[str, tuple[float, str]]:
    out: dict[str, tuple[float, str]] = {}
    path = INSTALLER / "out" / "timings.tsv"
    if path.is_file():
        for line in path.read_text().splitlines():
            step, secs, when = line.split("\t")
            out[step] = (float(secs), when)
    return out


def selftest_rows(variant: str) -> list[str]:
    log = INSTALLER / f"build{variant}" / "selftest.log"
    if not log.is_file():
        return []
    rows = []
    for line in log.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^(PASS|FAIL|SKIP)\s+(.+?)\s+([\d.]+)s\s+(.*)$", line)
        if m and float(m.group(3)) >= 0.5:
            rows.append(f"| {m.group(2)} | {m.group(1)} | {float(m.group(3)):.1f} s |")
        elif line.startswith("self-test "):
            rows.append(f"| **total** | {line.split(':')[0].removeprefix('self-test ')} | "
                        f"{line.rsplit(' in ', 1)[-1]} |")
    return rows


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", action="store_true", help="run the light build + Wine smoke first")
    ap.add_argument("--full", action="store_true", help="with --build: also build the full package")
    args = ap.parse_args()
    if not (INSTALLER / "dist-light" / "madoguchi").is_dir() and not (INSTALLER / "dist" / "madoguchi").is_dir():
        args.build = True
    if args.build:
        env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
        subprocess.run(["make", "-C", str(INSTALLER), "LIGHT=1", "smoke"], check=True, env=env)
        if args.full:
            subprocess.run(["make", "-C", str(INSTALLER), "full-selftest"], check=True, env=env)

    t = timings()
    lines = ["| package | bundle (files) | MSI | PyInstaller | frozen self-test | wixl MSI |",
             "|---|---|---|---|---|---|"]
    found = False
    for variant, label in (("-light", "light (no llm-default)"), ("", "full")):
        bundle = INSTALLER / f"dist{variant}" / "madoguchi"
        if not bundle.is_dir():
            continue
        found = True
        size, n = tree_size(bundle)
        msis = sorted((INSTALLER / "out").glob(f"madoguchi-*{variant}-x64.msi"), key=lambda p: p.stat().st_mtime)
        msis = [m for m in msis if variant or "-light-" not in m.name]
        msi = mib(msis[-1].stat().st_size) if msis else ("WiX 3 only (> 2 GB)" if not variant else "not built")

        def secs(step):
            return f"{t[step + variant][0]:.0f} s" if step + variant in t else "–"
        lines.append(f"| {label} | {mib(size)} ({n:,}) | {msi} | {secs('bundle')} | {secs('selftest')} | "
                     f"{secs('msi')} |")
    if not found:
        print("no bundle built yet: run `make -C installer LIGHT=1 all` or pass --build", file=sys.stderr)
        return 1
    if "wine-smoke-light" in t or "wine-smoke" in t:
        s = t.get("wine-smoke-light") or t.get("wine-smoke")
        lines.append("")
        lines.append(f"Wine smoke (fresh prefix, install with properties, major upgrade, uninstall): {s[0]:.0f} s.")
    steps = ["bundle-light", "selftest-light", "msi-light", "wine-smoke-light"]
    if all(k in t for k in steps):
        total = sum(t[k][0] for k in steps) + t["msi-light"][0]   # the smoke builds a second (upgrade) MSI
        lines.append(f"Light package from scratch to a passed Wine smoke (`make -C installer smoke`, the "
                     f"`installer`-marked test): about {total / 60:.1f} min.")
    full = [r for r in selftest_rows("") if "**total**" in r or "draft" in r]
    if full:
        lines += ["", "Full package frozen self-test (llm-default drafts): "
                  + "; ".join(r.strip("| ").replace(" | ", " ") for r in full) + "."]
    rows = selftest_rows("-light") or selftest_rows("")
    if rows:
        lines += ["", "Frozen `madoguchi --self-test` (checks taking ≥ 0.5 s):", "",
                  "| check | result | time |", "|---|---|---|"] + rows
    lines += ["", "Times are wall-clock on a 2-core machine shared with other builds: expect them to vary "
              "by 2–4× with load. The MSI is wixl's (one MSZIP cabinet) around the Linux bundle; wixl cannot "
              "split cabinets, so the full package's MSI (> 2 GB) is built only by WiX 3 on the Windows "
              "runner (`.github/workflows/windows-msi.yml`, MediaTemplate)."]
    md = "\n".join(lines)
    print(md)
    write_section("installer", md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
