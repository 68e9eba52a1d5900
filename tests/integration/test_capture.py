"""Automatic capture: enrollment, executor hooks, the shared-memory ring."""

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

from ruvector_dag.definitions import layout
from ruvector_dag.tools.server import Server

SCHEMA = """
DROP TABLE IF EXISTS orders, customers, other CASCADE;
CREATE TABLE customers (id int PRIMARY KEY, region text, tier int);
CREATE TABLE orders (id int PRIMARY KEY, customer_id int REFERENCES customers, amount numeric, day int);
CREATE TABLE other (x int);
INSERT INTO customers SELECT g, 'r' || (g % 7), g % 3 FROM generate_series(1, 500) g;
INSERT INTO orders SELECT g, 1 + g % 500, (g % 97) * 1.5, g % 30 FROM generate_series(1, 5000) g;
INSERT INTO other SELECT generate_series(1, 100);
CREATE INDEX ON orders (customer_id);
ANALYZE customers, orders, other;
"""

# Statements covering joins, aggregates, subqueries, CTEs, window functions and DML.
QUERIES = [
    "SELECT count(*) FROM orders",
    "SELECT * FROM orders WHERE id = 42",
    "SELECT c.region, sum(o.amount) FROM orders o JOIN customers c ON c.id = o.customer_id "
    "GROUP BY c.region ORDER BY c.region",
    "SELECT o.id FROM orders o WHERE o.amount > (SELECT avg(amount) FROM orders) ORDER BY o.id LIMIT 20",
    "SELECT c.id, (SELECT count(*) FROM orders o WHERE o.customer_id = c.id) FROM customers c "
    "WHERE c.id < 20 ORDER BY c.id",
    "WITH big AS MATERIALIZED (SELECT customer_id, sum(amount) s FROM orders GROUP BY customer_id) "
    "SELECT * FROM big WHERE s > 400 ORDER BY customer_id",
    "SELECT id, day, rank() OVER (PARTITION BY day ORDER BY amount DESC, id) FROM orders "
    "WHERE day < 3 ORDER BY day, id LIMIT 50",
    "SELECT region FROM customers UNION SELECT 'x' || day FROM orders WHERE day < 2 ORDER BY 1",
    "SELECT * FROM orders WHERE customer_id IN (SELECT id FROM customers WHERE tier = 1) ORDER BY id LIMIT 30",
    "UPDATE orders SET amount = amount + 1 WHERE id % 100 = 0 RETURNING id, amount",
    "DELETE FROM orders WHERE id > 4990 RETURNING id",
    "INSERT INTO orders SELECT 10000 + g, 1, 1, 1 FROM generate_series(1, 5) g RETURNING id",
]


#: These tests look at the ring itself, so the worker must not consume it.
FROZEN = {"ruvector.dag_learning_mode": "frozen"}
PG_VERSIONS = [int(v) for v in os.environ.get("RUVECTOR_TEST_PG", "16,18").split(",") if v.strip()]


@pytest.fixture(scope="module", params=PG_VERSIONS, ids=[f"pg{v}" for v in PG_VERSIONS])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of this module's own, in learning mode frozen."""
    srv = Server(tmp_path_factory.mktemp(f"capture-pg{request.param}") / "data", pg_version=request.param,
                 settings=FROZEN)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def shop(conn: Any) -> Iterator[Any]:
    conn.execute(SCHEMA)
    conn.execute("SELECT ruvector_enable_neural_dag('orders')")
    conn.execute("SELECT ruvector_dag_capture_reset()")
    yield conn
    conn.execute("DROP TABLE IF EXISTS orders, customers, other CASCADE")


def buffered(conn: Any, relname: str = "orders") -> list[dict[str, Any]]:
    cur = conn.execute(
        "SELECT * FROM ruvector_dag_buffered_trajectories(100000) WHERE relid = %s::regclass", (relname,))
    cols = [d.name for d in cur.description]
    return [dict(zip(cols, row)) for row in cur.fetchall()]


