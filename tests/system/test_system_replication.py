"""Backups, hot standbys, promotion and restores of a Debian PostgreSQL 15 cluster running ruvector_dag.

The primary is the system server of `.ci/debian-pg15.sh` (RUVECTOR_SYSTEM_DSN);
copies of it and fresh clusters are made here with PostgreSQL's own tools
(pg_basebackup, pg_dump, pg_restore), as a DBA would, with default settings
(tests/system/clusters.py).  Issue 16.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from clusters import PGBIN, Cluster, as_postgres, base_backup, extract_tar_backup, wait_replayed, workdir

from ruvector_dag.tools import workloads
from ruvector_dag.tools.server import free_port

DSN = os.environ.get("RUVECTOR_SYSTEM_DSN")
pytestmark = pytest.mark.skipif(not DSN or not os.environ.get("RUVECTOR_SYSTEM_PGBIN"),
                                reason="needs a system server (.ci/debian-pg15.sh)")

SKEWED = workloads.QUERIES["skewed"]
#: The skewed trap in another shape (its own query id), run only on the standby: the same 100x misestimate,
#: so the standby's own learning settles on an arm as surely as the primary's does on SKEWED's.
STANDBY_ONLY = SKEWED.replace("SELECT count(*), sum(e.w)", "SELECT count(*), sum(e.w), max(e.w)")


def primary() -> psycopg.Connection[Any]:
    assert DSN
    return psycopg.connect(DSN, autocommit=True)


def primary_port() -> int:
    with primary() as c:
        return int(c.info.port)


def explain(c: Any, sql: str) -> str:
    return "\n".join(r[0] for r in c.execute(f"EXPLAIN {sql}").fetchall())


def steered_plan(c: Any, sql: str) -> str | None:
    """The plan if it is planned under a steering arm (EXPLAIN shows the arm's settings), else None."""
    plan = explain(c, sql)
    return plan if "Settings:" in plan else None


def query_id(c: Any, sql: str) -> int:
    return int(c.execute(f"EXPLAIN (VERBOSE, FORMAT JSON) {sql}").fetchone()[0][0]["Query Identifier"])


def wait_until(what: str, check: Any, timeout: float = 60, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout} s")


def drained(c: Any, table: str) -> bool:
    return c.execute("SELECT ruvector_dag_learning_stats(%s)", (table,)).fetchone()[0]["trajectories_buffered"] == 0


def learn_trap(admin: Any, app: Any, sql: str, table: str, runs: int = 60, settled: int = 5) -> str:
    """Run a trap as the application until the worker steers it for ``settled`` executions in a row (early
    in its exploration a Thompson draw may still go back to the default); return the steered plan."""
    rows = app.execute(sql).fetchall()
    in_a_row = 0
    for _ in range(runs):
        assert app.execute(sql).fetchall() == rows
        wait_until("drained", lambda: drained(admin, table), timeout=10, every=0.05)
        in_a_row = in_a_row + 1 if steered_plan(admin, sql) else 0
        if in_a_row >= settled:
            break
    plan = explain(admin, sql)
    assert "Settings:" in plan, plan
    return plan


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return workdir(tmp_path_factory.mktemp("replication"))


@pytest.fixture(scope="module")
def traps() -> Iterator[None]:
    with primary() as c:
        workloads.create(c.execute)
        workloads.own_tables(c.execute)
        for table in workloads.ENROLLED:
            c.execute("SELECT ruvector_enable_neural_dag(%s)", (table,))
    yield
    with primary() as c:
        c.execute("SELECT ruvector_dag_unpin(query_id) FROM ruvector_dag_steering_decisions()")
        workloads.drop(c.execute)


def test_the_kernel_cache_is_outside_the_data_directory() -> None:
    with primary() as c:
        info = c.execute("SELECT ruvector_dag_engine_info()").fetchone()[0]
        pgdata = Path(c.execute("SHOW data_directory").fetchone()[0])
    cache = Path(info["numba_cache_dir"])
    assert not cache.is_relative_to(pgdata)
    assert cache == Path("/var/lib/postgresql/.cache/ruvector_dag")  # the postgres user's cache home
    assert not (pgdata / "ruvector_dag_cache").exists()


def test_tar_base_backup_starts_with_its_enrollments(base: Path, traps: None) -> None:
    """pg_basebackup -Ft of a cluster running the extension (the tar format once failed on the
    kernel cache's long file names), unpacked and started as a copy."""
    backup = base / "tar-backup"
    base_backup(primary_port(), backup, "tar")
    copy = Cluster(base / "tar-copy", free_port())
    names = extract_tar_backup(backup, copy.pgdata)
    assert not any("ruvector_dag_cache" in n or n.endswith((".nbi", ".nbc")) for n in names)
    copy.configure()
    copy.start()
    try:
        copy.wait_for_log("ruvector_dag worker: engine ready")
        with copy.connect() as c:
            assert c.execute("SELECT pg_is_in_recovery()").fetchone()[0] is False
            assert c.execute("SELECT ruvector_neural_dag_enabled('trap_f')").fetchone()[0] is True
            text = copy.log_text()
            ready = next(line for line in text.splitlines() if "engine ready" in line)
            assert "kernels warmed in" in ready
    finally:
        copy.stop()


@pytest.fixture(scope="module")
def standby(base: Path, traps: None) -> Iterator[Cluster]:
    """A hot standby made by pg_basebackup -Fp -R, started before the primary learns anything."""
    node = Cluster(base / "standby", free_port())
    base_backup(primary_port(), node.pgdata, "plain", "-R")
    node.configure()
    node.start()
    node.wait_for_log("on a hot standby")
    yield node
    node.stop()


def test_standby_applies_the_primary_decision(standby: Cluster) -> None:
    with primary() as admin, psycopg.connect(DSN.replace("postgres@", f"{workloads.APP_ROLE}@"),  # type: ignore[union-attr]
                                             autocommit=True) as app:
        with standby.connect() as s:
            assert s.execute("SELECT ruvector_neural_dag_enabled('trap_f')").fetchone()[0] is True
            assert "Nested Loop" in explain(s, SKEWED)  # nothing learned yet
        learn_trap(admin, app, SKEWED, "trap_f")
        qid = query_id(admin, SKEWED)
        admin.execute("SELECT ruvector_dag_learn('trap_f')")  # saves now (otherwise within a minute)
        arm = admin.execute("SELECT arm FROM ruvector_dag_steering_decisions() WHERE query_id = %s",
                            (qid,)).fetchone()[0]
        with standby.connect() as s:
            wait_replayed(admin, s)
            # no ruvector function called on the standby: its worker follows what the primary saved
            plan = wait_until("the standby steers the trap",
                              lambda: steered_plan(s, SKEWED), timeout=15)
            assert "Nested Loop" not in plan.split("Settings:")[0]
            assert s.execute("SELECT arm, source FROM ruvector_dag_steering_decisions() WHERE query_id = %s",
                             (qid,)).fetchone() == (arm, "learned")


def test_standby_captures_and_learns_its_own(standby: Cluster) -> None:
    """A trap runs only on the standby: its worker steers it there, in memory; the primary knows
    nothing of it.  What the standby learned survives its restart and its crash, without a
    write to a replicated table, and is written to the tables at promotion."""
    with standby.connect() as s, standby.connect(user=workloads.APP_ROLE) as app:
        before = s.execute("SELECT coalesce(sum(captured), 0) FROM ruvector_dag_capture_stats() "
                           "WHERE relid = 'trap_f'::regclass").fetchone()[0]
        assert STANDBY_ONLY != SKEWED and "Nested Loop" in explain(s, STANDBY_ONLY)
        learn_trap(s, app, STANDBY_ONLY, "trap_f")
        assert s.execute("SELECT sum(captured) FROM ruvector_dag_capture_stats() "
                         "WHERE relid = 'trap_f'::regclass").fetchone()[0] > before
        qid = query_id(s, STANDBY_ONLY)
        answer = s.execute("SELECT ruvector_dag_learn('trap_f')").fetchone()[0]  # a cycle, in memory
        assert answer["success"], answer
        decided = s.execute("SELECT arm FROM ruvector_dag_steering_decisions() WHERE query_id = %s",
                            (qid,)).fetchone()
        assert decided is not None
        # the standby's own write: a file of its own, never a table
        state = standby.pgdata / "pg_stat" / "ruvector_dag_standby.json"
        assert state.exists()
        with pytest.raises(psycopg.Error) as err:
            s.execute("SELECT ruvector_dag_pin_arm(%s, 'no_nestloop')", (qid,))
        assert err.value.sqlstate == "25006"
    with primary() as admin:
        assert admin.execute("SELECT count(*) FROM ruvector_dag_steering_decisions() WHERE query_id = %s",
                             (qid,)).fetchone()[0] == 0
    for mode in ("fast", "immediate"):  # a restart, then a crash
        standby.stop(mode)
        standby.start()
        with standby.connect() as s:
            plan = wait_until(f"the standby's own decision after a {mode} stop",
                              lambda: steered_plan(s, STANDBY_ONLY), timeout=30)
            assert s.execute("SELECT arm FROM ruvector_dag_steering_decisions() "
                             "WHERE query_id = %s", (qid,)).fetchone() == decided
            assert plan
    log = standby.log_text()
    assert "ERROR" not in "\n".join(line for line in log.splitlines() if "ruvector_dag" in line)
    # promotion: the worker keeps running, notices, writes what the standby learned to the tables
    standby.promote()
    standby.wait_for_log("the server was promoted")
    with standby.connect() as s:
        wait_until("the standby's learning written at promotion", lambda: s.execute(
            "SELECT count(*) FROM ruvector_dag.steering_evidence WHERE query_id = %s AND chosen "
            "AND arm <> 'default'", (qid,)).fetchone()[0] == 1, timeout=20)
        assert not state.exists()
        assert s.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'ruvector_dag worker'"
                         ).fetchone()[0] == 1


