"""ALTER EXTENSION ruvector_dag UPDATE from every released version to the current one."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ruvector_dag.definitions.settings import EXACT_LEARNING
from ruvector_dag.tools import buildext
from ruvector_dag.tools.server import Server

# What a database's ruvector_dag objects look like (order-independent).
CATALOG = {
    "functions": """
        SELECT p.oid::regprocedure::text, pg_get_function_result(p.oid), p.provolatile, p.prosecdef,
               md5(p.prosrc), coalesce(p.proconfig::text, ''), coalesce(p.proacl::text, '')
          FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
         WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
           AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'ruvector_dag')""",
    "columns": """
        SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               pg_get_expr(ad.adbin, ad.adrelid)
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'ruvector_dag'
          JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
          LEFT JOIN pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum
         WHERE c.relkind IN ('r', 'v')""",
    "indexes": "SELECT indexname, regexp_replace(indexdef, 'INDEX \\S+ ', 'INDEX ') FROM pg_indexes "
               "WHERE schemaname = 'ruvector_dag'",
    "config_dump": "SELECT unnest(extconfig)::regclass::text FROM pg_extension WHERE extname = 'ruvector_dag'",
    "event_triggers": "SELECT evtname, evtevent, evtfoid::regproc::text FROM pg_event_trigger",
    # privileges, row security and view options (docs/security.md)
    "relations": """
        SELECT c.relname, c.relkind, coalesce(c.relacl::text, ''), c.relrowsecurity, c.relforcerowsecurity,
               coalesce(c.reloptions::text, '')
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'ruvector_dag'""",
    "policies": "SELECT tablename, policyname, cmd, roles::text, qual FROM pg_policies "
                "WHERE schemaname = 'ruvector_dag'",
}


def current_version() -> str:
    """default_version of the control file: what CREATE EXTENSION installs."""
    control = (buildext.PGEXT_DIR / "ruvector_dag.control").read_text()
    match = re.search(r"^default_version\s*=\s*'([^']+)'", control, re.M)
    assert match, "default_version missing from ruvector_dag.control"
    return match.group(1)


def test_one_base_script_and_deltas() -> None:
    """pg_stat_statements' layout: a single full script, every later version a delta from the one before."""
    scripts = sorted(p.name for p in buildext.PGEXT_DIR.glob("ruvector_dag--*.sql"))
    full = [s for s in scripts if s.count("--") == 1]
    assert full == ["ruvector_dag--0.1.0.sql"], full
    chain = ["0.1.0"]
    deltas = {tuple(s.removeprefix("ruvector_dag--").removesuffix(".sql").split("--"))
              for s in scripts if s not in full}
    while True:
        nxt = [b for a, b in deltas if a == chain[-1]]
        if not nxt:
            break
        assert len(nxt) == 1, nxt
        chain.append(nxt[0])
    assert chain[-1] == current_version(), chain
    assert len(chain) - 1 == len(deltas), (chain, deltas)


def catalog(conn: Any) -> dict[str, set[tuple[Any, ...]]]:
    return {name: set(conn.execute(sql).fetchall()) for name, sql in CATALOG.items()}


def test_update_from_0_1_0_equals_a_fresh_install(tmp_path: Path, server: Server) -> None:
    srv = Server(tmp_path / "upgrade", pg_version=server.pg_version, build=False,
                 settings=EXACT_LEARNING)
    with srv:
        with srv.connect() as c:
            c.execute("DROP EXTENSION ruvector_dag CASCADE")
            c.execute("CREATE EXTENSION ruvector_dag VERSION '0.1.0'")
            c.execute("CREATE TABLE t (id int PRIMARY KEY, k int)")
            c.execute("INSERT INTO t SELECT g, g % 10 FROM generate_series(1, 2000) g")
            c.execute("SELECT ruvector_enable_neural_dag('t')")
            c.execute("ALTER EXTENSION ruvector_dag UPDATE")
            assert c.execute("SELECT extversion FROM pg_extension WHERE extname = 'ruvector_dag'").fetchone() == (
                current_version(),)
            updated = catalog(c)
            c.execute("CREATE DATABASE fresh")
        with srv.connect(dbname="fresh") as f:
            f.execute("CREATE EXTENSION ruvector_dag")
            fresh = catalog(f)
        for name in CATALOG:
            assert updated[name] == fresh[name], (name, updated[name] ^ fresh[name])

        # What was enrolled under 0.1.0 learns under the current version.
        with srv.connect() as c:
            assert c.execute("SELECT ruvector_neural_dag_enabled('t')").fetchone()[0] is True
            for i in range(10):
                c.execute("SELECT * FROM t WHERE id = %s", (i + 1,)).fetchall()
                c.execute("SELECT k, count(*) FROM t GROUP BY k").fetchall()
            assert c.execute("SELECT ruvector_dag_learn('t')").fetchone()[0]["success"]
            assert c.execute("SELECT count(*) FROM ruvector_dag_patterns('t')").fetchone()[0] >= 2


def test_learned_state_survives_the_last_update(tmp_path: Path, server: Server) -> None:
    """Patterns learned under the previous version are kept, and read with the table's own settings."""
    previous = "0.3.0"
    srv = Server(tmp_path / "last", pg_version=server.pg_version, build=False, settings=EXACT_LEARNING)
    with srv, srv.connect() as c:
        c.execute("DROP EXTENSION ruvector_dag CASCADE")
        c.execute(f"CREATE EXTENSION ruvector_dag VERSION '{previous}'")
        c.execute("CREATE TABLE t (id int PRIMARY KEY, k int)")
        c.execute("INSERT INTO t SELECT g, g % 10 FROM generate_series(1, 2000) g")
        c.execute("""SELECT ruvector_enable_neural_dag('t', '{"dag_mincut_threshold": 0.9}')""")
        for i in range(10):
            c.execute("SELECT * FROM t WHERE id = %s", (i + 1,)).fetchall()
            c.execute("SELECT k, count(*) FROM t GROUP BY k").fetchall()
        assert c.execute("SELECT ruvector_dag_learn('t')").fetchone()[0]["success"]
        learned = c.execute("SELECT (SELECT count(*) FROM ruvector_dag.patterns), "
                            "(SELECT count(*) FROM ruvector_dag.pattern_nodes)").fetchone()
        assert learned[0] >= 2 and learned[1] >= learned[0]
        # Before the update the session's threshold applied, whatever the table's config said.
        assert c.execute("SELECT ruvector_dag_mincut_analysis('t')->>'threshold'").fetchone()[0] == "0.5"
        c.execute("ALTER EXTENSION ruvector_dag UPDATE")
        assert c.execute("SELECT extversion FROM pg_extension WHERE extname = 'ruvector_dag'").fetchone() == (
            current_version(),)
        assert c.execute("SELECT (SELECT count(*) FROM ruvector_dag.patterns), "
                         "(SELECT count(*) FROM ruvector_dag.pattern_nodes)").fetchone() == learned
        assert c.execute("SELECT ruvector_dag_mincut_analysis('t')->>'threshold'").fetchone()[0] == "0.9"
