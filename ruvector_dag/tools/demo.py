"""``ruvector-dag demo``: the main job on the embedded server.

Starts the embedded PostgreSQL with ruvector_dag preloaded, creates a small
sample schema, enrolls it, runs a mixed workload with a progress bar, and
prints what the extension learned: capture counters, the patterns the
background worker extracted, learning statistics and the health report.
"""

from __future__ import annotations

import math
import random
from typing import Any

from tqdm import tqdm

SCHEMA = """
DROP TABLE IF EXISTS demo_orders, demo_customers;
CREATE TABLE demo_customers (id int PRIMARY KEY, region text, tier int);
CREATE TABLE demo_orders (id int PRIMARY KEY, customer_id int, amount numeric, day int);
INSERT INTO demo_customers SELECT g, 'region-' || (g % 8), g % 3 FROM generate_series(1, 2000) g;
INSERT INTO demo_orders SELECT g, 1 + (g * 7919) % 2000, (g % 113) * 2.5, g % 60
  FROM generate_series(1, 50000) g;
CREATE INDEX ON demo_orders (customer_id);
ANALYZE demo_customers, demo_orders;
"""

WORKLOAD = [
    ("point lookup", "SELECT * FROM demo_orders WHERE id = %s", lambda r: (r.randint(1, 50000),)),
    ("customer orders", "SELECT sum(amount) FROM demo_orders WHERE customer_id = %s",
     lambda r: (r.randint(1, 2000),)),
    ("regional revenue",
     "SELECT c.region, sum(o.amount) FROM demo_orders o JOIN demo_customers c ON c.id = o.customer_id "
     "WHERE o.day = %s GROUP BY c.region", lambda r: (r.randint(0, 59),)),
]


def _table(rows: list[tuple[Any, ...]], headers: list[str]) -> str:
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    sep = "  ".join("-" * w for w in widths)
    body = "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in cells)
    return f"{line}\n{sep}\n{body}"


def _workload(conn: Any, rng: random.Random, statements: int, desc: str) -> None:
    for _ in tqdm(range(statements), desc=desc, unit="stmt"):
        _, sql, params = rng.choice(WORKLOAD)
        conn.execute(sql, params(rng)).fetchall()


def run(server: Any, statements: int = 600, seed: int = 7) -> int:
    print(f"starting PostgreSQL {server.pg_version} with ruvector_dag in {server.pgdata} ...")
    server.start()
    rng = random.Random(seed)
    with server.connect() as conn:
        conn.execute(SCHEMA)
        conn.execute("SELECT ruvector_enable_neural_dag('demo_orders')")
        conn.execute("SELECT ruvector_dag_capture_reset()")

        # Two rounds: the first teaches the engine the workload's shapes, the
        # second shows them recognised (the pattern hit rate rises).
        for round_no in (1, 2):
            _workload(conn, rng, statements // 2, f"workload, round {round_no}")
            answer = conn.execute("SELECT ruvector_dag_learn('demo_orders')").fetchone()[0]
            stats = conn.execute("SELECT ruvector_dag_learning_stats('demo_orders')").fetchone()[0]
            print(f"learning cycle {round_no}: {answer.get('trajectories_processed', 0)} trajectories -> "
                  f"{answer.get('patterns_extracted', 0)} patterns in {answer.get('duration_ms', 0):.1f} ms; "
                  f"hit rate so far {stats['pattern_hit_rate']:.2f}")

        print("\nCapture (ruvector_dag.capture):")
        rows = conn.execute("SELECT table_name::text, executions, captured, sampled_out, dropped, buffered, processed "
                            "FROM ruvector_dag.capture").fetchall()
        print(_table(rows, ["table", "executions", "captured", "sampled out", "dropped", "buffered", "learned from"]))

        print("\nLearned patterns (ruvector_dag_patterns):")
        rows = conn.execute(
            "SELECT pattern_id, attention_type, round(confidence::numeric, 3), sample_count, "
            "round((avg_latency_us / 1000)::numeric, 3), round(avg_quality::numeric, 3) "
            "FROM ruvector_dag_patterns('demo_orders') ORDER BY sample_count DESC LIMIT 12").fetchall()
        print(_table(rows, ["pattern", "attention", "confidence", "samples", "avg ms", "quality"]))

        stats = conn.execute("SELECT ruvector_dag_learning_stats('demo_orders')").fetchone()[0]
        print("\nLearning statistics (ruvector_dag_learning_stats):")
        print(_table([(k, f"{v:.4g}" if isinstance(v, float) else v) for k, v in stats.items()], ["field", "value"]))

        health = conn.execute("SELECT ruvector_dag_health_report('demo_orders')").fetchone()[0]
        print("\nHealth (ruvector_dag_health_report):")
        print(_table([("healthy", health["healthy"]), ("issues", "; ".join(health["issues"]) or "none"),
                      ("buffer", f"{health['buffer']['size']} / {health['buffer']['capacity']}"),
                      ("drop rate", f"{health['buffer']['drop_rate']:.3f}")], ["check", "value"]))

        # Attention over one learned plan, computed by the engine in the server.
        nodes = [[math.log1p(r), math.log1p(c)] for r, c in ((50000, 1200.0), (2000, 55.0), (800, 35.0))]
        weights = conn.execute(
            "SELECT ruvector_attention_critical_path(%s::real[], %s::real[], %s::boolean[], 1.0)",
            (nodes[0], nodes[1:], "{t,f}")).fetchone()[0]
        print("\ncritical-path attention of a join over its inputs (computed in the server): "
              + ", ".join(f"{w:.3f}" for w in weights))
        _steering(server, conn)
    print(f"\nThe server is still running: psql '{server.dsn}'  (stop: ruvector-dag server stop)")
    return 0


def _steering(server: Any, conn: Any, executions: int = 25) -> None:
    """A trap query PostgreSQL misestimates, fixed by learned steering; latency before and after.
    The trap runs as workloads.APP_ROLE: the worker's trials replay no superuser's statement."""
    import time

    from tqdm import tqdm

    from . import workloads

    workloads.create(conn.execute)
    workloads.own_tables(conn.execute)
    for table in workloads.ENROLLED:
        conn.execute("SELECT ruvector_enable_neural_dag(%s)", (table,))
    sql = workloads.QUERIES["skewed"]
    latencies = []
    with server.connect(user=workloads.APP_ROLE) as app:
        for _ in tqdm(range(executions), desc="plan steering: a skewed-join trap", unit="exec"):
            t0 = time.perf_counter()
            app.execute(sql).fetchall()
            latencies.append((time.perf_counter() - t0) * 1e3)
            time.sleep(0.25)  # the worker drains every 200 ms
    conn.execute("SELECT ruvector_dag_learn('trap_f')")  # saves the evidence now
    print("\nPlan steering (ruvector_dag.steering):")
    rows = conn.execute("SELECT query_id, query, arm, state, executions, round(mean_latency_ms::numeric, 2), "
                        "round(p95_latency_ms::numeric, 2), round(speedup::numeric, 2), source "
                        "FROM ruvector_dag.steering ORDER BY query_id, arm").fetchall()
    print(_table(rows, ["query id", "query", "arm", "state", "executions", "mean ms", "p95 ms", "speed-up", "source"]))
    print(f"skewed-join trap: first 3 executions {sum(latencies[:3]) / 3:.1f} ms on average, "
          f"last 5 {sum(latencies[-5:]) / 5:.1f} ms")
    plan = conn.execute(f"EXPLAIN {sql}").fetchall()
    print("EXPLAIN now ends with: " + plan[-1][0].strip())