def test_dump_restored_into_a_fresh_cluster(base: Path, traps: None) -> None:
    """pg_dumpall --globals-only + pg_dump, restored into a new cluster (initdb: every OID differs):
    enrollments follow their tables by name without a restart, patterns come back, the steering
    decisions whose query ids belong to the old cluster are reported as dropped."""
    with primary() as c:
        c.execute("SELECT ruvector_dag_learn('trap_f')")
        old = c.execute("SELECT 'trap_f'::regclass::oid").fetchone()[0]
        patterns = c.execute("SELECT count(*) FROM ruvector_dag.patterns WHERE relid = %s", (old,)).fetchone()[0]
        assert patterns >= 1
    dump = base / "postgres.dump"
    globals_sql = base / "globals.sql"
    port = primary_port()
    as_postgres(str(PGBIN / "pg_dumpall"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "--globals-only",
                "-f", str(globals_sql))
    as_postgres(str(PGBIN / "pg_dump"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-Fc",
                "-f", str(dump), "postgres")
    fresh = Cluster(base / "fresh", free_port()).initdb()
    fresh.start()
    try:
        fresh.execute("CREATE TABLE pad AS SELECT 1 AS x; CREATE TABLE pad2 (x int); CREATE TABLE pad3 (x int)")
        as_postgres(str(PGBIN / "psql"), "-h", "127.0.0.1", "-p", str(fresh.port), "-U", "postgres", "-q",
                    "-f", str(globals_sql), "postgres")
        res = as_postgres(str(PGBIN / "pg_restore"), "-h", "127.0.0.1", "-p", str(fresh.port), "-U", "postgres",
                          "-d", "postgres", str(dump), check=False)
        assert "ruvector_dag" not in res.stderr, res.stderr
        with fresh.connect() as c:
            new = c.execute("SELECT 'trap_f'::regclass::oid").fetchone()[0]
            assert new != old
            wait_until("the enrollment follows its table", lambda: c.execute(
                "SELECT ruvector_neural_dag_enabled('trap_f')").fetchone()[0], timeout=20)
            assert c.execute("SELECT relid FROM ruvector_dag.enrolled_tables WHERE table_name = 'public.trap_f'"
                             ).fetchone()[0] == new
            assert c.execute("SELECT count(*) FROM ruvector_dag.patterns WHERE relid = %s",
                             (new,)).fetchone()[0] == patterns
            stats = c.execute("SELECT ruvector_dag_learning_stats('trap_f')").fetchone()[0]
            assert stats["patterns_stored"] == patterns
            c.execute(SKEWED).fetchall()  # captured in the new cluster
            wait_until("captured", lambda: c.execute(
                "SELECT coalesce(sum(captured), 0) FROM ruvector_dag_capture_stats() WHERE relid = %s",
                (new,)).fetchone()[0] >= 1, timeout=10)
        log = fresh.wait_for_log("was restored from another cluster")
        assert "steering decision(s) dropped" in log
        lines = [json.dumps(line) for line in log.splitlines() if "ruvector_dag" in line and "ERROR" in line]
        assert not lines, lines
    finally:
        fresh.stop()