def stats(conn: Any, relname: str = "orders") -> tuple[int, int, int, int]:
    """(executions, captured, sampled_out, dropped) of a table."""
    row = conn.execute("SELECT executions, captured, sampled_out, dropped FROM ruvector_dag_capture_stats() "
                       "WHERE relid = %s::regclass", (relname,)).fetchone()
    return (0, 0, 0, 0) if row is None else tuple(row)


def explain_node_types(conn: Any, sql: str) -> list[str]:
    plan = conn.execute(f"EXPLAIN (FORMAT JSON, COSTS OFF) {sql}").fetchone()[0][0]["Plan"]
    out: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        out.append(node["Node Type"])
        for child in node.get("Plans", []):
            walk(child)

    walk(plan)
    return out


def test_every_statement_is_captured_with_its_plan(shop: Any) -> None:
    for sql in QUERIES:
        expected = explain_node_types(shop, sql)
        before = len(buffered(shop))
        shop.execute(sql).fetchall()
        records = buffered(shop)
        assert len(records) == before + 1, sql
        rec = records[-1]
        got = [n["op"] for n in rec["nodes"]]
        assert got == expected, f"{sql}\ncaptured {got}\nEXPLAIN  {expected}"
        assert rec["n_nodes"] == rec["total_nodes"] == len(expected) and not rec["truncated"]
        assert rec["nodes"][0]["parent"] == -1
        assert all(0 <= n["parent"] < i for i, n in enumerate(rec["nodes"]) if i > 0)
        assert rec["execution_us"] > 0 and rec["query_id"] != 0 and rec["nesting_level"] == 0
        assert rec["memory_bytes"] > 0
    assert stats(shop) == (len(QUERIES), len(QUERIES), 0, 0)


def test_actual_rows_and_estimates_are_recorded(shop: Any) -> None:
    shop.execute("SELECT * FROM orders WHERE day = 3").fetchall()
    rec = buffered(shop)[-1]
    scan = next(n for n in rec["nodes"] if n["op"] == "Seq Scan")
    expected = shop.execute("SELECT count(*) FROM orders WHERE day = 3").fetchone()[0]
    assert expected > 0 and scan["actual_rows"] == expected
    assert scan["relid"] == shop.execute("SELECT 'orders'::regclass::oid").fetchone()[0]
    assert scan["plan_rows"] > 0 and scan["total_cost"] > 0 and scan["loops"] == 1
    assert rec["rows_processed"] == scan["actual_rows"]
    assert rec["planning_us"] > 0
    assert rec["cache_hit_rate"] is not None and 0 <= rec["cache_hit_rate"] <= 1


def test_only_enrolled_tables_and_switches(shop: Any) -> None:
    shop.execute("SELECT count(*) FROM other").fetchall()
    shop.execute("SELECT count(*) FROM customers").fetchall()
    assert buffered(shop) == []
    shop.execute("SET ruvector.neural_dag_enabled = off")
    shop.execute("SELECT count(*) FROM orders").fetchall()
    assert buffered(shop) == []
    shop.execute("RESET ruvector.neural_dag_enabled")
    shop.execute("SELECT count(*) FROM orders").fetchall()
    assert len(buffered(shop)) == 1
    assert shop.execute("SELECT ruvector_disable_neural_dag('orders')").fetchone()[0] is True
    shop.execute("SELECT count(*) FROM orders").fetchall()
    assert len(buffered(shop)) == 1
    assert shop.execute("SELECT ruvector_neural_dag_enabled('orders')").fetchone()[0] is False


def test_prepared_statement_is_captured_every_time(shop: Any) -> None:
    shop.execute("PREPARE p(int) AS SELECT * FROM orders WHERE customer_id = $1")
    for i in range(100):
        shop.execute(f"EXECUTE p({i % 50 + 1})").fetchall()
    shop.execute("DEALLOCATE p")
    assert len(buffered(shop)) == 100
    # psycopg's server-side prepared statements take the cached-plan path too
    for i in range(20):
        shop.execute("SELECT * FROM orders WHERE id = %s", (i,), prepare=True).fetchall()
    assert len(buffered(shop)) == 120


