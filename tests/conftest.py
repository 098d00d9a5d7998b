import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def pytest_collection_modifyitems(config, items):
    """Longest first: the installer build (minutes of packaging and Wine) and the other slow
    tests start at once, beside the short ones, instead of leaving the last worker alone with
    them at the end. Stable, so each file keeps its own order."""
    rank = lambda item: 0 if item.get_closest_marker("installer") else 1 if item.get_closest_marker("slow") else 2  # noqa: E731
    items.sort(key=rank)


@pytest.fixture(autouse=True)
def _isolated_config(tmp_path, monkeypatch):
    """No test reads the developer's or the machine's config."""
    monkeypatch.setenv("MADOGUCHI_MACHINE_CONFIG", str(tmp_path / "machine-config.toml"))
    monkeypatch.setenv("MADOGUCHI_USER_CONFIG", str(tmp_path / "user-config.toml"))
    monkeypatch.delenv("MADOGUCHI_DATA_DIR", raising=False)
    yield


@pytest.fixture
def data_dir(tmp_path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    return d


@pytest.fixture
def ctx(data_dir):
    from engine.context import open_context
    c = open_context(data_dir)
    yield c
    c.close()
