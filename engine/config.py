"""Layered TOML configuration.

Layers, lowest to highest priority:
  1. built-in defaults (``KEYS`` below, which is also the documentation of every key)
  2. machine-wide settings the MSI installer writes to the registry (Windows:
     ``HKLM\\Software\\Madoguchi`` values data_dir, models_dir, manuals_dir, office_server,
     security.encrypt), then the
     machine-wide config file
     (Windows ``%PROGRAMDATA%\\Madoguchi\\config.toml``, elsewhere ``/etc/madoguchi/config.toml``;
     override the path with ``MADOGUCHI_MACHINE_CONFIG``)
  3. per-user config (``platformdirs.user_config_dir('Madoguchi')/config.toml``;
     override with ``MADOGUCHI_USER_CONFIG``)
  4. environment: ``MADOGUCHI_DATA_DIR``, ``MADOGUCHI_MODELS_DIR``, ``MADOGUCHI_MANUALS_DIR``
  5. explicit overrides (``--data-dir`` on the command line)

Unknown keys produce a warning (logged and kept in ``Config.warnings``); a value of the
wrong type or out of range raises :class:`ConfigError` naming the key.
"""
from __future__ import annotations

import logging
import os
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import platformdirs
import tomli_w

from .errors import MadoguchiError

log = logging.getLogger(__name__)

APP_NAME = "Madoguchi"


class ConfigError(MadoguchiError, ValueError):
    """A configuration value is invalid; the message names the key."""
    ja_default = "設定ファイルに誤りがあります。システム管理者に連絡してください。"


@dataclass(frozen=True)
class Key:
    name: str
    default: Any
    type: type | tuple
    doc: str
    check: Callable[[Any], bool] | None = None
    choices: tuple | None = None


def _hours_ok(v) -> bool:
    from .phone.hours import valid
    return valid(v)


def _positive(v) -> bool:
    return v > 0


KEYS: dict[str, Key] = {k.name: k for k in [
    Key("data_dir", "", str, "Folder for the database, audio, logs. Empty: the platform's user data folder."),
    Key("models_dir", "", str, "Folder with the assembled models. Empty: `models/` beside the application."),
    Key("manuals_dir", "", str, "Folder the manual search indexes (PDF, DOCX, HTML, TXT, MD)."),
    Key("office_server", "", str, "Office PostgreSQL server: a host (database/user madoguchi, TLS when offered) or a postgresql:// URL. Empty: embedded SQLite."),
    Key("server.sslrootcert", "", str, "The office CA certificate (PEM) that signed the office server's certificate: TLS is then verified (sslmode=verify-full). Empty: TLS when the server offers it, unverified."),
    Key("office_name", "北九州市小倉北区役所 保護課", str, "Office name printed on exported records."),
    Key("log_level", "INFO", str, "Log level of the rotating log file.", choices=("DEBUG", "INFO", "WARNING", "ERROR")),
    Key("asr.engine", "faster-whisper", str, "Speech engine.", choices=("faster-whisper", "vosk")),
    Key("asr.model", "whisper-base", str, "Whisper model: a manifest name or a CTranslate2 folder name in models_dir."),
    Key("asr.final_model", "", str, "Model for the final pass after 停止. Empty: same as asr.model."),
    Key("asr.vosk_model", "", str, "Folder name of a vosk model in models_dir (used when asr.engine = 'vosk')."),
    Key("asr.language", "ja", str, "Transcription language."),
    Key("asr.device", "", (str, int), "Input device name or index for the microphone. Empty: system default."),
    Key("asr.channels", 1, int, "1 = one microphone; 2 = staff on channel 1, citizen on channel 2.", choices=(1, 2)),
    Key("asr.threads", 2, int, "CPU threads for Whisper.", check=_positive),
    Key("asr.live_context", 10.0, (int, float), "Live: decode an utterance behind the previous one if it began within "
        "this many seconds (more accurate, ~0.4 s more latency per Final). 0 = each utterance alone."),
    Key("asr.final_systems", 5, int, "Final pass: how many differently chunked decodes are voted on (1–5; fewer is faster).",
        check=_positive),
    Key("asr.glossary", True, bool, "Feed the office glossary to Whisper as hotwords."),
    Key("asr.live_prompt", "glossary", str, "Live Finals: 'glossary' gives Whisper the glossary as its initial prompt; "
        "'none' decodes without it (on noisy counter audio the prompt makes Whisper write glossary words into "
        "the noise: docs/benchmarks.md, asr-realistic).", choices=("glossary", "none")),
    Key("llm.model", "llm-default", str, "Drafting model: a manifest name or a .gguf file name in models_dir."),
    Key("llm.threads", 2, int, "CPU threads for the LLM.", check=_positive),
    Key("llm.n_ctx", 4096, int, "Context size of the LLM.", check=lambda v: 512 <= v <= 131072),
    Key("llm.enabled", True, bool, "Use the LLM for drafting (False: extractive drafts only)."),
    Key("embed.model", "embed-ja", str, "Sentence-embedding model for manual search."),
    Key("records.template", "seikatsu_hogo", str, "Default record template (file name in resources/templates)."),
    Key("records.drafter", "items", str, "How drafts are written: 'items' (exchanges → record items, "
        "engine/records/items.py; beats 'llm' on every figure of bench/records.py's test split) or 'llm' "
        "(the model per section; also used whenever --model is given)."),
    Key("records.finish_budget", 15.0, (int, float), "Seconds the LLM may use after 停止 to finish the draft; lines it "
        "does not reach by then are quoted as labelled extracts.", check=_positive),
    Key("retention.audio_days", 30, int, "Days after approval before consultation audio is deleted.", check=lambda v: v >= 0),
    Key("security.encrypt", False, bool, "Encrypt the database (SQLCipher) and consultation audio (AES-GCM) with the OS-protected data key."),
    Key("phone.office_hours", "mon-fri 08:30-17:15", str, "AI phone: when a hand-off is a transfer to staff "
        "(outside: a callback request). Days mon..sun, 24-hour times.", check=lambda v: _hours_ok(v)),
    Key("mirrors.id_pattern", r"(?P<id>[A-Z]{0,3}-?\d{3,6})", str, "Regex that takes the 管理番号 from a photo file name."),
]}


