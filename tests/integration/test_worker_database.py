"""A missing ruvector.dag_worker_database: the worker backs off, queries go on, a reload retries at once."""

from __future__ import annotations

import re
import time
from datetime import datetime
from pathlib import Path

import psycopg
import pytest

from ruvector_dag.tools.server import Server

pytestmark = pytest.mark.server

FATAL = 'FATAL:  database "nosuchdb" does not exist'
NOTICE = re.compile(r'LOG:  ruvector_dag worker could not connect to database "nosuchdb" '
                    r"\(\d+ failed starts?\): next attempt in (\d+) s")
STARTED = 'ruvector_dag worker started in database "nosuchdb"'


def stamp(line: str) -> datetime:
    return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S.%f")


def wait_for_log(srv: Server, text: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        log = srv.log_file.read_text(errors="replace")
        if text in log:
            return log
        assert time.monotonic() < deadline, f"no {text!r} in the server log:\n{srv.log_tail(30)}"
        time.sleep(0.25)


def test_missing_worker_database_backs_off(tmp_path: Path, server: Server) -> None:
    srv = Server(tmp_path / "nodb", pg_version=server.pg_version, build=False,
                 settings={"ruvector.dag_worker_database": "nosuchdb"})
    with srv:
        with srv.connect() as c:
            # Queries work without the worker ...
            c.execute("CREATE TABLE t (id int PRIMARY KEY, v int)")
            c.execute("INSERT INTO t SELECT g, g FROM generate_series(1, 1000) g")
            assert c.execute("SELECT count(*) FROM t WHERE v < 10").fetchone()[0] == 9
            c.execute("SELECT * FROM ruvector_dag_capture_stats()").fetchall()
            # ... and what needs it answers at once, saying why: tables are enrolled (and learned
            # from) only in the worker's database, which does not exist.
            began = time.monotonic()
            with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match='"nosuchdb"'):
                c.execute("SELECT ruvector_enable_neural_dag('t')")
            assert c.execute("SELECT ruvector_dag_learn('t')").fetchone()[0]["success"] is False
            assert time.monotonic() - began < 5

        # Starts at 0 s (fails), 10 + 10 s (fails), then 10 + 20 s later: slower than every 10 s.
        log = wait_for_log(srv, "next attempt in 20 s", timeout=60)
        lines = log.splitlines()
        fatals = [stamp(ln) for ln in lines if FATAL in ln]
        assert len(fatals) == 2, "\n".join(lines[-30:])
        assert (fatals[1] - fatals[0]).total_seconds() >= 18
        notices = [(i, m.group(1)) for i, ln in enumerate(lines) if (m := NOTICE.search(ln))]
        assert [delay for _, delay in notices] == ["10", "20"]  # one line per delay, each with its hint
        for i, _ in notices:
            assert "HINT:  Create database \"nosuchdb\"" in lines[i + 1]
            assert "ruvector.dag_worker_database" in lines[i + 1]

        # Once the database exists, a reload ends the wait at once.
        srv.execute("CREATE DATABASE nosuchdb")
        began = time.monotonic()
        srv.execute("SELECT pg_reload_conf()")
        log = wait_for_log(srv, STARTED, timeout=8)
        assert time.monotonic() - began < 8
        assert log.count(FATAL) == 2
        with srv.connect() as c:
            assert c.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'ruvector_dag worker' "
                             "AND datname = 'nosuchdb'").fetchone()[0] == 1
