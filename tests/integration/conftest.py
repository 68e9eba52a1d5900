"""Fixtures of the steering tests: the trap workload (ruvector_dag.tools.workloads) and its role."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from explained import unpin_all

from ruvector_dag.tools import workloads


@pytest.fixture
def app(server: Any) -> Iterator[Any]:
    """A session of workloads.APP_ROLE, an ordinary role (the tables are given to it by their fixtures)."""
    workloads.own_tables(server.execute, ())
    with server.connect(user=workloads.APP_ROLE) as c:
        yield c


@pytest.fixture
def traps(conn: Any) -> Iterator[Any]:
    """The trap tables of ruvector_dag.tools.workloads, enrolled; dropped with their decisions after."""
    workloads.create(conn.execute)
    workloads.own_tables(conn.execute)
    for table in workloads.ENROLLED:
        conn.execute("SELECT ruvector_enable_neural_dag(%s)", (table,))
    yield conn
    unpin_all(conn)
    workloads.drop(conn.execute)

