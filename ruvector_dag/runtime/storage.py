"""Where the engine's learning is kept: the SQL the worker runs.

Every statement goes through an ``execute(sql, params) -> rows`` callable:
in the worker that is ``_ruvector_pg.execute`` (SPI, one subtransaction
per statement, parameters and results as text).  The worker's session runs
with ``search_path = pg_catalog, pg_temp``, and every table and function
here is schema-qualified besides, so that no object a user creates can
stand in for one of ours (tests/unit/test_worker_sql.py checks it).
Operators are left bare: their operands are of built-in types, pg_catalog
is searched first, and pg_temp is never searched for operators.

Nothing here runs in a user's transaction: the worker writes in its own,
short transactions with a lock timeout, so a user's lock on our tables
delays learning, never the user (the lesson of AQO, which moved its writes
out of user transactions).

Tables (pgext/ruvector_dag--*.sql):
  ruvector_dag.patterns            one row per live pattern, upserted per cycle
  ruvector_dag.trajectory_history  a bounded sample of learned trajectories
  ruvector_dag.engine_state        the learner's full state, one row per table
  ruvector_dag.pattern_nodes       each pattern's exemplar plan with bottleneck criticalities
  ruvector_dag.steering_evidence   per (query, steering arm): executions, mean and p95 latency, state, speed-up
  ruvector_dag.steered_queries     per steered query: its normalized text and the role that ran it (0.6.0)
  ruvector_dag.steering_executions per steered query: its recent executions, the before/after series (0.6.0)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from ..definitions import layout
from ..definitions.arms import ARMS
from ..engine.learner import HistoryRow, TableLearner
from ..engine.mincut import plan_cut, self_costs

Execute = Callable[[str, tuple[str | None, ...]], list[tuple[str | None, ...]]]

#: Most trajectory_history rows kept per table (oldest deleted first).
HISTORY_MAX_ROWS = 10_000


def _vector(values: Any) -> list[float]:
    """A vector as a JSON array; SQL reads it as real[] and assigns it to a ruvector column."""
    return [float(v) for v in values]


def extension_installed(execute: Execute) -> bool:
    rows = execute("SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'ruvector_dag'", ())
    return bool(rows)


def enrolled_tables(execute: Execute) -> dict[int, tuple[str, dict[str, Any]]]:
    """relid -> (table_name, merged config) of every committed enrollment."""
    rows = execute("SELECT e.relid::text, e.table_name, e.config::text FROM ruvector_dag.enrolled_tables e "
                   "JOIN pg_catalog.pg_class c ON c.oid = e.relid", ())
    return {int(r[0] or 0): (r[1] or "", json.loads(r[2] or "{}")) for r in rows}


def load_state(execute: Execute, relid: int) -> bytes | None:
    rows = execute("SELECT state FROM ruvector_dag.engine_state WHERE relid = $1::oid", (str(relid),))
    if not rows or rows[0][0] is None:
        return None
    text = rows[0][0]
    return bytes.fromhex(text[2:]) if text.startswith("\\x") else text.encode()


def save_state(execute: Execute, learner: TableLearner) -> None:
    execute("INSERT INTO ruvector_dag.engine_state (relid, state, saved_at) "
            "VALUES ($1::oid, $2::bytea, pg_catalog.now()) "
            "ON CONFLICT (relid) DO UPDATE SET state = EXCLUDED.state, saved_at = EXCLUDED.saved_at",
            (str(learner.relid), "\\x" + learner.state_bytes().hex()))


def save_patterns(execute: Execute, learner: TableLearner, table_name: str) -> None:
    """Make ruvector_dag.patterns hold exactly the bank's live patterns."""
    steering_by_pattern = pattern_steering(learner)
    rows = []
    for p in learner.bank.patterns.values():
        mechanism = learner.best_mechanism(p)
        arm = learner.mechanisms.index(mechanism)
        rows.append({
            "pattern_id": p.id, "centroid": _vector(p.centroid), "attention_type": mechanism,
            "optimal_params": {"attention_type": mechanism,
                               "reward_mean": round(float(p.bandit.means[arm]), 6),
                               "trials": round(float(p.bandit.trials[arm]), 3),
                               "hit_radius": round(p.hit_radius2 ** 0.5, 6),
                               "steering": steering_by_pattern.get(p.id, {})},
            "confidence": p.confidence, "sample_count": p.sample_count,
            "avg_latency_us": p.avg_latency_us, "avg_quality": p.avg_quality,
        })
    relid = str(learner.relid)
    ids = "{" + ",".join(str(p.id) for p in learner.bank.patterns.values()) + "}"
    execute("DELETE FROM ruvector_dag.patterns WHERE relid = $1::oid AND pattern_id <> ALL ($2::bigint[])",
            (relid, ids))
    if rows:
        execute(
            "INSERT INTO ruvector_dag.patterns AS p (relid, table_name, pattern_id, centroid, attention_type, "
            "optimal_params, confidence, sample_count, avg_latency_us, avg_quality) "
            "SELECT $1::oid, $2, r.pattern_id, r.centroid, r.attention_type, r.optimal_params, "
            "r.confidence, r.sample_count, r.avg_latency_us, r.avg_quality "
            "FROM pg_catalog.jsonb_to_recordset($3::jsonb) AS r(pattern_id bigint, centroid real[], "
            "attention_type text, optimal_params jsonb, confidence float8, sample_count int, avg_latency_us float8, "
            "avg_quality float8) "
            "ON CONFLICT (table_name, pattern_id) DO UPDATE SET relid = EXCLUDED.relid, centroid = EXCLUDED.centroid, "
            "attention_type = EXCLUDED.attention_type, optimal_params = EXCLUDED.optimal_params, "
            "confidence = EXCLUDED.confidence, sample_count = EXCLUDED.sample_count, "
            "avg_latency_us = EXCLUDED.avg_latency_us, avg_quality = EXCLUDED.avg_quality, "
            "updated_at = pg_catalog.now()",
            (relid, table_name, json.dumps(rows)))


