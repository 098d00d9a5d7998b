"""The office-server password in the OS keyring, for real: keyring's own config file selects a
file backend (keyrings.alt PlaintextKeyring) in a temporary home, ``madoguchi server password``
stores it there, and the connection uses it; without a usable keyring the answer is clear."""
import json

import pytest

from engine.cli import main
from tests.server_pg import server

keyring = pytest.importorskip("keyring")
pytest.importorskip("keyrings.alt")


def _use_backend(tmp_path, monkeypatch, backend: str) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    monkeypatch.delenv("PGPASSWORD", raising=False)
    rc = tmp_path / "config" / "python_keyring" / "keyringrc.cfg"
    rc.parent.mkdir(parents=True, exist_ok=True)
    rc.write_text(f"[backend]\ndefault-keyring={backend}\n", encoding="utf-8")
    import keyring.core
    keyring.core.init_backend()


@pytest.fixture(autouse=True)
def _restore_keyring():
    before = keyring.get_keyring()
    yield
    keyring.set_keyring(before)


@pytest.fixture
def password_server():
    srv = server()
    role = f"kr{srv.port}_{__import__('os').getpid()}"
    if not srv.admin("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)):
        srv.require_password(role, "kr-pass-1")
    name = srv.fresh_database()
    yield f"postgresql://{role}@127.0.0.1:{srv.port}/{name}?sslmode=disable"
    srv.drop_database(name)


def test_password_from_a_file_keyring(password_server, tmp_path, monkeypatch, capsys):
    _use_backend(tmp_path, monkeypatch, "keyrings.alt.file.PlaintextKeyring")
    assert type(keyring.get_keyring()).__name__ == "PlaintextKeyring"
    url = password_server
    assert main(["server", "check", "--server", url]) == 2            # no password anywhere: refused
    assert "password" in capsys.readouterr().out
    monkeypatch.setenv("MADOGUCHI_SERVER_PASSWORD", "kr-pass-1")
    assert main(["server", "password", "--json", "--server", url]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["keyring"] == "Madoguchi office server" and out["name"].endswith("@127.0.0.1")
    stored = list((tmp_path / "share").rglob("keyring_pass.cfg"))
    assert stored and "[Madoguchi_20office_20server]" in stored[0].read_text()   # the backend's own file
    monkeypatch.delenv("MADOGUCHI_SERVER_PASSWORD")
    assert main(["server", "check", "--json", "--server", url]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] and out["password_from"] == "keyring" and "kr-pass-1" not in json.dumps(out)


def test_no_usable_keyring_is_said_clearly(password_server, tmp_path, monkeypatch, capsys):
    _use_backend(tmp_path, monkeypatch, "keyring.backends.fail.Keyring")
    from engine.store import server_password
    assert server_password("x", "127.0.0.1") is None                  # reading: quietly none, logged
    monkeypatch.setenv("MADOGUCHI_SERVER_PASSWORD", "kr-pass-1")
    assert main(["server", "password", "--server", password_server]) == 2
    assert "no usable OS keyring" in capsys.readouterr().err
    monkeypatch.setenv("PGPASSWORD", "kr-pass-1")                      # the documented fallback works
    assert main(["server", "check", "--json", "--server", password_server]) == 0
    assert json.loads(capsys.readouterr().out)["password_from"] == "PGPASSWORD"
