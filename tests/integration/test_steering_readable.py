"""Readable steering (issue 17): which query was steered, and by how much, as a DBA reads it.

The trap workload of test_steering_learned.py (ruvector_dag.tools.workloads),
run as workloads.APP_ROLE; the view ruvector_dag.steering, the texts of
ruvector_dag.steered_queries and ruvector_dag_steering_series().
"""

from __future__ import annotations

from typing import Any

import pytest
from explained import query_id, wait_drained

from ruvector_dag.tools import workloads

SKEWED = workloads.QUERIES["skewed"]
OTHER_ROLE = "rvd_steer_reader"


def settle(c: Any, app: Any, runs: int = 40) -> int:
    """Run the trap until it is steered; the worker saves (ruvector_dag_learn); its query id."""
    qid = query_id(c, SKEWED)
    for _ in range(runs):
        app.execute(SKEWED).fetchall()
        wait_drained(c)
    c.execute("SELECT ruvector_dag_learn('trap_f')")
    return qid


def test_the_view_names_the_query_and_measures_each_arm(traps: Any, app: Any) -> None:
    c = traps
    qid = settle(c, app)
    rows = c.execute("SELECT table_name::text, query, arm, state, executions, mean_latency_ms, p95_latency_ms, "
                     "speedup, source FROM ruvector_dag.steering WHERE query_id = %s ORDER BY arm",
                     (qid,)).fetchall()
    by_arm = {r[2]: r for r in rows}
    assert len(by_arm) == len(rows), rows  # one row per (query, arm)
    text = rows[0][1]
    assert text is not None and "$1" in text and text.upper().startswith("SELECT"), text
    assert all(r[1] == text for r in rows)
    default = by_arm["default"]
    assert default[3] == "default" and default[4] >= 3 and default[7] == pytest.approx(1.0)
    chosen = [r for r in rows if r[3] == "chosen"]
    assert len(chosen) == 1 and chosen[0][8] == "learned", rows
    _, _, arm, _, executions, mean_ms, p95_ms, speedup, _ = chosen[0]
    assert arm != "default" and executions >= 1 and mean_ms > 0 and p95_ms >= mean_ms * 0.5 and speedup > 1.0, chosen
    assert {r[3] for r in rows} <= {"default", "trial", "in play", "chosen", "banned"}


def test_a_role_without_privileges_sees_no_text_of_anothers_query(server: Any, traps: Any, app: Any) -> None:
    c = traps
    qid = settle(c, app)
    assert c.execute("SELECT query FROM ruvector_dag.steered_queries WHERE query_id = %s",
                     (qid,)).fetchone()[0] is not None
    # the role that ran it sees its text, as pg_stat_statements shows it
    assert app.execute("SELECT query FROM ruvector_dag.steered_queries WHERE query_id = %s",
                       (qid,)).fetchone()[0] is not None
    c.execute(f"DROP ROLE IF EXISTS {OTHER_ROLE}")
    c.execute(f"CREATE ROLE {OTHER_ROLE} LOGIN")
    try:
        with server.connect(user=OTHER_ROLE) as other:
            assert other.execute("SELECT count(*) FROM ruvector_dag.steered_queries").fetchone()[0] == 0
            assert other.execute("SELECT count(*) FROM ruvector_dag.steering WHERE query IS NOT NULL"
                                 ).fetchone()[0] == 0
            assert other.execute("SELECT count(*) FROM ruvector_dag_steering_series(%s)", (qid,)).fetchone()[0] == 0
        c.execute(f"GRANT pg_read_all_stats TO {OTHER_ROLE}")
        with server.connect(user=OTHER_ROLE) as monitor:
            assert monitor.execute("SELECT query FROM ruvector_dag.steered_queries WHERE query_id = %s",
                                   (qid,)).fetchone()[0] is not None
    finally:
        c.execute(f"DROP ROLE {OTHER_ROLE}")


def test_the_series_has_both_phases(traps: Any, app: Any) -> None:
    c = traps
    qid = settle(c, app)
    rows = c.execute("SELECT executed_at, arm, latency_ms, phase, trial FROM ruvector_dag_steering_series(%s)",
                     (qid,)).fetchall()
    assert rows and [r[0] for r in rows] == sorted(r[0] for r in rows)
    phases = [r[3] for r in rows]
    assert {"before", "after"} <= set(phases)
    assert phases == sorted(phases, key=lambda p: p == "after")  # every 'before' precedes every 'after'
    assert all(r[1] == "default" for r in rows if r[3] == "before" and not r[4])
    users_after = [r for r in rows if r[3] == "after" and not r[4]]
    assert users_after and users_after[0][1] != "default"
    before_ms = [r[2] for r in rows if r[3] == "before" and not r[4]]
    after_ms = [r[2] for r in users_after if r[1] != "default"]
    assert min(after_ms) < max(before_ms)
