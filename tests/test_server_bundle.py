"""The frozen app (the PyInstaller bundle that ``make -C installer bundle`` builds) reaches the office
server: psycopg's C implementation and psycopg_binary's libpq/libssl are in the bundle, and TLS is
verified against an office CA (run after the installer test; skipped when no bundle is built)."""
import json
import subprocess
from pathlib import Path

import pytest

from tests.server_pg import PgServer

REPO = Path(__file__).resolve().parent.parent
BUNDLES = [REPO / "installer" / d / "madoguchi" / "madoguchi" for d in ("dist-light", "dist")]


@pytest.mark.installer
@pytest.mark.xdist_group("installer")
def test_frozen_app_checks_the_office_server_over_verified_tls(tmp_path):
    exe = next((b for b in BUNDLES if b.is_file()), None)
    if exe is None:
        pytest.skip("no PyInstaller bundle built (make -C installer bundle)")
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