def machine_config_path() -> Path:
    env = os.environ.get("MADOGUCHI_MACHINE_CONFIG")
    if env:
        return Path(env)
    if sys.platform == "win32":
        return Path(os.environ.get("PROGRAMDATA", r"C:\ProgramData")) / APP_NAME / "config.toml"
    return Path("/etc/madoguchi/config.toml")


REGISTRY_KEY = r"Software\Madoguchi"
REGISTRY_NAMES = ("data_dir", "models_dir", "manuals_dir", "office_server", "security.encrypt")


def machine_registry_values(read: Callable[[str], Any] | None = None) -> dict[str, str]:
    """The settings the MSI wrote to ``HKLM\\Software\\Madoguchi`` (IT's DATADIR, MODELSDIR, MANUALSDIR,
    OFFICESERVER, ENCRYPT). Windows only; empty values are skipped. ``read(name)`` replaces the registry read."""
    if read is None:
        if sys.platform != "win32":
            return {}
        read = _read_hklm
    out = {}
    for name in REGISTRY_NAMES:
        v = read(name)
        if isinstance(v, str) and v.strip():
            out[name] = parse_cli_value(name, v.strip()) if KEYS[name].type is bool else v.strip()
    return out


def _read_hklm(name: str):
    import winreg
    try:
        with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, REGISTRY_KEY, 0,
                            winreg.KEY_READ | winreg.KEY_WOW64_64KEY) as key:
            return winreg.QueryValueEx(key, name)[0]
    except OSError:
        return None


def user_config_path() -> Path:
    env = os.environ.get("MADOGUCHI_USER_CONFIG")
    if env:
        return Path(env)
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)) / "config.toml"


def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, name + "."))
        else:
            out[name] = v
    return out


def _unflatten(flat: dict[str, Any]) -> dict:
    out: dict = {}
    for name, v in flat.items():
        parts = name.split(".")
        cur = out
        for p in parts[:-1]:
            cur = cur.setdefault(p, {})
        cur[parts[-1]] = v
    return out


