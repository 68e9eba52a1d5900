"""Attacks on the background worker's trials (issue 14), against a real server.

Before any user's execution is planned with an exploratory arm, the worker
tries the arm on the statement itself: it replays a captured statement in
its own process.  Each attack here is a statement the worker wants to try
(the skewed trap of ruvector_dag.tools.workloads, misestimated 100 times over, on
an enrolled table) with a payload in its select list, run by ALICE, an
ordinary role that owns the tables.  The statement runs until the worker
has given its verdict on it (:func:`run_until_verdict`: it tried the
statement, or it never will), then the attack checks that the trial did
nothing ALICE could not do in her own session and left nothing behind.  A
verdict is required: no attack passes because the worker never got to it.

The trial's rule (docs/security.md): it runs as the statement's own
session_user and current_user, read-only, as a security-restricted
operation, always rolled back; it refuses volatile functions, and at run
time any function that is not built in, unless its owner is a superuser or
one of ``ruvector.dag_trial_trusted_roles``; statements of superusers and of
members of pg_execute_server_program are not tried unless
``ruvector.dag_trial_privileged_statements`` is on; statements inside a
function's body are not offered.

Used by tests/integration/test_trial_security.py (the embedded PostgreSQL 16
and 18) and tests/system/test_system_trials.py (Debian's PostgreSQL 15).
Every function takes ``connect(user)``: a new autocommit psycopg connection
as ``user``, or as the bootstrap superuser for None.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from ruvector_dag.engine.learner import TableLearner
from ruvector_dag.engine.steering import QuerySteering
from ruvector_dag.tools import workloads

Connect = Callable[[str | None], Any]
LogTail = Callable[[], str]

ALICE = "rvd_alice"  # the attacker: LOGIN, not a superuser, owner of the trap tables
TEAM = "rvd_alice_team"  # a NOLOGIN role ALICE is a member of (SET ROLE)
ATTACK = "rvd_attack"  # ALICE's schema: her functions, and the log of her shadow now()
VAULT = "rvd_vault"  # a superuser's schema: a SECURITY DEFINER function
CHANNEL = "rvd_attack"  # what a payload notifies on
MARK = "rvd_attack"  # the application_name a payload sets
LOCK_KEY = 727_274  # the advisory lock a payload takes
SECRET = "a secret of the bootstrap superuser"
TABLE = "public.trap_f"  # the enrolled table the trap reads
TRAP = workloads.QUERIES["skewed"]
#: How long the worker has to try a statement or give up on it (it backs off 30 s after a void trial).
DEADLINE_S = 90.0
PAUSE_S = 0.3  # between two executions
CHECK_S = 2.0  # between two readings of the worker's verdict (each runs a learning cycle)
WORKER = "ruvector_dag worker"  # its backend_type
#: Where a payload points search_path: ALICE's schema first, where her now() is.
POISONED_PATH = f"{ATTACK}, pg_catalog"


def no_log() -> str:
    return "(no server log)"


def trap(*extra: str) -> str:
    """The skewed trap with ``extra`` appended to its select list (each changes its query id)."""
    return TRAP.replace(" FROM ", "".join(f", {e}" for e in extra) + " FROM ", 1)


def query_id(conn: Any, sql: str) -> int:
    return int(conn.execute(f"EXPLAIN (VERBOSE, FORMAT JSON) {sql}").fetchone()[0][0]["Query Identifier"])


def _drop_everything(admin: Any) -> None:
    admin.execute(f"""
        DROP SCHEMA IF EXISTS {VAULT} CASCADE;
        DO $$ DECLARE r text; BEGIN
          FOREACH r IN ARRAY ARRAY['{ALICE}', '{TEAM}'] LOOP
            IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = r) THEN
              EXECUTE pg_catalog.format('DROP OWNED BY %I CASCADE', r);
              EXECUTE pg_catalog.format('DROP ROLE %I', r);
            END IF;
          END LOOP;
        END $$;
    """)
    workloads.drop(admin.execute)


@contextmanager
def attack_setup(connect: Connect) -> Iterator[Any]:
    """The trap tables (new ones: new query ids, a new learner), owned by ALICE and enrolled, ALICE's
    schema with the shadow ``now()`` of issue 14 (it makes ALICE a superuser when a superuser calls it
    through a search_path that lists her schema before pg_catalog); yields a superuser's session.
    Everything is dropped afterwards."""
    with connect(None) as admin:
        _drop_everything(admin)
        try:
            workloads.create(admin.execute)
            workloads.own_tables(admin.execute, role=ALICE)
            admin.execute(f"CREATE SCHEMA {ATTACK} AUTHORIZATION {ALICE}")
            for table in workloads.ENROLLED:
                admin.execute("SELECT ruvector_enable_neural_dag(%s)", (table,))
            with connect(ALICE) as alice:
                alice.execute(f"""
                    CREATE TABLE {ATTACK}.hits (session_name name, current_name name);
                    CREATE FUNCTION {ATTACK}.now() RETURNS timestamptz LANGUAGE plpgsql AS $$
                    BEGIN
                      INSERT INTO {ATTACK}.hits VALUES (session_user, current_user);
                      ALTER ROLE {ALICE} SUPERUSER;
                      RETURN pg_catalog.statement_timestamp();
                    END $$;
                """)
            yield admin
        finally:
            _drop_everything(admin)


@contextmanager
def server_setting(connect: Connect, name: str, value: str) -> Iterator[None]:
    """``ALTER SYSTEM SET name = value`` and a reload, until the end of the block."""
    with connect(None) as admin:
        admin.execute(f"ALTER SYSTEM SET {name} = '{value}'")
        try:
            admin.execute("SELECT pg_catalog.pg_reload_conf()")
            _wait_setting(connect, name, value)
            yield
        finally:
            admin.execute(f"ALTER SYSTEM RESET {name}")
            admin.execute("SELECT pg_catalog.pg_reload_conf()")
            time.sleep(1.0)


def _wait_setting(connect: Connect, name: str, value: str) -> None:
    deadline = time.monotonic() + 10.0
    while True:
        with connect(None) as c:
            if c.execute(f"SHOW {name}").fetchone()[0] == value:
                break
        assert time.monotonic() < deadline, f"{name} is not {value} after a reload"
        time.sleep(0.2)
    time.sleep(1.0)  # the worker reloads at its next poll


def steering_of(admin: Any, qid: int) -> QuerySteering | None:
    """What the engine knows of query ``qid`` on TABLE, saved now (ruvector_dag_learn drains the
    ring, may run a trial, and saves the engine's state)."""
    admin.execute("SELECT ruvector_dag_learn(%s)", (TABLE,))
    row = admin.execute("SELECT state FROM ruvector_dag.engine_state WHERE relid = %s::regclass",
                        (TABLE,)).fetchone()
    if row is None:
        return None
    return TableLearner.from_state_bytes(bytes(row[0])).steering.queries.get(qid % (1 << 64))


def verdict(q: QuerySteering | None) -> str | None:
    """"tried": the worker ran a trial of the statement to its end; "untriable": it will not try it
    (never offered, refused, or failed); None: not decided yet."""
    if q is None:
        return None
    if q.trials:
        return "tried"
    return "untriable" if q.untriable else None


def text_verdict(q: QuerySteering | None) -> str | None:
    """"offered": the worker holds the query's text or tried it; "never offered": it stopped asking
    for the text without receiving it and tried nothing; None: it still asks."""
    if q is None or not q.text_taken:
        return None
    return "offered" if q.text is not None or q.trials else "never offered"


def run_until_verdict(admin: Any, run: Callable[[], Any], qid: int, log_tail: LogTail = no_log,
                      deadline_s: float = DEADLINE_S,
                      decide: Callable[[QuerySteering | None], str | None] = verdict) -> str:
    """Execute the statement (``run()``) until the worker has given its verdict on query ``qid``
    (``decide``: on trials by default, :func:`text_verdict` on its text).  Executions are spaced
    out, and the verdict read every CHECK_S: trials start on idle CPUs only."""
    deadline = time.monotonic() + deadline_s
    executions, checked = 0, time.monotonic()
    while True:
        run()
        executions += 1
        time.sleep(PAUSE_S)
        if time.monotonic() - checked < CHECK_S:
            continue
        checked = time.monotonic()
        q = steering_of(admin, qid)
        found = decide(q)
        if found is not None:
            return found
        if time.monotonic() > deadline:
            seen = "unknown to the engine" if q is None else f"known ({q.to_json()})"
            raise AssertionError(f"no verdict on query {qid} after {executions} executions in {deadline_s:.0f} s: "
                                 f"{seen}\n{log_tail()}")


def _worker_application_name(admin: Any) -> str:
    row = admin.execute("SELECT application_name FROM pg_catalog.pg_stat_activity WHERE backend_type = %s",
                        (WORKER,)).fetchone()
    assert row is not None, "no ruvector_dag worker in pg_stat_activity"
    return str(row[0])


def _rolsuper(admin: Any, role: str) -> bool:
    return bool(admin.execute("SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = %s", (role,)).fetchone()[0])


def _assert_not_escalated(admin: Any) -> None:
    """ALICE is no superuser, and no superuser ran her shadow now() (the worker's search_path is its own)."""
    admin.execute("SELECT ruvector_dag_learn(%s)", (TABLE,))  # the worker runs its own SQL once more
    hits = admin.execute(f"SELECT session_name, current_name FROM {ATTACK}.hits").fetchall()
    escalated = _rolsuper(admin, ALICE)
    assert (hits, escalated) == ([], False), f"ALICE's now() ran as {hits}; {ALICE} is a superuser: {escalated}"


# --------------------------------------------------------------------------
# 1. set_config leaking into the worker's session (issue 14, found 1)
# --------------------------------------------------------------------------

#: How the payload ``set_config('search_path', ...)`` reaches the trial: in the select list under
#: "only in a trial" (the worker's session_user was its own); in a function of ALICE's declared
#: STABLE; in a STABLE SQL function; in a session of ALICE's that ran SET ROLE.
LEAK_VARIANTS = ("select_list", "stable_function", "sql_function", "set_role")
_ONLY_IN_A_TRIAL = "session_user <> current_user"
_LEAK = f"pg_catalog.set_config('search_path', '{POISONED_PATH}', false)"


def settings_leak(connect: Connect, variant: str, log_tail: LogTail = no_log) -> None:
    """ALICE's statement sets search_path in its trial, so that the worker's next unqualified
    ``now()`` would be her function (issue 14's escalation): she must stay an ordinary role, and the
    worker's settings its own."""
    if variant not in LEAK_VARIANTS:
        raise ValueError(variant)
    with attack_setup(connect) as admin, connect(ALICE) as alice:
        payload = f"CASE WHEN {_ONLY_IN_A_TRIAL} THEN {_LEAK} END"
        if variant == "stable_function":
            alice.execute(f"""CREATE FUNCTION {ATTACK}.tidy() RETURNS text LANGUAGE plpgsql STABLE AS $$
                BEGIN
                  IF {_ONLY_IN_A_TRIAL} THEN PERFORM {_LEAK}; END IF;
                  RETURN NULL;
                END $$""")
            payload = f"{ATTACK}.tidy()"
        elif variant == "sql_function":
            alice.execute(f"CREATE FUNCTION {ATTACK}.tidy() RETURNS text LANGUAGE sql STABLE "
                          f"AS $$ SELECT {payload} $$")
            payload = f"{ATTACK}.tidy()"
        elif variant == "set_role":
            admin.execute(f"CREATE ROLE {TEAM} NOLOGIN; GRANT {TEAM} TO {ALICE}; "
                          f"GRANT SELECT ON {', '.join(workloads.TABLES)} TO {TEAM}")
            alice.execute(f"SET ROLE {TEAM}")
            payload = f"CASE WHEN session_user <> '{ALICE}' THEN {_LEAK} END"
        sql = trap(payload)
        app_name = _worker_application_name(admin)
        found = run_until_verdict(admin, lambda: alice.execute(sql).fetchall(), query_id(admin, sql), log_tail)
        _assert_not_escalated(admin)
        assert alice.execute("SHOW search_path").fetchone()[0] != POISONED_PATH  # (her session: never ran it)
        assert _worker_application_name(admin) == app_name, found
        assert found == "untriable", found  # (set_config is volatile, ALICE's functions untrusted)


# --------------------------------------------------------------------------
# 2. side effects replayed (found 3): notifications, advisory locks, settings, temporary tables
# --------------------------------------------------------------------------

#: The verdict on a statement calling ALICE's functions: refused, or (trusted) run and rolled back.
_EXPECTED = {False: "untriable", True: "tried"}


def _trusting(connect: Connect, trusted: bool) -> Any:
    """ALICE among ruvector.dag_trial_trusted_roles (her functions then run in trials) or not."""
    if trusted:
        return server_setting(connect, "ruvector.dag_trial_trusted_roles", ALICE)
    return nullcontext()


def side_effects(connect: Connect, *, trusted: bool, log_tail: LogTail = no_log) -> None:
    """A function of ALICE's declared STABLE notifies, takes a session advisory lock, sets
    application_name and tries to create a temporary table, only when it runs outside her own
    session: in a trial.  Refused (her functions untrusted) or run (trusted) and rolled back, the
    trial leaves none of it: no notification, no lock, the worker's application_name, no table."""
    with (attack_setup(connect) as admin, connect(ALICE) as alice, connect(None) as listener,
          _trusting(connect, trusted)):
        alice.execute(f"""
            CREATE FUNCTION {ATTACK}.make_temp() RETURNS void LANGUAGE plpgsql AS $$
            BEGIN
              CREATE TEMP TABLE IF NOT EXISTS rvd_attack_temp (x int);
            END $$;
            CREATE FUNCTION {ATTACK}.side_effects() RETURNS text LANGUAGE plpgsql STABLE AS $$
            DECLARE v text;
            BEGIN
              IF pg_catalog.pg_backend_pid() <> {alice.info.backend_pid} THEN
                -- simple expressions: PL/pgSQL evaluates them without a nested statement (which a
                -- trial refuses), so a trusted function does reach these built-ins
                v := pg_catalog.pg_notify('{CHANNEL}', 'from a trial')::text;
                v := pg_catalog.pg_try_advisory_lock({LOCK_KEY})::text;
                v := pg_catalog.set_config('application_name', '{MARK}', false);
                BEGIN
                  PERFORM {ATTACK}.make_temp();
                EXCEPTION WHEN OTHERS THEN NULL;  -- (a nested statement, then a utility one: refused)
                END;
              END IF;
              RETURN NULL;
            END $$""")
        listener.execute(f"LISTEN {CHANNEL}")
        app_name = _worker_application_name(admin)
        sql = trap(f"{ATTACK}.side_effects()")
        found = run_until_verdict(admin, lambda: alice.execute(sql).fetchall(), query_id(admin, sql), log_tail)
        admin.execute("SELECT ruvector_dag_learn(%s)", (TABLE,))  # a transaction of the worker's commits
        left = {
            "notifications": [(n.pid, n.payload) for n in listener.notifies(timeout=1.0)],
            "advisory locks": admin.execute("SELECT pid FROM pg_catalog.pg_locks WHERE locktype = 'advisory' "
                                            "AND objid = %s", (LOCK_KEY,)).fetchall(),
            "application_name": admin.execute("SELECT pid, backend_type FROM pg_catalog.pg_stat_activity "
                                              "WHERE application_name = %s", (MARK,)).fetchall(),
            "temporary tables": admin.execute("SELECT oid::regclass::text FROM pg_catalog.pg_class "
                                              "WHERE relname = 'rvd_attack_temp'").fetchall(),
        }
        assert {k: v for k, v in left.items() if v} == {}, f"left by a trial ({found})"
        assert _worker_application_name(admin) == app_name, found
        assert found == _EXPECTED[trusted], found


# --------------------------------------------------------------------------
# 3. session_user inside a trial (found 4)
# --------------------------------------------------------------------------

def session_user_secret(connect: Connect, *, trusted: bool, log_tail: LogTail = no_log) -> None:
    """A superuser's SECURITY DEFINER function serves a secret only when session_user is the
    bootstrap superuser; ALICE's statement passes its result to a function of hers declared STABLE
    that notifies it.  Her trial runs as her (or is refused): the secret never comes out."""
    with (attack_setup(connect) as admin, connect(ALICE) as alice, connect(None) as listener,
          _trusting(connect, trusted)):
        bootstrap = admin.execute("SELECT rolname FROM pg_catalog.pg_roles WHERE oid = 10").fetchone()[0]
        # (PL/pgSQL simple expressions: no nested statement, which a trial would refuse by itself)
        admin.execute(f"""
            CREATE SCHEMA {VAULT};
            GRANT USAGE ON SCHEMA {VAULT} TO {ALICE};
            CREATE FUNCTION {VAULT}.secret() RETURNS text LANGUAGE plpgsql STABLE SECURITY DEFINER
              SET search_path = pg_catalog, pg_temp
              AS $$ BEGIN RETURN CASE WHEN session_user = '{bootstrap}' THEN '{SECRET}' END; END $$;
        """)
        alice.execute(f"""CREATE FUNCTION {ATTACK}.carry(t text) RETURNS text LANGUAGE plpgsql STABLE AS $$
            DECLARE v text;
            BEGIN
              IF t IS NOT NULL THEN v := pg_catalog.pg_notify('{CHANNEL}', t)::text; END IF;
              RETURN NULL;
            END $$""")
        assert alice.execute(f"SELECT {VAULT}.secret()").fetchone()[0] is None  # not served to her
        listener.execute(f"LISTEN {CHANNEL}")
        sql = trap(f"{ATTACK}.carry({VAULT}.secret())")
        found = run_until_verdict(admin, lambda: alice.execute(sql).fetchall(), query_id(admin, sql), log_tail)
        admin.execute("SELECT ruvector_dag_learn(%s)", (TABLE,))
        notes = [(n.pid, n.payload) for n in listener.notifies(timeout=1.0)]
        assert notes == [], f"the secret came out of a trial ({found}): {notes}"
        assert found == _EXPECTED[trusted], found


# --------------------------------------------------------------------------
# 4. privileged roles' statements, 5. statements in a function's body
# --------------------------------------------------------------------------

def _not_tried(admin: Any, conn: Any, sql: str, log_tail: LogTail) -> None:
    found = run_until_verdict(admin, lambda: conn.execute(sql).fetchall(), query_id(admin, sql), log_tail)
    assert found == "untriable", f"{sql}: {found}"


def superuser_statements(connect: Connect, log_tail: LogTail = no_log) -> None:
    """A superuser's statement is not tried (the worker gives up on it), by default."""
    with attack_setup(connect) as admin:
        _not_tried(admin, admin, trap("max(e.w)"), log_tail)


def server_program_statements(connect: Connect, log_tail: LogTail = no_log) -> None:
    """Nor is the statement of a member of pg_execute_server_program."""
    with attack_setup(connect) as admin:
        admin.execute(f"GRANT pg_execute_server_program TO {ALICE}")
        with connect(ALICE) as alice:
            _not_tried(admin, alice, trap("min(e.w)"), log_tail)


def privileged_statements_allowed(connect: Connect, log_tail: LogTail = no_log) -> None:
    """ruvector.dag_trial_privileged_statements = on: a superuser's statement is tried."""
    with (attack_setup(connect) as admin,
          server_setting(connect, "ruvector.dag_trial_privileged_statements", "on")):
        sql = trap("max(d.id)")
        found = run_until_verdict(admin, lambda: admin.execute(sql).fetchall(), query_id(admin, sql), log_tail)
        assert found == "tried", found


def function_body_statements(connect: Connect, log_tail: LogTail = no_log) -> None:
    """The trap at top level once (the engine learns it is a trap and asks for its text from then on:
    for a trial, and for the steering view), then only inside a PL/pgSQL function of ALICE's (the same
    statement, the same query id): the function's statement is never offered (out of its function a
    statement may mean something else).  The worker stops asking after 5 executions without one: it
    has no text and has tried nothing.  Transfer is off here: with it, the top-level first execution
    offers its (client's, legitimate) text unasked, and the function's statements would never be
    asked for."""
    inner = TRAP.replace(" FROM ", " INTO n, s FROM ", 1)  # (PL/pgSQL takes INTO out of the statement)
    with (server_setting(connect, "ruvector.dag_transfer", "off"), attack_setup(connect) as admin,
          connect(ALICE) as alice):
        alice.execute(f"""CREATE FUNCTION {ATTACK}.run_trap() RETURNS bigint LANGUAGE plpgsql AS $$
            DECLARE n bigint; s bigint;
            BEGIN
              {inner};
              RETURN n;
            END $$""")
        alice.execute(TRAP).fetchall()  # its first execution: a trap, whose text the worker wants from now on
        time.sleep(1.0)  # (the worker drains every 200 ms, then asks for its text)
        found = run_until_verdict(admin, lambda: alice.execute(f"SELECT {ATTACK}.run_trap()").fetchall(),
                                  query_id(admin, TRAP), log_tail, decide=text_verdict)
        assert found == "never offered", found  # no text, so nothing tried


# --------------------------------------------------------------------------
# 6. pg_stat_statements does not count trials
# --------------------------------------------------------------------------

def trials_not_counted(connect: Connect, log_tail: LogTail = no_log) -> None:
    """ALICE's plain statement is tried (paired: the default and an arm, in the worker), yet
    pg_stat_statements counts her executions only.  Needs pg_stat_statements preloaded."""
    with attack_setup(connect) as admin, connect(ALICE) as alice:
        admin.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        sql = trap("avg(e.w)")
        qid = query_id(admin, sql)
        executions = 0

        def run() -> None:
            nonlocal executions
            alice.execute(sql).fetchall()
            executions += 1

        found = run_until_verdict(admin, run, qid, log_tail)
        assert found == "tried", found
        calls = admin.execute("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE queryid = %s",
                              (qid,)).fetchone()[0]
        assert calls == executions, f"pg_stat_statements counted {calls} calls of {executions} executions"


# --------------------------------------------------------------------------
# 7. what the static check and the function guard cannot see by themselves
# --------------------------------------------------------------------------

ESCAPE_VARIANTS = ("aggregate", "domain", "nested_statement", "utility_statement")


def builtin_escapes(connect: Connect, variant: str, log_tail: LogTail = no_log) -> None:
    """Volatile built-ins reached where neither the statement's functions nor the guard (which
    sees no built-in function) show them: an aggregate's support function (aggregates are labeled
    immutable), a domain's CHECK, a statement or a utility command run by a trusted function.  The
    trial refuses each; nothing is left."""
    if variant not in ESCAPE_VARIANTS:
        raise ValueError(variant)
    with (attack_setup(connect) as admin, connect(ALICE) as alice, connect(None) as listener,
          _trusting(connect, variant in ("nested_statement", "utility_statement"))):
        if variant == "aggregate":
            alice.execute(f"CREATE AGGREGATE {ATTACK}.leak(text, boolean) "
                          f"(sfunc = pg_catalog.set_config, stype = text, initcond = 'application_name')")
            payload = f"{ATTACK}.leak('{MARK}', false) FILTER (WHERE e.w < 0)"
        elif variant == "domain":
            alice.execute(f"CREATE DOMAIN {ATTACK}.marked AS int CHECK "
                          f"(pg_catalog.set_config('application_name', '{MARK}', false) IS NOT NULL)")
            payload = f"1::{ATTACK}.marked"
        else:
            command = (f"PERFORM pg_catalog.pg_notify('{CHANNEL}', 'nested')" if variant == "nested_statement"
                       else f"EXECUTE 'NOTIFY {CHANNEL}'")
            alice.execute(f"""CREATE FUNCTION {ATTACK}.nested() RETURNS text LANGUAGE plpgsql STABLE AS $$
                BEGIN
                  IF pg_catalog.pg_backend_pid() <> {alice.info.backend_pid} THEN {command}; END IF;
                  RETURN NULL;
                END $$""")
            payload = f"{ATTACK}.nested()"
        listener.execute(f"LISTEN {CHANNEL}")
        app_name = _worker_application_name(admin)
        sql = trap(payload)
        found = run_until_verdict(admin, lambda: alice.execute(sql).fetchall(), query_id(admin, sql), log_tail)
        admin.execute("SELECT ruvector_dag_learn(%s)", (TABLE,))
        assert [(n.pid, n.payload) for n in listener.notifies(timeout=1.0)] == [], found
        assert _worker_application_name(admin) == app_name, found
        assert found == "untriable", found
