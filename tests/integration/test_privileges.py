"""Attacks on the extension's privileges (issue 14, docs/security.md).

Roles: alice and bob own tables, mallory owns nothing and has no grant,
monitor is a member of pg_read_all_stats.  Each attack is run as an
attacker would; it must fail with a clear error or do nothing, and leave
nobody a superuser.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from ruvector_dag.tools.server import Server

ALICE, BOB, MALLORY, MONITOR = "rvd_alice", "rvd_bob", "rvd_mallory", "rvd_monitor"
ROLES = (ALICE, BOB, MALLORY, MONITOR)

# A function that makes bob a superuser when it runs as anybody else (a superuser).
ESCALATE = f"""
CREATE OR REPLACE FUNCTION {{schema}}.rvd_escalate() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF current_user <> '{BOB}' THEN
        EXECUTE 'ALTER ROLE {BOB} SUPERUSER';
    END IF;
    RETURN true;
END $$;
"""

# Objects bob plants in a schema he controls, each running the escalation.
SHADOWS = {
    "oid_eq": """
        CREATE FUNCTION {schema}.rvd_oid_eq(oid, oid) RETURNS boolean LANGUAGE sql
            AS 'SELECT rvd_bob.rvd_escalate() AND $1 OPERATOR(pg_catalog.=) $2';
        CREATE OPERATOR {schema}.= (LEFTARG = oid, RIGHTARG = oid, FUNCTION = {schema}.rvd_oid_eq)""",
    "now": """
        CREATE FUNCTION {schema}.now() RETURNS timestamptz LANGUAGE sql
            AS 'SELECT CASE WHEN rvd_bob.rvd_escalate() THEN pg_catalog.now() END'""",
    "bigint_gt": """
        CREATE FUNCTION {schema}.rvd_int8_gt(bigint, integer) RETURNS boolean LANGUAGE sql
            AS 'SELECT rvd_bob.rvd_escalate() AND $1 OPERATOR(pg_catalog.>) $2';
        CREATE OPERATOR {schema}.> (LEFTARG = bigint, RIGHTARG = integer, FUNCTION = {schema}.rvd_int8_gt)""",
    "current_setting": """
        CREATE FUNCTION {schema}.current_setting(text) RETURNS text LANGUAGE sql
            AS 'SELECT CASE WHEN rvd_bob.rvd_escalate() THEN pg_catalog.current_setting($1) END'""",
    "jsonb_field": """
        CREATE FUNCTION {schema}.rvd_jsonb_field(jsonb, text) RETURNS text LANGUAGE sql
            AS 'SELECT CASE WHEN rvd_bob.rvd_escalate() THEN $1 OPERATOR(pg_catalog.->>) $2 END';
        CREATE OPERATOR {schema}.->> (LEFTARG = jsonb, RIGHTARG = text, FUNCTION = {schema}.rvd_jsonb_field)""",
}


def _sqlstate(conn: Any, sql: str, params: Any = None) -> str | None:
    """The SQLSTATE of sql's error, or None if it succeeded."""
    try:
        cur = conn.execute(sql, params)
        if cur.description:
            cur.fetchall()
    except psycopg.Error as err:
        return err.sqlstate
    return None


