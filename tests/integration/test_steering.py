"""Plan steering: arms applied by the planner hook, visible in EXPLAIN, always restored."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from explained import join_types, query_id, unpin_all

from ruvector_dag.definitions import arms

JOIN = "SELECT a.id, b.v FROM sa a JOIN sb b ON b.a_id = a.id WHERE a.id < 50 ORDER BY a.id, b.v"


@pytest.fixture
def tables(conn: Any) -> Iterator[Any]:
    conn.execute("""
        DROP TABLE IF EXISTS sa, sb;
        CREATE TABLE sa (id int PRIMARY KEY, pad text);
        CREATE TABLE sb (id int PRIMARY KEY, a_id int, v int);
        INSERT INTO sa SELECT g, md5(g::text) FROM generate_series(1, 20000) g;
        INSERT INTO sb SELECT g, 1 + g % 20000, g % 97 FROM generate_series(1, 40000) g;
        CREATE INDEX ON sb (a_id);
        ANALYZE sa, sb;
    """)
    conn.execute("SELECT ruvector_enable_neural_dag('sa')")
    yield conn
    unpin_all(conn)
    conn.execute("DROP TABLE IF EXISTS sa, sb")


def test_arms_are_the_generated_table(conn: Any) -> None:
    rows = conn.execute("SELECT arm_id, arm, settings FROM ruvector_dag_steering_arms()").fetchall()
    assert [r[1] for r in rows] == [a.name for a in arms.ARMS]
    assert rows[1][2] == "enable_nestloop = off"


def test_pinned_arm_changes_the_plan_not_the_rows(tables: Any) -> None:
    c = tables
    before = join_types(c, JOIN)
    rows = c.execute(JOIN).fetchall()
    qid = query_id(c, JOIN)
    target = "Hash Join" if "Hash Join" not in before else "Merge Join"
    arm = "hash_only" if target == "Hash Join" else "merge_only"
    c.execute("SELECT ruvector_dag_pin_arm(%s, %s)", (qid, arm))
    assert c.execute("SELECT query_id, arm, source FROM ruvector_dag_steering_decisions() WHERE query_id = %s",
                     (qid,)).fetchall() == [(qid, arm, "pinned")]  # (the engine may have learned others)
    assert join_types(c, JOIN) == {target}
    assert c.execute(JOIN).fetchall() == rows
    # Other sessions are steered too; the session's own settings are untouched.
    assert c.execute("SHOW enable_nestloop").fetchone()[0] == "on"
    c.execute("SET ruvector.neural_dag_enabled = off")
    assert join_types(c, JOIN) == before  # capture off: no decision applied
    c.execute("RESET ruvector.neural_dag_enabled")
    assert c.execute("SELECT ruvector_dag_unpin(%s)", (qid,)).fetchone()[0] is True
    assert join_types(c, JOIN) == before


def test_settings_restored_when_planning_fails(tables: Any) -> None:
    c = tables
    ok = "SELECT count(*) FROM sa WHERE id = 1 / 1"
    qid = query_id(c, ok)  # constants do not change the query id
    c.execute("SELECT ruvector_dag_pin_arm(%s, 'hash_only')", (qid,))
    with pytest.raises(psycopg.errors.DivisionByZero):
        c.execute("SELECT count(*) FROM sa WHERE id = 1 / 0")  # fails while planning (constant folding)
    assert c.execute("SHOW enable_nestloop").fetchone()[0] == "on"
    assert c.execute("SHOW enable_mergejoin").fetchone()[0] == "on"
    c.execute("BEGIN")
    c.execute("SET LOCAL enable_hashjoin = off")
    with pytest.raises(psycopg.errors.DivisionByZero):
        c.execute("SELECT count(*) FROM sa WHERE id = 1 / 0")
    c.execute("ROLLBACK")
    assert c.execute("SHOW enable_hashjoin").fetchone()[0] == "on"


def test_bad_arguments(tables: Any) -> None:
    tables.execute("SELECT ruvector_dag_pin_arm(777, 'serial')")
    for sql, state in (("SELECT ruvector_dag_pin_arm(1, 'fastest')", "22023"),
                       ("SELECT ruvector_dag_pin_arm(NULL, 'serial')", "22004"),
                       ("SELECT ruvector_dag_pin_arm(1, NULL)", "22004"),
                       ("SELECT ruvector_dag_pin_arm(0, 'serial')", "22023"),
                       ("SELECT ruvector_dag_try_arm(1, 'fastest')", "22023"),
                       ("SELECT ruvector_dag_try_arm(1, '')", "22023"),
                       ("SELECT ruvector_dag_try_arm(NULL, 'serial')", "22004"),
                       ("SELECT ruvector_dag_try_arm(0, 'serial')", "22023"),
                       ("SELECT ruvector_dag_try_arm(777, 'hash_only')", "55000"),  # pinned: unpin first
                       ("SELECT ruvector_dag_unpin(NULL)", "22004")):
        with pytest.raises(psycopg.Error) as err:
            tables.execute(sql)
        assert err.value.sqlstate == state, sql
    assert tables.execute("SELECT arm, source FROM ruvector_dag_steering_decisions() WHERE query_id = 777"
                          ).fetchall() == [("serial", "pinned")]  # the refused trial changed nothing
    assert tables.execute("SELECT ruvector_dag_unpin(777)").fetchone()[0] is True
    assert tables.execute("SELECT ruvector_dag_unpin(12345)").fetchone()[0] is False


def test_non_superusers_cannot_steer(tables: Any) -> None:
    c = tables
    c.execute("DROP ROLE IF EXISTS steer_user")
    c.execute("CREATE ROLE steer_user")
    try:
        c.execute("SET ROLE steer_user")
        for sql in ("SELECT ruvector_dag_pin_arm(1, 'serial')", "SELECT ruvector_dag_try_arm(1, 'serial')",
                    "SELECT ruvector_dag_unpin(1)"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                c.execute(sql)
        # decisions are rows about tables: a role that owns none and reads no stats sees none
        assert c.execute("SELECT count(*) FROM ruvector_dag_steering_decisions()").fetchone()[0] == 0
    finally:
        c.execute("RESET ROLE")
        c.execute("DROP ROLE steer_user")


def test_a_full_decision_cache_never_fails_a_commit(conn: Any) -> None:
    """Pins take effect at commit, where nothing may raise (the transaction is committed: an ERROR would
    be a PANIC).  A full cache makes room by evicting a decision that is not a pin; pins beyond the
    cache's capacity are refused when pinned, with 54000 and a hint (issue 17's review of fixed sizes)."""
    cap = int(conn.execute("SHOW ruvector.max_steered_queries").fetchone()[0])
    try:
        conn.execute("SELECT ruvector_dag_unpin(query_id) FROM ruvector_dag_steering_decisions()")
        conn.execute("SELECT ruvector_dag_try_arm(q, 'serial') FROM generate_series(100001, 100000 + %s) q", (cap,))
        with pytest.raises(psycopg.Error) as err:  # a tried arm takes effect at once: refused at once
            conn.execute("SELECT ruvector_dag_try_arm(7, 'serial')")
        assert err.value.sqlstate == "54000" and "max_steered_queries" in (err.value.diag.message_hint or "")
        conn.execute("SELECT ruvector_dag_pin_arm(7, 'no_seqscan')")  # committed: a tried arm makes room
        rows = conn.execute("SELECT arm, source FROM ruvector_dag_steering_decisions() WHERE query_id = 7").fetchall()
        assert rows == [("no_seqscan", "pinned")]
        assert conn.execute("SELECT count(*) FROM ruvector_dag_steering_decisions()").fetchone()[0] == cap
        conn.execute("SELECT ruvector_dag_unpin(query_id) FROM ruvector_dag_steering_decisions()")
        conn.execute("SELECT ruvector_dag_pin_arm(q, 'serial') FROM generate_series(1, %s) q", (cap,))
        with pytest.raises(psycopg.Error) as err:
            conn.execute("SELECT ruvector_dag_pin_arm(500000, 'serial')")
        assert err.value.sqlstate == "54000" and f"cannot pin more than {cap} queries" in str(err.value)
        conn.execute("SELECT ruvector_dag_pin_arm(1, 'no_seqscan')")  # re-pinning a pinned query is not a new pin
        assert conn.execute("SELECT arm FROM ruvector_dag.pinned_arms WHERE query_id = 1").fetchone()[0] == "no_seqscan"
    finally:
        conn.execute("SELECT ruvector_dag_unpin(query_id) FROM ruvector_dag_steering_decisions()")
        conn.execute("SELECT ruvector_dag_unpin(query_id) FROM ruvector_dag.pinned_arms")
