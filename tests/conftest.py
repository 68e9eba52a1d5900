"""Shared fixtures: real PostgreSQL servers with ruvector_dag preloaded.

Integration tests run once per server major in RUVECTOR_TEST_PG (default
"16,18"); each major gets one cluster for the whole session, started from a
fresh data directory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

PG_VERSIONS = [int(v) for v in os.environ.get("RUVECTOR_TEST_PG", "16,18").split(",") if v.strip()]


@pytest.fixture(scope="session", params=PG_VERSIONS, ids=[f"pg{v}" for v in PG_VERSIONS])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from ruvector_dag.definitions.settings import EXACT_LEARNING
    from ruvector_dag.tools.server import Server

    # Learn from every statement (no CPU budget, no rate cap), so counts in the tests are exact.
    srv = Server(tmp_path_factory.mktemp(f"pg{request.param}") / "data", pg_version=request.param,
                 settings=EXACT_LEARNING)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def conn(server: Any) -> Iterator[Any]:
    with server.connect() as c:
        yield c
