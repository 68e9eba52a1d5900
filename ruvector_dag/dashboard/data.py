"""What the dashboard shows, read through the extension's SQL surface on the user's own connection.

A :class:`Reader` wraps a psycopg connection opened with the DSN the
dashboard was started with, so PostgreSQL's privileges decide what each role
sees: the enrolled tables it may read about, the steered texts
pg_stat_statements would show it (row security on ``ruvector_dag``'s
tables).  It runs the extension's views and functions, names qualified with
the extension's schema (a role's ``search_path`` never redirects them), and
EXPLAIN of the query a person asked to see.

The session is read only (``default_transaction_read_only``) with a statement
timeout.  The only writes are :meth:`Reader.pin`, :meth:`Reader.unpin` and
:meth:`Reader.set_learning_mode`, which call the extension's own functions or
ALTER SYSTEM; the server refuses them unless the role may.

:class:`Sampler` turns the extension's counters into series over time
(capture rates, the learning curve, the worker's CPU), sampled by the
dashboard's process while it runs.
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from ..definitions.errors import InvalidParameter
from ..definitions.settings import LEARNING_MODES
from ..engine.explain import explain_preorder

#: Statement timeout of a dashboard read (ms): a page never holds a backend long.
READ_TIMEOUT_MS = 5000
#: The background worker's name in pg_stat_activity.backend_type (pgext/src/worker.c).
WORKER_BACKEND_TYPE = "ruvector_dag worker"


class DashboardError(Exception):
    """A condition the dashboard reports to its user as it is (not a server refusal)."""


def _rows(cur: Any) -> list[dict[str, Any]]:
    names = [d.name for d in cur.description] if cur.description else []
    return [dict(zip(names, r)) for r in cur.fetchall()]


# --------------------------------------------------------------------------
# Plans: EXPLAIN's tree in the order MinCut numbers its nodes
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class PlanNode:
    """One operator of an EXPLAIN (FORMAT JSON) plan, numbered in pre-order (MinCut's node ids)."""

    node_id: int
    parent_id: int
    operator: str
    relation: str | None
    plan_rows: float
    actual_rows: float | None  # per loop, as EXPLAIN ANALYZE reports; None when not measured
    loops: float | None

    @property
    def misestimate(self) -> float | None:
        """How many times the estimate was off (>= 1, either way); None when not measured."""
        if self.actual_rows is None:
            return None
        est, act = max(self.plan_rows, 1.0), max(self.actual_rows, 1.0)
        return max(est / act, act / est)


def explain_nodes(plan_json: Any) -> list[PlanNode]:
    """The operators of EXPLAIN (FORMAT JSON) output, in pre-order: the order in which
    ``ruvector_dag._mincut_of_plan`` numbers them (children in EXPLAIN's order)."""
    try:
        rows = explain_preorder(plan_json)
    except InvalidParameter as exc:
        raise DashboardError(str(exc)) from exc
    out: list[PlanNode] = []
    for node, parent in rows:
        measured = "Actual Rows" in node
        relation = node.get("Relation Name") or node.get("Index Name") or node.get("CTE Name")
        out.append(PlanNode(len(out), parent, str(node.get("Node Type", "?")),
                            str(relation) if relation else None, float(node.get("Plan Rows", 0) or 0),
                            float(node["Actual Rows"]) if measured else None,
                            float(node.get("Actual Loops", 0) or 0) if measured else None))
    return out


@dataclass(frozen=True)
class PlanView:
    """A plan drawn by the dashboard: its operators, their MinCut criticality and bottleneck flags."""

    arm: str
    nodes: list[PlanNode]
    criticality: list[float]
    bottleneck: list[bool]
    measured: bool
    total_ms: float | None


_PARAMETER = re.compile(r"\$\d+")


def has_parameters(query: str) -> bool:
    """True if the text holds $n placeholders (a normalized steered text): only a generic plan fits."""
    return bool(_PARAMETER.search(query))


def parse_arm_settings(text: str) -> list[tuple[str, str]]:
    """``ruvector_dag_steering_arms().settings`` ("a = x, b = y") as (name, value) pairs."""
    pairs = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        if not sep:
            raise DashboardError(f"unexpected arm setting: {part!r}")
        pairs.append((name.strip(), value.strip()))
    return pairs


# --------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------

class Reader:
    """The extension's SQL surface, as the connection's role sees it.

    Parameters
    ----------
    conn:
        A psycopg connection in autocommit mode, opened with the role's own
        credentials.  The reader makes its session read only and bounded.
    """

    def __init__(self, conn: Any) -> None:
        from psycopg import sql

        self.conn = conn
        self._sql = sql
        conn.execute(f"SET statement_timeout = {int(READ_TIMEOUT_MS)}")
        conn.execute("SET default_transaction_read_only = on")
        row = conn.execute(
            "SELECT n.nspname, e.extversion FROM pg_catalog.pg_extension e "
            "JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) e.extnamespace "
            "WHERE e.extname OPERATOR(pg_catalog.=) 'ruvector_dag'").fetchone()
        if row is None:
            raise DashboardError("the extension ruvector_dag is not installed in this database "
                                 "(CREATE EXTENSION ruvector_dag)")
        self.schema, self.version = str(row[0]), str(row[1])
        self.server_version = int(conn.execute("SHOW server_version_num").fetchone()[0])
        role = conn.execute(
            "SELECT r.rolname, r.rolsuper, pg_catalog.current_database() FROM pg_catalog.pg_roles r "
            "WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER").fetchone()
        self.role, self.is_superuser, self.database = str(role[0]), bool(role[1]), str(role[2])

    # -- helpers -------------------------------------------------------------

    def _fn(self, name: str) -> Any:
        """A function of the extension's schema (where the spec's ruvector_dag_* functions live)."""
        return self._sql.Identifier(self.schema, name)

    def _query(self, template: str, *names: str, params: Any = None) -> list[dict[str, Any]]:
        stmt = self._sql.SQL(template).format(*(self._fn(n) for n in names))
        return _rows(self.conn.execute(stmt, params))

    @contextmanager
    def _writable(self) -> Iterator[None]:
        """Lift the session's read-only default for one of the three writes the dashboard offers."""
        self.conn.execute("SET default_transaction_read_only = off")
        try:
            yield
        finally:
            self.conn.execute("SET default_transaction_read_only = on")

    # -- overview ------------------------------------------------------------

    def settings(self) -> dict[str, str]:
        """The extension's settings that the overview shows."""
        rows = _rows(self.conn.execute(
            "SELECT name, setting FROM pg_catalog.pg_settings WHERE name OPERATOR(pg_catalog.=) ANY(%s)",
            (["ruvector.dag_learning_mode", "ruvector.dag_worker_cpu_percent", "ruvector.neural_dag_enabled",
              "ruvector.dag_steering_trials", "ruvector.dag_transfer", "ruvector.dag_capture_sample_rate"],)))
        return {r["name"]: r["setting"] for r in rows}

    def capture(self) -> list[dict[str, Any]]:
        """Per enrolled table the role may read about: executions, captured, dropped, rates."""
        return _rows(self.conn.execute(
            "SELECT table_name::pg_catalog.text AS table_name, executions, captured, sampled_out, dropped, "
            "buffered, processed, learned, capture_rate, drop_rate FROM ruvector_dag.capture ORDER BY 1"))

    def worker(self) -> dict[str, Any] | None:
        """The background worker's row of pg_stat_activity (pid, state, since), if it is connected."""
        rows = _rows(self.conn.execute(
            "SELECT pid, state, backend_start, wait_event FROM pg_catalog.pg_stat_activity "
            "WHERE backend_type OPERATOR(pg_catalog.=) %s", (WORKER_BACKEND_TYPE,)))
        return rows[0] if rows else None

    # -- per table -----------------------------------------------------------

    def learning_stats(self, table: str) -> dict[str, Any]:
        rows = self._query("SELECT {}(%s) AS s", "ruvector_dag_learning_stats", params=(table,))
        return dict(rows[0]["s"] or {}) if rows else {}

    def health(self, table: str) -> dict[str, Any]:
        rows = self._query("SELECT {}(%s) AS h", "ruvector_dag_health_report", params=(table,))
        return dict(rows[0]["h"] or {}) if rows else {}

    def patterns(self, table: str) -> list[dict[str, Any]]:
        return self._query("SELECT pattern_id, attention_type, confidence, sample_count, "
                           "avg_latency_us / 1000.0 AS avg_latency_ms, avg_quality "
                           "FROM {}(%s) ORDER BY sample_count DESC, pattern_id", "ruvector_dag_patterns",
                           params=(table,))

    # -- steering ------------------------------------------------------------

    def steering(self) -> list[dict[str, Any]]:
        """One row per (steered query, arm) the role may read: text, state, figures, where it came from."""
        return _rows(self.conn.execute(
            "SELECT table_name::pg_catalog.text AS table_name, query_id, query, arm, state, executions, "
            "mean_latency_ms, p95_latency_ms, speedup, source, pattern_id, origin, transfer "
            "FROM ruvector_dag.steering ORDER BY query_id, arm"))

    def series(self, query_id: int) -> list[dict[str, Any]]:
        """A steered query's last executions, oldest first: before/after, trials marked."""
        return self._query("SELECT executed_at, arm, latency_ms, phase, trial FROM {}(%s)",
                           "ruvector_dag_steering_series", params=(query_id,))

    def steered_texts(self) -> dict[str, str]:
        """The role that ran each steered text the role may read (text -> role name): the plan page plans
        such a text as that role, never with the dashboard's own rights (it may be another role's code)."""
        rows = _rows(self.conn.execute(
            "SELECT q.query, pg_catalog.pg_get_userbyid(q.userid) AS role FROM ruvector_dag.steered_queries q "
            "WHERE q.query IS NOT NULL"))
        return {r["query"]: r["role"] for r in rows}

    def arms(self) -> dict[str, list[tuple[str, str]]]:
        """The steering arms and their planner settings, as the server defines them."""
        rows = self._query("SELECT arm, settings FROM {}() ORDER BY arm_id", "ruvector_dag_steering_arms")
        return {r["arm"]: parse_arm_settings(r["settings"] or "") for r in rows}

    # -- plans ---------------------------------------------------------------

    def plan(self, query: str, arm: str = "default", analyze: bool = False, as_role: str | None = None) -> PlanView:
        """The plan of a read-only query under an arm's settings, with each operator's MinCut criticality.

        The server checks that the text is one read-only statement (as
        ``ruvector_dag_mincut_plan`` does), plans it as this role, on its
        search_path, with steering off in this transaction (so "default" is
        PostgreSQL's own plan and an arm's plan is that arm's, whatever is in
        force), then MinCut scores the plan (``ruvector_dag._mincut_of_plan``).
        ``analyze`` runs the query (EXPLAIN ANALYZE, read-only transaction,
        statement timeout) to measure each operator's rows; a text with $n
        placeholders gets PostgreSQL's generic plan (16 and later), estimates only.

        ``as_role`` plans as that role (SET LOCAL ROLE; the DSN's role must be
        a member): a text another role ran is that role's code, and planning
        can call its functions (an IMMUTABLE one is evaluated by the planner).
        Such a text is never run (``analyze`` is refused).  Use a fresh
        connection per call: a text can change its session's settings.
        """
        if as_role is not None and analyze:
            raise DashboardError("a text another role ran is only planned, never run: edit it to run your own")
        if not self.mincut_enabled():
            raise DashboardError("MinCut is off on this server (ruvector.dag_mincut_enabled)")
        settings = self.arms()
        if arm not in settings:
            raise DashboardError(f"unknown arm {arm!r}; the server's arms: {', '.join(settings)}")
        generic = has_parameters(query)
        if generic and self.server_version < 160000:
            raise DashboardError("a text with $n placeholders needs EXPLAIN (GENERIC_PLAN): PostgreSQL 16 or later")
        options = ["FORMAT JSON", "COSTS ON"]
        if generic:
            options.append("GENERIC_PLAN")
        elif analyze:
            options += ["ANALYZE", "TIMING OFF"]
        with self.conn.transaction():
            self.conn.execute("SET TRANSACTION READ ONLY")
            if as_role is not None:
                self.conn.execute(self._sql.SQL("SET LOCAL ROLE {}").format(self._sql.Identifier(as_role)))
            self.conn.execute("SELECT ruvector_dag._check_read_only_query(%s)", (query,))
            self.conn.execute("SET LOCAL ruvector.neural_dag_enabled = off")
            for name, value in settings[arm]:
                self.conn.execute("SELECT pg_catalog.set_config(%s, %s, true)", (name, value))
            # The text was checked above to be a single read-only statement; EXPLAIN takes no parameters.
            explain = self._sql.SQL("EXPLAIN ({}) ").format(self._sql.SQL(", ".join(options)))
            doc = self.conn.execute(explain + self._sql.SQL(query)).fetchone()[0]  # type: ignore[arg-type]
            cut = self.conn.execute(
                "SELECT ruvector_dag._mincut_of_plan(%s::pg_catalog.jsonb, "
                "pg_catalog.current_setting('ruvector.dag_mincut_threshold')::real)",
                (json.dumps(doc),)).fetchone()[0]
        nodes = explain_nodes(doc)
        scored = {int(n["node_id"]): n for n in cut["nodes"]}
        if len(scored) != len(nodes):
            raise DashboardError("the plan and its MinCut disagree on the number of operators")
        top = doc[0] if isinstance(doc, list) else doc
        total = top.get("Execution Time")
        return PlanView(arm, nodes, [float(scored[n.node_id]["criticality"]) for n in nodes],
                        [bool(scored[n.node_id]["is_bottleneck"]) for n in nodes],
                        measured=any(n.actual_rows is not None for n in nodes),
                        total_ms=float(total) if total is not None else None)

    def mincut_enabled(self) -> bool:
        row = self.conn.execute("SELECT pg_catalog.current_setting('ruvector.dag_mincut_enabled')").fetchone()
        return str(row[0]) == "on"

    # -- the three writes ----------------------------------------------------

    def pin(self, query_id: int, arm: str) -> None:
        with self._writable():
            self._query("SELECT {}(%s, %s)", "ruvector_dag_pin_arm", params=(query_id, arm))

    def unpin(self, query_id: int) -> bool:
        with self._writable():
            rows = self._query("SELECT {}(%s) AS unpinned", "ruvector_dag_unpin", params=(query_id,))
        return bool(rows[0]["unpinned"])

    def set_learning_mode(self, mode: str) -> None:
        """ALTER SYSTEM SET ruvector.dag_learning_mode, then reload (superusers, or a role granted
        ALTER SYSTEM on the parameter); ``frozen`` keeps serving what was learned and learns nothing."""
        if mode not in LEARNING_MODES:
            raise DashboardError(f"unknown learning mode {mode!r}")
        with self._writable():
            self.conn.execute(self._sql.SQL("ALTER SYSTEM SET ruvector.dag_learning_mode = {}").format(
                self._sql.Literal(mode)))
            self.conn.execute("SELECT pg_catalog.pg_reload_conf()")


# --------------------------------------------------------------------------
# Series over time, sampled by the dashboard's process
# --------------------------------------------------------------------------

def process_cpu_seconds(pid: int) -> float | None:
    """CPU seconds (user + system) a process on this host has used, or None if it cannot be read
    (the server runs elsewhere, or /proc is not there)."""
    try:
        with open(f"/proc/{int(pid)}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    return (int(fields[11]) + int(fields[12])) / ticks


@dataclass
class TableSample:
    at: float
    executions: int
    captured: int
    dropped: int
    processed: int
    cycles: int
    error_sum: float  # prediction error (mean |log error|) times the predictions it averages
    ewc_tasks: int


@dataclass
class Sampler:
    """Counters sampled every ``interval_s`` seconds while the dashboard runs, kept for ``keep`` samples.

    The extension keeps counters, not history; differences of consecutive
    samples give the rates over time and the prediction error of each
    learning cycle (the learning curve), from the moment the dashboard started.
    """

    interval_s: float = 5.0
    keep: int = 720
    tables: dict[str, deque[TableSample]] = field(default_factory=dict)
    cpu: deque[tuple[float, float]] = field(default_factory=deque)  # (time, CPU seconds of the worker)
    cpu_pid: int | None = None
    last_error: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if self.interval_s <= 0 or self.keep < 2:
            raise ValueError("interval_s must be > 0 and keep >= 2")

    def sample(self, reader: Reader, now: float | None = None) -> None:
        now = time.time() if now is None else now
        rows = reader.capture()
        samples = []
        for r in rows:
            stats = reader.learning_stats(r["table_name"])
            processed = int(stats.get("queries_processed") or 0)
            samples.append((r["table_name"], TableSample(
                now, int(r["executions"] or 0), int(r["captured"] or 0), int(r["dropped"] or 0), processed,
                int(stats.get("background_cycles") or 0), float(stats.get("prediction_error") or 0.0) * processed,
                int(stats.get("ewc_tasks") or 0))))
        worker = reader.worker()
        cpu = process_cpu_seconds(worker["pid"]) if worker else None
        with self._lock:
            for name, s in samples:
                self.tables.setdefault(name, deque(maxlen=self.keep)).append(s)
            if worker and cpu is not None:
                if worker["pid"] != self.cpu_pid:
                    self.cpu = deque(maxlen=self.keep)
                    self.cpu_pid = worker["pid"]
                self.cpu.append((now, cpu))

    def rates(self, table: str) -> list[dict[str, float]]:
        """Executions, captured and dropped per second between consecutive samples."""
        with self._lock:
            s = list(self.tables.get(table, ()))
        out = []
        for a, b in pairwise(s):
            dt = b.at - a.at
            if dt <= 0 or b.executions < a.executions:  # a reset (ruvector_dag_capture_reset) starts again
                continue
            out.append({"at": b.at, "executions": (b.executions - a.executions) / dt,
                        "captured": (b.captured - a.captured) / dt, "dropped": (b.dropped - a.dropped) / dt})
        return out

    def learning_curve(self, table: str) -> list[dict[str, float]]:
        """Per learning cycle seen: the mean |log latency error| of the predictions made since the previous
        one (the counters' error sum and count, differenced), and the EWC tasks after it."""
        with self._lock:
            s = list(self.tables.get(table, ()))
        out = []
        for a, b in pairwise(s):
            n = b.processed - a.processed
            if b.cycles > a.cycles and n > 0:
                out.append({"cycle": b.cycles, "at": b.at, "error": (b.error_sum - a.error_sum) / n,
                            "predictions": n, "ewc_tasks": b.ewc_tasks})
        return out

    def worker_cpu_percent(self) -> list[dict[str, float]]:
        """The worker's CPU use between samples, in percent of one CPU (its budget's unit)."""
        with self._lock:
            c = list(self.cpu)
        return [{"at": b[0], "percent": 100.0 * (b[1] - a[1]) / (b[0] - a[0])}
                for a, b in pairwise(c) if b[0] > a[0] and b[1] >= a[1]]


def finite(x: Any) -> float | None:
    """A float for a chart or a table cell (None for NULL, NaN or infinity)."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None
