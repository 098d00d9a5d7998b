"""The users and audit-chain tests of tests/test_users_audit.py against both backends (see
tests/test_server_workflow.py)."""
from tests.server_pg import data_dir, pg_url  # noqa: F401  (fixtures)
from tests.test_users_audit import *  # noqa: F401,F403
