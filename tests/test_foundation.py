"""Foundation: config layers, store migrations, models and doctor, CLI basics."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine import config as cm
from engine import doctor, models
from engine.store import Store, StoreError

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "engine.cli"]


# ------------------------------------------------------------------ config

def test_config_layers_and_priority(tmp_path, monkeypatch):
    machine = tmp_path / "machine-config.toml"
    user = tmp_path / "user-config.toml"
    machine.write_text('office_name = "A区役所"\n[asr]\nthreads = 3\n', encoding="utf-8")
    user.write_text('[asr]\nthreads = 1\n', encoding="utf-8")
    cfg = cm.load({"data_dir": str(tmp_path / "d")})
    assert cfg["office_name"] == "A区役所" and cfg.sources["office_name"].startswith("machine")
    assert cfg["asr.threads"] == 1 and cfg.sources["asr.threads"].startswith("user")
    assert cfg["data_dir"] == str(tmp_path / "d")


def test_config_unknown_key_warns_bad_value_names_key(tmp_path):
    user = tmp_path / "user-config.toml"
    user.write_text('colour = "blue"\n[llm]\nthreads = 2\n', encoding="utf-8")
    cfg = cm.load()
    assert any("colour" in w for w in cfg.warnings)
    user.write_text('[llm]\nthreads = "two"\n', encoding="utf-8")
    with pytest.raises(cm.ConfigError, match="llm.threads"):
        cm.load()
    user.write_text('[asr]\nchannels = 3\n', encoding="utf-8")
    with pytest.raises(cm.ConfigError, match="asr.channels"):
        cm.load()
    user.write_text('[asr\nbroken', encoding="utf-8")
    with pytest.raises(cm.ConfigError, match="not valid TOML"):
        cm.load()


def test_config_set_roundtrip(tmp_path):
    cm.set_user_value("asr.device", "USB Mic")
    cm.set_user_value("retention.audio_days", 10)
    cfg = cm.load()
    assert cfg["asr.device"] == "USB Mic" and cfg["retention.audio_days"] == 10
    with pytest.raises(cm.ConfigError, match="retention.audio_days"):
        cm.set_user_value("retention.audio_days", -1)


# ------------------------------------------------------------------ store

def test_store_migrates_once_and_is_wal(data_dir):
    s = Store(data_dir / "m.db")
    assert s.schema_version() == s.latest_version() >= 2
    assert s.query_one("PRAGMA journal_mode")["journal_mode"] == "wal"
    assert s.migrate() == []  # idempotent
    s.set_setting("x", {"a": 1})
    assert s.get_setting("x") == {"a": 1}
    s.close()


def test_store_transaction_rolls_back(data_dir):
    s = Store(data_dir / "t.db")
    with pytest.raises(RuntimeError):
        with s.transaction():
            s.set_setting("k", 1)
            raise RuntimeError("boom")
    assert s.get_setting("k") is None
    s.close()


def test_audit_table_is_append_only(data_dir):
    s = Store(data_dir / "a.db")
    s.insert("audit_log", {"ts": 1.0, "actor": "x", "action": "y", "prev_hash": "0", "hash": "1"})
    with pytest.raises(Exception, match="append-only"):
        s.execute("UPDATE audit_log SET actor = 'z'")
    with pytest.raises(Exception, match="append-only"):
        s.execute("DELETE FROM audit_log")
    s.close()


def test_failed_migration_leaves_previous_version(data_dir, monkeypatch):
    import engine.store.sqlite as st   # Store.migrate and ServerStore.migrate read the list there
    real = st.migrations()
    bad = real + [(9999, "broken", "CREATE TABLE fine(x);\nTHIS IS NOT SQL;")]
    s = Store(data_dir / "b.db")
    v = s.schema_version()
    monkeypatch.setattr(st, "migrations", lambda: bad)
    with pytest.raises(StoreError, match="9999_broken"):
        s.migrate()
    assert s.schema_version() == v
    assert s.query_one("SELECT name FROM sqlite_master WHERE name = 'fine'") is None
    s.close()


def test_corrupt_database_is_a_clear_error(data_dir):
    p = data_dir / "madoguchi.db"
    p.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError):
        Store(p)


# ------------------------------------------------------------------ models + doctor

def test_manifest_models_present_and_verified():
    specs = models.load_manifest()
    assert {"whisper-base", "llm-default", "embed-ja"} <= set(specs)
    for name, spec in specs.items():
        for f in spec.files:
            assert len(f.sha256) == 64, f"{name}/{f.name} has no checksum in the manifest"
        assert models.verify(name, deep=False).ok, name


def test_a_model_kind_doctor_does_not_know_is_one_plain_failed_check(tmp_path, monkeypatch):
    """A manifest entry of a kind not in models.KINDS (a newer manifest, a typo) is refused with a
    message naming the kind and the known ones — doctor shows it as one failed check instead of a
    KeyError (the 'image-backbone' entry of an earlier branch made doctor crash that way)."""
    shipped = models.manifest_path().read_text(encoding="utf-8")
    manifest = tmp_path / "manifest.toml"
    manifest.write_text(shipped + '\n[models.mirror-backbone]\nkind = "image-backbone"\ndescription = "x"\n'
                        'dir = "mirror-backbone"\n', encoding="utf-8")
    monkeypatch.setattr(models, "manifest_path", lambda: manifest)
    with pytest.raises(models.ModelError, match="image-backbone.*known kinds: whisper-ct2, gguf"):
        models.load_manifest()
    checks = doctor.check_models(cm.load(), deep=False, load=False)
    assert [(c.name, c.ok) for c in checks] == [("manifest", False)] and "engine.models.KINDS" in checks[0].detail
    monkeypatch.setattr(models, "manifest_path", lambda: tmp_path / "shipped.toml")
    (tmp_path / "shipped.toml").write_text(shipped, encoding="utf-8")
    assert {s.kind for s in models.load_manifest().values()} <= set(models.KINDS)


@pytest.mark.slow
def test_doctor_all_models_ok(ctx):
    checks = doctor.check_models(ctx.config, deep=True, load=True)
    assert all(c.ok for c in checks), doctor.format_table(checks)


def _models_copy_with(tmp_path, corrupt=None, remove=None) -> Path:
    """A models folder of symlinks to the real one, with whisper-base/model.bin copied (and damaged)."""
    src = models.models_dir()
    dst = tmp_path / "models"
    dst.mkdir()
    for d in src.iterdir():
        if d.is_dir() and d.name != "whisper-base":
            (dst / d.name).symlink_to(d)
    wb = dst / "whisper-base"
    wb.mkdir()
    for f in (src / "whisper-base").iterdir():
        if f.name == remove:
            continue
        if f.name == "model.bin":
            shutil.copyfile(f, wb / f.name)
        else:
            (wb / f.name).symlink_to(f)
    if corrupt:
        with open(wb / corrupt, "r+b") as fh:
            fh.seek(1_000_000)
            b = fh.read(1)
            fh.seek(1_000_000)
            fh.write(bytes([b[0] ^ 0xFF]))
    return dst


@pytest.mark.slow
def test_doctor_fails_on_one_corrupt_byte_naming_the_model(tmp_path, data_dir):
    mdir = _models_copy_with(tmp_path, corrupt="model.bin")
    env = dict(os.environ, MADOGUCHI_MODELS_DIR=str(mdir))
    r = subprocess.run(CLI + ["--data-dir", str(data_dir), "doctor"], capture_output=True, text=True,
                       env=env, cwd=ROOT, timeout=300)
    assert r.returncode == 1, r.stdout + r.stderr
    line = next(l for l in r.stdout.splitlines() if l.startswith("model") and "whisper-base" in l)
    assert "FAIL" in line and "checksum" in line
    assert "NOT READY" in r.stdout


def test_missing_model_is_one_clear_line(tmp_path):
    mdir = _models_copy_with(tmp_path, remove="model.bin")
    os.environ["MADOGUCHI_MODELS_DIR"] = str(mdir)
    try:
        with pytest.raises(models.ModelError) as e:
            models.load_whisper("whisper-base")
        msg = str(e.value)
        assert "whisper-base" in msg and "make models" in msg and "\n" not in msg
    finally:
        del os.environ["MADOGUCHI_MODELS_DIR"]


def test_wrong_model_file_is_rejected(tmp_path):
    fake = tmp_path / "models"
    fake.mkdir()
    (fake / "office.gguf").write_bytes(b"PK\x03\x04 not a gguf at all")
    os.environ["MADOGUCHI_MODELS_DIR"] = str(fake)
    try:
        with pytest.raises(models.ModelError, match="not a GGUF"):
            models.load_llm("office")
    finally:
        del os.environ["MADOGUCHI_MODELS_DIR"]


def test_it_placed_whisper_folder_is_accepted(tmp_path):
    """IT drops another CTranslate2 Whisper folder into the models folder and selects it by name."""
    fake = tmp_path / "models"
    fake.mkdir()
    (fake / "whisper-office").symlink_to(models.models_dir() / "whisper-base")
    os.environ["MADOGUCHI_MODELS_DIR"] = str(fake)
    try:
        assert models.model_path("whisper-office") == fake / "whisper-office"
        assert models.load_whisper("whisper-office") is not None
    finally:
        del os.environ["MADOGUCHI_MODELS_DIR"]


# ------------------------------------------------------------------ CLI

def test_cli_doctor_json_and_data_dir(data_dir):
    r = subprocess.run(CLI + ["--data-dir", str(data_dir), "doctor", "--quick", "--json"],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    out = json.loads(r.stdout)
    assert out["ready"] is True and r.returncode == 0
    assert (data_dir / "madoguchi.db").is_file()
    assert (data_dir / "logs" / "madoguchi.log").is_file()


def test_cli_bad_config_is_one_english_line(tmp_path, data_dir):
    (tmp_path / "user-config.toml").write_text('[asr]\nthreads = 0\n', encoding="utf-8")
    r = subprocess.run(CLI + ["--data-dir", str(data_dir), "doctor", "--quick"],
                       capture_output=True, text=True, cwd=ROOT, timeout=120,
                       env=dict(os.environ, MADOGUCHI_USER_CONFIG=str(tmp_path / "user-config.toml")))
    assert r.returncode == 2
    assert r.stderr.strip().startswith("error:") and "asr.threads" in r.stderr


@pytest.mark.slow
def test_selftest_draft_check_runs_from_source(ctx):
    """The frozen self-test's records check, run from source: it must keep pace with the drafter's API."""
    from engine import selftest
    assert "statements by" in selftest.draft_record(ctx)
