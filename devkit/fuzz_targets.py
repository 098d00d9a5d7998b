"""Parsers Madoguchi feeds untrusted files to, each wrapped as ``target(data: bytes)``.

A target passes when the parser returns normally or raises a MadoguchiError (a clear,
translated error); any other exception, a crash or a hang is a defect. Shared by
tests/test_fuzz.py (hypothesis, CI-sized) and bench/fuzz.py (long runs, counted)."""
from __future__ import annotations

import io
import json
import os
import tempfile
import wave
from functools import lru_cache
from pathlib import Path

import numpy as np

from engine.errors import MadoguchiError

ROOT = Path(__file__).resolve().parent.parent
_tmp = Path(tempfile.mkdtemp(prefix="madoguchi-fuzz-"))


def _write(name: str, data: bytes) -> Path:
    p = _tmp / name
    p.write_bytes(data)
    return p


# ------------------------------------------------------------------ seeds (valid files to mutate)

@lru_cache(None)
def seed_wav() -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        t = np.arange(8000) / 16000
        w.writeframes((np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2").tobytes())
    return buf.getvalue()


@lru_cache(None)
def seed_jpeg() -> bytes:
    from PIL import Image
    im = Image.new("RGB", (320, 240), (200, 120, 40))
    buf = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6
    im.save(buf, "JPEG", exif=exif)
    return buf.getvalue()


@lru_cache(None)
def seed_pdf() -> bytes:
    from fpdf import FPDF
    from engine.manuals.samples import japanese_font
    pdf = FPDF()
    pdf.add_font("jp", "", str(japanese_font()))
    pdf.set_font("jp", size=12)
    for i in range(2):
        pdf.add_page()
        pdf.multi_cell(0, 8, f"第{i + 1}章 保護の要件\n問{i + 1}-1 家賃の扱いは？\n答 住宅扶助の範囲で認める。")
    return bytes(pdf.output())


@lru_cache(None)
def seed_docx() -> bytes:
    import docx
    d = docx.Document()
    d.add_heading("第1 世帯の認定", level=1)
    d.add_paragraph("問1-1 同居の親族は同一世帯か。")
    d.add_paragraph("答 原則として同一世帯として認定する。")
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


SEED_HTML = "<html><body><h1>第1章 総則</h1><p>問1-1 家賃は？</p><p>答 住宅扶助。</p></body></html>".encode()
SEED_TRANSCRIPT = json.dumps([{"start": 0, "end": 2.5, "speaker": "citizen", "text": "家賃が6万円です。", "final": True}],
                             ensure_ascii=False).encode()
SEED_TEMPLATE = (ROOT / "resources" / "templates" / "seikatsu_hogo.toml").read_bytes()
SEED_CONFIG = b'office_name = "X"\n[asr]\nthreads = 2\nchannels = 1\n'


# ------------------------------------------------------------------ targets

def audio_decode(data: bytes) -> None:
    from engine.audio import read_audio
    p = _write("in.wav", data)
    try:
        read_audio(p)
    except MadoguchiError:
        pass


def pdf_ingest(data: bytes) -> None:
    from engine.manuals import ingest
    try:
        ingest.parse(_write("in.pdf", data))
    except MadoguchiError:
        pass


def docx_ingest(data: bytes) -> None:
    from engine.manuals import ingest
    try:
        ingest.parse(_write("in.docx", data))
    except MadoguchiError:
        pass


def html_ingest(data: bytes) -> None:
    from engine.manuals import ingest
    try:
        ingest.parse(_write("in.html", data))
    except MadoguchiError:
        pass


def photo_intake(data: bytes) -> None:
    from engine.mirrors.intake import load_photo
    try:
        load_photo(_write("in.jpg", data))
    except MadoguchiError:
        pass


def transcript_json(data: bytes) -> None:
    from engine.records.draft import segments_from_file
    try:
        segments_from_file(_write("in.json", data))
    except MadoguchiError:
        pass


def template_toml(data: bytes) -> None:
    from engine.records.template import parse
    try:
        parse(data.decode("utf-8", errors="replace"), "fuzz.toml")
    except MadoguchiError:
        pass


def config_toml(data: bytes) -> None:
    from engine import config
    p = _write("config.toml", data)
    old = os.environ.get("MADOGUCHI_USER_CONFIG")
    os.environ["MADOGUCHI_USER_CONFIG"] = str(p)
    try:
        config.load({"data_dir": str(_tmp / "d")})
    except MadoguchiError:
        pass
    finally:
        if old is None:
            os.environ.pop("MADOGUCHI_USER_CONFIG", None)
        else:
            os.environ["MADOGUCHI_USER_CONFIG"] = old


TARGETS = {
    "audio decode (WAV/FLAC/MP3 via PyAV)": (audio_decode, seed_wav),
    "PDF ingest (pypdfium2)": (pdf_ingest, seed_pdf),
    "DOCX ingest (python-docx)": (docx_ingest, seed_docx),
    "HTML ingest (BeautifulSoup)": (html_ingest, lambda: SEED_HTML),
    "photo/EXIF intake (Pillow)": (photo_intake, seed_jpeg),
    "transcript JSON": (transcript_json, lambda: SEED_TRANSCRIPT),
    "record template TOML": (template_toml, lambda: SEED_TEMPLATE),
    "config TOML": (config_toml, lambda: SEED_CONFIG),
}


def mutate(seed: bytes, rng: np.random.Generator) -> bytes:
    """Byte flips, truncation, splices and inserted junk: what a damaged file looks like."""
    b = bytearray(seed)
    op = rng.integers(0, 5)
    if op == 0 and b:
        for _ in range(int(rng.integers(1, 20))):
            b[int(rng.integers(0, len(b)))] = int(rng.integers(0, 256))
    elif op == 1:
        b = b[: int(rng.integers(0, len(b) + 1))]
    elif op == 2 and b:
        i = int(rng.integers(0, len(b)))
        b[i:i] = rng.integers(0, 256, int(rng.integers(1, 200)), dtype=np.uint8).tobytes()
    elif op == 3 and len(b) > 2:
        i, j = sorted(rng.integers(0, len(b), 2))
        b[i:j] = b[j:] [: j - i]
    else:
        b = bytearray(rng.integers(0, 256, int(rng.integers(0, 2000)), dtype=np.uint8).tobytes())
    return bytes(b)


# ------------------------------------------------------------------ atheris (coverage-guided)

def by_short_name() -> dict[str, tuple]:
    """``audio_decode`` → (label, target, seed_fn): the names the atheris runner takes."""
    return {t.__name__: (label, t, seed) for label, (t, seed) in TARGETS.items()}


INSTRUMENTED = ["engine", "bs4", "docx", "PIL", "pypdfium2", "tomllib", "av"]
PARSER_MODULES = ["engine.audio", "engine.manuals.ingest", "engine.mirrors.intake", "engine.records.draft",
                  "engine.records.template", "engine.config"]


def atheris_main(argv: list[str]) -> None:
    """``python -m devkit.fuzz_targets NAME [libFuzzer flags]``: fuzz one parser with atheris
    (coverage-guided libFuzzer) starting from its valid seed file. Any exception other than a
    MadoguchiError (the targets swallow those) is a finding: libFuzzer stops and saves the input.
    libFuzzer prints ``Done N runs in S second(s)`` at the end: the inputs tried."""
    import sys

    import atheris
    name, flags = argv[1], argv[2:]
    _label, target, seed_fn = by_short_name()[name]
    # coverage from the parsers' own Python code (ours and the pure-Python libraries under them),
    # not from numpy & co.: instrumenting everything loaded makes start-up take minutes
    with atheris.instrument_imports(include=INSTRUMENTED):
        import importlib
        for mod in PARSER_MODULES:
            importlib.import_module(mod)
    corpus = _tmp / f"corpus-{name}"
    corpus.mkdir(exist_ok=True)
    (corpus / "seed").write_bytes(seed_fn())
    target(seed_fn())
    atheris.Setup([sys.argv[0], *flags, str(corpus)], target)
    atheris.Fuzz()


if __name__ == "__main__":
    import sys
    atheris_main(sys.argv)