def test_sample_rate_captures_a_fraction(shop: Any) -> None:
    """ruvector.dag_capture_sample_rate, as auto_explain.sample_rate; the first execution is always kept."""
    c = shop
    c.execute("SET ruvector.dag_capture_sample_rate = 0.2")
    c.execute("PREPARE one(int) AS SELECT * FROM orders WHERE id = $1")
    for i in range(1000):
        c.execute(f"EXECUTE one({i % 500 + 1})").fetchall()
    n = len(buffered(c))
    assert 140 <= n <= 265, n  # 1 + Binomial(999, 0.2): mean 201, sd 12.6
    # every execution counted, as pg_stat_statements counts calls; those left out cost no record
    assert stats(c) == (1000, n, 1000 - n, 0)
    # 0: only the first execution of each query in the session
    c.execute("SET ruvector.dag_capture_sample_rate = 0")
    for day in range(50):
        c.execute(f"SELECT count(*) FROM orders WHERE day = {day % 30}").fetchall()
    day_records = [r for r in buffered(c) if r["query_id"] != buffered(c)[0]["query_id"]]
    assert len(day_records) == 1
    c.execute("RESET ruvector.dag_capture_sample_rate")
    for _ in range(50):
        c.execute("EXECUTE one(7)").fetchall()
    assert len(buffered(c)) == n + 1 + 50  # every statement again
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="dag_capture_sample_rate"):
        c.execute("SET ruvector.dag_capture_sample_rate = 1.5")


def test_plpgsql_inner_statements_are_nested(shop: Any) -> None:
    shop.execute("""CREATE OR REPLACE FUNCTION order_total(c int) RETURNS numeric LANGUAGE plpgsql AS $$
        DECLARE s numeric; BEGIN SELECT sum(amount) INTO s FROM orders WHERE customer_id = c; RETURN s; END $$""")
    shop.execute("SELECT order_total(id) FROM customers WHERE id <= 3").fetchall()
    records = buffered(shop)
    assert len(records) == 3
    assert all(r["nesting_level"] >= 1 for r in records)


def test_failed_statement_leaves_no_state(shop: Any) -> None:
    with pytest.raises(psycopg.errors.DivisionByZero):
        shop.execute("SELECT amount / (id - id) FROM orders").fetchall()
    shop.execute("SELECT count(*) FROM orders").fetchall()
    records = buffered(shop)
    assert len(records) == 1 and records[0]["nesting_level"] == 0
    assert stats(shop) == (1, 1, 0, 0)  # a statement that failed is not an execution (nor in pg_stat_statements)


def test_concurrent_sessions_lose_nothing(shop: Any, server: Server) -> None:
    def work(k: int) -> None:
        with server.connect() as c:
            for i in range(250):
                c.execute("SELECT * FROM orders WHERE id = %s", (k * 1000 + i,)).fetchall()

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    executions, captured, sampled_out, dropped = stats(shop)
    assert executions == captured + dropped == 1000 and sampled_out == 0
    assert len(buffered(shop)) == captured


def test_full_ring_drops_and_counts(tmp_path: Path, server: Server) -> None:
    srv = Server(tmp_path / "small", pg_version=server.pg_version,
                 settings={**FROZEN, "ruvector.dag_max_trajectories": 64}, build=False)
    with srv, srv.connect() as c:
        c.execute("CREATE TABLE t (a int)")
        c.execute("SELECT ruvector_enable_neural_dag('t')")
        for _ in range(200):
            c.execute("SELECT count(*) FROM t").fetchall()
        assert stats(c, "t") == (200, 64, 0, 136)
        assert c.execute("SELECT capacity, buffered FROM ruvector_dag_ring_stats()").fetchone() == (64, 64)


def test_big_plans_are_truncated_and_flagged(shop: Any) -> None:
    unions = " UNION ALL ".join(f"SELECT id FROM orders WHERE id = {i}" for i in range(80))
    shop.execute(unions).fetchall()
    rec = buffered(shop)[-1]
    assert rec["truncated"] and rec["n_nodes"] == layout.MAX_PLAN_NODES
    assert rec["total_nodes"] == len(explain_node_types(shop, unions)) > layout.MAX_PLAN_NODES


