"""``madoguchi doctor``: is this installation fit to serve a counter? One row per check."""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

from . import models
from .errors import MadoguchiError
from .office import admin


@dataclass
class Check:
    area: str
    name: str
    ok: bool
    detail: str
    required: bool = True


def check_models(config, deep: bool = True, load: bool = True) -> list[Check]:
    out = []
    try:
        manifest = models.load_manifest()
    except models.ModelError as e:   # e.g. a kind this version does not know: one failed check, said plainly
        return [Check("model", "manifest", False, str(e))]
    for name, spec in manifest.items():
        st = models.verify(name, config, deep=deep)
        detail = st.detail if not st.ok else ("checksum ok" if deep else "present")
        if st.ok and load:
            try:
                detail += "; " + models.load_check(name, config)
            except Exception as e:  # a model that does not load is a failed check, whatever the cause
                st.ok = False
                detail = f"model '{name}' does not load: {e}"
        out.append(Check("model", name, st.ok, detail, required=not spec.optional))
    return out


def check_audio() -> list[Check]:
    try:
        import sounddevice as sd
        devs = [d for d in sd.query_devices() if d["max_input_channels"] > 0]
    except OSError as e:
        return [Check("audio", "PortAudio", False, f"PortAudio not available: {e}")]
    if not devs:
        return [Check("audio", "input devices", False,
                      "no microphone found (recording disabled; file transcription still works)", required=False)]
    return [Check("audio", "input devices", True, ", ".join(d["name"] for d in devs[:4]))]


def check_store(ctx) -> list[Check]:
    st = ctx.store
    out = []
    try:
        v, latest = st.schema_version(), st.latest_version()
        out.append(Check("database", "schema", v == latest, f"version {v} of {latest} at {st.path}"))
        out.append(Check("database", "integrity", st.integrity_ok(), "PRAGMA integrity_check"))
        probe = ctx.data_dir / ".write-probe"
        probe.write_bytes(b"x")
        probe.unlink()
        out.append(Check("database", "data folder writable", True, str(ctx.data_dir)))
    except Exception as e:
        out.append(Check("database", "store", False, str(e)))
    free = shutil.disk_usage(ctx.data_dir).free
    out.append(Check("disk", "free space", free > 2 * 1024**3, f"{free / 1024**3:.1f} GiB free in the data folder"))
    return out


def check_fonts() -> list[Check]:
    import sys
    if sys.platform == "win32":
        return [Check("fonts", "Japanese font", True, "Windows ships Yu Gothic / Meiryo")]
    try:
        r = subprocess.run(["fc-list", ":lang=ja", "family"], capture_output=True, text=True, timeout=20)
        fams = sorted({l.split(",")[0] for l in r.stdout.splitlines() if l.strip()})
    except (OSError, subprocess.TimeoutExpired):
        fams = []
    return [Check("fonts", "Japanese font", bool(fams),
                  ", ".join(fams[:3]) if fams else "no Japanese font: install fonts-ipafont-gothic")]


def check_office_server(ctx) -> list[Check]:
    """Rows for ``madoguchi doctor`` when an office server is configured: reachable, TLS
    (encrypted *and* verified, said plainly otherwise), schema/audit chain, where the password
    comes from."""
    server = ctx.config["office_server"]
    if not server:
        return []
    try:
        out = admin.check(server, ctx.config["server.sslrootcert"])
    except MadoguchiError as e:
        return [Check("office server", "connection", False, str(e))]
    if not out["reachable"]:
        return [Check("office server", "connection", False,
                      f"{out.get('error', 'unreachable')} — this PC works offline (recording only)")]
    rows = [Check("office server", "connection", True,
                  f"{out['server']} PostgreSQL {out['server_version']}, {out['round_trip_ms']} ms round trip"),
            Check("office server", "TLS", out["tls_verified"], out["tls_detail"]
                  + ("" if out["tls_verified"] else " — set server.sslrootcert to the office CA"), required=False),
            Check("office server", "schema and audit chain", out["ok"],
                  f"schema {out['schema_version']} of {out['latest_version']}, audit chain "
                  f"{'verified' if out.get('audit_ok') else 'NOT verified'}, {out.get('audit_entries', 0)} entries"),
            Check("office server", "password", out["password_from"] != "none",
                  f"from {out['password_from']}", required=False)]
    return rows


def run(ctx, deep: bool = True, load: bool = True) -> list[Check]:
    return (check_models(ctx.config, deep, load) + check_audio() + check_store(ctx) + check_office_server(ctx)
            + check_fonts())


def verdict(checks: list[Check]) -> bool:
    return all(c.ok for c in checks if c.required)


def format_table(checks: list[Check]) -> str:
    w1 = max(len(c.area) for c in checks)
    w2 = max(len(c.name) for c in checks)
    lines = [f"{'AREA':<{w1}}  {'CHECK':<{w2}}  RESULT  DETAIL"]
    for c in checks:
        mark = "OK" if c.ok else ("FAIL" if c.required else "WARN")
        lines.append(f"{c.area:<{w1}}  {c.name:<{w2}}  {mark:<6}  {c.detail}")
    lines.append("")
    lines.append("VERDICT: " + ("ready" if verdict(checks) else "NOT READY — fix the FAIL rows above"))
    return "\n".join(lines)


def cli_command() -> list[str]:
    """How to run the engine CLI from this process (frozen-aware)."""
    import sys
    from pathlib import Path
    if getattr(sys, "frozen", False):
        exe = Path(sys.executable).with_name("madoguchi.exe" if sys.platform == "win32" else "madoguchi")
        return [str(exe)]
    return [sys.executable, "-m", "engine.cli"]


def run_isolated(data_dir, timeout: float = 600) -> list[Check]:
    """Run the checks in a child process: a corrupt model that crashes its native loader cannot take
    the caller (the desktop) down, and native loaders that hold the GIL cannot stall its UI."""
    import json
    r = subprocess.run(cli_command() + ["--data-dir", str(data_dir), "doctor", "--json"], capture_output=True,
                       text=True, timeout=timeout)
    try:
        out = json.loads(r.stdout)
    except json.JSONDecodeError:
        return [Check("doctor", "run", False, f"doctor exited with {r.returncode}: {r.stderr.strip()[-300:]}")]
    return [Check(**c) for c in out["checks"]]
