"""The worker learns in a database whose encoding is not UTF-8 (LATIN1), from tables with Latin-1 names."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ruvector_dag.definitions.settings import EXACT_LEARNING
from ruvector_dag.tools.server import Server

pytestmark = pytest.mark.server

TABLE = "prix_été"
SCHEMA = f"""
CREATE TABLE {TABLE} (id int PRIMARY KEY, catégorie int, note text);
INSERT INTO {TABLE} SELECT g, g % 20, CASE WHEN g % 2 = 0 THEN 'crème brûlée ' ELSE 'café ' END || g
  FROM generate_series(1, 5000) g;
ANALYZE {TABLE};
"""
SHAPES = [
    f"SELECT count(*) FROM {TABLE} WHERE note LIKE 'crème%' AND id > {{i}}",
    f"SELECT catégorie, count(*) FROM {TABLE} GROUP BY catégorie ORDER BY 1",
    f"SELECT * FROM {TABLE} WHERE id = {{i}}",
]


@pytest.fixture
def latin1(tmp_path: Path, server: Server) -> Iterator[Any]:
    """A server whose worker serves a LATIN1 database (created before a restart: the setting needs one)."""
    srv = Server(tmp_path / "latin1", pg_version=server.pg_version, build=False,
                 settings={**EXACT_LEARNING, "ruvector.dag_worker_database": "latin1db"})
    with srv:
        srv.execute("CREATE DATABASE latin1db TEMPLATE template0 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C'")
        srv.restart()
        with psycopg.connect(srv.dsn.rsplit("/", 1)[0] + "/latin1db", autocommit=True) as c:
            assert c.execute("SHOW server_encoding").fetchone()[0] == "LATIN1"
            c.execute("CREATE EXTENSION ruvector_dag")
            yield srv, c


def test_worker_learns_in_a_latin1_database(latin1: Any) -> None:
    srv, c = latin1
    c.execute(SCHEMA)
    assert c.execute("SELECT ruvector_enable_neural_dag(%s)", (TABLE,)).fetchone()[0] is True
    ran = 0
    for i in range(20):
        for shape in SHAPES:
            c.execute(shape.format(i=i + 1)).fetchall()
            ran += 1
    answer = c.execute("SELECT ruvector_dag_learn(%s)", (TABLE,)).fetchone()[0]
    assert answer["success"] is True, answer
    stats = c.execute("SELECT ruvector_dag_learning_stats(%s)", (TABLE,)).fetchone()[0]
    assert stats["queries_processed"] == ran and stats["patterns_stored"] > 0
    assert 0 < answer["trajectories_processed"] == stats["trajectories_learned"] <= ran
    assert c.execute("SELECT count(*) FROM ruvector_dag_patterns(%s)", (TABLE,)).fetchone()[0] > 0

    # The name the worker read (LATIN1) and wrote back is the enrolled name, character for character.
    enrolled = c.execute("SELECT table_name FROM ruvector_dag.enrolled_tables").fetchone()[0]
    assert "été" in enrolled
    for table in ("patterns", "trajectory_history"):
        names = {r[0] for r in c.execute(f"SELECT DISTINCT table_name FROM ruvector_dag.{table}")}
        assert names == {enrolled}, table

    # Drained in the background too (not only on request), without a decoding error.
    for i in range(5):
        c.execute(SHAPES[2].format(i=100 + i)).fetchall()
    deadline = time.monotonic() + 10
    while c.execute("SELECT ruvector_dag_learning_stats(%s)", (TABLE,)).fetchone()[0]["queries_processed"] < ran + 5:
        assert time.monotonic() < deadline, srv.log_tail(30)
        time.sleep(0.1)
    log = srv.log_file.read_text(errors="replace")
    assert "codec can't" not in log and "UnicodeDecodeError" not in log
