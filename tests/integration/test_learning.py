"""The learning engine in the background worker, seen from SQL."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest

from ruvector_dag.definitions.settings import EXACT_LEARNING
from ruvector_dag.engine.learner import TableLearner
from ruvector_dag.tools.server import Server

SCHEMA = """
DROP TABLE IF EXISTS {t}, {t}_cats CASCADE;
CREATE TABLE {t}_cats (id int PRIMARY KEY, name text);
CREATE TABLE {t} (id int PRIMARY KEY, category int, price numeric, note text);
INSERT INTO {t}_cats SELECT g, 'c' || g FROM generate_series(1, 50) g;
INSERT INTO {t} SELECT g, 1 + g % 50, (g % 1000) / 10.0, md5(g::text) FROM generate_series(1, 20000) g;
CREATE INDEX ON {t} (category);
ANALYZE {t}, {t}_cats;
"""

# Three query shapes with clearly different operator DAGs (set A) ...
SHAPES_A = [
    "SELECT * FROM {t} WHERE id = {i}",
    "SELECT category, count(*), avg(price) FROM {t} GROUP BY category ORDER BY category",
    "SELECT i.id, c.name FROM {t} i JOIN {t}_cats c ON c.id = i.category WHERE i.price < {i} % 7 ORDER BY i.id LIMIT 5",
]
# ... and three others (set B), for the EWC test.
SHAPES_B = [
    "SELECT count(*) FROM {t} WHERE note LIKE '{i}%'",
    "SELECT DISTINCT category FROM {t} WHERE id BETWEEN {i} AND {i} + 5000 ORDER BY 1",
    "SELECT i.category, max(i.price) FROM {t} i WHERE i.category IN (SELECT id FROM {t}_cats WHERE name LIKE 'c1%') "
    "GROUP BY i.category ORDER BY 1",
]


def run(conn: Any, shapes: list[str], table: str, times: int) -> int:
    n = 0
    for i in range(times):
        for shape in shapes:
            conn.execute(shape.format(t=table, i=i + 1)).fetchall()
            n += 1
    return n


def stats(conn: Any, table: str) -> dict[str, Any]:
    out: dict[str, Any] = conn.execute("SELECT ruvector_dag_learning_stats(%s)", (table,)).fetchone()[0]
    return out


def patterns(conn: Any, table: str) -> list[tuple[Any, ...]]:
    return conn.execute("SELECT * FROM ruvector_dag_patterns(%s)", (table,)).fetchall()


def learner_state(conn: Any, table: str) -> TableLearner:
    data = conn.execute("SELECT state FROM ruvector_dag.engine_state WHERE relid = %s::regclass",
                        (table,)).fetchone()[0]
    return TableLearner.from_state_bytes(bytes(data))


def enroll(conn: Any, table: str, config: dict[str, Any] | None = None) -> None:
    conn.execute(SCHEMA.format(t=table))
    conn.execute("SELECT ruvector_enable_neural_dag(%s, %s)", (table, json.dumps(config) if config else None))


@pytest.fixture
def items(conn: Any) -> Iterator[Any]:
    enroll(conn, "items")
    yield conn
    conn.execute("DROP TABLE IF EXISTS items, items_cats CASCADE")


def test_patterns_counts_and_hit_rate(items: Any) -> None:
    c = items
    ran = run(c, SHAPES_A, "items", 20)
    answer = c.execute("SELECT ruvector_dag_learn('items')").fetchone()[0]
    assert answer["success"] is True, answer
    st = stats(c, "items")
    assert st["queries_processed"] == ran
    assert 0 < st["trajectories_learned"] <= ran
    assert answer["trajectories_processed"] == st["trajectories_learned"]
    pats = patterns(c, "items")
    assert len(pats) >= 3
    assert sum(p[4] for p in pats) == st["trajectories_learned"]
    for _pid, centroid, attention_type, confidence, count, latency, quality in pats:
        assert len(centroid) == 32 and count > 0 and latency > 0 and 0 < quality <= 1 and 0 <= confidence <= 1
        assert attention_type in ("topological", "causal_cone", "critical_path", "mincut_gated",
                                  "hierarchical_lorentz", "parallel_branch", "temporal_btsp")
    first_rate = st["pattern_hit_rate"]
    assert first_rate == 0.0  # nothing to hit before the first cycle

    # Known shapes now hit their patterns: the hit rate rises.
    ran2 = run(c, SHAPES_A, "items", 20)
    c.execute("SELECT ruvector_dag_learn('items')")
    st2 = stats(c, "items")
    assert st2["queries_processed"] == ran + ran2
    assert st2["pattern_hit_rate"] > first_rate
    assert st2["pattern_hit_rate"] >= 0.8 * ran2 / (ran + ran2)
    assert st2["background_cycles"] == st["background_cycles"] + 1
    assert sum(p[4] for p in patterns(c, "items")) == st2["trajectories_learned"]
    assert st2["ewc_tasks"] >= 1
    # A sample of the learned trajectories is kept, and can be cleaned up.
    n_hist = c.execute("SELECT count(*) FROM ruvector_dag.trajectory_history "
                       "WHERE relid = 'items'::regclass").fetchone()[0]
    assert 0 < n_hist <= st2["trajectories_learned"]
    assert c.execute("SELECT ruvector_dag.cleanup_old_trajectories(0)").fetchone()[0] >= n_hist


def test_trajectories_reach_the_engine_within_a_second(items: Any) -> None:
    before = stats(items, "items")["queries_processed"]
    ran = run(items, SHAPES_A, "items", 5)
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline and stats(items, "items")["queries_processed"] < before + ran:
        time.sleep(0.05)
    assert stats(items, "items")["queries_processed"] == before + ran


def test_consolidate_and_extract(items: Any) -> None:
    c = items
    run(c, SHAPES_A, "items", 10)
    n = c.execute("SELECT ruvector_dag_extract_patterns('items', 10)").fetchone()[0]
    assert n == len(patterns(c, "items")) >= 3
    total = sum(p[4] for p in patterns(c, "items"))
    merged = c.execute("SELECT ruvector_dag_consolidate_patterns('items', -0.99)").fetchone()[0]
    assert merged == n - 1  # everything is that similar
    pats = patterns(c, "items")
    assert len(pats) == 1 and pats[0][4] == total
    # Nothing new: extraction is skipped with a warning.
    with c.cursor() as cur:
        assert cur.execute("SELECT ruvector_dag_extract_patterns('items')").fetchone()[0] == 0


def test_not_enrolled_and_missing_tables(conn: Any) -> None:
    conn.execute("DROP TABLE IF EXISTS plain; CREATE TABLE plain (a int)")
    assert conn.execute("SELECT ruvector_dag_learn('plain')").fetchone()[0] == {
        "success": False, "error": "Neural DAG not enabled"}
    assert conn.execute("SELECT ruvector_dag_learning_stats('plain')").fetchone()[0]["enabled"] is False
    assert conn.execute("SELECT ruvector_dag_health_report('plain')").fetchone()[0]["healthy"] is False
    assert conn.execute("SELECT count(*) FROM ruvector_dag_patterns('plain')").fetchone()[0] == 0
    assert conn.execute("SELECT ruvector_dag_consolidate_patterns('plain')").fetchone()[0] == 0
    with pytest.raises(psycopg.Error) as err:
        conn.execute("SELECT ruvector_dag_extract_patterns('plain')")
    assert err.value.sqlstate == "22023"
    for fn in ("ruvector_dag_learn", "ruvector_dag_patterns", "ruvector_dag_learning_stats",
               "ruvector_dag_health_report", "ruvector_dag_extract_patterns", "ruvector_dag_consolidate_patterns"):
        with pytest.raises(psycopg.Error) as err:
            conn.execute(f"SELECT * FROM {fn}('no_such_table')")
        assert err.value.sqlstate == "42P01", fn
    conn.execute("DROP TABLE plain")


def test_bad_arguments(items: Any) -> None:
    for sql in ("SELECT ruvector_dag_extract_patterns('items', 0)",
                "SELECT ruvector_dag_extract_patterns('items', 5000)",
                "SELECT ruvector_dag_consolidate_patterns('items', 1.5)",
                "SELECT ruvector_dag_consolidate_patterns('items', 'NaN')"):
        with pytest.raises(psycopg.Error) as err:
            items.execute(sql)
        assert err.value.sqlstate == "22023", sql
    # the C entry points (0.3.0): a NULL or empty table name
    for fn in ("ruvector_dag_learn", "ruvector_dag_extract_patterns", "ruvector_dag_consolidate_patterns"):
        for arg, state in (("NULL", "22004"), ("''", "42602")):
            with pytest.raises(psycopg.Error) as err:
                items.execute(f"SELECT {fn}({arg})")
            assert err.value.sqlstate == state, (fn, arg)


def test_health_report(items: Any) -> None:
    run(items, SHAPES_A, "items", 3)
    items.execute("SELECT ruvector_dag_learn('items')")
    report = items.execute("SELECT ruvector_dag_health_report('items')").fetchone()[0]
    assert report["buffer"]["capacity"] > 0 and report["buffer"]["drop_rate"] == 0
    assert report["metrics"]["queries_processed"] == 9
    severe = items.execute(
        "SELECT count(*) FROM ruvector_dag_mincut_criticality('items') c WHERE c.criticality > 0.8 "
        "AND EXISTS (SELECT 1 FROM ruvector_dag_mincut_criticality('items') d "
        "WHERE d.pattern_id = c.pattern_id AND d.plan_position > 0)").fetchone()[0]
    expected = [f"{severe} severe bottlenecks detected"] if severe else []
    assert report["issues"] == expected and report["healthy"] is (not expected)
    items.execute("""SELECT ruvector_enable_neural_dag('items', '{"dag_mincut_enabled": false}')""")
    report = items.execute("SELECT ruvector_dag_health_report('items')").fetchone()[0]
    assert report["healthy"] is True and report["issues"] == []


def test_four_sessions_learning_concurrently(items: Any, server: Server) -> None:
    errors: list[BaseException] = []
    counts = [0] * 4

    def work(k: int) -> None:
        try:
            with server.connect() as c:
                for _ in range(6):
                    counts[k] += run(c, SHAPES_A, "items", 2)
                    answer = c.execute("SELECT ruvector_dag_learn('items')").fetchone()[0]
                    assert answer["success"] or answer.get("skipped"), answer
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    items.execute("SELECT ruvector_dag_learn('items')")
    st = stats(items, "items")
    assert st["queries_processed"] == sum(counts)  # none lost, none twice
    assert sum(p[4] for p in patterns(items, "items")) == st["trajectories_learned"]


def _set_a(conn: Any, table: str) -> tuple[np.ndarray, np.ndarray]:
    """Canonical embeddings and log latencies of the set-A trajectories kept in the history."""
    rows = conn.execute("SELECT plan_embedding::real[], latency_us FROM ruvector_dag.trajectory_history "
                        "WHERE relid = %s::regclass AND trajectory_id <= %s ORDER BY trajectory_id",
                        (table, 3 * 20)).fetchall()
    X = np.array([r[0] for r in rows], dtype=np.float64)
    y = np.log(np.array([max(r[1], 1) for r in rows], dtype=np.float64))
    return X, y


def _pattern_distance(learner: TableLearner, X: np.ndarray) -> float:
    C = np.vstack([p.centroid for p in learner.bank.patterns.values()])
    return float(np.sqrt(((X[:, None, :] - C[None, :, :]) ** 2).sum(-1).min(axis=1)).mean())


def test_ewc_protects_what_was_learned(conn: Any) -> None:
    """Learn set A, then B: with EWC at its strongest, A degrades less than with lambda at its minimum.

    Degradation of A's patterns: mean distance of A's trajectories to the
    nearest pattern.  Of A's predictions: how far the latency model's
    predictions on A's trajectories move while B is learned (forgetting).
    """
    results = {}
    for table, lam in (("ewc_min", 100.0), ("ewc_max", 50000.0)):
        enroll(conn, table, {"dag_ewc_lambda": lam, "dag_ewc_max_lambda": lam,
                             "dag_attention_type": "topological", "dag_learning_rate": 0.05})
        run(conn, SHAPES_A, table, 20)
        assert conn.execute("SELECT ruvector_dag_extract_patterns(%s, 3)", (table,)).fetchone()[0] == 3
        X, _ = _set_a(conn, table)
        before = learner_state(conn, table)
        run(conn, SHAPES_B, table, 60)
        conn.execute("SELECT ruvector_dag_extract_patterns(%s, 3)", (table,))
        after = learner_state(conn, table)
        drift = float(np.abs(after.model.predict(X) - before.model.predict(X)).mean())
        results[table] = (_pattern_distance(before, X), _pattern_distance(after, X), drift)
    d0_min, d_min, drift_min = results["ewc_min"]
    d0_max, d_max, drift_max = results["ewc_max"]
    assert d0_min < 0.05 and d0_max < 0.05, results  # A was learned
    assert d_max < 0.5 * d_min, results  # A's patterns stay where A's queries are
    assert drift_max < 0.5 * drift_min, results  # A's predictions are protected
    for table in ("ewc_min", "ewc_max"):
        conn.execute(f"DROP TABLE {table}, {table}_cats")


def test_state_survives_restart_and_worker_kill(tmp_path: Path, server: Server) -> None:
    srv = Server(tmp_path / "restart", pg_version=server.pg_version, build=False,
                 settings=EXACT_LEARNING)
    with srv:
        with srv.connect() as c:
            enroll(c, "items")
            fresh = TableLearner(c.execute("SELECT 'items'::regclass::oid").fetchone()[0]).model.state_dict()
            run(c, SHAPES_A, "items", 10)
            assert c.execute("SELECT ruvector_dag_learn('items')").fetchone()[0]["success"]
            learned = learner_state(c, "items")
            for key in ("A", "B"):
                assert not np.array_equal(learned.model.state_dict()[key], fresh[key]), key
            pats = patterns(c, "items")
            st = stats(c, "items")
        srv.stop()
        srv.start()
        with srv.connect() as c:
            deadline = time.monotonic() + 30
            while stats(c, "items")["queries_processed"] != st["queries_processed"]:
                assert time.monotonic() < deadline, "worker did not reload the engine state"
                time.sleep(0.2)
            assert patterns(c, "items") == pats
            c.execute("SELECT ruvector_dag_consolidate_patterns('items', 0.9999)")  # saves the state again
            reloaded = learner_state(c, "items")
            for key, value in learned.model.state_dict().items():
                assert np.array_equal(np.asarray(reloaded.model.state_dict()[key]), np.asarray(value)), key

            # Kill the worker: the server stays up, the worker comes back, nothing committed is lost.
            pid = c.execute("SELECT pid FROM pg_stat_activity WHERE backend_type = 'ruvector_dag worker'").fetchone()[0]
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while True:
            try:
                with srv.connect() as c:
                    row = c.execute("SELECT pid FROM pg_stat_activity "
                                    "WHERE backend_type = 'ruvector_dag worker'").fetchone()
                    if row is not None and row[0] != pid and stats(c, "items")["queries_processed"] > 0:
                        break
            except psycopg.OperationalError:
                pass
            assert time.monotonic() < deadline, "worker did not come back"
            time.sleep(0.5)
        with srv.connect() as c:
            assert patterns(c, "items") == pats
            run(c, SHAPES_A, "items", 2)
            assert c.execute("SELECT ruvector_dag_learn('items')").fetchone()[0]["success"]


def test_cpu_budget_samples_under_load_and_keeps_the_worker_responsive(conn: Any) -> None:
    """ruvector.dag_worker_cpu_percent: the ring is emptied, a sample is learned, requests still answer."""
    conn.execute("DROP TABLE IF EXISTS budget_t")
    conn.execute("CREATE TABLE budget_t AS SELECT g AS id FROM generate_series(1, 100) g")
    conn.execute("SELECT ruvector_enable_neural_dag('budget_t')")
    conn.execute("ALTER SYSTEM SET ruvector.dag_worker_cpu_percent = 1")
    conn.execute("SELECT pg_reload_conf()")
    try:
        n = 8000
        with conn.pipeline():
            for i in range(n):
                conn.execute("SELECT id FROM budget_t WHERE id = %s", (i % 100,))
        for _ in range(200):
            stats = conn.execute("SELECT ruvector_dag_learning_stats('budget_t')").fetchone()[0]
            if stats["trajectories_buffered"] == 0:
                break
            time.sleep(0.05)
        assert stats["trajectories_buffered"] == 0 and stats["trajectories_dropped"] == 0  # all consumed
        assert 0 < stats["queries_processed"] < n  # ... a sample learned from
        t0 = time.monotonic()
        learned = conn.execute("SELECT ruvector_dag_learn('budget_t')").fetchone()[0]
        assert learned["success"] is True, learned  # (the sample learned from is enough for a cycle)
        assert time.monotonic() - t0 < 10.0  # the worker answered a request promptly
    finally:
        conn.execute("ALTER SYSTEM RESET ruvector.dag_worker_cpu_percent")
        conn.execute("SELECT pg_reload_conf()")
        conn.execute("DROP TABLE budget_t")
