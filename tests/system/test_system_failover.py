"""Failover with a real HA manager: pg_auto_failover, a monitor and two nodes, ruvector_dag preloaded on both.

A trap query is steered on the primary by learning (not a pin), another query
is pinned, and the primary's learning is saved.  After `pg_autoctl perform
failover` the new primary plans the trap steered from its first execution,
with no ruvector function called on it before, keeps every committed
pattern, decision and pin, and learns on; the old primary rejoins as a hot
standby without manual steps.  Issue 16; tests/system/autofailover.py runs
the formation.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from autofailover import PG_AUTOCTL, AutoFailoverFormation

from ruvector_dag.tools import workloads
from ruvector_dag.tools.server import free_ports

PGBIN = os.environ.get("RUVECTOR_SYSTEM_PGBIN")
pytestmark = pytest.mark.skipif(not PGBIN or not PG_AUTOCTL.exists(),
                                reason="needs Debian's PostgreSQL 15 with pg_auto_failover (RUVECTOR_SYSTEM_PGBIN)")

SKEWED = workloads.QUERIES["skewed"]
CONTROL = workloads.QUERIES["control"]


def connect(dsn: str, user: str = "postgres") -> psycopg.Connection[Any]:
    return psycopg.connect(dsn.replace("postgres@", f"{user}@", 1), autocommit=True, connect_timeout=10)


def explain(c: Any, sql: str) -> str:
    return "\n".join(r[0] for r in c.execute(f"EXPLAIN {sql}").fetchall())


def query_id(c: Any, sql: str) -> int:
    return int(c.execute(f"EXPLAIN (VERBOSE, FORMAT JSON) {sql}").fetchone()[0][0]["Query Identifier"])


def eventually(what: str, check: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.1)
    return value


def replayed(primary: Any, standby: Any) -> None:
    lsn = primary.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    eventually("replayed", lambda: standby.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn",
                                                   (lsn,)).fetchone()[0])


def decisions(c: Any) -> dict[int, tuple[str, str]]:
    rows = c.execute("SELECT query_id, arm, source FROM ruvector_dag_steering_decisions()").fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def durable(c: Any) -> dict[str, Any]:
    return {"patterns": c.execute("SELECT pattern_id, sample_count, centroid::text FROM ruvector_dag.patterns "
                                  "ORDER BY 1").fetchall(),
            "pins": c.execute("SELECT query_id, arm FROM ruvector_dag.pinned_arms ORDER BY 1").fetchall(),
            "enrolled": c.execute("SELECT relid, config FROM ruvector_dag.enrolled_tables ORDER BY 1").fetchall()}


def test_failover_keeps_learning_decisions_and_pins() -> None:
    base = Path(tempfile.mkdtemp(prefix="rvd-failover-"))  # not tmp_path (see autofailover.py)
    with AutoFailoverFormation(base / "formation", free_ports(3)) as formation:
        old_primary, old_standby = formation.primary_dsn(), formation.secondary_dsn()
        with connect(old_primary) as admin:
            admin.execute("CREATE EXTENSION ruvector_dag")
            workloads.create(admin.execute)
            workloads.own_tables(admin.execute)
            for table in workloads.ENROLLED:
                admin.execute("SELECT ruvector_enable_neural_dag(%s)", (table,))
            pinned = query_id(admin, CONTROL)
            admin.execute("SELECT ruvector_dag_pin_arm(%s, 'no_hashjoin')", (pinned,))
            trap = query_id(admin, SKEWED)
            with connect(old_primary, workloads.APP_ROLE) as app:
                rows = app.execute(SKEWED).fetchall()
                in_a_row = 0  # steered by learning, as in test_steering_learned.py, settled: 5 executions in a row
                for _ in range(60):
                    assert app.execute(SKEWED).fetchall() == rows
                    eventually("drained", lambda: admin.execute("SELECT ruvector_dag_learning_stats('trap_f')")
                               .fetchone()[0]["trajectories_buffered"] == 0, timeout=10)
                    in_a_row = in_a_row + 1 if trap in decisions(admin) else 0
                    if in_a_row >= 5:
                        break
            admin.execute("SELECT ruvector_dag_learn('trap_f')")  # saved now (else within a minute)
            learned = decisions(admin)
            assert learned[trap][1] == "learned" and learned[pinned] == ("no_hashjoin", "pinned")
            before = durable(admin)
            assert before["patterns"] and before["pins"] == [(pinned, "no_hashjoin")]
            processed = admin.execute("SELECT ruvector_dag_learning_stats('trap_f')").fetchone()[0][
                "queries_processed"]
            with connect(old_standby) as standby:
                replayed(admin, standby)
                # the standby has adopted the primary's saved decisions before the failover
                eventually("the standby steers the trap", lambda: "Settings:" in explain(standby, SKEWED))

        formation.failover()
        assert (formation.primary_dsn(), formation.secondary_dsn()) == (old_standby, old_primary)

        with connect(old_standby) as new:
            # the first thing on the new primary: the trap is planned under the learned arm
            plan = explain(new, SKEWED)
            assert "Settings:" in plan and "Nested Loop" not in plan.split("Settings:")[0], plan
            with connect(old_standby, workloads.APP_ROLE) as app:
                assert app.execute(SKEWED).fetchall() == rows
            assert new.execute("SELECT pg_is_in_recovery()").fetchone()[0] is False
            now = decisions(new)
            assert now[trap] == learned[trap] and now[pinned] == ("no_hashjoin", "pinned")
            assert durable(new) == before
            # learning resumes on the new primary
            with connect(old_standby, workloads.APP_ROLE) as app:
                for _ in range(5):
                    app.execute(SKEWED).fetchall()
            eventually("learning resumes", lambda: new.execute("SELECT ruvector_dag_learning_stats('trap_f')")
                       .fetchone()[0]["queries_processed"] > processed, timeout=20)
            assert new.execute("SELECT ruvector_dag_learn('trap_f')").fetchone()[0]["success"]

        # the old primary rejoined as a standby without manual steps, and its worker runs read-only
        with connect(old_primary) as rejoined:
            assert rejoined.execute("SELECT pg_is_in_recovery()").fetchone()[0] is True
            eventually("its worker", lambda: rejoined.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'ruvector_dag worker'").fetchone()[0])
            assert rejoined.execute("SELECT ruvector_neural_dag_enabled('trap_f')").fetchone()[0] is True
        logs = formation.server_log("a") + formation.server_log("b")
        assert "on a hot standby" in logs and "the server was promoted" in logs
        errors = [line for line in logs.splitlines()
                  if "ruvector_dag" in line and ("ERROR" in line or "FATAL" in line)]
        assert not errors, errors
    shutil.rmtree(base)  # kept after a failure, for its logs