def _is_superuser(conn: Any, role: str) -> bool:
    return bool(conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", (role,)).fetchone()[0])


def _count(conn: Any, sql: str, params: Any = None) -> int:
    return int(conn.execute(f"SELECT count(*) FROM ({sql}) q", params).fetchone()[0])


def _reset_role(su: Any, role: str) -> None:
    if su.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
        su.execute(f"ALTER ROLE {role} NOSUPERUSER")
        su.execute(f"DROP OWNED BY {role} CASCADE")
        su.execute(f"DROP ROLE {role}")


@pytest.fixture(scope="module")
def roles(server: Server) -> Iterator[None]:
    with server.connect() as su:
        for role in ROLES:
            _reset_role(su, role)
            su.execute(f"CREATE ROLE {role} LOGIN")
        su.execute(f"GRANT pg_read_all_stats TO {MONITOR}")
        su.execute(f"CREATE SCHEMA rvd_bob AUTHORIZATION {BOB}")
        su.execute(f"GRANT CREATE ON SCHEMA public TO {ALICE}, {BOB}")
    yield
    with server.connect() as su:
        for role in ROLES:
            _reset_role(su, role)


def _as(server: Server, role: str) -> Any:
    return server.connect(user=role)


def _alice_queries(alice: Any) -> None:
    for i in range(5):
        alice.execute("SELECT * FROM public.rvd_alice_t WHERE id = %s", (i + 1,)).fetchall()
        alice.execute("SELECT k, count(*) FROM public.rvd_alice_t GROUP BY k").fetchall()


@pytest.fixture(scope="module")
def alice_table(server: Server, roles: None) -> Iterator[int]:
    """alice's enrolled table, with captured statements, learned patterns and a steering decision."""
    with _as(server, ALICE) as alice:
        alice.execute("DROP TABLE IF EXISTS public.rvd_alice_t")
        alice.execute("CREATE TABLE public.rvd_alice_t (id int PRIMARY KEY, k int)")
        alice.execute("INSERT INTO public.rvd_alice_t SELECT g, g % 10 FROM generate_series(1, 2000) g")
        alice.execute("ANALYZE public.rvd_alice_t")
        assert alice.execute("SELECT ruvector_enable_neural_dag('public.rvd_alice_t')").fetchone()[0] is True
        _alice_queries(alice)
        relid = int(alice.execute("SELECT 'public.rvd_alice_t'::regclass::oid").fetchone()[0])
    yield relid
    with server.connect() as su:
        su.execute("DROP TABLE IF EXISTS public.rvd_alice_t")


# ---------------------------------------------------------------------------
# Hole 2: enrollment SQL ran as the bootstrap superuser on the caller's search_path
# ---------------------------------------------------------------------------

@pytest.fixture
def bob(server: Server, roles: None) -> Iterator[Any]:
    """bob with his escalation planted in his schema and in public."""
    with _as(server, BOB) as conn:
        for schema in ("rvd_bob", "public"):
            conn.execute(ESCALATE.format(schema=schema))
        conn.execute("DROP TABLE IF EXISTS rvd_bob.bt")
        conn.execute("CREATE TABLE rvd_bob.bt (id int)")
        yield conn
    with server.connect() as su:
        escalated = _is_superuser(su, BOB)
        su.execute(f"ALTER ROLE {BOB} NOSUPERUSER")
        su.execute(f"DROP OWNED BY {BOB} CASCADE")  # what he planted, in public too
        su.execute(f"CREATE SCHEMA rvd_bob AUTHORIZATION {BOB}")
        su.execute(f"GRANT CREATE ON SCHEMA public TO {BOB}")
    assert not escalated, "bob became a superuser"


def _plant(conn: Any, *names: str, schema: str = "rvd_bob") -> None:
    for name in names:
        conn.execute(SHADOWS[name].format(schema=schema))


def test_forget_relation_is_not_for_public(bob: Any) -> None:
    """The reproduction of hole 2: a shadowed = and _forget_relation(123456789)."""
    _plant(bob, "oid_eq", schema="public")
    bob.execute("SET search_path = public, pg_catalog")
    assert _sqlstate(bob, "SELECT ruvector_dag._forget_relation(123456789)") == "42501"
    assert not _is_superuser(bob, BOB)


@pytest.mark.parametrize("shadow", ["oid_eq", "now"])
def test_shadowed_names_do_not_run_in_enrollment(bob: Any, shadow: str) -> None:
    _plant(bob, shadow)
    bob.execute("SET search_path = rvd_bob, public, pg_catalog")
    assert bob.execute("SELECT ruvector_enable_neural_dag('bt')").fetchone()[0] is True
    assert bob.execute("SELECT ruvector_enable_neural_dag('bt', '{\"dag_learning_rate\": 0.05}')").fetchone()[0]
    assert bob.execute("SELECT ruvector_disable_neural_dag('bt')").fetchone()[0] is True
    assert not _is_superuser(bob, BOB)


def test_shadowed_names_do_not_run_when_a_dropped_table_is_forgotten(bob: Any) -> None:
    _plant(bob, "oid_eq", "now")
    bob.execute("SET search_path = rvd_bob, public, pg_catalog")
    bob.execute("SELECT ruvector_enable_neural_dag('bt')")
    bob.execute("DROP TABLE bt")  # the sql_drop event trigger forgets it, as superuser
    assert not _is_superuser(bob, BOB)


def test_temporary_objects_do_not_run_in_enrollment(bob: Any) -> None:
    """pg_temp first on the path: temporary functions, operators and tables are never reached."""
    bob.execute("CREATE TEMP TABLE enrolled_tables (relid oid, table_name text, config jsonb, "
                "enabled_by oid, enabled_at timestamptz)")
    _plant(bob, "oid_eq", "now", schema="pg_temp")
    bob.execute("SET search_path = pg_temp, rvd_bob, public, pg_catalog")
    assert bob.execute("SELECT ruvector_enable_neural_dag('rvd_bob.bt')").fetchone()[0] is True
    assert bob.execute("SELECT count(*) FROM pg_temp.enrolled_tables").fetchone()[0] == 0
    assert bob.execute("SELECT ruvector_disable_neural_dag('rvd_bob.bt')").fetchone()[0] is True
    assert not _is_superuser(bob, BOB)


def test_superuser_calling_with_bobs_search_path_runs_nothing_of_bobs(server: Server, bob: Any,
                                                                       alice_table: int) -> None:
    """A superuser (or the event trigger) with bob's schema first: enrollment and the SQL wrappers."""
    _plant(bob, *SHADOWS)
    with server.connect() as su:
        su.execute("SET search_path = rvd_bob, public, pg_catalog")
        su.execute("SELECT ruvector_dag._forget_relation(123456789)")
        su.execute("SELECT ruvector_enable_neural_dag('rvd_bob.bt')")
        for call in ("ruvector_dag_learning_stats", "ruvector_dag_health_report", "ruvector_dag_patterns",
                     "ruvector_dag_mincut_criticality", "ruvector_dag_mincut_analysis"):
            su.execute(f"SELECT * FROM {call}('public.rvd_alice_t')").fetchall()
        su.execute("SELECT * FROM ruvector_dag_mincut_plan('SELECT 1')").fetchall()
        su.execute("SELECT * FROM ruvector_dag.capture").fetchall()
        su.execute("SELECT * FROM ruvector_dag.steering").fetchall()
        su.execute("SELECT ruvector_disable_neural_dag('rvd_bob.bt')")
        assert not _is_superuser(su, BOB)


def test_set_role_and_security_definer_contexts(server: Server, bob: Any) -> None:
    """SET ROLE bob in a superuser's session, and bob's SECURITY DEFINER function called by a
    superuser: enrollment checks bob (the current role) and runs nothing of bob's."""
    _plant(bob, "oid_eq", "now")
    bob.execute("""CREATE FUNCTION rvd_bob.enroll_mine() RETURNS boolean LANGUAGE sql SECURITY DEFINER
                   AS 'SELECT ruvector_enable_neural_dag(''rvd_bob.bt'')
                          AND ruvector_disable_neural_dag(''rvd_bob.bt'')'""")
    bob.execute("""CREATE FUNCTION rvd_bob.enroll_theirs() RETURNS boolean LANGUAGE sql SECURITY DEFINER
                   AS 'SELECT ruvector_enable_neural_dag(''public.rvd_su_t'')'""")
    with server.connect() as su:
        su.execute("DROP TABLE IF EXISTS public.rvd_su_t")
        su.execute("CREATE TABLE public.rvd_su_t (id int)")
        su.execute("SET search_path = rvd_bob, public, pg_catalog")
        su.execute(f"SET ROLE {BOB}")
        assert su.execute("SELECT ruvector_enable_neural_dag('bt')").fetchone()[0] is True
        assert _sqlstate(su, "SELECT ruvector_enable_neural_dag('public.rvd_su_t')") == "42501"
        su.execute("RESET ROLE")
        assert su.execute("SELECT rvd_bob.enroll_mine()").fetchone()[0] is True
        # A superuser calling bob's definer function: the ownership check sees bob, not the session user.
        assert _sqlstate(su, "SELECT rvd_bob.enroll_theirs()") == "42501"
        su.execute("DROP TABLE public.rvd_su_t")
        assert not _is_superuser(su, BOB)


def test_requests_check_the_current_role_not_the_session_user(server: Server, bob: Any,
                                                              alice_table: int) -> None:
    """bob's SECURITY DEFINER function, called by alice, cannot act on alice's table."""
    bob.execute("""CREATE FUNCTION rvd_bob.learn_alice() RETURNS jsonb LANGUAGE sql SECURITY DEFINER
                   AS 'SELECT ruvector_dag_learn(''public.rvd_alice_t'')'""")
    bob.execute(f"GRANT USAGE ON SCHEMA rvd_bob TO {ALICE}")
    with _as(server, ALICE) as alice:
        assert _sqlstate(alice, "SELECT rvd_bob.learn_alice()") == "42501"
        assert alice.execute("SELECT ruvector_dag_learn('public.rvd_alice_t')").fetchone()[0]["success"]


# ---------------------------------------------------------------------------
# Hole 5: internal functions, bounds, nonexistent relations, catalogs
# ---------------------------------------------------------------------------

INTERNAL = [
    "SELECT ruvector_dag._forget_relation(%(relid)s)",
    "SELECT ruvector_dag._worker_request('learn', %(relid)s, NULL, NULL)",
    "SELECT ruvector_dag._on_sql_drop()",
    "SELECT * FROM ruvector_dag_buffered_trajectories()",
    "SELECT ruvector_dag_buffered_records()",
    "SELECT ruvector_dag.cleanup_old_trajectories(0)",
    "SELECT ruvector_dag_capture_reset()",
    "SELECT ruvector_dag_pin_arm(1, 'default')",
    "SELECT ruvector_dag_try_arm(1, 'default')",
    "SELECT ruvector_dag_unpin(1)",
    "SELECT * FROM ruvector_dag._relation_keys('SELECT 1')",
    "SELECT * FROM ruvector_dag._explain_with_corrections('SELECT 1', '{}', '{}', false)",
]


@pytest.mark.parametrize("sql", INTERNAL)
def test_internal_functions_refuse_public(server: Server, alice_table: int, sql: str) -> None:
    for role in (MALLORY, ALICE):
        with _as(server, role) as conn:
            assert _sqlstate(conn, sql, {"relid": alice_table}) == "42501", (role, sql)


def test_request_as_owner_is_gone(server: Server, alice_table: int) -> None:
    with _as(server, MALLORY) as conn:
        assert _sqlstate(conn, "SELECT ruvector_dag._request_as_owner('extract', %s, 5000, NULL)",
                         (alice_table,)) in ("42501", "42883")
    with server.connect() as su:
        assert not su.execute("SELECT count(*) FROM pg_proc WHERE proname = '_request_as_owner'").fetchone()[0]


def test_every_internal_function_executable_by_public_is_listed(conn: Any) -> None:
    """Functions named ruvector_dag._* that PUBLIC may call: exactly those docs/security.md lists."""
    rows = conn.execute("""
        SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = 'ruvector_dag' AND p.proname LIKE '\\_%'
           AND has_function_privilege('public', p.oid, 'EXECUTE') ORDER BY 1""").fetchall()
    assert [r[0] for r in rows] == [
        "ruvector_dag._check_read_only_query(text)",
        "ruvector_dag._enrolled(text)",
        "ruvector_dag._learning_counters(oid)",
        "ruvector_dag._mincut_of_plan(jsonb,real)",
    ]


def test_every_security_definer_function_sets_search_path(conn: Any) -> None:
    rows = conn.execute("""
        SELECT p.oid::regprocedure::text, p.proconfig FROM pg_proc p
          JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass AND d.deptype = 'e'
         WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'ruvector_dag') AND p.prosecdef
    """).fetchall()
    assert rows, "the event trigger function is SECURITY DEFINER"
    for name, config in rows:
        assert "search_path=pg_catalog, pg_temp" in (config or []), name


def test_requests_check_bounds_and_relations_in_c(server: Server, alice_table: int) -> None:
    with server.connect() as su:
        for sql, state in [
            ("SELECT ruvector_dag._worker_request('extract', %(r)s, 5000, NULL)", "22023"),
            ("SELECT ruvector_dag._worker_request('extract', %(r)s, 0, NULL)", "22023"),
            ("SELECT ruvector_dag._worker_request('extract', %(r)s, -5, NULL)", "22023"),
            ("SELECT ruvector_dag._worker_request('consolidate', %(r)s, NULL, 1.5)", "22023"),
            ("SELECT ruvector_dag._worker_request('consolidate', %(r)s, NULL, 'NaN')", None),  # NaN: default
            ("SELECT ruvector_dag._worker_request('drop_everything', %(r)s, NULL, NULL)", "22023"),
            ("SELECT ruvector_dag._worker_request('learn', 123456789, NULL, NULL)", "42P01"),
            ("SELECT ruvector_dag._worker_request('learn', NULL, NULL, NULL)", "22004"),
        ]:
            assert _sqlstate(su, sql, {"r": alice_table}) == state, sql
    with _as(server, ALICE) as alice:
        assert _sqlstate(alice, "SELECT ruvector_dag_extract_patterns('public.rvd_alice_t', 5000)") == "22023"
        assert _sqlstate(alice, "SELECT ruvector_dag_consolidate_patterns('public.rvd_alice_t', 2)") == "22023"
    with _as(server, MALLORY) as mallory:
        for call in ("ruvector_dag_learn('public.rvd_alice_t')",
                     "ruvector_dag_extract_patterns('public.rvd_alice_t', 3)",
                     "ruvector_dag_consolidate_patterns('public.rvd_alice_t', 0.9)"):
            assert _sqlstate(mallory, f"SELECT {call}") == "42501", call


@pytest.mark.parametrize("table", ["pg_class", "pg_catalog.pg_authid", "information_schema.sql_features",
                                   "ruvector_dag.patterns", "ruvector_dag.enrolled_tables"])
def test_system_and_extension_tables_cannot_be_enrolled(conn: Any, table: str) -> None:
    with pytest.raises(psycopg.Error) as err:
        conn.execute("SELECT ruvector_enable_neural_dag(%s)", (table,))
    assert err.value.sqlstate == "42501", err.value


def test_another_extensions_table_cannot_be_enrolled(conn: Any) -> None:
    conn.execute("DROP TABLE IF EXISTS rvd_ext_member")
    conn.execute("CREATE TABLE rvd_ext_member (id int)")
    conn.execute("ALTER EXTENSION plpgsql ADD TABLE rvd_ext_member")
    try:
        with pytest.raises(psycopg.Error) as err:
            conn.execute("SELECT ruvector_enable_neural_dag('rvd_ext_member')")
        assert err.value.sqlstate == "42501" and "plpgsql" in str(err.value)
    finally:
        conn.execute("ALTER EXTENSION plpgsql DROP TABLE rvd_ext_member")
        conn.execute("DROP TABLE rvd_ext_member")


# ---------------------------------------------------------------------------
# No function or view returns another role's data
# ---------------------------------------------------------------------------

# Each: rows about alice's table (relid %(r)s), as a query.
READERS = {
    "capture_stats": "SELECT * FROM ruvector_dag_capture_stats() WHERE relid = %(r)s",
    "capture_view": "SELECT * FROM ruvector_dag.capture WHERE table_name = %(r)s::oid::regclass",
    "enrolled_tables": "SELECT * FROM ruvector_dag.enrolled_tables WHERE relid = %(r)s",
    "patterns_table": "SELECT * FROM ruvector_dag.patterns WHERE relid = %(r)s",
    "pattern_nodes": "SELECT * FROM ruvector_dag.pattern_nodes WHERE relid = %(r)s",
    "trajectory_history": "SELECT * FROM ruvector_dag.trajectory_history WHERE relid = %(r)s",
    "engine_state": "SELECT * FROM ruvector_dag.engine_state WHERE relid = %(r)s",
    "evidence": "SELECT * FROM ruvector_dag.steering_evidence WHERE relid = %(r)s",
    "steering_view": "SELECT * FROM ruvector_dag.steering WHERE table_name = %(r)s::oid::regclass",
    "steered_queries": "SELECT * FROM ruvector_dag.steered_queries WHERE relid = %(r)s",
    "steering_executions": "SELECT * FROM ruvector_dag.steering_executions WHERE relid = %(r)s",
    "steering_series_function": "SELECT * FROM ruvector_dag_steering_series(4242)",
    "steering_decisions": "SELECT * FROM ruvector_dag_steering_decisions() WHERE query_id = 4242",
    "steering_view_decisions": "SELECT * FROM ruvector_dag.steering WHERE query_id = 4242",
    "steering_pins_table": "SELECT * FROM ruvector_dag.pinned_arms WHERE query_id = 4242",
    "patterns_function": "SELECT * FROM ruvector_dag_patterns('public.rvd_alice_t')",
    "learning_counters": "SELECT c.* FROM ruvector_dag._learning_counters(%(r)s) c WHERE c.consumed IS NOT NULL",
    "mincut_criticality": "SELECT * FROM ruvector_dag_mincut_criticality('public.rvd_alice_t')",
}


@pytest.fixture(scope="module")
def alice_evidence(server: Server, alice_table: int) -> Iterator[int]:
    """Learned state, evidence and a decision about alice's table, as the worker would leave them."""
    with _as(server, ALICE) as alice:
        _alice_queries(alice)
        assert alice.execute("SELECT ruvector_dag_learn('public.rvd_alice_t')").fetchone()[0]["success"]
    with server.connect() as su:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not su.execute(
                "SELECT count(*) FROM ruvector_dag.engine_state WHERE relid = %s", (alice_table,)).fetchone()[0]:
            time.sleep(0.2)
        r = {"r": alice_table}
        arm = su.execute("SELECT arm FROM ruvector_dag_steering_arms() WHERE arm_id = 1").fetchone()[0]
        su.execute("INSERT INTO ruvector_dag.steering_evidence (relid, query_id, arm, executions, banned, chosen) "
                   "VALUES (%(r)s, 4242, 'default', 3, false, true), (%(r)s, 4242, %(a)s, 2, false, false)",
                   {**r, "a": arm})
        # the text of a statement alice ran, and its series (readable steering, 0.6.0)
        su.execute("INSERT INTO ruvector_dag.steered_queries (relid, query_id, userid, query) "
                   "VALUES (%(r)s, 4242, %(u)s::regrole, 'SELECT * FROM rvd_alice_t WHERE id = $1')",
                   {**r, "u": ALICE})
        su.execute("INSERT INTO ruvector_dag.steering_executions (relid, query_id, executed_at, arm, latency_us, "
                   "trial) VALUES (%(r)s, 4242, now() - interval '1 s', 'default', 100, false), "
                   "(%(r)s, 4242, now(), %(a)s, 50, false)", {**r, "a": arm})
        su.execute("INSERT INTO ruvector_dag.trajectory_history (relid, table_name, trajectory_id, plan_embedding, "
                   "attention_type, latency_us, quality) VALUES (%(r)s, 'rvd_alice_t', 1, '[1,2]', 'x', 5, 0.5)", r)
        su.execute("INSERT INTO ruvector_dag.pattern_nodes (relid, pattern_id, node_id, plan_position, "
                   "parent_position, operator, self_cost, criticality, cut_weight) "
                   "VALUES (%(r)s, 999999, 999999000, 0, -1, 'Seq Scan', 1, 0.9, 1)", r)
        su.execute("SELECT ruvector_dag_pin_arm(4242, %s)", (arm,))
    yield alice_table
    with server.connect() as su:
        su.execute("SELECT ruvector_dag_unpin(4242)")
        su.execute("DELETE FROM ruvector_dag.steering_evidence WHERE query_id = 4242")
        su.execute("DELETE FROM ruvector_dag.steered_queries WHERE query_id = 4242")
        su.execute("DELETE FROM ruvector_dag.steering_executions WHERE query_id = 4242")


@pytest.mark.parametrize("reader", sorted(READERS))
def test_no_rows_about_alices_table_for_others(server: Server, alice_evidence: int, reader: str) -> None:
    sql = READERS[reader]
    params = {"r": alice_evidence}
    with server.connect() as su:
        expected = _count(su, sql, params)
    assert expected > 0, f"{reader}: the superuser sees nothing to hide"
    with _as(server, MALLORY) as mallory, _as(server, BOB) as bob:
        assert _count(mallory, sql, params) == 0, reader
        assert _count(bob, sql, params) == 0, reader
    with _as(server, MONITOR) as monitor:
        assert _count(monitor, sql, params) == expected, reader
    with _as(server, ALICE) as alice:
        # a pinned decision names no table: privileged readers only (the view's rows are the evidence
        # of her table, the pin's source shown to privileged readers only; the text is of her statement)
        hidden = reader.startswith("steering_") and reader not in (
            "steering_view", "steering_view_decisions", "steering_executions", "steering_series_function")
        assert _count(alice, sql, params) == (0 if hidden else expected), reader
        if reader == "steering_view_decisions":  # ... but not who decided
            assert alice.execute("SELECT count(*) FROM ruvector_dag.steering WHERE query_id = 4242 "
                                 "AND source IS NOT NULL").fetchone()[0] == 0


def test_others_get_answers_that_reveal_nothing(server: Server, alice_evidence: int) -> None:
    with _as(server, MALLORY) as mallory:
        assert mallory.execute("SELECT ruvector_dag_learning_stats('public.rvd_alice_t')").fetchone()[0] == {
            "enabled": False, "error": "Neural DAG not enabled"}
        assert mallory.execute("SELECT ruvector_dag_health_report('public.rvd_alice_t')").fetchone()[0][
            "healthy"] is False
        assert mallory.execute("SELECT ruvector_dag_mincut_analysis('public.rvd_alice_t')").fetchone()[0] == {
            "error": "Neural DAG not enabled"}
        assert mallory.execute("SELECT ruvector_dag._learning_counters(%s) IS NULL", (alice_evidence,)).fetchone()[0]


# ---------------------------------------------------------------------------
# What a non-superuser owner may do
# ---------------------------------------------------------------------------

def test_owner_enrolls_learns_and_reads_its_evidence(server: Server, alice_evidence: int) -> None:
    with _as(server, ALICE) as alice:
        assert alice.execute("SELECT ruvector_neural_dag_enabled('public.rvd_alice_t')").fetchone()[0] is True
        stats = alice.execute("SELECT ruvector_dag_learning_stats('public.rvd_alice_t')").fetchone()[0]
        assert stats["enabled"] and stats["trajectories_learned"] >= 10 and stats["patterns_stored"] >= 1
        assert alice.execute("SELECT ruvector_dag_health_report('public.rvd_alice_t')").fetchone()[0]["metrics"]
        assert _count(alice, "SELECT * FROM ruvector_dag_patterns('public.rvd_alice_t')") >= 1
        assert alice.execute("SELECT ruvector_dag_extract_patterns('public.rvd_alice_t', 2)").fetchone()[0] >= 0
        assert alice.execute("SELECT ruvector_dag_consolidate_patterns('public.rvd_alice_t', 0.99)").fetchone()[0] >= 0
        assert _count(alice, "SELECT * FROM ruvector_dag.capture") >= 1
        assert "error" not in alice.execute("SELECT ruvector_dag_mincut_analysis('public.rvd_alice_t')").fetchone()[0]
        assert _count(alice, "SELECT * FROM ruvector_dag_mincut_plan('SELECT * FROM public.rvd_alice_t')") >= 1
        # bob's table: not alice's to change
    with _as(server, BOB) as bob:
        assert _sqlstate(bob, "SELECT ruvector_disable_neural_dag('public.rvd_alice_t')") == "42501"
        assert _sqlstate(bob, "SELECT ruvector_enable_neural_dag('public.rvd_alice_t')") == "42501"


# ---------------------------------------------------------------------------
# pg_dump
# ---------------------------------------------------------------------------

def test_pg_dump_by_the_database_owner(server: Server, roles: None) -> None:
    """The database owner dumps with --enable-row-security and gets the rows it may read; a
    superuser's dump is complete (docs/security.md)."""
    def dump(user: str, *options: str) -> str:
        res = subprocess.run([str(server.bin_dir / "pg_dump"), "-h", "127.0.0.1", "-p", str(server.port),
                              "-U", user, *options, "rvd_dump"], capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr
        return res.stdout

    with server.connect() as su:
        su.execute("DROP DATABASE IF EXISTS rvd_dump")
        su.execute(f"CREATE DATABASE rvd_dump OWNER {ALICE}")
    try:
        with server.connect(dbname="rvd_dump") as su:
            su.execute("CREATE EXTENSION ruvector_dag")
        with server.connect(dbname="rvd_dump", user=ALICE) as alice:
            alice.execute("CREATE TABLE mine (id int)")
            mine = alice.execute("SELECT 'mine'::regclass::oid").fetchone()[0]
        with server.connect(dbname="rvd_dump") as su:
            for relid, name in ((mine, "alices_pattern"), (4000000000, "someone_elses_pattern")):
                su.execute("INSERT INTO ruvector_dag.patterns (relid, table_name, pattern_id, centroid, "
                           "attention_type, optimal_params, confidence, sample_count, avg_latency_us, avg_quality) "
                           "VALUES (%s, %s, 1, '[1]', 'x', '{}', 1, 1, 1, 1)", (relid, name))
        owner = dump(ALICE, "--enable-row-security")
        assert "alices_pattern" in owner and "someone_elses_pattern" not in owner
        full = dump("postgres")
        assert "alices_pattern" in full and "someone_elses_pattern" in full
    finally:
        with server.connect() as su:
            su.execute("DROP DATABASE IF EXISTS rvd_dump WITH (FORCE)")


# ---------------------------------------------------------------------------
# Restores: an enrollment follows its table's name only when it comes from another cluster
# ---------------------------------------------------------------------------

def test_an_enrollment_of_this_cluster_is_never_handed_to_a_table_taking_its_name(server: Server,
                                                                                  roles: None) -> None:
    """The worker re-keys enrollments restored from another cluster to the tables that now have their
    names (docs/operations.md).  Bob's table dropped with the event trigger bypassed (a superuser's
    doing) leaves an enrollment whose relid names nothing; Mallory creating a table of that name must
    not inherit it, nor what was learned about Bob's table."""
    with server.connect() as su:
        su.execute(f"GRANT CREATE ON SCHEMA public TO {MALLORY}")
        su.execute("DROP TABLE IF EXISTS public.rvd_gone")
        su.execute("CREATE TABLE public.rvd_gone (id int)")
        su.execute(f"ALTER TABLE public.rvd_gone OWNER TO {BOB}")
        su.execute("SELECT ruvector_enable_neural_dag('public.rvd_gone')")
        old = su.execute("SELECT 'public.rvd_gone'::regclass::oid").fetchone()[0]
        deadline = time.monotonic() + 30  # the worker stamps the enrollment with this cluster's identifier
        while su.execute("SELECT cluster_id IS NULL FROM ruvector_dag.enrolled_tables WHERE relid = %s",
                         (old,)).fetchone()[0] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert su.execute("SELECT cluster_id = (SELECT system_identifier FROM pg_control_system()) "
                          "FROM ruvector_dag.enrolled_tables WHERE relid = %s", (old,)).fetchone()[0]
        su.execute("ALTER EVENT TRIGGER ruvector_dag_sql_drop DISABLE")
        try:
            su.execute("DROP TABLE public.rvd_gone")
        finally:
            su.execute("ALTER EVENT TRIGGER ruvector_dag_sql_drop ENABLE")
    try:
        with _as(server, MALLORY) as mallory:
            mallory.execute("CREATE TABLE public.rvd_gone (id int)")
            mine = mallory.execute("SELECT 'public.rvd_gone'::regclass::oid").fetchone()[0]
        with server.connect() as su:
            # a table enrolled now is stamped by the worker's next look for restored enrollments: once it
            # is, the worker has looked since Mallory's table exists
            su.execute("DROP TABLE IF EXISTS public.rvd_probe")
            su.execute("CREATE TABLE public.rvd_probe (id int)")
            su.execute("SELECT ruvector_enable_neural_dag('public.rvd_probe')")
            deadline = time.monotonic() + 30
            while su.execute("SELECT cluster_id IS NULL FROM ruvector_dag.enrolled_tables "
                             "WHERE table_name = 'public.rvd_probe'").fetchone()[0] and time.monotonic() < deadline:
                time.sleep(0.2)
            assert su.execute("SELECT cluster_id IS NOT NULL FROM ruvector_dag.enrolled_tables "
                              "WHERE table_name = 'public.rvd_probe'").fetchone()[0]
            assert su.execute("SELECT relid FROM ruvector_dag.enrolled_tables WHERE table_name = 'public.rvd_gone'"
                              ).fetchone()[0] == old
            assert su.execute("SELECT ruvector_neural_dag_enabled('public.rvd_gone')").fetchone()[0] is False
            assert mine != old
        # ... while the same row from another cluster (a restored dump) follows the name
        with server.connect() as su:
            su.execute("UPDATE ruvector_dag.enrolled_tables SET cluster_id = 42 WHERE relid = %s", (old,))
            deadline = time.monotonic() + 30
            while su.execute("SELECT relid FROM ruvector_dag.enrolled_tables WHERE table_name = 'public.rvd_gone'"
                             ).fetchone()[0] != mine and time.monotonic() < deadline:
                time.sleep(0.2)
            assert su.execute("SELECT relid, enabled_by::regrole::text FROM ruvector_dag.enrolled_tables "
                              "WHERE table_name = 'public.rvd_gone'").fetchone() == (mine, MALLORY)
    finally:
        with server.connect() as su:
            su.execute("DROP TABLE IF EXISTS public.rvd_gone, public.rvd_probe")
            su.execute("DELETE FROM ruvector_dag.enrolled_tables WHERE table_name = 'public.rvd_gone'")
