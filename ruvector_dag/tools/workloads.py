"""Workloads whose row estimates PostgreSQL gets wrong by 100x or more (plan-steering traps).

One definition, used by the steering tests, ``benchmarks/steering.py`` and
the demo.  Each trap is a recurring query whose default plan is built on a
wrong estimate:

* ``correlated``: ``x = 7 AND y = 7`` where x = y always.  The planner
  multiplies two 1 % selectivities (0.01 %: 20 rows expected, 2 000 read)
  and sorts its "small" input for a merge join.
* ``skewed``: one dimension row owns half of the facts.  The planner
  expects 1/10 000 of them per dimension row, so it nests two index loops;
  the inner one runs 50 000 times per scale unit instead of a handful.
* ``control``: the same tables, a query whose plan is fine either way: it
  must not get slower.

Every arm returns the same rows (steering only disables plan methods), so a
query's result is its check.

The workloads run as :data:`APP_ROLE`, an ordinary role that owns the
tables (:func:`own_tables`): the background worker tries an arm on a
statement before users run it, replaying the statement as its own roles, and
by default never replays a superuser's (``ruvector.dag_trial_privileged_statements``),
so a superuser's queries are not explored.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

TABLES = ("trap_a", "trap_b", "trap_d", "trap_f", "trap_e")

#: The role that runs the workloads: LOGIN, not a superuser, owner of their tables.
APP_ROLE = "ruvector_app"

#: The tables a benchmark enrolls (each trap reads at least one of them).
ENROLLED = ("trap_a", "trap_f")

QUERIES: dict[str, str] = {
    "correlated": "SELECT count(*), sum(b.v) FROM trap_a a JOIN trap_b b ON b.k = a.k "
                  "WHERE a.x = 7 AND a.y = 7 AND b.v % 1000 = 0",
    "skewed": "SELECT count(*), sum(e.w) FROM trap_d d JOIN trap_f f ON f.d_id = d.id "
              "JOIN trap_e e ON e.id = f.e_id WHERE d.name = 'hot' AND e.w % 100 = 0",
    "control": "SELECT count(*) FROM trap_d d JOIN trap_f f ON f.d_id = d.id WHERE d.name = 'n42' AND f.e_id < 25",
}


def setup_sql(scale: int = 1) -> str:
    """DDL and data; ``scale`` multiplies the skewed fact table (40 000 rows per unit)."""
    if not isinstance(scale, int) or not 1 <= scale <= 100:
        raise ValueError(f"scale must be an integer in [1, 100], got {scale!r}")
    facts = 40_000 * scale
    return f"""
        DROP TABLE IF EXISTS {", ".join(TABLES)};
        CREATE TABLE trap_a (id int, x int, y int, k int);
        CREATE TABLE trap_b (id int, k int, v int);
        INSERT INTO trap_a SELECT g, g % 100, g % 100, g % 10 FROM generate_series(1, 200000) g;
        INSERT INTO trap_b SELECT g, g % 100, g FROM generate_series(1, 100000) g;
        CREATE INDEX ON trap_b (k);
        CREATE TABLE trap_d (id int PRIMARY KEY, name text);
        CREATE TABLE trap_f (id int, d_id int, e_id int);
        CREATE TABLE trap_e (id int, w int);
        INSERT INTO trap_d SELECT g, CASE WHEN g = 1 THEN 'hot' ELSE 'n' || g END FROM generate_series(1, 10000) g;
        INSERT INTO trap_f SELECT g, CASE WHEN g % 2 = 0 THEN 1 ELSE 1 + g % 10000 END, g % 50
          FROM generate_series(1, {facts}) g;
        INSERT INTO trap_e SELECT g % 50, g FROM generate_series(1, 2500) g;
        CREATE INDEX ON trap_f (d_id);
        CREATE INDEX ON trap_e (id);
        ANALYZE {", ".join(TABLES)};
    """


def create(execute: Callable[[str], Any], scale: int = 1) -> None:
    """Create the trap tables through ``execute(sql)`` (e.g. a psycopg connection's execute)."""
    execute(setup_sql(scale))


def drop(execute: Callable[[str], Any]) -> None:
    execute(f"DROP TABLE IF EXISTS {', '.join(TABLES)}")


def own_tables(execute: Callable[[str], Any], tables: Iterable[str] = TABLES, role: str = APP_ROLE) -> str:
    """Create ``role`` (LOGIN, not a superuser) unless it exists and make it the owner of ``tables``;
    return its name.  Run by a superuser; then connect as the role (``Server.connect(user=role)``:
    the embedded server trusts local connections)."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", role):
        raise ValueError(f"role must be a plain lower-case SQL identifier, got {role!r}")
    execute(f"""
        DO $$ BEGIN
          IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '{role}') THEN
            CREATE ROLE {role} LOGIN NOSUPERUSER;
          END IF;
        END $$;
    """ + "".join(f"ALTER TABLE {table} OWNER TO {role};\n" for table in tables))
    return role
