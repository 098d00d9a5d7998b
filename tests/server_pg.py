"""pytest fixtures on the test PostgreSQL (:mod:`devkit.pg`): a fresh migrated database per
test (``pg_url``), and ``data_dir`` once per backend. Without PostgreSQL installed they skip."""
from __future__ import annotations

import pytest

from devkit import pg
from devkit.pg import PostgresMissing, issue_cert, make_ca  # noqa: F401  (re-exported for the tests)


class PgServer(pg.PgServer):
    """:class:`devkit.pg.PgServer` that skips the test when PostgreSQL is not installed."""

    def __init__(self, *args, **kw):
        try:
            super().__init__(*args, **kw)
        except PostgresMissing as e:
            pytest.skip(str(e))


def server() -> pg.PgServer:
    try:
        return pg.server()
    except PostgresMissing as e:
        pytest.skip(str(e))


@pytest.fixture
def pg_url():
    """A fresh, migrated database on the test server; dropped afterwards."""
    srv = server()
    name = srv.fresh_database()
    yield srv.url(name)
    srv.drop_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def data_dir(request, tmp_path, monkeypatch):
    """conftest's ``data_dir``, once per backend: for ``postgresql`` the config (environment layer)
    points at a fresh server database, so ``ctx``, ``open_context`` and the CLI all use it."""
    d = tmp_path / "data"
    d.mkdir()
    if request.param == "postgresql":
        monkeypatch.setenv("MADOGUCHI_OFFICE_SERVER", request.getfixturevalue("pg_url"))
    return d
