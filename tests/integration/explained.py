"""What EXPLAIN says about a statement, and the decision cache's clean-up, for the steering tests."""

from __future__ import annotations

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