def test_results_identical_with_and_without_capture(shop: Any, tmp_path: Path, server: Server) -> None:
    vanilla = Server(tmp_path / "vanilla", pg_version=server.pg_version,
                     settings={"shared_preload_libraries": ""}, build=False, extension=False)
    with vanilla, vanilla.connect() as v:
        v.execute(SCHEMA)
        for sql in QUERIES:
            got = shop.execute(sql).fetchall()
            want = v.execute(sql).fetchall()
            assert sorted(map(repr, got)) == sorted(map(repr, want)), sql
    assert stats(shop)[0] == len(QUERIES)


def test_enrollment_rules(shop: Any, server: Server) -> None:
    c = shop
    for sql, state, needle in [
        ("SELECT ruvector_enable_neural_dag('no_such_table')", "42P01", "no_such_table"),
        ("SELECT ruvector_enable_neural_dag(NULL)", "22004", "table_name"),
        ("SELECT ruvector_enable_neural_dag('orders', '{\"bogus\": 1}')", "22023", "bogus"),
        ("SELECT ruvector_enable_neural_dag('orders', '{\"dag_learning_rate\": \"fast\"}')", "22023",
         "dag_learning_rate"),
        ("SELECT ruvector_enable_neural_dag('orders', '{\"dag_learning_rate\": 5}')", "22023", "dag_learning_rate"),
        ("SELECT ruvector_enable_neural_dag('orders', '{\"dag_pattern_clusters\": 12.5}')", "22023",
         "dag_pattern_clusters"),
        ("SELECT ruvector_enable_neural_dag('orders', '{\"dag_attention_type\": \"best\"}')", "22023",
         "dag_attention_type"),
        ("SELECT ruvector_enable_neural_dag('orders', '{\"dag_max_trajectories\": 100}')", "22023",
         "dag_max_trajectories"),
        ("SELECT ruvector_enable_neural_dag('orders', '[1]')", "22023", "config"),
        ("SELECT ruvector_enable_neural_dag('pg_class_oid_index')", "42809", "pg_class_oid_index"),
        ("SELECT ruvector_neural_dag_enabled('nope')", "42P01", "nope"),
    ]:
        with pytest.raises(psycopg.Error) as err:
            c.execute(sql)
        assert err.value.sqlstate == state, (sql, str(err.value))
        assert needle in str(err.value), (sql, str(err.value))

    c.execute("SELECT ruvector_enable_neural_dag('public.\"orders\"', "
              "'{\"dag_pattern_clusters\": 12, \"dag_attention_type\": \"critical_path\"}')")
    config = c.execute("SELECT config FROM ruvector_dag.enrolled_tables WHERE relid = 'orders'::regclass"
                       ).fetchone()[0]
    assert config["dag_pattern_clusters"] == 12 and config["dag_attention_type"] == "critical_path"
    assert config["dag_learning_rate"] == pytest.approx(0.02)  # from the GUC

    # a disable of a table that is not enrolled warns and returns false
    notices: list[str] = []
    c.add_notice_handler(lambda d: notices.append(d.message_primary))
    assert c.execute("SELECT ruvector_disable_neural_dag('other')").fetchone()[0] is False
    assert any("not enabled" in n for n in notices)

    # owner only
    c.execute("DROP ROLE IF EXISTS rvd_alice")
    c.execute("CREATE ROLE rvd_alice LOGIN")
    c.execute("GRANT CREATE ON SCHEMA public TO rvd_alice")
    try:
        with psycopg.connect(server.dsn.replace("postgres@", "rvd_alice@"), autocommit=True) as alice:
            with pytest.raises(psycopg.Error) as err:
                alice.execute("SELECT ruvector_enable_neural_dag('orders')")
            assert err.value.sqlstate == "42501"
            with pytest.raises(psycopg.Error) as err:
                alice.execute("SELECT ruvector_disable_neural_dag('orders')")
            assert err.value.sqlstate == "42501"
            alice.execute("CREATE TABLE alice_t (a int)")
            assert alice.execute("SELECT ruvector_enable_neural_dag('alice_t')").fetchone()[0] is True
            alice.execute("DROP TABLE alice_t")
    finally:
        c.execute("REVOKE CREATE ON SCHEMA public FROM rvd_alice")
        c.execute("DROP ROLE rvd_alice")


