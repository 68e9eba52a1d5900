"""What EXPLAIN says about a statement, the decision cache's clean-up, and waiting for the worker,
for the steering tests (their fixtures: conftest.py)."""

from __future__ import annotations

import time
from typing import Any


def query_id(conn: Any, sql: str) -> int:
    """The statement's query id (EXPLAIN VERBOSE's "Query Identifier", as the decision cache keys it)."""
    return int(conn.execute(f"EXPLAIN (VERBOSE, FORMAT JSON) {sql}").fetchone()[0][0]["Query Identifier"])


def join_types(conn: Any, sql: str) -> set[str]:
    """The join methods of the plan PostgreSQL (steered or not) would run for the statement."""
    found: set[str] = set()

    def walk(node: dict[str, Any]) -> None:
        if node["Node Type"] in ("Nested Loop", "Hash Join", "Merge Join"):
            found.add(node["Node Type"])
        for child in node.get("Plans", []):
            walk(child)

    walk(conn.execute(f"EXPLAIN (FORMAT JSON) {sql}").fetchone()[0][0]["Plan"])
    return found


def unpin_all(conn: Any) -> None:
    """Remove every steering decision of the database (a fixture's teardown)."""
    for (qid,) in conn.execute("SELECT query_id FROM ruvector_dag_steering_decisions()").fetchall():
        conn.execute("SELECT ruvector_dag_unpin(%s)", (qid,))


def wait_drained(conn: Any, table: str = "trap_f") -> None:
    """Until the worker has consumed everything captured for the table (it drains every 200 ms)."""
    for _ in range(100):
        if conn.execute("SELECT ruvector_dag_learning_stats(%s)", (table,)).fetchone()[0][
                "trajectories_buffered"] == 0:
            return
        time.sleep(0.05)
