"""The record-workflow tests of tests/test_records_workflow.py, run against both backends:
embedded SQLite and the office PostgreSQL server (a real server on loopback, tests/server_pg.py).
The only difference is the ``data_dir`` fixture, which points the config at the server."""
from tests.server_pg import data_dir, pg_url  # noqa: F401  (fixtures)
from tests.test_records_workflow import *  # noqa: F401,F403  (the same tests, collected here again)


def test_backend_is_the_parametrised_one(ctx, request):
    expected = request.node.callspec.params["data_dir"]
    assert getattr(ctx.store, "backend", "sqlite") == expected
