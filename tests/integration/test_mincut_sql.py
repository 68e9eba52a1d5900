"""MinCut bottleneck analysis from SQL: per pattern, per table, per ad-hoc query."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

SCHEMA = """
DROP TABLE IF EXISTS facts, dim_big, dim_small CASCADE;
CREATE TABLE dim_big (id int PRIMARY KEY, label text);
CREATE TABLE dim_small (id int PRIMARY KEY, label text);
CREATE TABLE facts (id int PRIMARY KEY, big_id int, small_id int, amount numeric);
INSERT INTO dim_big SELECT g, md5(g::text) FROM generate_series(1, 200000) g;
INSERT INTO dim_small SELECT g, 's' || g FROM generate_series(1, 10) g;
INSERT INTO facts SELECT g, 1 + g % 200000, 1 + g % 10, g % 100 FROM generate_series(1, 20000) g;
ANALYZE facts, dim_big, dim_small;
"""

STAR = ("SELECT s.label, count(*) FROM facts f JOIN dim_big b ON b.id = f.big_id "
        "JOIN dim_small s ON s.id = f.small_id WHERE b.label LIKE '%%ab%%' GROUP BY s.label")


@pytest.fixture
def star(conn: Any) -> Iterator[Any]:
    conn.execute(SCHEMA)
    conn.execute("SET enable_indexscan = off; SET enable_bitmapscan = off")  # a deterministic hash star join
    yield conn
    conn.execute("RESET enable_indexscan; RESET enable_bitmapscan")
    conn.execute("DROP TABLE IF EXISTS facts, dim_big, dim_small CASCADE")


def plan_rows(conn: Any, sql: str) -> list[tuple[Any, ...]]:
    return conn.execute("SELECT * FROM ruvector_dag_mincut_plan(%s)", (sql,)).fetchall()


def test_plan_of_an_adhoc_query(star: Any) -> None:
    rows = plan_rows(star, STAR.replace("%%", "%"))
    ops = [r[2] for r in rows]
    explain = star.execute("EXPLAIN (FORMAT JSON) " + STAR.replace("%%", "%")).fetchone()[0][0]["Plan"]
    assert ops[0] == explain["Node Type"] and len(rows) >= 6
    crit = {r[0]: r[4] for r in rows}
    assert all(0.0 <= c <= 1.0 for c in crit.values())
    top = max(rows, key=lambda r: r[4])
    # the scan of the dominant dimension (200k rows, a LIKE filter) carries most of the cut
    assert top[2] == "Seq Scan" and top[4] > 0.5
    assert [r[4] for r in plan_rows(star, STAR.replace("%%", "%"))] == [r[4] for r in rows]  # deterministic
    threshold = star.execute("SHOW ruvector.dag_mincut_threshold").fetchone()[0]
    assert all(r[5] == (r[4] > float(threshold)) for r in rows)
    # planned, never executed: a volatile function in the query is never called
    star.execute("DROP SEQUENCE IF EXISTS probe; CREATE SEQUENCE probe")
    plan_rows(star, "SELECT nextval('probe') FROM facts")
    assert star.execute("SELECT last_value, is_called FROM probe").fetchone() == (1, False)


def test_chain_plan_has_one_full_bottleneck(conn: Any) -> None:
    rows = conn.execute("SELECT * FROM ruvector_dag_mincut_plan("
                        "'SELECT count(*) FROM generate_series(1, 1000) g WHERE g % 7 = 0')").fetchall()
    assert max(r[4] for r in rows) == 1.0
    assert sum(1 for r in rows if r[4] > 0) >= 1


@pytest.mark.parametrize("sql, state", [
    ("DELETE FROM pg_class", "22023"),
    ("SELECT 1; SELECT 2", "22023"),
    ("SELECT * FROM pg_class FOR UPDATE", "22023"),
    ("WITH d AS (DELETE FROM nothing RETURNING 1) SELECT * FROM d", "22023"),
    ("SELECT 1 INTO newtab", "22023"),
    ("", "22023"),
    ("SELEC 1", "42601"),
    ("SELECT * FROM no_such_table", "42P01"),
])
def test_plan_refuses_what_is_not_a_read_only_select(conn: Any, sql: str, state: str) -> None:
    with pytest.raises(psycopg.Error) as err:
        conn.execute("SELECT * FROM ruvector_dag_mincut_plan(%s)", (sql,))
    assert err.value.sqlstate == state, str(err.value)


def test_table_criticality_analysis_and_gating(conn: Any) -> None:
    conn.execute(SCHEMA)
    conn.execute("SELECT ruvector_enable_neural_dag('facts')")
    for i in range(10):
        conn.execute(STAR.replace("%%", "%")).fetchall()
        conn.execute("SELECT * FROM facts WHERE id = %s", (i + 1,)).fetchall()
    assert conn.execute("SELECT ruvector_dag_learn('facts')").fetchone()[0]["success"]
    rows = conn.execute("SELECT * FROM ruvector_dag_mincut_criticality('facts')").fetchall()
    patterns = {r[0] for r in conn.execute("SELECT pattern_id FROM ruvector_dag_patterns('facts')").fetchall()}
    assert rows and {r[3] for r in rows} == patterns
    for node_id, crit, is_bottleneck, pattern_id, position, _parent, op, own in rows:
        assert node_id == pattern_id * 1000 + position and 0 <= crit <= 1 and own >= 0 and op
        assert is_bottleneck == (crit > 0.5)
    analysis = conn.execute("SELECT ruvector_dag_mincut_analysis('facts')").fetchone()[0]
    assert analysis["threshold"] == 0.5 and analysis["global_mincut"] > 0
    assert analysis["bottleneck_count"] == sum(1 for r in rows if r[2]) == len(analysis["bottlenecks"])
    # The table's settings are its enrollment config: a session's SET does not change them,
    # enrolling again with a config does (and keeps what was learned).
    conn.execute("SET ruvector.dag_mincut_threshold = 0.99")
    assert conn.execute("SELECT ruvector_dag_mincut_analysis('facts')").fetchone()[0]["threshold"] == 0.5
    conn.execute("RESET ruvector.dag_mincut_threshold")
    conn.execute("""SELECT ruvector_enable_neural_dag('facts', '{"dag_mincut_threshold": 0.99}')""")
    analysis = conn.execute("SELECT ruvector_dag_mincut_analysis('facts')").fetchone()[0]
    assert analysis["threshold"] == 0.99 and analysis["patterns_analysed"] == len(patterns)
    assert analysis["bottleneck_count"] == sum(1 for r in rows if r[1] > 0.99)
    assert all(r[2] == (r[1] > 0.99) for r in conn.execute(
        "SELECT * FROM ruvector_dag_mincut_criticality('facts')").fetchall())
    hist = conn.execute("SELECT max_criticality FROM ruvector_dag.trajectory_history "
                        "WHERE relid = 'facts'::regclass").fetchall()
    assert hist and all(0 < h[0] <= 1 for h in hist)

    conn.execute("""SELECT ruvector_enable_neural_dag('facts', '{"dag_mincut_enabled": false}')""")
    assert conn.execute("SELECT ruvector_dag_mincut_analysis('facts')").fetchone()[0] == {"error": "MinCut not enabled"}
    assert conn.execute("SELECT count(*) FROM ruvector_dag_mincut_criticality('facts')").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM ruvector_dag_mincut_plan('SELECT 1')").fetchone()[0] > 0
    conn.execute("SET ruvector.dag_mincut_enabled = off")  # an ad-hoc plan follows the session
    assert conn.execute("SELECT count(*) FROM ruvector_dag_mincut_plan('SELECT 1')").fetchone()[0] == 0
    conn.execute("RESET ruvector.dag_mincut_enabled")
    conn.execute("DROP TABLE facts, dim_big, dim_small")
    assert conn.execute("SELECT count(*) FROM ruvector_dag.pattern_nodes WHERE relid NOT IN "
                        "(SELECT relid FROM ruvector_dag.enrolled_tables)").fetchone()[0] == 0


def test_not_enrolled(conn: Any) -> None:
    conn.execute("DROP TABLE IF EXISTS plain2; CREATE TABLE plain2 (a int)")
    assert conn.execute("SELECT ruvector_dag_mincut_analysis('plain2')").fetchone()[0] == {
        "error": "Neural DAG not enabled"}
    assert conn.execute("SELECT count(*) FROM ruvector_dag_mincut_criticality('plain2')").fetchone()[0] == 0
    with pytest.raises(psycopg.Error) as err:
        conn.execute("SELECT ruvector_dag_mincut_analysis('nope_missing')")
    assert err.value.sqlstate == "42P01"
    conn.execute("DROP TABLE plain2")


def test_known_plan_gives_the_same_answer_on_every_server(conn: Any) -> None:
    """A fixed EXPLAIN document: hash join over a heavy and a light branch (criticalities known exactly)."""
    explain = [{"Plan": {"Node Type": "Hash Join", "Total Cost": 100.0, "Plan Rows": 10, "Plans": [
        {"Node Type": "Seq Scan", "Total Cost": 60.0, "Plan Rows": 1000},
        {"Node Type": "Hash", "Total Cost": 30.0, "Plan Rows": 50, "Plans": [
            {"Node Type": "Seq Scan", "Total Cost": 30.0, "Plan Rows": 50}]}]}}]
    out = conn.execute("SELECT ruvector_dag._mincut_of_plan(%s::jsonb, 0.5)",
                       (json.dumps(explain),)).fetchone()[0]
    assert out["cut_weight"] == 90.0
    assert [(n["operator"], n["self_cost"], round(n["criticality"], 6), n["is_bottleneck"]) for n in out["nodes"]] == [
        ("Hash Join", 10.0, 0.0, False), ("Seq Scan", 60.0, round(60 / 90, 6), True),
        ("Hash", 0.0, 0.0, False), ("Seq Scan", 30.0, round(30 / 90, 6), False)]
