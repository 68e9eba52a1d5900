"""What survives a restart, in the manner of pg_stat_statements' t/010_restart.pl.

A clean restart (pg_ctl stop -m fast) and a crash (-m immediate: no shutdown
checkpoint, WAL replay at start) must keep everything committed: the
extension, enrollments with their config, learned patterns, their MinCut
analysis, the engine's saved state and pinned arms (rows of
ruvector_dag.pinned_arms since 0.5.0).  What lives only in shared memory is
documented as such (docs/operations.md): capture counters and the ring start
empty.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest

from ruvector_dag.definitions.settings import EXACT_LEARNING
from ruvector_dag.engine.learner import TableLearner
from ruvector_dag.tools.server import Server

SHAPES = ["SELECT * FROM r WHERE id = {i}", "SELECT k, count(*) FROM r GROUP BY k"]


def durable_state(c: Any) -> dict[str, Any]:
    """Everything a restart must not change, as plain values."""
    return {
        "version": c.execute("SELECT extversion FROM pg_extension WHERE extname = 'ruvector_dag'").fetchone(),
        "enrolled": c.execute("SELECT table_name, config FROM ruvector_dag.enrolled_tables ORDER BY relid").fetchall(),
        "patterns": c.execute("SELECT pattern_id, sample_count, attention_type FROM ruvector_dag_patterns('r') "
                              "ORDER BY pattern_id").fetchall(),
        "analysis": c.execute("SELECT ruvector_dag_mincut_analysis('r')").fetchone()[0],
        "history": c.execute("SELECT count(*) FROM ruvector_dag.trajectory_history").fetchone()[0],
        "model": model_weights(c),
    }


def model_weights(c: Any) -> dict[str, list[float]]:
    """The learned model in the engine's saved state (its bookkeeping may be saved again at shutdown)."""
    data = c.execute("SELECT state FROM ruvector_dag.engine_state WHERE relid = 'r'::regclass").fetchone()[0]
    weights = TableLearner.from_state_bytes(bytes(data)).model.state_dict()
    return {key: np.asarray(value).ravel().tolist() for key, value in weights.items()}


def wait_for_worker(srv: Server, learned: int, timeout: float = 60) -> None:
    """Until the restarted worker has reloaded the table's saved counters."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with srv.connect() as c:
                st = c.execute("SELECT ruvector_dag_learning_stats('r')").fetchone()[0]
                if st["queries_processed"] == learned:
                    return
        except psycopg.OperationalError:
            pass
        assert time.monotonic() < deadline, "the worker did not reload the engine state"
        time.sleep(0.2)


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_committed_state_survives_restart(tmp_path: Path, server: Server, mode: str) -> None:
    srv = Server(tmp_path / mode, pg_version=server.pg_version, build=False, settings=EXACT_LEARNING)
    with srv:
        with srv.connect() as c:
            c.execute("CREATE TABLE r (id int PRIMARY KEY, k int)")
            c.execute("INSERT INTO r SELECT g, g % 10 FROM generate_series(1, 5000) g")
            c.execute("ANALYZE r")
            c.execute("""SELECT ruvector_enable_neural_dag('r', '{"dag_mincut_threshold": 0.75}')""")
            for i in range(12):
                for shape in SHAPES:
                    c.execute(shape.format(i=i + 1)).fetchall()
            assert c.execute("SELECT ruvector_dag_learn('r')").fetchone()[0]["success"]
            learned = c.execute("SELECT ruvector_dag_learning_stats('r')").fetchone()[0]["queries_processed"]
            assert learned == 24
            qid = int(c.execute("EXPLAIN (VERBOSE, FORMAT JSON) SELECT k FROM r WHERE id = 1")
                      .fetchone()[0][0]["Query Identifier"])
            c.execute("SELECT ruvector_dag_pin_arm(%s, 'no_indexscan')", (qid,))
            before = durable_state(c)
            assert before["patterns"] and before["history"] > 0 and before["model"]
            assert before["analysis"]["threshold"] == 0.75
            assert c.execute("SELECT captured FROM ruvector_dag_capture_stats()").fetchone()[0] == 24

        srv.restart(mode)
        wait_for_worker(srv, learned)
        with srv.connect() as c:
            assert durable_state(c) == before
            # Shared memory starts afresh: counters and ring ...
            assert c.execute("SELECT executions, captured, dropped FROM ruvector_dag_capture_stats()"
                             ).fetchone() == (0, 0, 0)
            # ... but pins are committed rows (ruvector_dag.pinned_arms, from 0.5.0), reloaded by the worker
            assert c.execute("SELECT query_id, arm FROM ruvector_dag_steering_decisions() "
                             "WHERE source = 'pinned'").fetchall() == [(qid, "no_indexscan")]
            # ... and capture and learning go on where they were.
            for shape in SHAPES:
                c.execute(shape.format(i=1)).fetchall()
            assert c.execute("SELECT captured FROM ruvector_dag_capture_stats()").fetchone()[0] == 2
            # (the request drains the ring first; whether two records make a batch worth a cycle
            # depends on their quality, so only the processing is asserted)
            c.execute("SELECT ruvector_dag_learn('r')")
            assert c.execute("SELECT ruvector_dag_learning_stats('r')").fetchone()[0][
                "queries_processed"] == learned + 2
        if mode == "immediate":
            assert "database system was not properly shut down" in srv.log_tail(400)
