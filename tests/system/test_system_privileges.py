"""tests/integration/test_privileges.py on Debian's PostgreSQL 15 (issue 14).

The same attacks and checks, collected again here against the system server
of `.ci/debian-pg15.sh` (RUVECTOR_SYSTEM_DSN, a superuser; the cluster
trusts local connections, so the tests' roles log in without a password);
skipped otherwise.  Only the ``server`` fixture differs: a stand-in for
ruvector_dag.tools.server.Server that connects to that server.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "integration"))
from test_privileges import *  # noqa: F403  (the tests and their fixtures, collected here)

DSN = os.environ.get("RUVECTOR_SYSTEM_DSN")
PGBIN = os.environ.get("RUVECTOR_SYSTEM_PGBIN")
pytestmark = pytest.mark.skipif(not DSN or not PGBIN, reason="needs a system server (.ci/debian-pg15.sh)")


class SystemServer:
    """What the tests use of Server: connect(), bin_dir and port."""

    def __init__(self, dsn: str, bin_dir: str) -> None:
        import psycopg

        self.dsn = dsn
        self.bin_dir = Path(bin_dir)
        self.port = psycopg.conninfo.conninfo_to_dict(dsn).get("port", 5432)

    def connect(self, **kwargs: Any) -> Any:
        import psycopg

        kwargs.setdefault("autocommit", True)
        return psycopg.connect(self.dsn, **kwargs)


@pytest.fixture(scope="session")
def server() -> Any:
    assert DSN and PGBIN
    return SystemServer(DSN, PGBIN)