def test_enrollment_is_transactional(shop: Any) -> None:
    shop.execute("BEGIN")
    shop.execute("SELECT ruvector_enable_neural_dag('other')")
    assert shop.execute("SELECT ruvector_neural_dag_enabled('other')").fetchone()[0] is False  # not yet
    shop.execute("ROLLBACK")
    assert shop.execute("SELECT ruvector_neural_dag_enabled('other')").fetchone()[0] is False
    assert shop.execute("SELECT count(*) FROM ruvector_dag.enrolled_tables WHERE relid = 'other'::regclass"
                        ).fetchone()[0] == 0
    shop.execute("BEGIN")
    shop.execute("SAVEPOINT s")
    shop.execute("SELECT ruvector_enable_neural_dag('other')")
    shop.execute("ROLLBACK TO SAVEPOINT s")
    shop.execute("SELECT ruvector_enable_neural_dag('customers')")
    shop.execute("COMMIT")
    assert shop.execute("SELECT ruvector_neural_dag_enabled('other')").fetchone()[0] is False
    assert shop.execute("SELECT ruvector_neural_dag_enabled('customers')").fetchone()[0] is True


def test_visible_to_other_sessions_and_dropped_with_table(shop: Any, server: Server) -> None:
    with server.connect() as other:
        assert other.execute("SELECT ruvector_neural_dag_enabled('orders')").fetchone()[0] is True
        other.execute("SELECT count(*) FROM orders").fetchall()
    assert len(buffered(shop)) == 1
    relid = shop.execute("SELECT 'orders'::regclass::oid").fetchone()[0]
    shop.execute("DROP TABLE orders")
    assert shop.execute("SELECT count(*) FROM ruvector_dag.enrolled_tables WHERE relid = %s", (relid,)
                        ).fetchone()[0] == 0
    assert shop.execute("SELECT count(*) FROM ruvector_dag_capture_stats() WHERE relid = %s", (relid,)
                        ).fetchone()[0] == 0