def pattern_steering(learner: TableLearner) -> dict[int, dict[str, int]]:
    """Per pattern: how many of its recurring queries are planned under each arm (the default included)."""
    out: dict[int, dict[str, int]] = {}
    for q in learner.steering.queries.values():
        pattern_id = learner.pattern_of(q.embedding) if q.embedding is not None else None
        if pattern_id is not None:
            arms = out.setdefault(pattern_id, {})
            name = ARMS[q.arm].name
            arms[name] = arms.get(name, 0) + 1
    return out


def has_readable_steering(execute: Execute) -> bool:
    """Whether the installed SQL has the readable steering tables (0.6.0; the library may be newer than its SQL)."""
    return bool(execute("SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
                        "ON n.oid = c.relnamespace WHERE n.nspname = 'ruvector_dag' "
                        "AND c.relname = 'steering_executions'", ()))


def has_transfer_evidence(execute: Execute) -> bool:
    """Whether the installed SQL keeps where each arm came from (0.7.0: steering_evidence.origin)."""
    return bool(execute("SELECT 1 FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid "
                        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'ruvector_dag' "
                        "AND c.relname = 'steering_evidence' AND a.attname = 'origin' AND NOT a.attisdropped", ()))


#: The columns of ruvector_dag.steering_evidence the worker writes (name, type in the evidence rows'
#: JSON), by the SQL version that added them: the library may be newer than its SQL.
EVIDENCE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("query_id", "bigint"), ("arm", "text"), ("executions", "int"), ("mean_latency_us", "float8"),
    ("sd_log_latency", "float8"), ("banned", "bool"), ("chosen", "bool"), ("pattern_id", "bigint"))
READABLE_EVIDENCE_COLUMNS: tuple[tuple[str, str], ...] = (  # 0.6.0
    ("p95_latency_us", "float8"), ("speedup", "float8"), ("state", "text"))
TRANSFER_EVIDENCE_COLUMNS: tuple[tuple[str, str], ...] = (("origin", "text"), ("transfer", "jsonb"))  # 0.7.0


