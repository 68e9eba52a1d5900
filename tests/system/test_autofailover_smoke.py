"""A pg_auto_failover formation with ruvector_dag preloaded: replication and a planned failover.

Needs Debian's PostgreSQL 15 with pg_auto_failover (postgresql-15-auto-failover,
pg-auto-failover-cli) and ruvector_dag installed into it; runs with
RUVECTOR_SYSTEM_PGBIN set (as `.ci/debian-pg15.sh` sets it), skipped otherwise.
Ports 56100-56102 on 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from autofailover import PG_AUTOCTL, AutoFailoverFormation

PGBIN = os.environ.get("RUVECTOR_SYSTEM_PGBIN")
pytestmark = pytest.mark.skipif(not PGBIN or not PG_AUTOCTL.exists(),
                                reason="needs Debian's PostgreSQL 15 with pg_auto_failover (RUVECTOR_SYSTEM_PGBIN)")

PORTS = (56100, 56101, 56102)


def query(dsn: str, sql: str) -> Any:
    """The first column of the first row (None without rows)."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as c:
        row = c.execute(sql).fetchone()
        return row[0] if row else None


def eventually(dsn: str, sql: str, expected: Any, timeout: float = 30) -> None:
    """Until ``sql`` on ``dsn`` returns ``expected`` (a background worker starts some time after its server)."""
    deadline = time.monotonic() + timeout
    while (got := query(dsn, sql)) != expected:
        assert time.monotonic() < deadline, f"{sql!r} on {dsn}: {got!r}, expected {expected!r} within {timeout} s"
        time.sleep(0.1)


def wait_replayed(primary: str, standby: str, timeout: float = 30) -> None:
    """Until the standby has replayed all the primary wrote so far: the secondary is a synchronous standby,
    but synchronous_commit = on waits for its flush, not its replay, so a commit can be invisible there."""
    lsn = query(primary, "SELECT pg_current_wal_lsn()")
    eventually(standby, f"SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn", True, timeout)


WORKER = "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'ruvector_dag worker'"


def test_failover_and_the_old_primary_rejoins_as_a_standby() -> None:
    # Not under pytest's tmp_path: every pytest session (also a concurrent one) resets /tmp/pytest-of-<user>
    # to mode 0700, and the postgres user would lose its way to the formation's directories mid-test.
    base = Path(tempfile.mkdtemp(prefix="rvd-autofailover-"))
    with AutoFailoverFormation(base / "formation", PORTS) as formation:
        old_primary, old_standby = formation.primary_dsn(), formation.secondary_dsn()
        for dsn in (old_primary, old_standby):
            assert "ruvector_dag" in query(dsn, "SHOW shared_preload_libraries").split(",")
        eventually(old_primary, WORKER, 1)

        import psycopg

        with psycopg.connect(old_primary, autocommit=True) as c:
            c.execute("CREATE EXTENSION ruvector_dag")
            c.execute("CREATE TABLE smoke (id int PRIMARY KEY, note text)")
            c.execute("INSERT INTO smoke VALUES (1, 'before the failover')")
        wait_replayed(old_primary, old_standby)
        assert query(old_standby, "SELECT note FROM smoke WHERE id = 1") == "before the failover"
        assert query(old_standby, "SELECT count(*) FROM pg_extension WHERE extname = 'ruvector_dag'") == 1

        formation.failover()
        assert (formation.primary_dsn(), formation.secondary_dsn()) == (old_standby, old_primary)
        assert query(old_standby, "SELECT pg_is_in_recovery()") is False
        with psycopg.connect(old_standby, autocommit=True) as c:
            c.execute("INSERT INTO smoke VALUES (2, 'after the failover')")
        eventually(old_standby, WORKER, 1)
        # The old primary rejoined without manual steps: a hot standby of the new primary.
        assert query(old_primary, "SELECT pg_is_in_recovery()") is True
        wait_replayed(old_standby, old_primary)
        assert query(old_primary, "SELECT note FROM smoke WHERE id = 2") == "after the failover"
    print(f"timings (s): {formation.timings}")
    shutil.rmtree(base)  # kept after a failure, for its logs
