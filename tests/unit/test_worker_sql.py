"""The SQL the background worker runs names every table and function with its schema.

The worker runs as the bootstrap superuser with ``search_path = pg_catalog,
pg_temp``; qualifying every object besides means that no table, view or
function a user creates (in a schema of the path or a temporary one) can
stand in for one of ours, whatever path a statement ends up under.  This
scans the SQL string literals of the modules the worker runs SQL from (the
Python engine's and the C worker's) and fails on an unqualified name.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: The modules of the worker's Python (ruvector_dag/runtime: storage.py, worker.py and its parts).
PY_MODULES = sorted((ROOT / "ruvector_dag" / "runtime").glob("*.py"))
C_SOURCES = [ROOT / "pgext" / "src" / name for name in ("worker.c", "py_pgmodule.c", "py_worker.c")]

# Statements start with an upper-case keyword (the house style), messages do not.
SQL_START = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH|SET|SHOW|CREATE|DROP|ALTER|TRUNCATE|COPY|LOCK) ")
# A relation after FROM/JOIN/INTO/UPDATE/TABLE/... (not ON CONFLICT DO UPDATE, FOR UPDATE) that is not
# schema.name, a subquery or a function call (checked as one below).
RELATION = re.compile(r"(?<!DO )(?<!FOR )\b(FROM|JOIN|INTO|UPDATE|TABLE|USING|LOCK)\s+"
                      r"(?!\(|\$)([A-Za-z_][\w$]*)(?![\w$.]|\s*\()", re.IGNORECASE)
# A function call (name followed by "("), not after a dot or inside "AS alias(column list)".
CALL = re.compile(r"(?<![.\w$])(?<!AS )(?<!as )([A-Za-z_][\w$]*)\s*\(")
# Words followed by "(" that are syntax, not functions that could be shadowed.
SYNTAX = {
    "all", "and", "any", "array", "as", "between", "case", "cast", "coalesce", "conflict", "exists", "filter",
    "greatest", "in", "into", "least", "not", "nullif", "on", "or", "over", "row", "select", "some", "then",
    "using", "values", "when", "where", "with", "within", "else", "distinct", "lateral", "by", "from", "join",
    "offset", "limit", "returning", "set", "is", "like", "ilike", "similar", "table", "update", "group", "order",
}


def python_sql(path: Path) -> list[str]:
    """Every string literal of the module that reads as SQL (f-strings: their literal parts, joined)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
        elif isinstance(node, ast.JoinedStr):
            text = "".join(v.value if isinstance(v, ast.Constant) else " x " for v in node.values)
        else:
            continue
        if SQL_START.match(text):
            out.append(text)
    return out


C_LITERAL = re.compile(r'"((?:[^"\\\n]|\\.)*)"')


def c_sql(path: Path) -> list[str]:
    """Adjacent C string literals joined, those that read as SQL."""
    text = re.sub(r"/\*.*?\*/", " ", path.read_text(), flags=re.DOTALL)
    out, current, last_end = [], "", None
    for m in C_LITERAL.finditer(text):
        if last_end is not None and text[last_end:m.start()].strip() == "":
            current += m.group(1)
        else:
            if current:
                out.append(current)
            current = m.group(1)
        last_end = m.end()
    if current:
        out.append(current)
    return [s for s in out if SQL_START.match(s)]


def _strip_literals(sql: str) -> str:
    """Quoted SQL literals and quoted identifiers' contents out of the way."""
    return re.sub(r"'(?:[^']|'')*'", "''", sql)


def unqualified(sql: str) -> list[str]:
    """The names in sql that are not schema-qualified (tables after FROM & co., called functions)."""
    sql = _strip_literals(sql)
    bad = [m.group(2) for m in RELATION.finditer(sql)]
    bad += [m.group(1) for m in CALL.finditer(sql) if m.group(1).lower() not in SYNTAX]
    return bad


def all_statements() -> list[tuple[str, str]]:
    found = [(p.name, s) for p in PY_MODULES for s in python_sql(p)]
    found += [(p.name, s) for p in C_SOURCES for s in c_sql(p)]
    return found


def test_the_scan_finds_the_worker_sql() -> None:
    names = {name for name, _ in all_statements()}
    assert {"storage.py", "worker.c"} <= names
    assert len([1 for name, _ in all_statements() if name == "storage.py"]) >= 10


@pytest.mark.parametrize(("name", "sql"), all_statements(), ids=lambda v: v[:60] if isinstance(v, str) else v)
def test_every_object_is_schema_qualified(name: str, sql: str) -> None:
    assert unqualified(sql) == [], f"{name}: unqualified name(s) in: {sql}"


@pytest.mark.parametrize("sql", [
    "SELECT * FROM patterns WHERE relid = $1::oid",
    "DELETE FROM engine_state",
    "INSERT INTO trajectory_history (relid) VALUES ($1::oid)",
    "UPDATE ruvector_dag.patterns p SET x = 1 FROM steering_evidence e",
    "SELECT a FROM ruvector_dag.patterns p JOIN pattern_nodes n ON true",
    "INSERT INTO ruvector_dag.engine_state (relid, saved_at) VALUES ($1::oid, now())",
    "SELECT r.a FROM jsonb_to_recordset($1::jsonb) AS r(a int)",
    "SELECT count(*) FROM ruvector_dag.patterns",
])
def test_the_scan_catches_unqualified_names(sql: str) -> None:
    assert unqualified(sql)


@pytest.mark.parametrize("sql", [
    "SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'ruvector_dag'",
    "SELECT r.a FROM pg_catalog.jsonb_to_recordset($1::jsonb) AS r(a int, b real[])",
    "DELETE FROM ruvector_dag.patterns WHERE relid = $1::oid AND pattern_id <> ALL ($2::bigint[])",
    "INSERT INTO ruvector_dag.engine_state (relid) VALUES ($1::oid) ON CONFLICT (relid) DO UPDATE SET x = 1",
    "SELECT x FROM (SELECT 1 AS x) s WHERE x IN (1, 2) AND EXISTS (SELECT 1)",
    "SELECT 'now() FROM patterns' AS text",
])
def test_the_scan_accepts_qualified_sql(sql: str) -> None:
    assert unqualified(sql) == []