def save_steering_evidence(execute: Execute, learner: TableLearner) -> None:
    """Make the steering tables hold what the learner knows now: the evidence per (query, arm), and
    (0.6.0) the texts and series of its steered queries."""
    relid = str(learner.relid)
    readable = has_readable_steering(execute)
    execute("DELETE FROM ruvector_dag.steering_evidence WHERE relid = $1::oid", (relid,))
    rows = learner.steering.evidence(learner.pattern_of)
    if rows:
        columns = EVIDENCE_COLUMNS
        if readable:
            columns += READABLE_EVIDENCE_COLUMNS + (TRANSFER_EVIDENCE_COLUMNS if has_transfer_evidence(execute) else ())
        names = ", ".join(name for name, _ in columns)
        execute(f"INSERT INTO ruvector_dag.steering_evidence (relid, {names}) "
                f"SELECT $1::oid, {', '.join(f'r.{name}' for name, _ in columns)} "
                f"FROM pg_catalog.jsonb_to_recordset($2::jsonb) AS "
                f"r({', '.join(f'{name} {sqltype}' for name, sqltype in columns)})",
                (relid, json.dumps(rows)))
    if readable:
        save_steered_queries(execute, learner)


def save_steered_queries(execute: Execute, learner: TableLearner) -> None:
    """The normalized texts of the learner's steered queries, and their series of executions."""
    relid = str(learner.relid)
    execute("DELETE FROM ruvector_dag.steered_queries WHERE relid = $1::oid", (relid,))
    execute("DELETE FROM ruvector_dag.steering_executions WHERE relid = $1::oid", (relid,))
    queries = learner.steering.steered_queries()
    if queries:
        execute(
            "INSERT INTO ruvector_dag.steered_queries (relid, query_id, userid, query) "
            "SELECT $1::oid, r.query_id, r.userid, r.query "
            "FROM pg_catalog.jsonb_to_recordset($2::jsonb) AS r(query_id bigint, userid oid, query text)",
            (relid, json.dumps(queries)))
    executions = learner.steering.executions()
    if executions:
        execute(
            "INSERT INTO ruvector_dag.steering_executions (relid, query_id, executed_at, arm, latency_us, trial) "
            "SELECT $1::oid, r.query_id, pg_catalog.to_timestamp(r.executed_at_us::float8 / 1000000), r.arm, "
            "r.latency_us, r.trial "
            "FROM pg_catalog.jsonb_to_recordset($2::jsonb) AS r(query_id bigint, executed_at_us bigint, arm text, "
            "latency_us float8, trial bool)",
            (relid, json.dumps(executions)))


#: node_id of a pattern's operator = pattern_id * NODE_ID_STRIDE + its plan position.
NODE_ID_STRIDE = 1000


def pattern_node_rows(learner: TableLearner) -> list[dict[str, Any]]:
    """One row per operator of each pattern's exemplar plan, with its bottleneck criticality."""
    rows = []
    for p in learner.bank.patterns.values():
        if p.exemplar is None or len(p.exemplar) == 0:
            continue
        cut = plan_cut(p.exemplar)
        own = self_costs(p.exemplar, timing=cut.timing)
        for pos, node in enumerate(p.exemplar):
            rows.append({"pattern_id": p.id, "node_id": p.id * NODE_ID_STRIDE + pos, "plan_position": pos,
                         "parent_position": int(node["parent"]), "operator": layout.operator_name(int(node["op"])),
                         "self_cost": float(own[pos]), "criticality": float(cut.criticality[pos]),
                         "cut_weight": cut.weight})
    return rows


def save_pattern_nodes(execute: Execute, learner: TableLearner) -> None:
    relid = str(learner.relid)
    execute("DELETE FROM ruvector_dag.pattern_nodes WHERE relid = $1::oid", (relid,))
    rows = pattern_node_rows(learner)
    if rows:
        execute(
            "INSERT INTO ruvector_dag.pattern_nodes (relid, pattern_id, node_id, plan_position, parent_position, "
            "operator, self_cost, criticality, cut_weight) "
            "SELECT $1::oid, r.pattern_id, r.node_id, r.plan_position, r.parent_position, r.operator, r.self_cost, "
            "r.criticality, r.cut_weight "
            "FROM pg_catalog.jsonb_to_recordset($2::jsonb) AS r(pattern_id bigint, node_id bigint, plan_position int, "
            "parent_position int, operator text, self_cost float8, criticality float8, cut_weight float8)",
            (relid, json.dumps(rows)))


