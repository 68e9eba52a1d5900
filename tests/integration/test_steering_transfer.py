"""Transfer through patterns against a real server: what two variants of the skewed trap taught is
tried on a third variant (a new query id) right after its first execution, and the steering view
says it came from a pattern.  Its trial is the only thing it costs before users get it."""

from __future__ import annotations

import time
from typing import Any

from explained import query_id, wait_drained

from ruvector_dag.tools import workloads

SKEWED = workloads.QUERIES["skewed"]
#: The skewed trap under other query ids: other aggregates over the same join (the same plan shape).
VARIANTS = [SKEWED.replace("SELECT count(*), sum(e.w)", f"SELECT {agg}")
            for agg in ("count(*), max(e.w)", "count(*), min(e.w)", "sum(e.w), avg(e.w)")]


def decision(conn: Any, qid: int) -> str | None:
    row = conn.execute("SELECT arm FROM ruvector_dag_steering_decisions() WHERE query_id = %s", (qid,)).fetchone()
    return None if row is None else str(row[0])


def learn_until_decided(c: Any, app: Any, sql: str, runs: int = 30) -> str:
    qid = query_id(c, sql)
    for _ in range(runs):
        app.execute(sql).fetchall()
        wait_drained(c)
        time.sleep(0.3)  # trials start on idle CPUs
        arm = decision(c, qid)
        if arm is not None:
            for _ in range(3):  # two more under the arm: past the regression guard, a verdict
                app.execute(sql).fetchall()
            wait_drained(c)
            return arm
    raise AssertionError(f"{sql} was not steered in {runs} executions")


def test_a_new_variant_is_steered_from_its_pattern(traps: Any, app: Any) -> None:
    c = traps
    for sql in VARIANTS[:2]:
        learn_until_decided(c, app, sql)
    c.execute("SELECT ruvector_dag_learn('trap_f')")  # the cycle: patterns
    new = VARIANTS[2]
    qid = query_id(c, new)
    rows = app.execute(new).fetchall()  # its first execution, under the default plan
    deadline = time.monotonic() + 60
    while decision(c, qid) is None and time.monotonic() < deadline:
        wait_drained(c)
        time.sleep(0.3)  # the worker learns it, matches it, tries the proposal
    arm = decision(c, qid)
    assert arm is not None and arm != "default", "no transferred decision after the first execution"
    assert app.execute(new).fetchall() == rows  # the second execution runs under it, same rows
    c.execute("SELECT ruvector_dag_learn('trap_f')")  # saves the evidence
    ev = c.execute("SELECT arm, state, origin, transfer FROM ruvector_dag.steering WHERE query_id = %s",
                   (qid,)).fetchall()
    transferred = [r for r in ev if r[2] == "transfer"]
    assert len(transferred) == 1, ev
    arm_row = transferred[0]
    assert arm_row[0] == arm and arm_row[1] in ("chosen", "in play"), ev
    proposal = arm_row[3]
    assert proposal["voters"] >= 1 and proposal["confidence"] >= 0.6 and proposal["pattern_id"] is not None
    # the default's row names no origin; the query's text is there, constants hidden
    assert [r[2] for r in ev if r[0] == "default"] in ([], [None])
    text = c.execute("SELECT query FROM ruvector_dag.steering WHERE query_id = %s AND origin = 'transfer'",
                     (qid,)).fetchone()[0]
    assert text is None or "'hot'" not in text


def test_transfer_off_waits_for_the_baseline(traps: Any, app: Any) -> None:
    c = traps
    c.execute("ALTER SYSTEM SET ruvector.dag_transfer = off")
    c.execute("SELECT pg_reload_conf()")
    try:
        time.sleep(1.5)  # the worker reads the settings at each drain
        for sql in VARIANTS[:2]:
            learn_until_decided(c, app, sql)
        c.execute("SELECT ruvector_dag_learn('trap_f')")
        new = VARIANTS[2]
        qid = query_id(c, new)
        app.execute(new).fetchall()
        for _ in range(10):
            wait_drained(c)
            time.sleep(0.3)
        assert decision(c, qid) is None  # nothing before its baseline, as before transfer
    finally:
        c.execute("ALTER SYSTEM RESET ruvector.dag_transfer")
        c.execute("SELECT pg_reload_conf()")
