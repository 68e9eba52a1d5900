"""No capacity cliff (issue 17): a server with 5,000 tables, 3,000 of them enrolled.

An event trigger enrolls every table it creates, as a DBA enrolling a whole
schema would.  With ruvector.max_enrolled_tables = 3000 the registry fills
exactly: the next enrollment fails cleanly at enrollment time (53400, with a
hint), in the session that asked, and nothing reaches an unrelated user's
session.  A dropped table frees its place at once.  Capture counts stay
exact on thousands of tables, and the worker follows them all.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from ruvector_dag.definitions.settings import EXACT_LEARNING
from ruvector_dag.tools.server import Server

pytestmark = pytest.mark.server

CAPACITY = 3000
TABLES = 5000

ENROLL_EVERY_NEW_TABLE = """
CREATE FUNCTION enroll_new_tables() RETURNS event_trigger LANGUAGE plpgsql AS $$
DECLARE r record;
BEGIN
    FOR r IN SELECT objid FROM pg_event_trigger_ddl_commands() WHERE command_tag = 'CREATE TABLE' LOOP
        PERFORM ruvector_enable_neural_dag(r.objid::regclass::text);
    END LOOP;
END $$;
CREATE EVENT TRIGGER enroll_new_tables ON ddl_command_end WHEN TAG IN ('CREATE TABLE')
    EXECUTE FUNCTION enroll_new_tables();
"""


def warnings_of(conn: Any) -> list[str]:
    seen: list[str] = []
    conn.add_notice_handler(lambda d: seen.append(f"{d.severity}: {d.message_primary}"))
    return seen


@pytest.fixture(scope="module")
def big(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("capacity") / "data", pg_version=server.pg_version, build=False,
                 settings={**EXACT_LEARNING, "ruvector.max_enrolled_tables": CAPACITY,
                           "max_locks_per_transaction": 1024})
    with srv:
        with srv.connect() as c:
            # 2,000 tables nobody enrolls ...
            c.execute(f"DO $$ BEGIN FOR i IN 1 .. {TABLES - CAPACITY} LOOP "
                      "EXECUTE format('CREATE TABLE plain_%s (id int PRIMARY KEY, v int)', i); END LOOP; END $$")
            c.execute(ENROLL_EVERY_NEW_TABLE)
            # ... and 3,000 created, so enrolled, by one transaction
            began = time.monotonic()
            c.execute(f"DO $$ BEGIN FOR i IN 1 .. {CAPACITY} LOOP "
                      "EXECUTE format('CREATE TABLE app_%s (id int PRIMARY KEY, v int)', i); END LOOP; END $$")
            print(f"\n{CAPACITY} tables created and enrolled in {time.monotonic() - began:.1f} s")
        yield srv


def test_enrollment_past_capacity_fails_cleanly(big: Server) -> None:
    with big.connect() as c:
        assert c.execute("SELECT count(*) FROM ruvector_dag.enrolled_tables").fetchone()[0] == CAPACITY
        assert c.execute("SELECT count(*) FROM pg_class WHERE relkind = 'r' AND relname ~ '^(app|plain)_'"
                         ).fetchone()[0] == TABLES
        with pytest.raises(psycopg.Error) as err:
            c.execute("CREATE TABLE app_over (id int)")  # the event trigger's enrollment is refused ...
        assert err.value.sqlstate == "53400"
        assert f"cannot enroll more than {CAPACITY} tables" in str(err.value)
        assert "ruvector.max_enrolled_tables" in (err.value.diag.message_hint or "")
        assert c.execute("SELECT to_regclass('app_over')").fetchone()[0] is None  # ... with its statement


def test_no_warning_reaches_another_session_and_counts_are_exact(big: Server) -> None:
    with big.connect() as user:
        notices = warnings_of(user)
        for i in (1, 1500, 3000):
            for _ in range(3):
                user.execute(f"SELECT count(*) FROM app_{i} WHERE v < 10").fetchall()
            user.execute(f"SELECT count(*) FROM plain_{i % 2000 + 1}").fetchall()
        assert notices == []
        with big.connect() as admin:
            rows = admin.execute("SELECT table_name, executions, captured + sampled_out + dropped "
                                 "FROM ruvector_dag_capture_stats() "
                                 "WHERE table_name IN ('app_1', 'app_1500', 'app_3000')").fetchall()
            assert sorted(rows) == [("app_1", 3, 3), ("app_1500", 3, 3), ("app_3000", 3, 3)]
            assert admin.execute("SELECT count(*) FROM ruvector_dag_capture_stats()").fetchone()[0] == CAPACITY


def test_a_dropped_table_frees_its_place_at_once(big: Server) -> None:
    with big.connect() as c:
        c.execute("DROP TABLE app_2")
        c.execute("CREATE TABLE app_new (id int)")  # enrolled by the event trigger, in the freed place
        assert c.execute("SELECT ruvector_neural_dag_enabled('app_new')").fetchone()[0]
        c.execute("SELECT count(*) FROM app_new").fetchall()
        assert c.execute("SELECT executions, captured FROM ruvector_dag_capture_stats() WHERE table_name = 'app_new'"
                         ).fetchone() == (1, 1)


def test_the_worker_follows_every_table_and_restarts_with_them(big: Server) -> None:
    with big.connect() as c:
        c.execute("INSERT INTO app_3000 SELECT g, g FROM generate_series(1, 100) g")
        for v in range(20):
            c.execute(f"SELECT count(*) FROM app_3000 WHERE v < {v}").fetchall()
        answer = c.execute("SELECT ruvector_dag_learn('app_3000')").fetchone()[0]
        assert answer["success"], answer
    big.restart()
    began = time.monotonic()
    while f"{CAPACITY} table(s) learning" not in big.log_tail(400):
        assert time.monotonic() - began < 120, big.log_tail(40)
        time.sleep(0.5)
    print(f"\nworker restarted with {CAPACITY} tables in {time.monotonic() - began:.1f} s")
    with big.connect() as c:
        assert c.execute("SELECT ruvector_dag_learning_stats('app_3000')").fetchone()[0]["patterns_stored"] > 0
        log = big.log_tail(400)
        since_restart = log[log.rindex("database system is ready"):]
        assert "ERROR" not in since_restart and "WARNING" not in since_restart, since_restart
