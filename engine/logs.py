"""Rotating log files in the data folder. Never log transcript text, names or record content:
log ids, counts, timings and error classes only."""
from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

_configured: set[str] = set()


def setup(data_dir: Path, level: str = "INFO") -> Path:
    logdir = Path(data_dir) / "logs"
    logdir.mkdir(parents=True, exist_ok=True)
    path = logdir / "madoguchi.log"
    root = logging.getLogger()
    if str(path) not in _configured:
        h = logging.handlers.RotatingFileHandler(path, maxBytes=5_000_000, backupCount=5, encoding="utf-8")
        h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(h)
        _configured.add(str(path))
    root.setLevel(getattr(logging, level, logging.INFO))
    return path
