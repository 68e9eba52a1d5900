"""The installable slice: preload, GUCs, install script, ruvector type, engine bridge."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ruvector_dag.definitions import settings
from ruvector_dag.tools import buildext
from ruvector_dag.tools.server import Server


def _show(conn: Any, name: str) -> str:
    return str(conn.execute(f"SHOW ruvector.{name}").fetchone()[0])


def _expected_text(s: settings.Setting) -> str:
    if isinstance(s, settings.BoolSetting):
        return "on" if s.default else "off"
    if isinstance(s, settings.IntSetting) and s.unit == "ms":
        ms = s.default
        return f"{ms // 3600000}h" if ms % 3600000 == 0 else f"{ms}ms"
    if isinstance(s, settings.RealSetting):
        return f"{s.default:g}"
    return str(s.default)


def test_every_setting_is_registered_with_its_default(conn: Any) -> None:
    rows = conn.execute(
        "SELECT name, setting, context, min_val, max_val, enumvals, source, boot_val FROM pg_settings "
        "WHERE name LIKE 'ruvector.%'").fetchall()
    found = {r[0].removeprefix("ruvector."): r for r in rows}
    assert set(found) == {s.name for s in settings.SETTINGS}
    contexts = {"PGC_USERSET": "user", "PGC_SUSET": "superuser", "PGC_SIGHUP": "sighup",
                "PGC_POSTMASTER": "postmaster"}
    for s in settings.SETTINGS:
        _, _value, context, lo, hi, enumvals, source, boot_val = found[s.name]
        if source == "default":  # (the test server sets a few in postgresql.conf)
            assert _show(conn, s.name) == _expected_text(s), s.name
        else:
            assert isinstance(s, (settings.IntSetting, settings.RealSetting)), s.name
            assert float(boot_val) == pytest.approx(s.default), s.name
        assert context == contexts[s.context], s.name
        if isinstance(s, (settings.IntSetting, settings.RealSetting)):
            assert float(lo) == pytest.approx(s.min) and float(hi) == pytest.approx(s.max), s.name
        if isinstance(s, settings.EnumSetting):
            assert tuple(enumvals) == s.choices


@pytest.mark.parametrize(
    ("statement", "sqlstate"),
    [
        ("SET ruvector.dag_learning_rate = 2", "22023"),
        ("SET ruvector.dag_learning_rate = 0", "22023"),
        ("SET ruvector.dag_pattern_clusters = 5", "22023"),
        ("SET ruvector.dag_quality_threshold = -0.1", "22023"),
        ("SET ruvector.dag_ewc_lambda = 1e9", "22023"),
        ("SET ruvector.dag_attention_type = 'softmax'", "22023"),
        ("SET ruvector.neural_dag_enabled = 'maybe'", "22023"),
        ("SET ruvector.dag_max_trajectories = 100", "55P02"),
        ("SET ruvector.dag_background_interval_ms = 120000", "55P02"),
        ("SET ruvector.no_such_setting = 1", "42602"),
    ],
)
def test_bad_settings_are_refused(conn: Any, statement: str, sqlstate: str) -> None:
    with pytest.raises(psycopg.Error) as err:
        conn.execute(statement)
    assert err.value.sqlstate == sqlstate, str(err.value)


def test_attention_type_accepts_every_mechanism(conn: Any) -> None:
    for choice in settings.ATTENTION_TYPE_CHOICES:
        conn.execute(f"SET ruvector.dag_attention_type = '{choice}'")
        assert _show(conn, "dag_attention_type") == choice


def test_install_script_objects(conn: Any) -> None:
    tables = {r[0] for r in conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'ruvector_dag'").fetchall()}
    assert tables == {"patterns", "trajectory_history", "enrolled_tables", "engine_state", "pattern_nodes",
                      "steering_evidence", "pinned_arms", "steered_queries", "steering_executions"}
    indexes = {r[0] for r in conn.execute(
        "SELECT indexname FROM pg_indexes WHERE schemaname = 'ruvector_dag'").fetchall()}
    assert {"idx_patterns_table", "idx_trajectories_table_time"} <= indexes
    coltype = conn.execute(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = 'ruvector_dag.patterns'::regclass AND attname = 'centroid'").fetchone()[0]
    assert coltype == "ruvector"


def test_cleanup_old_trajectories(conn: Any) -> None:
    conn.execute("DELETE FROM ruvector_dag.trajectory_history")
    conn.execute(
        "INSERT INTO ruvector_dag.trajectory_history "
        "(relid, table_name, trajectory_id, plan_embedding, attention_type, latency_us, quality, recorded_at) "
        "SELECT 0, 't', g, '[1,2]', 'topological', 10, 0.5, now() - make_interval(days => g) + interval '1 hour' "
        "FROM generate_series(0, 9) g")
    assert conn.execute("SELECT ruvector_dag.cleanup_old_trajectories(7)").fetchone()[0] == 2
    assert conn.execute("SELECT count(*) FROM ruvector_dag.trajectory_history").fetchone()[0] == 8
    assert conn.execute("SELECT ruvector_dag.cleanup_old_trajectories()").fetchone()[0] == 0
    assert conn.execute("SELECT ruvector_dag.cleanup_old_trajectories(0)").fetchone()[0] == 7
    for arg, state in (("NULL", "22004"), ("-1", "22023")):
        with pytest.raises(psycopg.Error) as err:
            conn.execute(f"SELECT ruvector_dag.cleanup_old_trajectories({arg})")
        assert err.value.sqlstate == state
        assert "retention_days" in str(err.value)


def test_ruvector_type_round_trip(conn: Any) -> None:
    row = conn.execute(
        "SELECT '[1, 2.5,-3e-2 ]'::ruvector::text, ruvector_dims('[1,2,3]'), "
        "ARRAY[1.5,2]::real[]::ruvector::text, ('[1,2]'::ruvector)::real[], "
        "'[0]'::ruvector = '[-0]'::ruvector, '[1,2]'::ruvector = '[1,3]'::ruvector").fetchone()
    assert row == ("[1,2.5,-0.03]", 3, "[1.5,2]", [1.0, 2.0], True, False)
    # binary round trip through COPY
    with conn.cursor() as cur:
        cur.execute("CREATE TEMP TABLE v (x ruvector)")
        with cur.copy("COPY v FROM STDIN") as copy:
            copy.write_row(["[4,5,6]"])
        with cur.copy("COPY v TO STDOUT (FORMAT binary)") as copy:
            data = b"".join(bytes(b) for b in copy)
        cur.execute("TRUNCATE v")
        with cur.copy("COPY v FROM STDIN (FORMAT binary)") as copy:
            copy.write(data)
        assert cur.execute("SELECT x::text FROM v").fetchall() == [("[4,5,6]",)]


@pytest.mark.parametrize(
    ("literal", "sqlstate"),
    [
        ("'[]'", "22000"),
        ("'1,2'", "22P02"),
        ("'[1,2'", "22P02"),
        ("'[1,,2]'", "22P02"),
        ("'[1,2] x'", "22P02"),
        ("'[NaN]'", "22000"),
        ("'[Infinity]'", "22000"),
        ("'[1e40]'", "22003"),
        ("ARRAY[[1,2],[3,4]]::real[]", "22023"),
        ("ARRAY[1,NULL]::real[]", "22004"),
    ],
)
def test_ruvector_bad_input(conn: Any, literal: str, sqlstate: str) -> None:
    with pytest.raises(psycopg.Error) as err:
        conn.execute(f"SELECT {literal}::ruvector")
    assert err.value.sqlstate == sqlstate, str(err.value)


def test_engine_runs_as_server_user_with_disk_cache(conn: Any, server: Server) -> None:
    info = json.loads(json.dumps(conn.execute("SELECT ruvector_dag_engine_info()").fetchone()[0]))
    assert info["numba_version"] and info["numpy_version"]
    import os

    # outside the data directory, so that pg_basebackup does not copy it (issue 16)
    assert not Path(info["numba_cache_dir"]).is_relative_to(server.pgdata)
    assert Path(info["numba_cache_dir"]).name in ("ruvector_dag", f"ruvector_dag_cache-{info['uid']}")

    if os.geteuid() == 0:
        assert info["uid"] != 0  # the server never runs as root
    # a kernel call populates the on-disk cache
    conn.execute("SELECT ruvector_attention_topological('{1,0}', '{{1,0},{0,1}}')")
    assert any(Path(info["numba_cache_dir"]).rglob("*.nbi"))


def test_not_preloaded_refuses_clearly(tmp_path: Path, server: Server) -> None:
    srv = Server(tmp_path / "nopreload", pg_version=server.pg_version,
                 settings={"shared_preload_libraries": ""}, build=False)
    srv.start(create_extension=False)
    try:
        with srv.connect() as c, pytest.raises(psycopg.Error) as err:
            c.execute("CREATE EXTENSION ruvector_dag")
        assert err.value.sqlstate == "55000"
        assert "shared_preload_libraries" in str(err.value)
    finally:
        srv.stop()


def test_server_has_exactly_the_shipped_scripts(server: Server) -> None:
    """CREATE EXTENSION takes the path we ship (one base script and deltas), none left from older builds."""
    sharedir = Path(server.execute("SELECT setting FROM pg_config WHERE name = 'SHAREDIR'")[0][0])
    installed = {p.name for p in (sharedir / "extension").glob("ruvector_dag--*.sql")}
    assert installed == {p.name for p in buildext.PGEXT_DIR.glob("ruvector_dag--*.sql")}


def test_extension_survives_restart(server: Server) -> None:
    server.restart()
    assert server.execute("SELECT e.extversion = a.default_version FROM pg_extension e "
                          "JOIN pg_available_extensions a ON a.name = e.extname "
                          "WHERE e.extname = 'ruvector_dag'") == [(True,)]
    assert server.execute("SHOW shared_preload_libraries") == [("ruvector_dag",)]


def test_worker_starts_the_engine_and_warms_the_kernel_cache(server: Server) -> None:
    import time

    deadline = time.monotonic() + 120
    while "ruvector_dag worker: engine ready" not in server.log_tail(400) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert "ruvector_dag worker: engine ready" in server.log_tail(400)
    assert not (server.pgdata / "ruvector_dag_cache").exists()
    line = next(x for x in server.log_tail(400).splitlines() if "ruvector_dag worker: engine ready" in x)
    cache = Path(line.split("(cache ", 1)[1].split(" ", 1)[0])
    assert len(list(cache.rglob("*.nbi"))) >= 8  # one index per compiled kernel at least
    assert server.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'ruvector_dag worker'"
                          ) == [(1,)]


def test_immutable_functions_are_parallel_safe(conn: Any) -> None:
    """PostgreSQL's opr_sanity rule: an IMMUTABLE function is PARALLEL SAFE (issue 17:
    ruvector_dag_record_layout was not)."""
    rows = conn.execute(
        "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid "
        "AND d.classid = 'pg_proc'::regclass AND d.deptype = 'e' "
        "JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'ruvector_dag' "
        "WHERE p.provolatile = 'i' AND p.proparallel <> 's'").fetchall()
    assert rows == []
