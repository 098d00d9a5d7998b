"""The MSI installer (issue 8).

* ``test_installer_definition_*``: the real ``installer/madoguchi.wxs`` built with wixl around a small
  payload, checked with msiinfo and run under Wine (install with IT's properties, major upgrade keeping
  them, uninstall clean) — ~40 s. It proves the installer definition, not the bundle.
* ``test_light_package_*`` (marked ``installer``; CI budget ≤ 8 minutes on 2 cores, most of it PyInstaller,
  two wixl compressions of ~1.1 GB and two Wine installs): ``make -C installer LIGHT=1 smoke`` — the light
  bundle (no llm-default), its frozen ``madoguchi --self-test``, the MSI, the msiinfo checks and the same
  Wine smoke on the real package, then the frozen app against a TLS office server (PostgreSQL on
  loopback). Make's stamps skip whatever is already built and unchanged.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine import config as config_mod

REPO = Path(__file__).resolve().parent.parent
INSTALLER = REPO / "installer"
WXS = INSTALLER / "madoguchi.wxs"

needs_msitools = pytest.mark.skipif(not (shutil.which("wixl") and shutil.which("msiinfo")),
                                    reason="msitools/wixl not installed (make sysdeps)")
needs_wine = pytest.mark.skipif(not (shutil.which("wine") and shutil.which("wineboot")),
                                reason="wine not installed (make sysdeps)")


def _payload(root: Path) -> Path:
    """A small stand-in for the bundle with the files the smoke looks for."""
    b = root / "bundle"
    for rel, data in {"madoguchi": b"cli", "madoguchi-desktop": b"gui", "models/manifest.toml": b"[models]\n",
                      "resources/samples/consultation_ja.wav": b"RIFF", "resources/templates/x.toml": b"t"}.items():
        (b / rel).parent.mkdir(parents=True, exist_ok=True)
        (b / rel).write_bytes(data)
    return b


def _msi(tmp: Path, bundle: Path, version: str) -> Path:
    files = tmp / "files.wxs"
    subprocess.run([str(INSTALLER / "scripts" / "files_wxs.sh"), bundle.name, str(files)], cwd=tmp, check=True)
    out = tmp / f"madoguchi-{version}.msi"
    r = subprocess.run(["wixl", "-a", "x64", "-D", f"SourceDir={bundle.name}", "-D", f"Version={version}",
                        "-D", "ExeSuffix=", "-D", "Toolset=wixl", "-o", str(out), str(WXS), str(files)],
                       cwd=tmp, capture_output=True, text=True)
    assert r.returncode == 0 and out.is_file(), r.stderr
    return out


@needs_msitools
def test_installer_definition_tables(tmp_path):
    bundle = _payload(tmp_path)
    msi = _msi(tmp_path, bundle, "0.1.0")
    r = subprocess.run([str(INSTALLER / "scripts" / "check_msi.sh"), str(msi), str(bundle)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "MSI CHECK PASSED" in r.stdout


@needs_msitools
def test_msi_check_catches_a_missing_file(tmp_path):
    bundle = _payload(tmp_path)
    msi = _msi(tmp_path, bundle, "0.1.0")
    (bundle / "resources" / "extra.txt").write_text("not in the MSI")
    r = subprocess.run([str(INSTALLER / "scripts" / "check_msi.sh"), str(msi), str(bundle)],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "File table" in r.stderr


@pytest.mark.slow
@needs_msitools
@needs_wine
@pytest.mark.timeout(300)
def test_installer_definition_under_wine(tmp_path):
    bundle = _payload(tmp_path)
    v1, v2 = _msi(tmp_path, bundle, "0.1.0"), _msi(tmp_path, bundle, "0.1.1")
    r = subprocess.run([str(INSTALLER / "scripts" / "wine_smoke.sh"), str(v1), str(v2), str(bundle),
                        str(tmp_path / "wine")], capture_output=True, text=True, timeout=280)
    assert r.returncode == 0, r.stdout + r.stderr
    for step in ("silent install of 0.1.0", "registry HKLM", "shortcuts: desktop and Start menu",
                 "old version removed", "properties kept across the upgrade", "uninstall clean"):
        assert step in r.stdout
    assert "SMOKE PASSED" in r.stdout


def test_app_reads_the_msi_registry_settings(monkeypatch, tmp_path):
    """On Windows the values the MSI wrote to HKLM\\Software\\Madoguchi are a config layer under the
    machine config file (winreg cannot run here: the registry read is replaced, the rest is real)."""
    written = {"data_dir": r"D:\MadoguchiData", "models_dir": "", "office_server": "pg01.office.local",
               "security.encrypt": "1"}
    values = config_mod.machine_registry_values(written.get)
    assert values == {"data_dir": r"D:\MadoguchiData", "office_server": "pg01.office.local", "security.encrypt": True}
    monkeypatch.setattr(config_mod, "machine_registry_values", lambda read=None: values)
    machine = tmp_path / "machine.toml"
    monkeypatch.setenv("MADOGUCHI_MACHINE_CONFIG", str(machine))
    monkeypatch.setenv("MADOGUCHI_USER_CONFIG", str(tmp_path / "user.toml"))
    for env in ("MADOGUCHI_DATA_DIR", "MADOGUCHI_MODELS_DIR", "MADOGUCHI_MANUALS_DIR", "MADOGUCHI_OFFICE_SERVER"):
        monkeypatch.delenv(env, raising=False)
    cfg = config_mod.load()
    assert cfg["data_dir"] == r"D:\MadoguchiData" and cfg["office_server"] == "pg01.office.local"
    assert cfg.sources["data_dir"].startswith("machine registry") and cfg["security.encrypt"] is True
    machine.write_text('data_dir = "E:\\\\Other"\n', encoding="utf-8")
    cfg = config_mod.load()
    assert cfg["data_dir"] == "E:\\Other" and cfg["office_server"] == "pg01.office.local"
    assert config_mod.machine_registry_values() == values  # patched; real function returns {} off Windows


def test_registry_layer_is_windows_only():
    if sys.platform != "win32":
        assert config_mod.machine_registry_values() == {}


def test_self_test_reports_not_built_domains_as_skips_not_passes(monkeypatch, ctx):
    from engine import selftest
    monkeypatch.setattr(selftest, "_has", lambda module: module != "engine.mirrors.diagnose")
    r = selftest._timed("mirrors", "diagnosis", lambda: selftest.diagnose_mirror(ctx))
    assert r.status == selftest.SKIP and "not built" in r.detail and r.ok
    r = selftest._timed("x", "broken", lambda: (_ for _ in ()).throw(RuntimeError("boom")))
    assert r.status == selftest.FAIL and not r.ok and "boom" in r.detail


def test_self_test_mirror_check_fails_when_the_mirror_is_not_where_drawn(monkeypatch, ctx, tmp_path):
    """The diagnosis check compares with the drawn mirror: a wrong position is a FAIL, not a pass."""
    from engine import selftest
    if not selftest._has("engine.mirrors.diagnose"):
        pytest.skip("mirrors domain not built")
    r = selftest._timed("mirrors", "diagnosis", lambda: selftest.diagnose_mirror(ctx))
    assert r.status == selftest.PASS, r.detail
    res = tmp_path / "resources"
    shutil.copytree(selftest.resources_dir() / "samples", res / "samples")
    (res / "samples" / "mirror_ja.json").write_text('{"mirror_center": [5.0, 5.0]}', encoding="utf-8")
    monkeypatch.setattr(selftest, "resources_dir", lambda: res)
    r = selftest._timed("mirrors", "diagnosis", lambda: selftest.diagnose_mirror(ctx))
    assert r.status == selftest.FAIL and "not located" in r.detail


@pytest.mark.installer
@needs_msitools
@needs_wine
@pytest.mark.timeout(1800)
def test_light_package_bundle_selftest_msi_and_wine_smoke(tmp_path):
    """``make -C installer LIGHT=1 smoke``: the real light package end to end (CI budget ≤ 8 min)."""
    if not (REPO / "models" / "llm-small").is_dir():
        pytest.skip("models not assembled (make models)")
    r = subprocess.run(["make", "-C", str(INSTALLER), "LIGHT=1", "smoke"], capture_output=True, text=True,
                       env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    log = (INSTALLER / "build-light" / "selftest.log").read_text(encoding="utf-8")
    assert "self-test PASSED" in log and "FAIL " not in log
    assert "MSI CHECK PASSED" in out and "SMOKE PASSED" in out
    # the bundle just built reaches the office server (in this test, not a second one that needs the
    # bundle: with two xdist workers that one ran first, found no bundle and skipped)
    _frozen_app_checks_the_office_server_over_verified_tls(INSTALLER / "dist-light" / "madoguchi" / "madoguchi",
                                                          tmp_path)


def _frozen_app_checks_the_office_server_over_verified_tls(exe: Path, tmp_path: Path) -> None:
    """The frozen app reaches the office server: psycopg's C implementation and psycopg_binary's
    libpq/libssl are in the bundle, and TLS is verified against an office CA."""
    import json
    from tests.server_pg import PgServer
    assert exe.is_file(), exe
    srv = PgServer(tls=True)
    try:
        srv.admin("CREATE ROLE madoguchi LOGIN")
        srv.admin("CREATE DATABASE madoguchi OWNER madoguchi")
        env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "MADOGUCHI_USER_CONFIG": str(tmp_path / "u.toml"),
               "MADOGUCHI_MACHINE_CONFIG": str(tmp_path / "m.toml"), "MADOGUCHI_DATA_DIR": str(tmp_path / "data")}
        r = subprocess.run([str(exe), "server", "init", "--json", "--server", f"localhost:{srv.port}",
                            "--sslrootcert", str(srv.ca_cert)], capture_output=True, text=True, env=env, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        out = json.loads(r.stdout)
        assert out["ok"] and out["tls"] and out["tls_verified"] and out["applied"][-1] == out["latest_version"]
        assert "(binary, libpq" in out["client"]      # psycopg_binary and its own libpq, not a system one
        r = subprocess.run([str(exe), "server", "check", "--server", f"localhost:{srv.port}"],
                           capture_output=True, text=True, env=env, timeout=300)
        assert r.returncode == 0 and "NOT verified" in r.stdout, r.stdout + r.stderr
    finally:
        srv.stop()


def _native_dependencies() -> dict[str, set[str]]:
    """Every installed runtime dependency of madoguchi (transitively, no extras) that ships native
    files, with the top-level import names it installs."""
    import re
    from importlib import metadata
    from packaging.requirements import Requirement
    native = (".so", ".pyd", ".dll", ".dylib")
    seen, todo, out = set(), ["madoguchi"], {}
    while todo:
        name = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        for r in dist.requires or []:
            req = Requirement(r)
            if not req.marker or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
        files = [str(f) for f in dist.files or [] if not str(f).startswith("..")]
        if name != "madoguchi" and any(f.endswith(native) or ".so." in f for f in files):
            out[dist.metadata["Name"]] = {f.split("/")[0].split(".")[0] for f in files
                                          if not f.split("/")[0].endswith((".dist-info", ".data", ".libs"))}
    return out


def test_every_native_dependency_is_named_in_the_bundle_registry():
    """A new dependency with native parts must be named in engine/bundle.py (collected whole by the
    installer spec and imported by the frozen self-test, or left to PyInstaller's hooks on
    purpose) — the last round's frozen self-test failed on new dependencies nobody added."""
    from engine import bundle
    named = set(bundle.COLLECT_WHOLE) | set(bundle.HOOKED)
    deps = _native_dependencies()
    assert {"ctranslate2", "llama_cpp_python", "numpy"} <= set(deps), sorted(deps)
    missing = {d: sorted(tops) for d, tops in deps.items() if not tops & named}
    assert not missing, f"native dependencies not in engine/bundle.py: {missing}"
    assert "engine.bundle" in (INSTALLER / "madoguchi.spec").read_text(encoding="utf-8")
    assert bundle.import_all().startswith(str(len(bundle.COLLECT_WHOLE)))

