"""Learned steering against a real server: a trap is fixed, a bad trial is reverted, frozen keeps decisions.

The traps are ruvector_dag.tools.workloads: PostgreSQL's row estimates are wrong
by 100x or more, the default plan is slow, and the engine must find the arm
that is faster from the executions alone, without ever changing the rows.
The workloads run as workloads.APP_ROLE, the tables' owner (fixture ``app``):
trials replay no superuser's statement by default.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from explained import join_types, query_id, unpin_all, wait_drained

from ruvector_dag.tools import workloads

SKEWED = workloads.QUERIES["skewed"]


def decision(conn: Any, qid: int) -> tuple[str, str] | None:
    row = conn.execute("SELECT arm, source FROM ruvector_dag_steering_decisions() WHERE query_id = %s",
                       (qid,)).fetchone()
    return None if row is None else (row[0], row[1])


def processed(conn: Any, table: str = "trap_f") -> int:
    n: int = conn.execute("SELECT ruvector_dag_learning_stats(%s)", (table,)).fetchone()[0]["queries_processed"]
    return n


def test_trap_is_learned_and_fixed(traps: Any, app: Any) -> None:
    c = traps
    qid = query_id(c, SKEWED)
    assert join_types(c, SKEWED) == {"Nested Loop"}  # the trap: two nested index loops
    default_rows = app.execute(SKEWED).fetchall()
    for _ in range(40):  # the bound is 50 executions
        assert app.execute(SKEWED).fetchall() == default_rows  # identical rows, whatever the arm
        wait_drained(c)
    d = decision(c, qid)
    assert d is not None and d[1] == "learned", d
    assert "Nested Loop" not in join_types(c, SKEWED)
    # EXPLAIN shows the learned plan and the arm's settings
    text = "\n".join(r[0] for r in c.execute(f"EXPLAIN {SKEWED}").fetchall())
    assert "Settings:" in text and "enable_nestloop = 'off'" in text, text
    assert c.execute("SHOW enable_nestloop").fetchone()[0] == "on"  # the session's own settings untouched
    # evidence: after a save, the decision's arm and the default are both measured
    c.execute("SELECT ruvector_dag_learn('trap_f')")
    ev = {r[0]: r[1:] for r in c.execute("SELECT arm, executions, mean_latency_ms, source FROM ruvector_dag.steering "
                                         "WHERE query_id = %s", (qid,)).fetchall()}
    chosen = [arm for arm, (_, _, source) in ev.items() if source is not None]
    assert len(chosen) == 1 and ev["default"][0] >= 3 and ev[chosen[0]][0] >= 1, ev
    assert ev[chosen[0]][1] < ev["default"][1]
    for _ in range(3):  # executions after the first cycle fall in its patterns
        app.execute(SKEWED)
    wait_drained(c)
    c.execute("SELECT ruvector_dag_learn('trap_f')")
    steered = [p[0]["steering"] for p in c.execute(
        "SELECT optimal_params FROM ruvector_dag.patterns WHERE relid = 'trap_f'::regclass").fetchall()]
    # the trap's pattern counts its query under a learned arm (Thompson may have moved between the fast ones)
    assert any(set(s) - {"default"} for s in steered), steered


def test_sampling_keeps_every_execution_of_a_steered_query(traps: Any, app: Any) -> None:
    """Capture sampled down to nothing still learns a trap: its first execution shows the
    misestimate, and from then on the worker watches the query (every execution captured)."""
    c = traps
    c.execute(f"GRANT SET ON PARAMETER ruvector.dag_capture_sample_rate TO {workloads.APP_ROLE}")
    try:
        app.execute("SET ruvector.dag_capture_sample_rate = 0")
    finally:
        c.execute(f"REVOKE SET ON PARAMETER ruvector.dag_capture_sample_rate FROM {workloads.APP_ROLE}")
    qid = query_id(c, SKEWED)
    control = workloads.QUERIES["control"]
    before = processed(c)
    for _ in range(30):
        app.execute(SKEWED).fetchall()
        app.execute(control).fetchall()  # a plain query: captured once, then sampled out
        wait_drained(c)
    d = decision(c, qid)
    assert d is not None and d[1] == "learned", d
    assert "Nested Loop" not in join_types(c, SKEWED)
    # (nearly) all 30 trap executions were learned from, the control query once
    assert 27 <= processed(c) - before <= 32


def test_settled_expensive_query_is_captured_at_a_fraction(server: Any, traps: Any) -> None:
    """ruvector.dag_capture_settled_fraction: after 10 executions of 20 ms or more, not steered,
    a query is captured at that fraction (its row instrumentation costs a few per cent)."""
    c = traps
    sql = "SELECT count(*), sum(a2.x) FROM trap_a a1 JOIN trap_a a2 USING (id)"  # ~100 ms, well estimated
    c.execute("ALTER SYSTEM SET ruvector.dag_capture_settled_fraction = 0.125")
    c.execute("SELECT pg_reload_conf()")
    try:
        time.sleep(0.5)
        rows = c.execute(sql).fetchall()
        wait_drained(c, "trap_a")
        before = processed(c, "trap_a")
        for _ in range(12):  # until settled: every execution
            assert c.execute(sql).fetchall() == rows
            wait_drained(c, "trap_a")
        settled = processed(c, "trap_a")
        assert settled - before >= 10
        for _ in range(48):
            assert c.execute(sql).fetchall() == rows
            wait_drained(c, "trap_a")
        thinned = processed(c, "trap_a") - settled
        assert 1 <= thinned <= 18, thinned  # about 48 / 8 = 6, not 48
    finally:
        c.execute("ALTER SYSTEM RESET ruvector.dag_capture_settled_fraction")
        c.execute("SELECT pg_reload_conf()")


def test_bad_trial_arm_is_reverted_by_the_guard(traps: Any) -> None:
    c = traps
    sql = workloads.QUERIES["control"]
    qid = query_id(c, sql)
    rows = c.execute(sql).fetchall()
    for _ in range(4):  # the baseline under the default plan
        c.execute(sql)
    wait_drained(c)
    c.execute("SELECT ruvector_dag_try_arm(%s, 'hash_only')", (qid,))  # hashes all the facts
    assert decision(c, qid) == ("hash_only", "trial")
    assert c.execute(sql).fetchall() == rows
    for _ in range(20):
        wait_drained(c)
        if decision(c, qid) is None:
            break
        c.execute(sql)
    assert decision(c, qid) is None  # reverted: back to the default plan
    c.execute("SELECT ruvector_dag_learn('trap_f')")
    banned = c.execute("SELECT banned FROM ruvector_dag.steering_evidence WHERE query_id = %s AND arm = 'hash_only'",
                       (qid,)).fetchone()
    assert banned == (True,)


def test_frozen_mode_keeps_decisions_and_stops_learning(server: Any, traps: Any) -> None:
    c = traps
    qid = query_id(c, SKEWED)
    c.execute("SELECT ruvector_dag_pin_arm(%s, 'hash_only')", (qid,))
    c.execute("ALTER SYSTEM SET ruvector.dag_learning_mode = frozen")
    c.execute("SELECT pg_reload_conf()")
    try:
        time.sleep(0.5)
        before = c.execute("SELECT ruvector_dag_learning_stats('trap_f')").fetchone()[0]["queries_processed"]
        for _ in range(5):
            c.execute(SKEWED)
        time.sleep(0.6)
        after = c.execute("SELECT ruvector_dag_learning_stats('trap_f')").fetchone()[0]["queries_processed"]
        assert after == before  # nothing learned
        assert decision(c, qid) == ("hash_only", "pinned")  # decisions kept and applied
        assert "Nested Loop" not in join_types(c, SKEWED)
    finally:
        c.execute("ALTER SYSTEM RESET ruvector.dag_learning_mode")
        c.execute("SELECT pg_reload_conf()")


PROBE = ("SELECT count(*), sum(length(b.pad)) FROM probe_s s JOIN probe_big b ON b.id = s.id * 97 "
         "WHERE s.a = 1 AND s.b = 1")


@pytest.fixture
def probe(conn: Any) -> Iterator[Any]:
    """A query whose plan misestimates the outer side of its nested loop 50 times over (a = b
    always), yet the loop is the right plan: 100 index probes.  Every arm the misestimate
    suggests scans or walks the million-row table instead, 50 times slower or worse."""
    conn.execute("""
        DROP TABLE IF EXISTS probe_s, probe_big;
        CREATE TABLE probe_s (id int, a int, b int);
        INSERT INTO probe_s SELECT g, g % 100, g % 100 FROM generate_series(1, 10000) g;
        CREATE TABLE probe_big (id int PRIMARY KEY, pad text);
        INSERT INTO probe_big SELECT g, repeat('x', 20) FROM generate_series(1, 1000000) g;
        ANALYZE probe_s, probe_big;
    """)
    workloads.own_tables(conn.execute, ("probe_s", "probe_big"))
    conn.execute("SELECT ruvector_enable_neural_dag('probe_s')")
    yield conn
    unpin_all(conn)
    conn.execute("DROP TABLE IF EXISTS probe_s, probe_big")


def test_catastrophic_arms_are_banned_by_their_trial_before_any_user_runs_them(probe: Any, app: Any) -> None:
    """The hard bound on exploration: the worker tries each arm on the statement itself and cancels
    it at 3x the default's mean; users' executions are never planned with an arm that failed."""
    c = probe
    qid = query_id(c, PROBE)
    assert join_types(c, PROBE) == {"Nested Loop"}
    rows = app.execute(PROBE).fetchall()
    for _ in range(16):
        assert app.execute(PROBE).fetchall() == rows
        wait_drained(c, "probe_s")
        assert decision(c, qid) is None  # never published: no user ran an exploratory arm
    c.execute("SELECT ruvector_dag_learn('probe_s')")  # saves the evidence
    ev = {arm: (n, banned) for arm, n, banned in c.execute(
        "SELECT arm, executions, banned FROM ruvector_dag.steering_evidence WHERE query_id = %s", (qid,))}
    assert ev["default"][0] >= 3
    tried = {arm: v for arm, v in ev.items() if arm != "default"}
    # the three arms the misestimate suggests, each banned with no user execution
    assert set(tried) == {"hash_only", "no_nestloop", "merge_only"}, ev
    assert all(v == (0, True) for v in tried.values()), ev


def test_trials_off_explores_on_users_executions(server: Any, probe: Any, app: Any) -> None:
    """ruvector.dag_steering_trials = off: arms go to users' executions directly, banned after one
    slow execution each (the count bound)."""
    c = probe
    c.execute("ALTER SYSTEM SET ruvector.dag_steering_trials = off")
    c.execute("SELECT pg_reload_conf()")
    try:
        time.sleep(0.5)
        qid = query_id(c, PROBE)
        rows = app.execute(PROBE).fetchall()
        seen = set()
        for _ in range(16):
            assert app.execute(PROBE).fetchall() == rows
            wait_drained(c, "probe_s")
            d = decision(c, qid)
            if d is not None:
                seen.add(d[0])
        assert seen  # users ran an exploratory arm
        c.execute("SELECT ruvector_dag_learn('probe_s')")
        ev = dict(c.execute("SELECT arm, banned FROM ruvector_dag.steering_evidence WHERE query_id = %s",
                            (qid,)).fetchall())
        assert all(ev[a] for a in seen), ev
    finally:
        c.execute("ALTER SYSTEM RESET ruvector.dag_steering_trials")
        c.execute("SELECT pg_reload_conf()")