def save_history(execute: Execute, relid: int, table_name: str, history: Sequence[HistoryRow]) -> None:
    """Append a cycle's sample and keep at most HISTORY_MAX_ROWS per table."""
    if not history:
        return
    rows = [{"trajectory_id": h.trajectory_id, "plan_embedding": _vector(h.embedding),
             "attention_type": h.mechanism, "latency_us": round(h.latency_us), "quality": h.quality,
             "query_id": h.query_id if h.query_id < 2**63 else h.query_id - 2**64, "pattern_id": h.pattern_id,
             "max_criticality": h.max_criticality}
            for h in history]
    execute(
        "INSERT INTO ruvector_dag.trajectory_history (relid, table_name, trajectory_id, plan_embedding, "
        "attention_type, latency_us, quality, query_id, pattern_id, max_criticality) "
        "SELECT $1::oid, $2, r.trajectory_id, r.plan_embedding, r.attention_type, r.latency_us, "
        "r.quality, r.query_id, r.pattern_id, r.max_criticality "
        "FROM pg_catalog.jsonb_to_recordset($3::jsonb) AS r(trajectory_id bigint, plan_embedding real[], "
        "attention_type text, latency_us bigint, quality float8, query_id bigint, pattern_id bigint, "
        "max_criticality float8)",
        (str(relid), table_name, json.dumps(rows)))
    execute("DELETE FROM ruvector_dag.trajectory_history WHERE relid = $1::oid AND id <= "
            "(SELECT id FROM ruvector_dag.trajectory_history WHERE relid = $1::oid ORDER BY id DESC "
            "OFFSET $2::int LIMIT 1)", (str(relid), str(HISTORY_MAX_ROWS)))


# -- hot standbys and restores ------------------------------------------------


def in_recovery(execute: Execute) -> bool:
    """Whether the server is a standby (replaying WAL): then nothing may be written."""
    rows = execute("SELECT pg_catalog.pg_is_in_recovery()::text", ())
    return bool(rows) and rows[0][0] == "true"


def data_directory(execute: Execute) -> str:
    rows = execute("SELECT pg_catalog.current_setting('data_directory')", ())
    return (rows[0][0] or "") if rows else ""


def state_saved_at(execute: Execute) -> dict[int, str]:
    """relid -> when its learned state was saved (on a standby: by the primary, replayed)."""
    rows = execute("SELECT s.relid::text, s.saved_at::text FROM ruvector_dag.engine_state s", ())
    return {int(r[0] or 0): r[1] or "" for r in rows}


#: Enrollments restored from another cluster: their cluster_id is not this cluster's system identifier
#: (NULL: written before 0.5.0), their relid is not the table they name any more, and a table has the
#: name now (every OID differs after a restore).  A relid that still names a relation of that name is
#: the same table; a table renamed since its enrollment keeps it (its old name names nothing, or a table
#: enrolled already).  An enrollment of *this* cluster is never moved to another table that takes its
#: name: its table is gone (dropped with the event trigger bypassed), the table that took the name is
#: somebody else's (tests/integration/test_privileges.py).
RESTORED_SQL = (
    "SELECT e.relid::text, e.table_name, r.oid::text, r.owner::text FROM ruvector_dag.enrolled_tables e "
    "CROSS JOIN LATERAL (SELECT c.oid, c.relowner AS owner FROM pg_catalog.pg_class c "
    "                     WHERE c.oid = pg_catalog.to_regclass(e.table_name)) r "
    "WHERE r.oid <> e.relid "
    "AND e.cluster_id IS DISTINCT FROM (SELECT s.system_identifier FROM pg_catalog.pg_control_system() s) "
    "AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "                 WHERE c.oid = e.relid "
    "                   AND pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname) "
    "                       = e.table_name) "
    "AND NOT EXISTS (SELECT 1 FROM ruvector_dag.enrolled_tables o WHERE o.relid = r.oid)"
)

