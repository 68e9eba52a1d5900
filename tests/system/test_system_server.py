"""ruvector_dag inside a distribution's PostgreSQL (Debian's postgresql-15).

Run by `.ci/debian-pg15.sh` after `docker/install-into-postgres.sh 15` with
RUVECTOR_SYSTEM_DSN and RUVECTOR_SYSTEM_PGBIN set; skipped otherwise.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

DSN = os.environ.get("RUVECTOR_SYSTEM_DSN")
PGBIN = os.environ.get("RUVECTOR_SYSTEM_PGBIN")
pytestmark = pytest.mark.skipif(not DSN or not PGBIN, reason="needs a system server (.ci/debian-pg15.sh)")

REPO = Path(__file__).resolve().parent.parent.parent


def connect() -> Any:
    import psycopg

    assert DSN
    return psycopg.connect(DSN, autocommit=True)


def test_pg_regress_on_the_system_server(tmp_path: Path) -> None:
    assert PGBIN
    pgxs = subprocess.run([f"{PGBIN}/pg_config", "--pgxs"], capture_output=True, text=True, check=True).stdout.strip()
    pg_regress = Path(pgxs).parent.parent / "test" / "regress" / "pg_regress"
    import re

    tests = re.search(r"^REGRESS\s*=\s*(.+)$", (REPO / "pgext" / "Makefile").read_text(), re.M)
    assert tests
    with connect() as c:
        host = c.info.host
        port = c.info.port
    res = subprocess.run(
        [str(pg_regress), f"--inputdir={REPO / 'pgext'}", f"--outputdir={tmp_path}", f"--bindir={PGBIN}",
         f"--host={host}", f"--port={port}", "--user=postgres", "--dbname=contrib_regression",
         *tests.group(1).split()],
        capture_output=True, text=True, timeout=600)
    diffs = tmp_path / "regression.diffs"
    assert res.returncode == 0, res.stdout + res.stderr + (diffs.read_text() if diffs.exists() else "")


def test_engine_runs_in_the_system_server() -> None:
    with connect() as c:
        info = c.execute("SELECT ruvector_dag_engine_info()").fetchone()[0]
        assert info["uid"] != 0
        assert "venv" in info["python_executable"] or info["python_executable"].startswith("/usr")
        w = c.execute("SELECT ruvector_attention_topological('{1,0}', '{{1,0},{0,1}}')").fetchone()[0]
        assert w[0] > w[1] and abs(sum(w) - 1) < 1e-6


PLPY = """
CREATE EXTENSION IF NOT EXISTS plpython3u;
CREATE OR REPLACE FUNCTION py_rows(t text) RETURNS int LANGUAGE plpython3u AS $$
    return plpy.execute("SELECT count(*) AS n FROM " + plpy.quote_ident(t))[0]["n"]
$$;
DROP TABLE IF EXISTS pyt;
CREATE TABLE pyt AS SELECT generate_series(1, 10) AS a;
"""


def test_plpython_first_then_engine() -> None:
    with connect() as c:
        c.execute(PLPY)
    with connect() as c:
        assert c.execute("SELECT py_rows('pyt')").fetchone()[0] == 10
        w = c.execute("SELECT ruvector_attention_critical_path('{1,0}', '{{1,0},{0,1}}', '{f,t}', 1)").fetchone()[0]
        assert abs(sum(w) - 1) < 1e-6
        assert c.execute("SELECT py_rows('pyt')").fetchone()[0] == 10


def test_engine_first_then_plpython() -> None:
    with connect() as c:
        c.execute(PLPY)
    with connect() as c:
        info = c.execute("SELECT ruvector_dag_engine_info()").fetchone()[0]
        assert json.dumps(info)
        assert c.execute("SELECT py_rows('pyt')").fetchone()[0] == 10
        # and a PL/Python function can see the engine's interpreter state safely
        assert c.execute("SELECT ruvector_attention_topological('{1}', '{{1}}')").fetchone()[0] == [1.0]


def test_capture_in_the_system_server() -> None:
    with connect() as c:
        c.execute("DROP TABLE IF EXISTS sys_orders")
        c.execute("CREATE TABLE sys_orders AS SELECT g AS id, g % 10 AS k FROM generate_series(1, 1000) g")
        c.execute("SELECT ruvector_enable_neural_dag('sys_orders')")
        c.execute("SELECT ruvector_dag_capture_reset()")
        for k in range(5):
            c.execute("SELECT count(*) FROM sys_orders WHERE k = %s", (k,)).fetchall()
        assert c.execute("SELECT executions, captured FROM ruvector_dag_capture_stats() "
                         "WHERE relid = 'sys_orders'::regclass").fetchone() == (5, 5)
        c.execute("DROP TABLE sys_orders")


def test_learning_in_the_system_server() -> None:
    """The worker learns inside the distribution's server (issue 7: "with learning working")."""
    with connect() as c:
        c.execute("DROP TABLE IF EXISTS sys_items")
        c.execute("CREATE TABLE sys_items AS SELECT g AS id, g % 10 AS k FROM generate_series(1, 5000) g")
        c.execute("CREATE INDEX ON sys_items (id)")
        c.execute("ANALYZE sys_items")
        c.execute("SELECT ruvector_enable_neural_dag('sys_items')")
        for i in range(20):
            c.execute("SELECT * FROM sys_items WHERE id = %s", (i + 1,)).fetchall()
            c.execute("SELECT k, count(*) FROM sys_items GROUP BY k").fetchall()
        answer = c.execute("SELECT ruvector_dag_learn('sys_items')").fetchone()[0]
        assert answer["success"], answer
        stats = c.execute("SELECT ruvector_dag_learning_stats('sys_items')").fetchone()[0]
        assert stats["queries_processed"] == 40
        patterns = c.execute("SELECT sample_count FROM ruvector_dag_patterns('sys_items')").fetchall()
        assert len(patterns) >= 2 and sum(p[0] for p in patterns) == stats["trajectories_learned"]
        c.execute("DROP TABLE sys_items")