def _wait_enrolled(server: Server, table: str, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with server.connect() as c:
                if c.execute("SELECT ruvector_neural_dag_enabled(%s)", (table,)).fetchone()[0]:
                    return True
        except psycopg.OperationalError:
            pass
        time.sleep(0.2)
    return False


def test_enrollment_survives_restart_and_crash(tmp_path: Path, server: Server) -> None:
    srv = Server(tmp_path / "durable", pg_version=server.pg_version, settings=FROZEN, build=False)
    with srv:
        srv.execute("CREATE TABLE t (a int)")
        srv.execute("SELECT ruvector_enable_neural_dag('t')")
        srv.restart()
        assert _wait_enrolled(srv, "t")
        # crash: SIGKILL a backend; the postmaster reinitialises shared memory
        with srv.connect() as c:
            pid = c.execute("SELECT pg_backend_pid()").fetchone()[0]
            os.kill(pid, signal.SIGKILL)
        time.sleep(1.0)
        assert _wait_enrolled(srv, "t")
        with srv.connect() as c:
            c.execute("SELECT count(*) FROM t").fetchall()
            assert c.execute("SELECT executions FROM ruvector_dag_capture_stats()").fetchone()[0] == 1
        assert "terminated by signal 9" in srv.log_tail(200)


def test_record_layout_agrees_with_cffi(conn: Any) -> None:
    c_layout = conn.execute("SELECT ruvector_dag_record_layout()").fetchone()[0]
    ffi = layout.ffi()
    for struct in ("RvdTrajectory", "RvdPlanNode"):
        assert c_layout[struct]["sizeof"] == ffi.sizeof(struct)
        for field in layout.struct_fields(struct):
            assert c_layout[struct][field] == ffi.offsetof(struct, field), (struct, field)
    assert c_layout["max_plan_nodes"] == layout.MAX_PLAN_NODES
    assert c_layout["version"] == layout.RECORD_VERSION
    assert c_layout["operators"] == [name for _, name in layout.OPERATORS]
    assert json.dumps(c_layout)


def test_drop_extension_leaves_no_capture_behind(tmp_path: Path, server: Server) -> None:
    srv = Server(tmp_path / "dropext", pg_version=server.pg_version, settings=FROZEN, build=False)
    with srv, srv.connect() as c:
        c.execute("CREATE TABLE t (a int)")
        c.execute("SELECT ruvector_enable_neural_dag('t')")
        c.execute("SELECT count(*) FROM t").fetchall()
        written = c.execute("SELECT written FROM ruvector_dag_ring_stats()").fetchone()[0]
        assert written == 1
        c.execute("DROP EXTENSION ruvector_dag")
        for _ in range(10):
            c.execute("SELECT count(*) FROM t").fetchall()
        c.execute("CREATE EXTENSION ruvector_dag")
        assert c.execute("SELECT count(*) FROM ruvector_dag_capture_stats()").fetchone()[0] == 0
        assert c.execute("SELECT written FROM ruvector_dag_ring_stats()").fetchone()[0] == written
        assert c.execute("SELECT ruvector_neural_dag_enabled('t')").fetchone()[0] is False


def test_raw_records_decode_like_the_sql_view(shop: Any) -> None:
    from ruvector_dag.engine import trajectory

    for sql in QUERIES[:6]:
        shop.execute(sql).fetchall()
    raw = shop.execute("SELECT ruvector_dag_buffered_records(1000)").fetchone()[0]
    decoded = trajectory.decode(raw)
    view = buffered(shop)
    assert len(decoded) == len(view) == 6
    for t, row in zip(decoded, view):
        assert t.seq == row["seq"]
        assert t.query_id == row["query_id"] % 2**64  # uint64 in C, bigint in SQL
        assert t.nesting_level == row["nesting_level"] and t.rows_processed == row["rows_processed"]
        assert t.execution_us == pytest.approx(row["execution_us"])
        assert t.operators == [n["op"] for n in row["nodes"]]
        assert t.nodes["parent"].tolist() == [n["parent"] for n in row["nodes"]]
        np.testing.assert_allclose(t.nodes["actual_rows"], [n["actual_rows"] for n in row["nodes"]], rtol=1e-6)
        np.testing.assert_allclose(t.nodes["plan_rows"], [n["plan_rows"] for n in row["nodes"]], rtol=1e-6)


def test_killed_worker_comes_back_and_nothing_committed_is_lost(tmp_path: Path, server: Server) -> None:
    srv = Server(tmp_path / "killworker", pg_version=server.pg_version, settings=FROZEN, build=False)
    with srv:
        srv.execute("CREATE TABLE t (a int)")
        srv.execute("SELECT ruvector_enable_neural_dag('t')")
        pid = srv.execute("SELECT pid FROM pg_stat_activity WHERE backend_type = 'ruvector_dag worker'")[0][0]
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 60
        new_pid = None
        while time.monotonic() < deadline:
            try:
                rows = srv.execute("SELECT pid FROM pg_stat_activity WHERE backend_type = 'ruvector_dag worker'")
                if rows and rows[0][0] != pid:
                    new_pid = rows[0][0]
                    break
            except psycopg.OperationalError:
                pass  # the postmaster is reinitialising after the crash
            time.sleep(0.5)
        assert new_pid is not None, srv.log_tail(50)
        assert _wait_enrolled(srv, "t")
        assert srv.execute("SELECT count(*) FROM ruvector_dag.enrolled_tables") == [(1,)]


@pytest.mark.parametrize("function", ["ruvector_dag_buffered_trajectories", "ruvector_dag_buffered_records"])
def test_peek_functions_validate_max_records(shop: Any, function: str) -> None:
    shop.execute("SELECT count(*) FROM orders").fetchall()
    with pytest.raises(psycopg.Error) as err:
        shop.execute(f"SELECT {function}(-1)")
    assert err.value.sqlstate == "22023" and "max_records" in str(err.value)
    if function == "ruvector_dag_buffered_trajectories":
        assert shop.execute(f"SELECT count(*) FROM {function}(NULL)").fetchone()[0] == 1  # NULL: default 1000
        assert shop.execute(f"SELECT count(*) FROM {function}(0)").fetchone()[0] == 0
    else:
        assert len(shop.execute(f"SELECT {function}(NULL)").fetchone()[0]) == layout.ffi().sizeof("RvdTrajectory")
        assert shop.execute(f"SELECT {function}(0)").fetchone()[0] == b""