#: Enrollments of this cluster, stamped with its system identifier (those not restored from elsewhere:
#: their relid is a relation of this database).
STAMP_SQL = (
    "UPDATE ruvector_dag.enrolled_tables e "
    "SET cluster_id = (SELECT s.system_identifier FROM pg_catalog.pg_control_system() s) "
    "WHERE e.cluster_id IS NULL AND EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = e.relid)"
)

#: Moving the rows keyed by an enrolled table's relid ($1) to its new relid ($2).
REKEY_SQL = tuple(f"UPDATE ruvector_dag.{table} SET relid = $2::oid WHERE relid = $1::oid"
                  for table in ("patterns", "trajectory_history", "pattern_nodes", "steering_evidence",
                                "engine_state"))
#: ... and those of the readable steering tables (0.6.0).
REKEY_READABLE_SQL = (
    "UPDATE ruvector_dag.steered_queries SET relid = $2::oid WHERE relid = $1::oid",
    "UPDATE ruvector_dag.steering_executions SET relid = $2::oid WHERE relid = $1::oid",
)


def has_cluster_id(execute: Execute) -> bool:
    """Whether the installed SQL has enrolled_tables.cluster_id (0.5.0; the library may be newer than its SQL)."""
    return bool(execute("SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = "
                        "'ruvector_dag.enrolled_tables'::pg_catalog.regclass AND a.attname = 'cluster_id' "
                        "AND NOT a.attisdropped", ()))


def rekey_restored(execute: Execute) -> list[str]:
    """Re-key the enrollments of a restored dump to the tables' new OIDs; one report line per table.

    The enrollment row, its patterns, history, MinCut nodes, evidence and
    learned state move to the new relid, and the enrollment is credited to
    the table's owner (roles have new OIDs too).  Steering decisions are kept
    by query id, and query ids are computed from OIDs: the restored ones name
    the old cluster's statements, so they are dropped (and reported); the
    queries are learned again from their first executions here.
    """
    lines: list[str] = []
    if not has_cluster_id(execute):
        return lines  # before ALTER EXTENSION ... UPDATE to 0.5.0: restores are not recognised
    for old, name, new, owner in execute(RESTORED_SQL, ()):
        assert old is not None and new is not None
        execute("UPDATE ruvector_dag.enrolled_tables SET relid = $2::oid, enabled_by = $3::oid, "
                "cluster_id = (SELECT s.system_identifier FROM pg_catalog.pg_control_system() s) "
                "WHERE relid = $1::oid", (old, new, owner))
        for sql in REKEY_SQL + (REKEY_READABLE_SQL if has_readable_steering(execute) else ()):
            execute(sql, (old, new))
        dropped = 0
        saved = load_state(execute, int(new))
        if saved:
            learner = TableLearner.from_state_bytes(saved)
            dropped = len(learner.steering.decisions())
            learner.relid = int(new)
            learner.steering.queries.clear()
            save_state(execute, learner)
            save_steering_evidence(execute, learner)
        patterns = execute("SELECT pg_catalog.count(*)::text FROM ruvector_dag.patterns WHERE relid = $1::oid", (new,))
        lines.append(f"{name} was restored from another cluster (relation {old} is now {new}): its enrollment, "
                     f"{patterns[0][0]} pattern(s) and learned state follow it; {dropped} steering decision(s) "
                     "dropped, their query ids belong to the old cluster (the queries are learned again)")
    if has_cluster_id(execute):
        execute(STAMP_SQL, ())
    if lines:
        pins = execute("SELECT pg_catalog.count(*)::text FROM ruvector_dag.pinned_arms", ()) if execute(
            "SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'ruvector_dag' AND c.relname = 'pinned_arms'", ()) else [("0",)]
        if pins[0][0] != "0":
            lines.append(f"{pins[0][0]} pin(s) of ruvector_dag.pinned_arms were restored with query ids of the old "
                         "cluster: pin the queries again (pg_stat_statements shows their new query ids) and "
                         "unpin the old ids")
    return lines