def validate(name: str, value: Any) -> Any:
    key = KEYS[name]
    if isinstance(value, bool) and key.type is not bool:
        raise ConfigError(f"config key '{name}': expected {_tname(key.type)}, got a boolean")
    if not isinstance(value, key.type):
        raise ConfigError(f"config key '{name}': expected {_tname(key.type)}, got {type(value).__name__} {value!r}")
    if key.choices is not None and value not in key.choices:
        raise ConfigError(f"config key '{name}': {value!r} is not one of {', '.join(map(str, key.choices))}")
    if key.check is not None and not key.check(value):
        raise ConfigError(f"config key '{name}': value {value!r} is out of range")
    return value


def _tname(t) -> str:
    if isinstance(t, tuple):
        return " or ".join(x.__name__ for x in t)
    return t.__name__


def _read_layer(path: Path, label: str, warnings: list[str]) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{label} config {path} is not valid TOML: {e}") from e
    flat = _flatten(raw)
    out = {}
    for name, value in flat.items():
        if name not in KEYS:
            msg = f"unknown config key '{name}' in {path} (ignored)"
            warnings.append(msg)
            log.warning(msg)
            continue
        out[name] = validate(name, value)
    return out


@dataclass
class Config:
    values: dict[str, Any]
    sources: dict[str, str]
    warnings: list[str] = field(default_factory=list)

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def get(self, name: str, default=None):
        return self.values.get(name, default)

    @property
    def data_dir(self) -> Path:
        return Path(self.values["data_dir"])


def load(overrides: dict[str, Any] | None = None) -> Config:
    values = {k: key.default for k, key in KEYS.items()}
    sources = {k: "default" for k in KEYS}
    warnings: list[str] = []
    for k, v in machine_registry_values().items():  # written by the MSI; the machine config file wins
        values[k] = validate(k, v)
        sources[k] = f"machine registry (HKLM\\{REGISTRY_KEY})"
    for label, path in (("machine", machine_config_path()), ("user", user_config_path())):
        for k, v in _read_layer(path, label, warnings).items():
            values[k] = v
            sources[k] = f"{label} ({path})"
    for env, k in (("MADOGUCHI_DATA_DIR", "data_dir"), ("MADOGUCHI_MODELS_DIR", "models_dir"),
                   ("MADOGUCHI_MANUALS_DIR", "manuals_dir"), ("MADOGUCHI_OFFICE_SERVER", "office_server")):
        if os.environ.get(env):
            values[k] = os.environ[env]
            sources[k] = f"environment ({env})"
    for k, v in (overrides or {}).items():
        if v is None:
            continue
        if k not in KEYS:
            raise ConfigError(f"unknown config key '{k}'")
        values[k] = validate(k, v)
        sources[k] = "command line"
    if not values["data_dir"]:
        values["data_dir"] = platformdirs.user_data_dir(APP_NAME, appauthor=False)
        sources["data_dir"] = "platform default"
    return Config(values, sources, warnings)


def set_user_value(name: str, value: Any, path: Path | None = None) -> Path:
    """Write one key into the per-user config file (validated first)."""
    if name not in KEYS:
        raise ConfigError(f"unknown config key '{name}'")
    validate(name, value)
    path = path or user_config_path()
    current: dict[str, Any] = {}
    if path.is_file():
        current = _flatten(tomllib.loads(path.read_text(encoding="utf-8")))
    current[name] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(tomli_w.dumps(_unflatten(current)), encoding="utf-8")
    os.replace(tmp, path)
    return path


# a counter's own microphone may be set by whoever signs in at it; every other setting (models,
# folders, security, retention, …) is an administrator's
PERSONAL_KEYS = frozenset({"asr.device", "asr.channels"})
MODEL_KEYS = frozenset({"asr.model", "asr.final_model", "llm.model", "asr.engine"})


def parse_cli_value(name: str, text: str) -> Any:
    """Turn a command-line string into the key's type."""
    if name not in KEYS:
        raise ConfigError(f"unknown config key '{name}'")
    t = KEYS[name].type
    if t is bool:
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"config key '{name}': expected true/false, got {text!r}")
    if t is int or (isinstance(t, tuple) and int in t and text.lstrip("-").isdigit()):
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"config key '{name}': expected an integer, got {text!r}") from None
    return text
